"""`searcher finetune --reranker`: train a CrossEncoder for the reranking stage (rerank.py) on labelled queries,
with hard negatives from an index.

Labels: a BEIR folder's train split (queries and their relevant documents) or a JSONL file of (query, passage)
pairs (pairs.COLUMNS; a hit is relevant when it holds the passage or the passage holds it). For each query the
index's hybrid search gives its top TEACHER_DEPTH documents, as the reranker will be given them; the relevant ones
are positives and the best-ranked others (up to NEGATIVES) negatives: the mistakes the first stage makes are the
ones the reranker must learn to undo. A relevant document the search missed is still a positive, from the start
of its text. Every pair is what the reranker reads at query time: the query and the hit's passage
(Searcher.passage, up to rerank.PASSAGE_CHARS). BinaryCrossEntropyLoss, positives weighted by the negatives'
share, as the MS MARCO cross-encoders were trained.

The base is the bundled MiniLM's weights with a fresh scoring head (or any model named). The output is a standard
CrossEncoder directory (`searcher query --rerank DIR`), written beside the output and renamed into place at the
end, so an interrupted run leaves nothing at the output path.
"""

from __future__ import annotations

import os
import random
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from .atomic import write_atomic
from .config import DEFAULT_MODEL
from .encoder import no_progress_bars, resolve_model
from .errors import InvalidInputError
from .machine import cpu_has_bf16
from .metrics import corpus_records, load_beir, read_jsonl
from .rerank import DEFAULT_DEPTH, PASSAGE_CHARS
from .train import QUIET_ARGS, quiet_transformers, run_trainer

TEACHER_DEPTH = DEFAULT_DEPTH  # documents per query the negatives come from, as many as are reranked
NEGATIVES = 4  # hard negatives per query
MAX_LENGTH = 256  # tokens of query + passage (a PASSAGE_CHARS passage and a question fit)


@dataclass
class RerankerReport:
    output: str
    base_model: str
    data: str
    queries: int
    positives: int
    negatives: int
    epochs: int
    steps: int = 0
    train_seconds: float = 0.0
    pairs_per_second: float = 0.0
    warnings: list[str] = field(default_factory=list)


def finetune_reranker(
    data: Path | str,
    output: Path | str,
    index: Path | str | None,
    *,
    base_model: str = DEFAULT_MODEL,
    epochs: int = 1,
    batch_size: int = 16,
    learning_rate: float = 2e-5,
    seed: int = 42,
    overwrite: bool = False,
    progress=None,
) -> RerankerReport:
    """Train a CrossEncoder from `base_model` on the labels in `data`, hard negatives from the index `index`
    (name or path: the index of the documents the labels are about)."""
    from .search import Searcher

    progress = progress or (lambda *a, **k: None)
    output = Path(output).expanduser().resolve()
    if output.exists() and any(output.iterdir()) and not overwrite:
        raise InvalidInputError(f"{output} already exists and is not empty; choose another output or pass --overwrite")
    if epochs < 1 or batch_size < 2 or not 0 < learning_rate < 1:
        raise InvalidInputError("epochs must be >= 1, batch size >= 2 and the learning rate in (0, 1)")
    labels, description = _labels(Path(data).expanduser())
    rows: list[tuple[str, str, float]] = []
    with Searcher(index) as searcher:
        queries = list(labels)
        for start in range(0, len(queries), 64):
            progress("mine", start, len(queries))
            batch = queries[start : start + 64]
            for query, hits in zip(batch, searcher.search_batch(batch, TEACHER_DEPTH, mode="hybrid")):
                rows += _pairs(searcher, query, hits, labels[query])
    positives = sum(1 for *_, y in rows if y)
    if not positives or positives == len(rows):
        raise InvalidInputError(f"{data} gives no {'positive' if not positives else 'negative'} pair to train on")
    random.Random(seed).shuffle(rows)
    report = RerankerReport(str(output), base_model, description, len(labels), positives, len(rows) - positives, epochs)
    partial = output.with_name(f".{output.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        _train(rows, report, partial, batch_size, learning_rate, seed, progress)
        write_atomic(partial / "README.md", _card(report).encode())
        if output.exists():
            shutil.rmtree(output)
        os.replace(partial, output)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return report


def _labels(data: Path) -> tuple[dict[str, object], str]:
    """query -> set of relevant document ids (BEIR) or the relevant passage's text (pairs JSONL)."""
    if data.is_dir():
        if not (data / "qrels" / "train.tsv").is_file():
            raise InvalidInputError(f"{data} has no qrels/train.tsv; a reranker trains on labelled queries")
        beir = load_beir(data, "train")
        known = {doc_id for doc_id, _, _ in corpus_records(beir.corpus)}
        labels: dict[str, object] = {}
        for qid, rel in beir.qrels.items():
            relevant = {d for d, grade in rel.items() if grade > 0 and d in known}
            if relevant and qid in beir.queries:
                labels[beir.queries[qid]] = relevant
        return labels, f"{len(labels)} queries of {data.name}'s train split"
    if data.is_file() and data.suffix == ".jsonl":
        from .pairs import COLUMNS

        passages: dict[str, list[str]] = {}
        for lineno, record in read_jsonl(data):
            columns = next((c for c in COLUMNS if isinstance(record, dict) and set(c) <= set(record)), None)
            if columns is None:
                names = ", ".join("/".join(c) for c in COLUMNS)
                raise InvalidInputError(f"{data}:{lineno} has no query and passage columns ({names})")
            passages.setdefault(record[columns[0]], []).append(record[columns[1]])
        return dict(passages), f"{len(passages)} queries of {data.name}"
    raise InvalidInputError(f"{data} is neither a BEIR folder with a train split nor a JSONL file of pairs")


def _pairs(searcher, query: str, hits, relevant) -> list[tuple[str, str, float]]:
    def is_relevant(hit) -> bool:
        if isinstance(relevant, set):
            return hit.doc_id in relevant
        return any(p in hit.text or hit.text in p for p in relevant)

    rows = []
    found = set()
    negatives = 0
    for hit in hits:
        if is_relevant(hit):
            rows.append((query, searcher.passage(hit, query), 1.0))
            found.add(hit.doc_id if isinstance(relevant, set) else hit.text)
        elif negatives < NEGATIVES:
            rows.append((query, searcher.passage(hit, query), 0.0))
            negatives += 1
    if not found and not isinstance(relevant, set):
        rows += [(query, p[:PASSAGE_CHARS], 1.0) for p in relevant]  # type: ignore[union-attr]
    return rows


def _train(rows, report: RerankerReport, partial: Path, batch_size: int, learning_rate: float, seed: int, progress):
    import torch
    from datasets import Dataset
    from sentence_transformers.cross_encoder import CrossEncoder, CrossEncoderTrainer, CrossEncoderTrainingArguments
    from sentence_transformers.cross_encoder.losses import BinaryCrossEntropyLoss

    _, target = resolve_model(report.base_model)
    with quiet_transformers(), no_progress_bars():  # the fresh scoring head is expected: its report is noise
        model = CrossEncoder(target, num_labels=1, max_length=MAX_LENGTH, device="cpu", local_files_only=True)
    loss = BinaryCrossEntropyLoss(model, pos_weight=torch.tensor(report.negatives / report.positives))
    dataset = Dataset.from_dict(
        {"query": [r[0] for r in rows], "passage": [r[1] for r in rows], "label": [r[2] for r in rows]}
    )
    args = CrossEncoderTrainingArguments(
        output_dir=str(partial / "checkpoints"),
        num_train_epochs=report.epochs,
        per_device_train_batch_size=batch_size,
        learning_rate=learning_rate,
        warmup_steps=0.1,  # a ratio (transformers 5)
        seed=seed,
        bf16=cpu_has_bf16(),
        **QUIET_ARGS,
    )

    report.steps, report.train_seconds = run_trainer(
        lambda callbacks: CrossEncoderTrainer(
            model=model, args=args, train_dataset=dataset, loss=loss, callbacks=callbacks
        ),
        lambda step, steps, value: progress("train", step, steps, loss=value),
    )
    report.pairs_per_second = len(rows) * report.epochs / max(report.train_seconds, 1e-9)
    shutil.rmtree(partial / "checkpoints", ignore_errors=True)
    with no_progress_bars():
        model.save(str(partial))


def _card(report: RerankerReport) -> str:
    return "\n".join(
        [
            "---",
            "library_name: sentence-transformers",
            "pipeline_tag: text-ranking",
            f"base_model: {report.base_model}",
            "---",
            "",
            f"# Reranker (CrossEncoder) from {report.base_model}",
            "",
            "Made with `searcher finetune --reranker`: BinaryCrossEntropyLoss on "
            f"{report.positives} positive and {report.negatives} hard negative (query, passage) pairs from "
            f"{report.data}; negatives are the index's top hybrid hits that are not relevant.",
            f"{report.epochs} epoch(s), {report.steps} steps in {report.train_seconds:.0f} s on the CPU.",
            "",
            'Use: `searcher query --rerank path/to/this/model "..."`.',
            "",
        ]
    )
