"""Full-vector storage types (vectors.py): nDCG@10 and bytes per chunk of float32, float16 and int8, side by side.

Each type gets its own index of the same chunks and vectors (the embedding cache is shared, so nothing is embedded
twice); each is evaluated on the train split (where the default is chosen: the smallest type whose dense
two-stage nDCG@10 stays within 0.002 of float32's on every set) and on the test split (reported). Sets: SciFact
and aie5-simonw-llms (both have train and test splits); the bundled MiniLM (384 dims). The 1024-dim width is
covered by benchmarks/scale.py (top-10 agreement with exact float32 search).

    python benchmarks/storage.py
"""

from __future__ import annotations

from _common import CACHE, require_data, write_section

from searcher import IndexConfig
from searcher.evaluate import evaluate
from searcher.store import open_index
from searcher.vectors import FILES, STORAGE_TYPES

SETS = ("scifact", "aie5-simonw-llms")
TOLERANCE = 0.002


def main() -> None:
    rows, chosen_by = [], {}
    for name in SETS:
        base = {}
        for split in ("train", "test"):
            for storage in STORAGE_TYPES:
                report = evaluate(require_data(name), split=split, config=IndexConfig(full_storage=storage),
                                  root=CACHE, latency=False)
                index = open_index(report.index)
                size = (index.path / FILES[storage]).stat().st_size / max(len(index), 1)
                index.close()
                ndcg = {mode: report.modes[mode]["ndcg@10"] for mode in ("dense", "full", "hybrid")}
                base.setdefault(split, ndcg) if storage == "float32" else None
                delta = ndcg["dense"] - base[split]["dense"]
                if split == "train":
                    chosen_by.setdefault(storage, []).append(delta)
                rows.append(f"| {name} | {split} | {storage} | {size:,.0f} | {ndcg['dense']:.4f} ({delta:+.4f}) | "
                            f"{ndcg['full']:.4f} | {ndcg['hybrid']:.4f} |")
                print(rows[-1], flush=True)
    ok = [s for s in STORAGE_TYPES if all(d >= -TOLERANCE for d in chosen_by[s])]
    smallest = ok[-1]  # STORAGE_TYPES runs from the largest type to the smallest
    lines = ["| set | split | storage | bytes/chunk (full vectors) | dense nDCG@10 (vs float32) | exact full nDCG@10 | "
             "hybrid nDCG@10 |", "|:--|:--|:--|--:|--:|--:|--:|", *rows, "",
             f"Chosen on the train splits (dense two-stage within {TOLERANCE} of float32 on every set): "
             f"**{smallest}** (train deltas: " + ", ".join(f"{s} {min(chosen_by[s]):+.4f}" for s in STORAGE_TYPES)
             + ")."]
    write_section("storage", "Full-vector storage types (nDCG@10 and size)", "\n".join(lines))


if __name__ == "__main__":
    main()
