"""The README a fine-tuned model is saved with: how it was trained and its before/after tables, in the layout of
sentence-transformers' own model cards."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .metrics import metrics_table

if TYPE_CHECKING:
    from .config import FinetuneConfig


@dataclass
class FinetuneReport:
    output: str
    base_model: str
    data: str
    pairs: int
    dims: list[int]
    steps: int = 0
    train_seconds: float = 0.0
    losses: list[tuple[int, float]] = field(default_factory=list)  # (step, training loss)
    evaluation: str = ""
    before: dict[str, dict[str, float]] = field(default_factory=dict)  # "dim 384", "two-stage", ... -> metrics
    after: dict[str, dict[str, float]] = field(default_factory=dict)
    pairs_per_second: float = 0.0  # training pairs processed per second (pairs x epochs / train time)
    bf16: bool = False
    rotation_fitted_on: int = 0  # texts the closing PCA rotation was fitted on (0: no rotation)
    rotation_seconds: float = 0.0  # time to embed those texts and fit the rotation
    warnings: list[str] = field(default_factory=list)
    label_free: bool = False  # trained on pseudo-queries with margins from the index's hybrid search (labelfree.py)
    verdict: str = ""  # label-free: "better" or "not better" on the held-out pseudo-queries (comparison())
    hybrid_gain_low: float | None = None  # label-free: the lower end of the hybrid nDCG@10 gain's 90% interval

    @property
    def better(self) -> bool:
        return self.verdict == "better"


def model_card(report: FinetuneReport, config: FinetuneConfig) -> str:
    loss = (
        "MarginMSELoss (cosine), margins from the index's hybrid search (label-free: searcher's labelfree.py)"
        if report.label_free
        else "MultipleNegativesRankingLoss"
    )
    lines = [
        "---",
        "library_name: sentence-transformers",
        "pipeline_tag: sentence-similarity",
        "tags:",
        "- sentence-transformers",
        "- sentence-similarity",
        f"- dataset_size:{report.pairs}",
        "- loss:MatryoshkaLoss",
        f"- loss:{'MarginMSELoss' if report.label_free else 'MultipleNegativesRankingLoss'}",
        f"base_model: {report.base_model}",
        "---",
        "",
        f"# Matryoshka fine-tune of {report.base_model}",
        "",
        f"Made with `searcher finetune`. Output dimensionality {report.dims[0]}; the first "
        f"{', '.join(map(str, report.dims[1:]))} dimensions are trained to work as embeddings on their own "
        "(truncate, then re-normalise).",
        "",
        "## Training",
        "",
        f"- Data: {report.data}; {report.pairs} training pairs after cleaning.",
        f"- Loss: MatryoshkaLoss over {loss}, "
        f"`matryoshka_dims` {report.dims}, weights {config.loss_weights(report.dims)}.",
        f"- Hyperparameters: epochs {config.epochs}, batch size {config.batch_size}, learning rate "
        f"{config.learning_rate}, warmup ratio {config.warmup_ratio}, linear schedule, "
        f"{'random' if report.label_free else 'no-duplicates'} batch sampler, "
        f"seed {config.seed}, training window {config.max_seq_length or 'of the base model'} tokens"
        f"{', bf16 autocast' if report.bf16 else ''}.",
        f"- {report.steps} steps in {report.train_seconds:.0f} s on the CPU ({report.pairs_per_second:.1f} pairs/s).",
    ]
    if config.tuned_share is not None and config.tuned_share < 1:
        lines.append(
            f"- Weights: {config.tuned_share:g} of the trained model's, the rest the base model's (weight-space "
            "ensembling)."
        )
    if report.rotation_fitted_on:
        lines.append(
            f"- Output rotated (a last, bias-free Dense layer) onto the principal directions of "
            f"{report.rotation_fitted_on} corpus embeddings ({report.rotation_seconds:.0f} s), so that each prefix "
            "is the "
            "corpus's principal subspace; the rotation is orthogonal and changes no full-dim similarity."
        )
    if report.losses:
        marks = report.losses[:: max(1, len(report.losses) // 10)] + [report.losses[-1]]
        lines += ["", "| Step | Training loss |", "|--:|--:|"]
        lines += [f"| {s} | {loss:.4f} |" for s, loss in dict(marks).items()]
    for w in report.warnings:
        lines.append(f"- Note: {w}")
    if report.verdict:
        lines.append(
            f"- Verdict on the held-out pseudo-queries: **{report.verdict}** than the base model (adopted only when "
            "better: higher hybrid nDCG@10, dense no more than 0.005 lower)."
        )
    if report.before and report.after:
        lines += [
            "",
            "## Evaluation",
            "",
            f"On {report.evaluation}. Exact search per dimension "
            "(sentence-transformers' `truncate_dim`); documents rank by their best chunk.",
            "",
            "### Before (base model)",
            "",
            *metrics_table(report.before),
            "",
            "### After",
            "",
            *metrics_table(report.after),
        ]
    lines += [
        "",
        "## Usage",
        "",
        "```python",
        "from sentence_transformers import SentenceTransformer",
        "",
        'model = SentenceTransformer("path/to/this/model", truncate_dim=64)  # or the full width',
        "```",
        "",
        "or `searcher index DOCS --model path/to/this/model`.",
        "",
    ]
    return "\n".join(lines)
