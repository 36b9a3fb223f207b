"""Fine-tuning results (issue 4), with the bundled MiniLM as the base model:

1. the first model card's setting on aie5-simonw-llms (train 156 pairs, evaluated on the 24 test queries
   against the whole 102-chunk corpus), with that card's hyperparameters;
2. SciFact: trained on the train split with searcher's defaults, measured on test, plus two-stage search with
   the prefix projection at a shortlist of 100 against the model's own exact search;
3. (no labels: benchmarks/label_free.py; the inverse-cloze pairs this script once measured are gone, their
   RESULTS section kept as the record of why);
4. (`speed`) where training time goes: pairs/s on 320 SciFact pairs for training window, batch size and bf16;
5. (`sweep`) the SciFact runs behind the defaults: window, epochs, batch size and learning rate;
6. (`weights`) MatryoshkaLoss weight of the 64-dim prefix, compared on a validation split carved out of SciFact
   train (test is not looked at);
7. (`rotation`) the closing PCA rotation on and off, on the same validation split;
8. (`lr`) the learning rate, re-chosen on the same validation split now that the closing rotation removes the
   prefix trade-off, measured in dense and in hybrid search.

    python benchmarks/finetune.py [--only aie5 scifact speed sweep weights rotation lr]
"""

from __future__ import annotations

import argparse
import csv
import random
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import CACHE, require_data, write_section

from searcher import IndexConfig
from searcher.config import DEFAULT_MODEL
from searcher.encoder import load_encoder
from searcher.evaluate import evaluate
from searcher.metrics import METRICS, metrics_table
from searcher.pairs import load_training_data
from searcher.train import FinetuneConfig, finetune

MODELS = CACHE / "models"
ARCTIC_COMMAND = (
    "searcher finetune ../shared/data/aie5-simonw-llms -o models/aie5-arctic-embed-l "
    "--model Snowflake/snowflake-arctic-embed-l --batch-size 10 --epochs 10 --learning-rate 5e-5 --warmup-ratio 0 "
    "--max-seq-length 0"
)


def table(before: dict, after: dict, metrics=METRICS) -> str:
    """Before and after side by side, per column (dim or mode)."""
    columns = {f"{c} {when}": m for c in after for when, m in (("before", before[c]), ("after", after[c]))}
    return "\n".join(metrics_table(columns, metrics))


def run(data, name: str, config: FinetuneConfig, root: Path = CACHE):
    started = time.perf_counter()
    report = finetune(data, MODELS / name, config, overwrite=True, eval_root=root)
    return report, time.perf_counter() - started


def aie5() -> str:
    config = FinetuneConfig(batch_size=10, epochs=10, learning_rate=5e-5, warmup_ratio=0.0, max_seq_length=None)
    report, total = run(require_data("aie5-simonw-llms"), "aie5-minilm", config)
    return "\n".join(
        [
            "The first card's hyperparameters (batch 10, 10 epochs, learning rate 5e-5, no warmup, seed 42, the "
            "model's whole window; "
            "MatryoshkaLoss dims [384, 256, 128, 64] since the base is 384 wide), no-duplicates batches, "
            f"{report.pairs} training pairs. Trained in {report.train_seconds:.0f} s ({total:.0f} s with both "
            f"evaluations), on {report.evaluation}.",
            "",
            table(report.before, report.after),
            "",
            f"With arctic-embed-l (1024 dims, not downloadable here) the same run is: `{ARCTIC_COMMAND}`",
        ]
    )


def scifact() -> str:
    data = require_data("scifact")
    config = FinetuneConfig()
    # A fresh cache, as a first-time user has: both evaluations embed the corpus, and the total time says so.
    root = Path(tempfile.mkdtemp(prefix="cold-", dir=CACHE))
    report, total = run(data, "scifact-minilm", config, root)
    model = str(MODELS / "scifact-minilm")
    rows = []
    for projection in ("prefix", "pca", "auto"):
        for shortlist in (50, 100, 200):
            r = evaluate(
                data,
                config=IndexConfig(model=model, projection=projection),
                shortlist=shortlist,
                root=root,
                latency=False,
            )
            full, two = r.modes["full"]["ndcg@10"], r.modes["dense"]["ndcg@10"]
            rows.append(
                f"| {projection}{f' (chose {r.projection})' if projection == 'auto' else ''} | {shortlist} "
                f"| {two:.4f} | {full:.4f} | {full - two:.4f} | {r.agreement:.1%} |"
            )
    shutil.rmtree(root)
    return "\n".join(
        [
            f"searcher's defaults ({config_line(config, report)}); {report.pairs} training pairs; trained in "
            f"{report.train_seconds:.0f} s ({report.pairs_per_second:.1f} pairs/s); closing rotation fitted on "
            f"{report.rotation_fitted_on} corpus documents in {report.rotation_seconds:.0f} s; {total / 60:.1f} min "
            "in all "
            f"from an empty cache, with the before/after evaluations on {report.evaluation}.",
            "",
            table(report.before, report.after),
            "",
            "Two-stage search with the fine-tuned model against its own exact full-dim search (nDCG@10):",
            "",
            "| projection | shortlist | two-stage | exact | gap | top-10 agreement |",
            "|:--|--:|--:|--:|--:|--:|",
            *rows,
        ]
    )


SPEED = [  # (batch size, training window, bf16)
    (32, 256, False),
    (16, 256, False),
    (32, 128, False),
    (32, 256, True),
    (16, 128, True),
    (32, 128, True),
]
SWEEP = [  # (batch size, training window, epochs, learning rate)
    (16, 128, 4, 2e-5),
    (16, 256, 4, 2e-5),
    (16, 128, 10, 2e-5),
    (32, 128, 10, 2e-5),
    (32, 128, 10, 5e-5),
]


def speed() -> str:
    data = require_data("scifact")
    encoder = load_encoder(DEFAULT_MODEL)
    pairs = load_training_data(data, encoder).train
    passages = np.array(encoder.input_lengths([p.passage for p in pairs]))
    queries = np.array(encoder.input_lengths([p.query for p in pairs]))
    rows = []
    for batch, window, bf16 in SPEED:
        config = FinetuneConfig(epochs=1, batch_size=batch, max_seq_length=window, bf16=bf16, max_pairs=320)
        report = finetune(data, MODELS / "speed", config, evaluate_model=False, overwrite=True)
        rows.append(f"| {batch} | {window} | {'bf16' if bf16 else 'fp32'} | {report.pairs_per_second:.1f} |")
    return "\n".join(
        [
            "Training throughput on 320 SciFact train pairs (claims against title + abstract), 1 epoch, MiniLM, 2 "
            "cores. "
            f"In tokens, the {len(pairs)} training passages have a median of {np.median(passages):.0f} "
            f"({np.mean(passages > 128):.0%} longer than 128, {np.mean(passages > 256):.0%} longer than 256), the "
            "queries "
            f"{np.median(queries):.0f}: the passages' forward and backward pass over the training window is the time.",
            "",
            "| batch | training window | precision | pairs/s |",
            "|--:|--:|:--|--:|",
            *rows,
        ]
    )


def sweep() -> str:
    data = require_data("scifact")
    rows = []
    for batch, window, epochs, lr in SWEEP:
        config = FinetuneConfig(
            epochs=epochs, batch_size=batch, max_seq_length=window, learning_rate=lr, pca_prefix=False
        )  # as measured, before the closing rotation existed
        report, total = run(data, "sweep", config)
        b, a = report.before, report.after
        gap, agreement = prefix_gap(data, MODELS / "sweep", "test", 100)
        rows.append(
            f"| {batch} | {window} | {epochs} | {lr:g} | {report.train_seconds / 60:.1f} | {total / 60:.1f} "
            f"| {a['dim 384']['ndcg@10']:.4f} | {a['dim 64']['ndcg@10']:.4f} | {a['two-stage']['ndcg@10']:.4f} "
            f"| {gap:.4f} ({agreement:.1%}) |"
        )
    return "\n".join(
        [
            f"SciFact train -> test, MiniLM base (before: full {b['dim 384']['ndcg@10']:.4f}, dim 64 "
            f"{b['dim 64']['ndcg@10']:.4f}, two-stage {b['two-stage']['ndcg@10']:.4f}), bf16, warmup 0.1, no closing "
            "rotation (--no-pca-prefix); nDCG@10 after. "
            "Two-stage = default settings (auto projection, shortlist 200); prefix gap = exact full minus two-stage "
            "with "
            "the prefix projection at shortlist 100 (top-10 agreement in brackets).",
            "",
            "| batch | window | epochs | learning rate | train min | total min | full | dim 64 | two-stage | prefix "
            "gap @100 |",
            "|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
            *rows,
        ]
    )


WEIGHTS = [1, 2, 4, 8]  # MatryoshkaLoss weight of dim 64 (the others stay 1)
VALIDATION_QUERIES = 200


def validation_split(data: Path) -> Path:
    """A BEIR folder beside the cache: SciFact's corpus and queries, train qrels split into train and dev."""
    folder = CACHE / "scifact-validation"
    (folder / "qrels").mkdir(parents=True, exist_ok=True)
    for name in ("corpus.jsonl", "queries.jsonl"):
        if not (folder / name).exists():
            (folder / name).symlink_to(data / name)
    with open(data / "qrels" / "train.tsv", newline="") as f:
        reader = csv.reader(f, delimiter="\t")
        header, rows = next(reader), list(reader)
    queries = sorted({r[0] for r in rows})
    held = set(random.Random(0).sample(queries, VALIDATION_QUERIES))
    for split, keep in (("train", lambda q: q not in held), ("dev", lambda q: q in held)):
        with open(folder / "qrels" / f"{split}.tsv", "w", newline="") as f:
            csv.writer(f, delimiter="\t").writerows([header, *(r for r in rows if keep(r[0]))])
    return folder


def prefix_gap(data: Path, model: Path, split: str, shortlist: int) -> tuple[float, float]:
    """(exact minus two-stage nDCG@10, top-10 agreement) with the prefix projection."""
    r = evaluate(
        data,
        split=split,
        config=IndexConfig(model=str(model), projection="prefix"),
        shortlist=shortlist,
        root=CACHE,
        latency=False,
    )
    return r.modes["full"]["ndcg@10"] - r.modes["dense"]["ndcg@10"], r.agreement


def validation_rows(name: str, runs: list[tuple[str, FinetuneConfig]]) -> tuple[list[str], object]:
    """One table row per (label, config), trained on the validation split's train and measured on its dev;
    and the last run's report."""
    validation = validation_split(require_data("scifact"))
    rows = []
    for label, config in runs:
        report, total = run(validation, name, config)
        a = report.after
        gaps = [prefix_gap(validation, MODELS / name, "dev", s) for s in (50, 100)]
        rows.append(
            f"| {label} | {total / 60:.1f} | {a['dim 384']['ndcg@10']:.4f} | {a['dim 64']['ndcg@10']:.4f} | "
            + " | ".join(f"{g:.4f} ({agree:.1%})" for g, agree in gaps)
            + " |"
        )
    return rows, report


def weights() -> str:
    rows, report = validation_rows(
        "weights", [(str(w), FinetuneConfig(dim_weights=((64, w),), pca_prefix=False)) for w in WEIGHTS]
    )
    b = report.before
    return "\n".join(
        [
            f"Validation: {VALIDATION_QUERIES} of SciFact's train queries held out (seed 0), the model trained on the "
            f"rest ({report.pairs} pairs) with searcher's defaults but the weight of dim 64 and no closing rotation, "
            f"evaluated on the held-out queries against the whole corpus (before: full {b['dim 384']['ndcg@10']:.4f}, "
            f"dim 64 {b['dim 64']['ndcg@10']:.4f}). nDCG@10 after; prefix gap = exact full minus two-stage with the "
            "prefix projection (top-10 agreement in brackets).",
            "",
            "| dim 64 weight | total min | full | dim 64 | prefix gap @50 | prefix gap @100 |",
            "|--:|--:|--:|--:|--:|--:|",
            *rows,
        ]
    )


def rotation() -> str:
    rows, report = validation_rows(
        "rotation", [("yes" if on else "no", FinetuneConfig(pca_prefix=on)) for on in (False, True)]
    )
    return "\n".join(
        [
            f"The validation split of finetune-weights ({VALIDATION_QUERIES} SciFact train queries held out, "
            f"{report.pairs} training pairs), searcher's defaults with and without the closing PCA rotation "
            f"(fitted on {report.rotation_fitted_on} corpus documents). nDCG@10 on the held-out queries; prefix gap = "
            "exact full minus two-stage with the prefix projection (top-10 agreement in brackets).",
            "",
            "| rotation | total min | full | dim 64 | prefix gap @50 | prefix gap @100 |",
            "|:--|--:|--:|--:|--:|--:|",
            *rows,
        ]
    )


LEARNING_RATES = [2e-5, 5e-5]


def lr() -> str:
    validation = validation_split(require_data("scifact"))
    rows = []
    for rate in LEARNING_RATES:
        report, total = run(validation, "lr", FinetuneConfig(learning_rate=rate))
        a = report.after
        rows.append(
            f"| {rate:g} | {total / 60:.1f} | {a['dim 384']['ndcg@10']:.4f} | {a['dim 64']['ndcg@10']:.4f} | "
            f"{a['two-stage']['ndcg@10']:.4f} | {a['hybrid']['ndcg@10']:.4f} |"
        )
    b = report.before
    return "\n".join(
        [
            f"The validation split of finetune-weights ({VALIDATION_QUERIES} SciFact train queries held out, "
            f"{report.pairs} training pairs), searcher's defaults but the learning rate. nDCG@10 on the held-out "
            f"queries (before: full {b['dim 384']['ndcg@10']:.4f}, dense {b['two-stage']['ndcg@10']:.4f}, hybrid "
            f"{b['hybrid']['ndcg@10']:.4f}).",
            "",
            "| learning rate | total min | full | dim 64 | dense (two-stage) | hybrid |",
            "|--:|--:|--:|--:|--:|--:|",
            *rows,
        ]
    )


def config_line(config: FinetuneConfig, report) -> str:
    config = config.for_data(label_free=False)  # what a labelled run trains with where the config leaves it to the data
    weights = "".join(f", dim {d} weight {w:g}" for d, w in config.dim_weights)
    return (
        f"batch {config.batch_size}, {config.epochs} epochs, learning rate {config.learning_rate}, warmup "
        f"{config.warmup_ratio}, training window {config.max_seq_length or 'full'}, "
        f"{'bf16' if report.bf16 else 'fp32'}{weights}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--only",
        nargs="+",
        choices=("aie5", "scifact", "speed", "sweep", "weights", "rotation", "lr"),
        default=["aie5", "scifact"],
    )
    args = parser.parse_args()
    titles = {
        "aie5": "Fine-tuning: the first model card's setting (aie5-simonw-llms, MiniLM base)",
        "scifact": "Fine-tuning: SciFact train -> test (MiniLM base)",
        "speed": "Fine-tuning: where the training time goes",
        "sweep": "Fine-tuning: the SciFact runs behind the defaults",
        "weights": "Fine-tuning: weighting the 64-dim prefix (SciFact validation split)",
        "rotation": "Fine-tuning: the closing PCA rotation (SciFact validation split)",
        "lr": "Fine-tuning: the learning rate, dense and hybrid (SciFact validation split)",
    }
    for name in args.only:
        write_section(f"finetune-{name}", titles[name], globals()[name]())


if __name__ == "__main__":
    main()
