"""`searcher finetune --reranker`: train a CrossEncoder for the reranking stage (rerank.py) on labelled queries,
with hard negatives from an index.

Labels: a BEIR folder's train split (queries and their relevant documents) or a JSONL file of (query, passage)
pairs (pairs.COLUMNS; a hit is relevant when it holds the passage or the passage holds it). For each query the
index's hybrid search gives its top TEACHER_DEPTH documents, as the reranker will be given them; the relevant ones
are positives and the best-ranked others (up to NEGATIVES) negatives: the mistakes the first stage makes are the
ones the reranker must learn to undo. A relevant document the search missed is still a positive, from the start
of its text. Every pair is what the reranker reads at query time: the query and the hit's passage
(Searcher.passage, up to rerank.PASSAGE_CHARS). The loss (config.RERANKER_LOSSES): by default "residual", each
query's candidates as one list, the first stage's score a fixed part of each candidate's, so that the reranker learns
what to add to the order it is blended into; or "bce", BinaryCrossEntropyLoss on each pair, positives weighted by
the negatives' share, as the MS MARCO cross-encoders were trained.

Some labelled queries are held out of training: a BEIR folder's dev split when it has one (qrels/dev.tsv), else a
fifth of the train queries (VALIDATION_SHARE; none below MIN_VALIDATION). On them, with their first-stage hits as
the reranker will see them, the trained reranker's scores are blended with the first stage's (rerank.blended, form
"z": each stage standardised over the query's hits), and the blend weight with the best nDCG@10 there (BLEND_GRID; a
tie goes to the smaller weight, nearer the first stage) is written beside the model (rerank.BLEND_FILE) with the
three nDCG@10 figures: a reranker trained on a few hundred queries corrects the first stage where it is sure instead
of replacing it, and one that learned nothing gets weight 0 and changes nothing. The held-out queries must be new to
the first stage too: an index whose model was fine-tuned on the same train queries ranks them far better than it
ranks new ones, and the weight chosen there is too small (0 on SciFact, where queries the first stage had not seen
chose a blend that helped: RESULTS.md, rerank-quality). Hold those queries out of the bi-encoder's training as well
(a dev split does it), or give the weight (`blend`, `--blend`) chosen where they were: then every query trains and
none is held out.

The base is the bundled MiniLM's weights with a fresh scoring head (or any model named). The output is a standard
CrossEncoder directory (`searcher query --rerank DIR`), written beside the output and renamed into place at the
end, so an interrupted run leaves nothing at the output path.
"""

from __future__ import annotations

import os
import random
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .atomic import write_atomic
from .config import DEFAULT_MODEL, RERANKER_LOSS, RERANKER_LOSSES
from .encoder import no_progress_bars, quiet_transformers, resolve_model
from .errors import InvalidInputError, ModelError
from .machine import cpu_has_bf16
from .metrics import corpus_records, ir_metrics, load_beir, read_jsonl
from .rerank import (
    BLEND_FILE,
    DEFAULT_DEPTH,
    PASSAGE_CHARS,
    blended,
    load_cross_encoder,
    raw_scores,
    standardised_log_odds,
    write_blend,
)
from .train import QUIET_ARGS, run_trainer

TEACHER_DEPTH = DEFAULT_DEPTH  # documents per query the negatives come from, as many as are reranked
NEGATIVES = 8  # hard negatives per query (chosen with the epochs below)
VALIDATION_SHARE = 0.2  # of the labelled queries, held out to choose the blend weight on
MIN_VALIDATION = 10  # fewer held-out queries than this choose nothing: the reranker's own order is used
BLEND_GRID = [i / 20 for i in range(21)]
# A fresh scoring head on a few thousand pairs needs more than the one epoch at 2e-5 that MS MARCO's hundreds of
# thousands of pairs do: one such epoch learned nothing on SciFact; 3 at 5e-5 underfitted (on its own training
# queries the reranker alone ranked far below the first stage) and its blend chosen on dev queries was 0; 6 at 8e-5
# with 4 negatives per query learned enough for a blend to help there, and 4 epochs with 8 negatives (a third more
# steps, twice the mistakes seen per query) more: the reranker alone and the blend both ranked better. Chosen on the
# SciFact validation split (dev queries that neither the bi-encoder nor the reranker trained on), not on test:
# RESULTS.md, rerank-quality.
RERANKER_EPOCHS = 4
RERANKER_LR = 8e-5
# The losses (config.RERANKER_LOSSES). "bce": each (query, passage) pair on its own, BinaryCrossEntropyLoss.
# "residual": each query's candidates as one list, softmax cross-entropy over (the first stage's standardised log-odds
# + the reranker's logit): the reranker learns what to add to the first stage's order, which is how the stage uses it
# (rerank.blended), instead of a ranking of its own that a blend must then weigh. Residual is the default
# (config.RERANKER_LOSS): on the SciFact validation split's dev queries (neither model trained on them) its blend
# ranked better than BCE's, though alone it ranks worse - it is a correction, not a ranker (RESULTS.md,
# rerank-quality).
MAX_LENGTH = 256  # tokens of query + passage (a PASSAGE_CHARS passage and a question fit)
# A run can diverge: on all of SciFact train, this recipe once ended with one score for every pair, its logits'
# spread far below even the untrained model's (RESULTS.md, rerank-quality), where the same recipe on a validation
# split's train queries had learned; CPU training is not deterministic. So the scores of up to CHECK_SAMPLE of its
# own training pairs must spread (max - min of the logits) over at least COLLAPSED_SHARE of what they did before
# training, else it is trained again at half the learning rate, up to RETRIES times, and the report says so; a
# collapsed model is never saved. A fixed spread would not do: a small untrained model's scores barely spread at
# all. (A model that learned little but still tells pairs apart passes: the blend chosen on held-out queries gives
# it the weight it earns there.)
COLLAPSED_SHARE = 0.1
CHECK_SAMPLE = 512
RETRIES = 2


@dataclass
class RerankerReport:
    output: str
    base_model: str
    data: str
    queries: int
    positives: int
    negatives: int
    epochs: int
    loss: str = RERANKER_LOSS
    learning_rate: float = 0.0  # the one the saved model was trained at (halved after a run that diverged)
    train_auc: float = 0.0  # how well it separates its own training pairs (the chance a positive scores higher)
    steps: int = 0
    train_seconds: float = 0.0
    pairs_per_second: float = 0.0
    validation_queries: int = 0
    blend: float = 1.0  # the reranker's weight in the stage's order (rerank.BLEND_FILE, rerank.blended)
    validation: dict[str, float] = field(default_factory=dict)  # nDCG@10: first stage, reranker, blend
    held_out: str = ""  # where the held-out queries came from ("dev split", "train split", "given")
    warnings: list[str] = field(default_factory=list)


def finetune_reranker(
    data: Path | str,
    output: Path | str,
    index: Path | str | None,
    *,
    base_model: str = DEFAULT_MODEL,
    epochs: int = RERANKER_EPOCHS,
    batch_size: int = 16,
    learning_rate: float = RERANKER_LR,
    seed: int = 42,
    blend: float | None = None,
    negatives: int = NEGATIVES,
    loss: str = RERANKER_LOSS,
    overwrite: bool = False,
    progress=None,
) -> RerankerReport:
    """Train a CrossEncoder from `base_model` on the labels in `data`, hard negatives from the index `index`
    (name or path: the index of the documents the labels are about). `blend`: the reranker's weight in the
    stage's order, chosen elsewhere; None chooses it on held-out queries. `negatives`: hard negatives per query,
    the best-ranked irrelevant hits. `loss`: one of config.RERANKER_LOSSES."""
    from .search import Searcher

    progress = progress or (lambda *a, **k: None)
    output = Path(output).expanduser().resolve()
    if output.exists() and any(output.iterdir()) and not overwrite:
        raise InvalidInputError(f"{output} already exists and is not empty; choose another output or pass --overwrite")
    if epochs < 1 or batch_size < 2 or not 0 < learning_rate < 1 or not 1 <= negatives < TEACHER_DEPTH:
        raise InvalidInputError(
            f"epochs must be >= 1, batch size >= 2, the learning rate in (0, 1) and negatives in [1, {TEACHER_DEPTH})"
        )
    if loss not in RERANKER_LOSSES:
        raise InvalidInputError(f"unknown reranker loss {loss!r}; choose one of {', '.join(RERANKER_LOSSES)}")
    if blend is not None and not 0 <= blend <= 1:
        raise InvalidInputError(f"the blend weight must be in [0, 1], not {blend}")
    data = Path(data).expanduser()
    labels, description = _labels(data)
    queries = list(labels)
    random.Random(seed).shuffle(queries)
    dev = _labels(data, "dev")[0] if blend is None else {}
    # The held-out queries come first in `queries`: none with a given blend, else the dev split's, else a fifth.
    if blend is not None:
        held, held_out = 0, "given"
    elif dev:
        queries = list(dev) + [q for q in queries if q not in dev]
        labels, held, held_out = {**labels, **dev}, len(dev), "dev split"
    else:
        held = round(VALIDATION_SHARE * len(queries))
        held, held_out = (held, "train split") if held >= MIN_VALIDATION else (0, "")
    groups: list[Group] = []
    validation: list[Held] = []
    with Searcher(index) as searcher:
        for j, (query, hits) in enumerate(_first_stage(searcher, queries, progress)):
            if j < held:
                validation.append(_held_out(searcher, query, hits, labels[query]))
            else:
                groups.append(_group(searcher, query, hits, labels[query], negatives))
    if loss == "residual":  # a list with no positive teaches nothing about the order within it
        groups = [g for g in groups if any(y for _, y, _ in g[1])]
    rows = [(query, passage, y) for query, members in groups for passage, y, _ in members]
    positives = sum(1 for *_, y in rows if y)
    if not positives or positives == len(rows):
        raise InvalidInputError(f"{data} gives no {'positive' if not positives else 'negative'} pair to train on")
    random.Random(seed).shuffle(rows)
    random.Random(seed).shuffle(groups)
    report = RerankerReport(
        str(output), base_model, description, len(labels), positives, len(rows) - positives, epochs, loss
    )
    report.validation_queries, report.held_out = held, held_out
    training = _training_set(loss, rows, groups, batch_size)
    check = random.Random(seed).sample(rows, min(len(rows), CHECK_SAMPLE))
    partial = output.with_name(f".{output.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        model = _train_checked(training, check, report, partial, learning_rate, seed, progress)
        if blend is not None:
            report.blend = blend
            write_blend(partial, blend, chosen="given")
        else:
            if validation:
                progress("validate", 0, len(validation))
                report.blend, report.validation = choose_blend(validation, model)
            if report.validation:
                v = report.validation
                write_blend(partial, report.blend, validation_queries=held, held_out=held_out, **{"ndcg@10": v})
            else:
                report.warnings.append(
                    f"nothing held out to judge it on (fewer than {MIN_VALIDATION} queries to hold out, or none "
                    "with a relevant hit): the reranker's own order is used, untested"
                )
        write_atomic(partial / "README.md", _card(report).encode())
        if output.exists():
            shutil.rmtree(output)
        os.replace(partial, output)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return report


def rechoose_blend(data: Path | str, reranker_dir: Path | str, index: Path | str) -> tuple[float, dict[str, float]]:
    """Choose a trained reranker's blend again on the dev split of `data` (queries it was not trained on), with
    first-stage hits from `index`, and write it beside the model (rerank.BLEND_FILE): for a reranker trained before
    the blend's form changed, without training it again (its training does not depend on the blend)."""
    from .search import Searcher

    dev = _labels(Path(data).expanduser(), "dev")[0]
    if not dev:
        raise InvalidInputError(f"{data} has no dev split (qrels/dev.tsv) to choose a blend on")
    with Searcher(index) as searcher:
        validation = [_held_out(searcher, q, hits, dev[q]) for q, hits in _first_stage(searcher, list(dev))]
    with quiet_transformers():
        model = load_cross_encoder(str(reranker_dir))
    blend, scores = choose_blend(validation, model)
    write_blend(reranker_dir, blend, validation_queries=len(dev), held_out="dev split", **{"ndcg@10": scores})
    return blend, scores


def _first_stage(searcher, queries: list[str], progress=None) -> Iterator[tuple[str, list]]:
    """(query, its top TEACHER_DEPTH hybrid hits) for each query in turn, searched 64 at a time."""
    for start in range(0, len(queries), 64):
        if progress is not None:
            progress("mine", start, len(queries))
        batch = queries[start : start + 64]
        yield from zip(batch, searcher.search_batch(batch, TEACHER_DEPTH, mode="hybrid"))


def _labels(data: Path, split: str = "train") -> tuple[dict[str, object], str]:
    """query -> set of relevant document ids (BEIR) or the relevant passage's text (pairs JSONL). A split other
    than train that the data does not have gives no labels."""
    if split != "train" and not (data / "qrels" / f"{split}.tsv").is_file():
        return {}, ""
    if data.is_dir():
        if not (data / "qrels" / "train.tsv").is_file():
            raise InvalidInputError(f"{data} has no qrels/train.tsv; a reranker trains on labelled queries")
        beir = load_beir(data, split)
        known = {doc_id for doc_id, _, _ in corpus_records(beir.corpus)}
        labels: dict[str, object] = {}
        for qid, rel in beir.qrels.items():
            relevant = {d for d, grade in rel.items() if grade > 0 and d in known}
            if relevant and qid in beir.queries:
                labels[beir.queries[qid]] = relevant
        return labels, f"{len(labels)} queries of {data.name}'s {split} split"
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


# One query's training candidates: (query, [(passage, label, first stage's standardised log-odds)]).
Group = tuple[str, list[tuple[str, float, float]]]


def _group(searcher, query: str, hits, relevant, most: int) -> Group:
    """The query's relevant hits and its `most` best-ranked others, in rank order, each with the first stage's
    log-odds standardised over all of the query's hits, as the stage sees them (rerank.blended)."""
    members = []
    found = set()
    negatives = 0
    first = standardised_log_odds(np.array([hit.score for hit in hits], np.float64)) if hits else np.zeros(0)
    for hit, z in zip(hits, first.tolist()):
        if _is_relevant(hit, relevant):
            members.append((searcher.passage(hit, query), 1.0, z))
            found.add(hit.doc_id if isinstance(relevant, set) else hit.text)
        elif negatives < most:
            members.append((searcher.passage(hit, query), 0.0, z))
            negatives += 1
    if not found and not isinstance(relevant, set):  # missed by the search: ranked below every hit
        lowest = float(first.min()) if len(first) else 0.0
        members += [(p[:PASSAGE_CHARS], 1.0, lowest) for p in relevant]  # type: ignore[union-attr]
    return query, members


def _is_relevant(hit, relevant) -> bool:
    """A BEIR label names the document; a pairs label is a passage the hit holds or is part of."""
    if isinstance(relevant, set):
        return hit.doc_id in relevant
    return any(p in hit.text or hit.text in p for p in relevant)


# A held-out query and its first-stage hits: (key, first stage's score, passage, relevant).
Held = tuple[str, list[tuple[str, float, str, bool]]]


def _held_out(searcher, query: str, hits, relevant) -> Held:
    out, seen = [], set()
    for hit in hits:
        key = hit.doc_id if isinstance(relevant, set) else f"{hit.doc_id}#{hit.start}"
        if key not in seen:
            seen.add(key)
            out.append((key, hit.score, searcher.passage(hit, query), _is_relevant(hit, relevant)))
    return query, out


def choose_blend(validation: list[Held], model) -> tuple[float, dict[str, float]]:
    """The blend weight with the best nDCG@10 on the held-out queries, and nDCG@10 of the first stage alone, the
    reranker alone and the blend there. A held-out query none of whose hits is relevant is left out (no weight can
    change it)."""
    validation = [(q, hits) for q, hits in validation if any(good for *_, good in hits)]
    if not validation:
        return 1.0, {}
    pairs = [(query, passage) for query, hits in validation for _, _, passage, _ in hits]
    raw = raw_scores(model, pairs)
    first = np.array([score for _, hits in validation for _, score, _, _ in hits])
    qrels = {str(i): {key: 1 for key, *_, good in hits if good} for i, (_, hits) in enumerate(validation)}
    ends = np.cumsum([len(hits) for _, hits in validation])
    spans = list(zip(ends - [len(hits) for _, hits in validation], ends))  # each query's hits in the flat arrays

    def ndcg(order_by) -> float:  # order_by(a, b): the scores of one query's hits, first[a:b] and raw[a:b]
        rankings = {
            str(i): [(key, float(v)) for (key, *_), v in zip(hits, order_by(a, b))]
            for i, ((_, hits), (a, b)) in enumerate(zip(validation, spans))
        }
        return ir_metrics(rankings, qrels)["ndcg@10"]

    # each query's hits blended on their own (the form standardises over a query's hits)
    by_blend = {w: ndcg(lambda a, b, w=w: blended(first[a:b], raw[a:b], w)) for w in BLEND_GRID}
    best = max(BLEND_GRID, key=lambda w: (round(by_blend[w], 6), -w))
    return best, {"first stage": by_blend[0.0], "reranker": ndcg(lambda a, b: raw[a:b]), "blend": by_blend[best]}


def _train_checked(
    training: TrainingSet, check, report: RerankerReport, partial: Path, rate: float, seed: int, progress
):
    """_train, again at half the learning rate while the model gives the `check` pairs (some of its own training
    pairs) one score."""
    for attempt in range(RETRIES + 1):
        model, before, scores = _train(training, report, partial, rate, seed, progress, check)
        report.learning_rate, report.train_auc = rate, round(roc_auc(scores, [y for *_, y in check]), 4)
        after = _spread(scores)
        if after >= COLLAPSED_SHARE * before:
            return model
        what = (
            f"training at learning rate {rate:g} diverged (its training pairs' scores spread over {after:.2g}, "
            f"{before:.2g} before training: it scores them alike)"
        )
        if attempt == RETRIES:
            raise ModelError(f"{what}, and at each lower rate tried; pass a lower --learning-rate or more data")
        report.warnings.append(f"{what}; trained again at {rate / 2:g}")
        rate /= 2
    raise AssertionError("unreachable")


def _spread(scores) -> float:
    """max - min of scores; 0 when any is not a number."""
    return float(np.ptp(scores)) if len(scores) and np.isfinite(scores).all() else 0.0


def roc_auc(scores, labels) -> float:
    """The chance that a positive scores above a negative (ties count half; a score that is not a number counts
    as the lowest); 0.5 when there is no pair of the two."""
    s = np.nan_to_num(np.asarray(scores, np.float64), nan=-np.inf)
    y = np.asarray(labels, bool)
    pos, neg = s[y], s[~y]
    if not len(pos) or not len(neg):
        return 0.5
    above = (pos[:, None] > neg[None, :]).mean()
    return float(above + 0.5 * (pos[:, None] == neg[None, :]).mean())


# What the trainer reads for one loss: the dataset's columns and how many of its rows make a step.
TrainingSet = tuple[dict[str, list], int]


def _training_set(loss: str, rows, groups: list[Group], batch_size: int) -> TrainingSet:
    """The `rows` one pair at a time ("bce"), or the `groups` one query's list at a time ("residual"), as many
    pairs per step as the pairwise loss takes, in whole lists."""
    if loss == "residual":
        columns: dict[str, list] = {
            "query": [q for q, _ in groups],
            "passages": [[p for p, _, _ in m] for _, m in groups],
            "first": [[z for _, _, z in m] for _, m in groups],
            "label": [[y for _, y, _ in m] for _, m in groups],
        }
        return columns, max(2, round(batch_size * len(groups) / max(len(rows), 1)))
    return {"query": [r[0] for r in rows], "passage": [r[1] for r in rows], "label": [r[2] for r in rows]}, batch_size


def _train(training: TrainingSet, report: RerankerReport, partial: Path, rate: float, seed: int, progress, check):
    """The trained model, the spread of its scores of the `check` pairs before training, and those scores after."""
    import torch
    from datasets import Dataset
    from sentence_transformers.cross_encoder import CrossEncoder, CrossEncoderTrainer, CrossEncoderTrainingArguments
    from sentence_transformers.cross_encoder.losses import BinaryCrossEntropyLoss

    _, target = resolve_model(report.base_model)
    torch.manual_seed(seed)  # the fresh scoring head's weights: the same seed trains the same reranker
    with quiet_transformers(), no_progress_bars():  # the fresh scoring head is expected: its report is noise
        model = CrossEncoder(target, num_labels=1, max_length=MAX_LENGTH, device="cpu", local_files_only=True)
    pairs = [(q, p) for q, p, _ in check]
    before = _spread(raw_scores(model, pairs))
    if report.loss == "residual":
        loss = _residual_list_loss(model)
    else:
        loss = BinaryCrossEntropyLoss(model, pos_weight=torch.tensor(report.negatives / report.positives))
    columns, per_step = training
    dataset = Dataset.from_dict(columns)
    args = CrossEncoderTrainingArguments(
        output_dir=str(partial / "checkpoints"),
        num_train_epochs=report.epochs,
        per_device_train_batch_size=per_step,
        learning_rate=rate,
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
    trained = report.positives + report.negatives
    report.pairs_per_second = trained * report.epochs / max(report.train_seconds, 1e-9)
    shutil.rmtree(partial / "checkpoints", ignore_errors=True)
    with no_progress_bars():
        model.save(str(partial))
    return model, before, raw_scores(model, pairs)


def _residual_list_loss(model):
    """The "residual" loss (config.RERANKER_LOSSES) for `model`: for each query's list, softmax cross-entropy of
    (its first-stage scores, a fixed input, + the model's logits) against its labels, a list's positives sharing
    the target."""
    import torch
    from sentence_transformers.util import batch_to_device

    class ResidualListLoss(torch.nn.Module):
        def __init__(self, model) -> None:
            super().__init__()
            self.model = model

        def forward(self, inputs, labels, prompt=None, task=None):
            queries, passages, firsts = inputs
            pairs = [(q, p) for q, ps in zip(queries, passages) for p in ps]
            tokens = batch_to_device(self.model.preprocess(pairs, prompt=prompt, task=task), self.model.device)
            logits = self.model(tokens)["scores"].view(-1).float()
            total, start = logits.new_zeros(()), 0
            for first, label in zip(firsts, labels):
                end = start + len(first)
                scores = logits[start:end] + torch.as_tensor(first, dtype=torch.float32, device=logits.device)
                target = label.float().to(logits.device)
                total = total - (target / target.sum() * torch.log_softmax(scores, dim=0)).sum()
                start = end
            return total / len(firsts)

    return ResidualListLoss(model)


def _validation_line(report: RerankerReport) -> str:
    if report.held_out == "given":
        return f"Blend {report.blend:.2f} of the reranker's scores, given (chosen elsewhere; {BLEND_FILE})."
    if not report.validation:
        return "No held-out queries could judge it: the reranker's own order is used (untested)."
    v = report.validation
    return (
        f"Held out of training: {report.validation_queries} queries ({report.held_out}). nDCG@10 there: "
        f"first stage {v['first stage']:.4f}, "
        f"reranker alone {v['reranker']:.4f}, blend {report.blend:.2f} of the reranker's scores "
        f"{v['blend']:.4f} (the stage orders by the blend; {BLEND_FILE})."
    )


_LOSS_NAMES = {
    "bce": "BinaryCrossEntropyLoss",
    "residual": "a softmax cross-entropy over each query's list of (first-stage score + its logit) (loss residual)",
}


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
            f"Made with `searcher finetune --reranker`: {_LOSS_NAMES[report.loss]} on "
            f"{report.positives} positive and {report.negatives} hard negative (query, passage) pairs from "
            f"{report.data}; negatives are the index's top hybrid hits that are not relevant.",
            f"{report.epochs} epoch(s) at learning rate {report.learning_rate:g}, {report.steps} steps in "
            f"{report.train_seconds:.0f} s on the CPU; on its own training pairs AUC {report.train_auc:.2f}.",
            "",
            _validation_line(report),
            "",
            'Use: `searcher query --rerank path/to/this/model "..."`.',
            "",
        ]
    )
