"""Another model's cosines on the calibration's scale (model_info.CosineMap): what the map restores.

The calibrated score and the hybrid's weight were fitted on the bundled MiniLM's cosines. Models:
- the bundled MiniLM itself (the reference: it gets no map; its row is the target);
- the same MiniLM with every embedding shifted by OFFSET x a fixed unit vector before it is normalised
  (tests/models.py, anisotropic_minilm): its ranking nearly the MiniLM's, its cosines squeezed towards 1, as many
  models' are (0.7-0.95 for any two texts);
- the SciFact-train fine-tuned MiniLM that finetune.py leaves in the cache, when it is there (a real model).
For each model and shared set (the reported splits of relevance.py): the map the index fitted at build time (no
labels), dense and hybrid nDCG@10 with and without it (dense ranks alike either way: the map is increasing), and
the share of queries answered no match - the set's own and the other three sets' (off-topic) - with and without.

    python benchmarks/cosine_map.py
"""

from __future__ import annotations

import dataclasses
import sys

import numpy as np
from _common import CACHE, HERE, require_data, write_section
from relevance import REPORTED, ndcg, run

from searcher import IndexConfig, Searcher
from searcher.encoder import load_encoder
from searcher.evaluate import evaluate
from searcher.metrics import load_beir

sys.path.insert(0, str(HERE.parent / "tests"))
from models import anisotropic_minilm  # noqa: E402

OFFSET = 1.5
MODELS = CACHE / "models"


def measure(label: str, encoder) -> list[str]:
    searchers, queries = {}, {}
    for name, split in REPORTED.items():
        report = evaluate(
            require_data(name),
            split=split,
            config=IndexConfig(model=encoder.info.name),
            encoder=encoder,
            root=CACHE,
            latency=False,
        )
        mapped = Searcher(report.index, encoder=encoder)
        plain = Searcher(report.index, encoder=encoder)
        plain.manifest = dataclasses.replace(plain.manifest, cosine_map=None)
        searchers[name] = (plain, mapped)
        queries[name] = load_beir(require_data(name), split)
    rows = []
    for name, (plain, mapped) in searchers.items():
        data = queries[name]
        m = mapped.manifest.cosine_map
        cells = [f"{m.slope:.2f} / {m.offset:+.2f}" if m else "none"]
        results = {}
        for mode in ("dense", "hybrid"):
            for variant, s in (("plain", plain), ("mapped", mapped)):
                results[mode, variant] = run(s, data.queries, mode)
        cells.append(f"{ndcg(results['dense', 'mapped'], data.qrels):.4f}")
        cells.append(" -> ".join(f"{ndcg(results['hybrid', v], data.qrels):.4f}" for v in ("plain", "mapped")))
        for mode in ("dense", "hybrid"):
            own = [np.mean([h.no_match for h in results[mode, v].values()]) for v in ("plain", "mapped")]
            off = []
            for s in (plain, mapped):
                flagged = [
                    hits.no_match
                    for other in REPORTED
                    if other != name
                    for hits in run(s, queries[other].queries, mode).values()
                ]
                off.append(np.mean(flagged))
            cells.append(" -> ".join(f"{100 * x:.1f}%" for x in own))
            cells.append(" -> ".join(f"{100 * x:.1f}%" for x in off))
        rows.append(f"| {label} | {name} | " + " | ".join(cells) + " |")
    return rows


def main() -> None:
    MODELS.mkdir(parents=True, exist_ok=True)
    shifted = MODELS / f"minilm-shifted-{OFFSET:g}"
    if not (shifted / "modules.json").is_file():
        anisotropic_minilm(shifted, offset=OFFSET)
    models = [("bundled MiniLM (reference)", "sentence-transformers/all-MiniLM-L6-v2")]
    models.append((f"MiniLM shifted by {OFFSET:g}", str(shifted)))
    if (MODELS / "scifact-minilm" / "modules.json").is_file():
        models.append(("SciFact-train fine-tuned MiniLM", str(MODELS / "scifact-minilm")))
    lines = [
        "Each index fits its map when it is built (no labels: sentences of its own chunks as queries, scored by "
        "its model and by the bundled MiniLM); 'a -> b' is without the map -> with it. Off-topic: the other three "
        "sets' queries against this set's index. The MiniLM rows are the target: the calibration was fitted on its "
        "cosines.",
        "",
        "| model | set | map (slope / offset) | dense nDCG@10 | hybrid nDCG@10 | dense no match, own | dense no match, "
        "off-topic | hybrid no match, own | hybrid no match, off-topic |",
        "|:--|:--|:--|--:|--:|--:|--:|--:|--:|",
    ]
    for label, model in models:
        lines += measure(label, load_encoder(model))
    write_section("cosine-map", "Another model's cosines on the calibration's scale", "\n".join(lines))


if __name__ == "__main__":
    main()
