"""Full-vector storage types (vectors.py): nDCG@10, bytes per chunk and top-10 agreement with float32 of float32,
float16, mixed and int8, side by side.

Each type gets its own index of the same chunks and vectors (the embedding cache is shared, so nothing is embedded
twice); each is evaluated on the train split (where the default is chosen) and on the test split (reported). Sets:
SciFact and aie5-simonw-llms (both have train and test splits); the bundled MiniLM (384 dims). Agreement: the share
of float32's exact top-10 chunks that an exact search over the type's stored vectors keeps, with the split's
queries: what the storage type alone costs the ranking (the two-stage search can only lose more). The 1024-dim width
and ten million chunks are in benchmarks/scale_quantized.py.

Candidates for the default: the types whose dense two-stage nDCG@10 stays within 0.002 of float32's on every set's
train split. Of those, config.DEFAULT_FULL_STORAGE is the smallest that also leaves room for the 0.97 top-10
agreement asked of a ten-million-chunk index, where the coarse stage loses its share too (its exhaustive ceiling in
RESULTS.md, scale-quantized).

The coarse index types (flat, ivf) are compared the same way at the default storage: `auto` keeps these sets flat
(they are far below coarse.IVF_MIN_CHUNKS), so the IVF is forced to show what it would cost them.

    python benchmarks/storage.py
"""

from __future__ import annotations

import numpy as np
from _common import CACHE, require_data, top10_agreement, write_section

from searcher import IndexConfig, Searcher
from searcher.config import DEFAULT_FULL_STORAGE, DEFAULT_SHORTLIST
from searcher.encoder import load_encoder
from searcher.evaluate import evaluate
from searcher.metrics import load_beir
from searcher.store import open_index
from searcher.vectors import FILES, STORAGE_TYPES

SETS = ("scifact", "aie5-simonw-llms")
TOLERANCE = 0.002


def exact_top10(index_dir, xq: np.ndarray, encoder) -> np.ndarray:
    with Searcher(index_dir, encoder=encoder) as s:
        return s.search_vectors(xq, k=10, mode="full")[1]


def main() -> None:
    rows, deltas, agreements = [], {}, {}
    encoder = load_encoder(IndexConfig().model)  # one model for every evaluation and query set
    for name in SETS:
        for split in ("train", "test"):
            xq = encoder.encode_queries(list(load_beir(require_data(name), split).queries.values()))
            base, reference = None, None
            for storage in STORAGE_TYPES:
                report = evaluate(
                    require_data(name),
                    split=split,
                    config=IndexConfig(full_storage=storage),
                    root=CACHE,
                    latency=False,
                    encoder=encoder,
                )
                index = open_index(report.index)
                size = (index.path / FILES[storage]).stat().st_size / max(len(index), 1)
                index.close()
                top = exact_top10(report.index, xq, encoder)
                reference = top if reference is None else reference
                agreement = top10_agreement(top, reference)
                ndcg = {mode: report.modes[mode]["ndcg@10"] for mode in ("dense", "full", "hybrid")}
                base = base or ndcg  # float32 comes first
                delta = ndcg["dense"] - base["dense"]
                if split == "train":
                    deltas.setdefault(storage, []).append(delta)
                    agreements.setdefault(storage, []).append(agreement)
                rows.append(
                    f"| {name} | {split} | {storage} | {size:,.0f} | {ndcg['dense']:.4f} ({delta:+.4f}) | "
                    f"{ndcg['full']:.4f} | {ndcg['hybrid']:.4f} | {agreement:.4f} |"
                )
                print(rows[-1], flush=True)
    ok = [s for s in STORAGE_TYPES if all(d >= -TOLERANCE for d in deltas[s])]
    lines = [
        "| set | split | storage | bytes/chunk (full vectors) | dense nDCG@10 (vs float32) | exact full nDCG@10 | "
        "hybrid nDCG@10 | exact top-10 agreement with float32 |",
        "|:--|:--|:--|--:|--:|--:|--:|--:|",
        *rows,
        "",
        f"Within {TOLERANCE} of float32's dense nDCG@10 on every train split: **{', '.join(ok)}** (train, worst "
        "set: nDCG@10 change / agreement: "
        + ", ".join(f"{s} {min(deltas[s]):+.4f} / {min(agreements[s]):.4f}" for s in STORAGE_TYPES)
        + ").",
    ]
    coarse_rows = []
    for name in SETS:
        for split in ("train", "test"):
            base = None
            for kind in ("flat", "ivf"):
                report = evaluate(
                    require_data(name),
                    split=split,
                    root=CACHE,
                    latency=False,
                    encoder=encoder,
                    config=IndexConfig(full_storage=DEFAULT_FULL_STORAGE, coarse_index=kind),
                )
                index = open_index(report.index)
                record = index.manifest.coarse
                index.close()
                dense = report.modes["dense"]["ndcg@10"]
                base = base if base is not None else dense
                cells = f" ({record['nlist']} cells, nprobe {record['nprobe']})" if kind == "ivf" else ""
                coarse_rows.append(
                    f"| {name} | {split} | {kind}{cells} | {dense:.4f} ({dense - base:+.4f}) | "
                    f"{report.modes['hybrid']['ndcg@10']:.4f} | {report.agreement:.4f} |"
                )
                print(coarse_rows[-1], flush=True)
    lines += [
        "",
        f"Coarse index types at the default storage ({DEFAULT_FULL_STORAGE}), shortlist {DEFAULT_SHORTLIST}:",
        "",
        "| set | split | coarse index | dense nDCG@10 (vs flat) | hybrid nDCG@10 | two-stage keeps of the exact "
        "top-10 |",
        "|:--|:--|:--|--:|--:|--:|",
        *coarse_rows,
    ]
    write_section("storage", "Full-vector storage types (nDCG@10, size, agreement)", "\n".join(lines))


if __name__ == "__main__":
    main()
