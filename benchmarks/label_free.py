"""Label-free fine-tuning (labelfree.py) on each shared set: base against tuned, dense and hybrid, every
Matryoshka dim, with the set's labels used only for this report. Training sees the index's chunks and nothing else;
the held-out comparison `searcher finetune` makes on its own pseudo-queries decides whether the tuned model is
adopted, and the "adopted" column is what a user following that verdict gets.

    python benchmarks/label_free.py [--sets aie5-simonw-llms scifact ...] [--epochs N] [--learning-rate LR]
        [--split train --tag -train]   # a choice between recipes: judged on a train split's labels, not test's
        [--tuned-share S]              # keep this share of the trained weights (label_free_share.py chooses it)
        [--weights]                    # and each model's hybrid nDCG@10 at every fusion weight

Why `--weights`: the teacher is the hybrid search itself, so the most the tuned model's hybrid search can be
expected to gain is what its best weight gains over the base model's best weight (see the label-free sections).
"""

from __future__ import annotations

import argparse
import time

from _common import CACHE, require_data, write_section

from searcher import IndexConfig, encoder_choice
from searcher.cache import EmbeddingCache
from searcher.config import DEFAULT_SHORTLIST
from searcher.encoder import load_encoder
from searcher.evaluate import cache_dir_for, evaluate, fusion_sweep
from searcher.metrics import load_beir
from searcher.store import read_manifest
from searcher.train import FinetuneConfig, finetune

# Smallest first; StatPearls has only a train split of labels (used here for the report, never for training).
SETS = [
    ("aie5-simonw-llms", "test"),
    ("dmiai2025-emergency-rag-statpearls", "train"),
    ("msmarco-5k", "test"),
    ("scifact", "test"),
]


# Every model here embeds its documents on a float path (torch, bf16 or the float ONNX graph, which agree): the int8
# graph's vectors rank differently (RESULTS.md, paths-quality-*), and it is the base model's remembered choice on a
# CPU where it won, while a tuned model on a small set is never checked for it: the two would not be compared alike.
encoder_choice.INT8_DOCUMENTS = False


def ndcg(report, column: str) -> float:
    if column in report.modes:
        return report.modes[column]["ndcg@10"]
    return report.dims[int(column.split()[1])]["ndcg@10"]


def embedded_with(report) -> str:
    """The path that embedded an evaluation index's documents (encoder_choice): base and tuned are compared fairly
    only on the same kind of path (the int8 graph's vectors rank differently from float ones: RESULTS.md,
    paths-quality-*)."""
    record = read_manifest(report.index).document_encoder
    return record["choice"] if record else "torch"  # no record: a run too small to measure embeds with float32


def weight_table(data, split: str, base, tuned, root) -> list[str]:
    """Hybrid nDCG@10 of the base and the tuned model at each fusion weight (evaluate.fusion_sweep)."""
    labelled, sweeps = load_beir(data, split), {}
    for label, report in (("base", base), ("tuned", tuned)):
        encoder = load_encoder(report.model)
        cache = EmbeddingCache(cache_dir_for(root, encoder), encoder.info)
        sweeps[label] = fusion_sweep(report.index, labelled, encoder, cache, DEFAULT_SHORTLIST)
    weights = list(sweeps["base"])
    return [
        "| hybrid nDCG@10 at fusion weight | " + " | ".join(f"{w:g}" for w in weights) + " | best |",
        "|:--|" + "--:|" * (len(weights) + 1),
        *(
            f"| {label} | " + " | ".join(f"{v:.4f}" for v in sweep.values()) + f" | {max(sweep.values()):.4f} |"
            for label, sweep in sweeps.items()
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sets", nargs="*", help="only these sets (folder names under ../shared/data)")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--learning-rate", type=float)
    parser.add_argument("--max-pairs", type=int)
    parser.add_argument("--tuned-share", type=float, help="share of the trained weights kept [default: searcher's]")
    parser.add_argument("--tag", default="", help="suffix of the RESULTS section (a variant's run)")
    parser.add_argument("--split", help="judge on this split's labels instead of each set's reported one")
    parser.add_argument("--weights", action="store_true", help="hybrid nDCG@10 of both models at each fusion weight")
    args = parser.parse_args()
    root = CACHE / "label-free"
    rows = []
    for name, split in [(n, args.split or s) for n, s in SETS if not args.sets or n in args.sets]:
        data = require_data(name)
        base = evaluate(data, split=split, config=IndexConfig(), latency=False, root=root / "eval")
        out = root / "models" / f"{name}{args.tag}"
        started = time.perf_counter()
        config = FinetuneConfig(
            epochs=args.epochs, learning_rate=args.learning_rate, max_pairs=args.max_pairs, tuned_share=args.tuned_share
        )
        ft = finetune(base.index, out, config, overwrite=True, eval_root=root / "heldout-eval")
        seconds = time.perf_counter() - started
        tuned = evaluate(data, split=split, config=IndexConfig(model=str(out)), latency=False, root=root / "eval")
        columns = ["hybrid", "dense"] + [f"dim {d}" for d in sorted(base.dims, reverse=True)]
        held = {c: (ft.before[c]["ndcg@10"], ft.after[c]["ndcg@10"]) for c in ("hybrid", "two-stage")}
        lines = [
            f"### {name} ({split} split, {base.queries} queries; labels used for this table only)",
            "",
            f"Data: {ft.data}. Trained {ft.steps} steps in {ft.train_seconds:.0f} s ({ft.pairs_per_second:.1f} "
            f"triplets/s); {seconds / 60:.1f} min in all for `searcher finetune` (teacher, held-out comparison, "
            f"training, rotation, export). Held-out pseudo-queries: hybrid {held['hybrid'][0]:.4f} -> "
            f"{held['hybrid'][1]:.4f}, dense {held['two-stage'][0]:.4f} -> {held['two-stage'][1]:.4f}: verdict "
            f"**{ft.verdict}**"
            + (" (the tuned model is adopted)" if ft.better else " (the base model is kept)")
            + f". Documents embedded with: base {embedded_with(base)}, tuned {embedded_with(tuned)}.",
            "",
            "| nDCG@10 | base | tuned | tuned - base | adopted - base |",
            "|:--|--:|--:|--:|--:|",
        ]
        for c in columns:
            b, t = ndcg(base, c), ndcg(tuned, c)
            lines.append(f"| {c} | {b:.4f} | {t:.4f} | {t - b:+.4f} | {(t - b) if ft.better else 0.0:+.4f} |")
        if args.weights:
            lines += ["", *weight_table(data, split, base, tuned, root / "eval")]
        rows.append((name, ndcg(base, "hybrid"), ndcg(tuned, "hybrid"), ndcg(base, "dense"), ndcg(tuned, "dense"), ft))
        print("\n".join(lines), flush=True)
        write_section(f"label-free-{name}{args.tag}", f"Label-free fine-tuning: {name}{args.tag}", "\n".join(lines))
    if len(rows) > 1:
        summary = [
            "| set | hybrid base | hybrid tuned | dense base | dense tuned | verdict |",
            "|:--|--:|--:|--:|--:|:--|",
            *(f"| {n} | {hb:.4f} | {ht:.4f} | {db:.4f} | {dt:.4f} | {ft.verdict} |" for n, hb, ht, db, dt, ft in rows),
        ]
        n = len(rows)
        summary.append(
            f"| mean | {sum(r[1] for r in rows) / n:.4f} | {sum(r[2] for r in rows) / n:.4f} | "
            f"{sum(r[3] for r in rows) / n:.4f} | {sum(r[4] for r in rows) / n:.4f} | |"
        )
        write_section(f"label-free{args.tag}", f"Label-free fine-tuning, all sets{args.tag}", "\n".join(summary))


if __name__ == "__main__":
    main()
