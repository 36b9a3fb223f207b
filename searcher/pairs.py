"""Training pairs for `searcher finetune`, from one of two sources, and held-out data to evaluate on.

a. A JSONL file of (query, passage) pairs, with the model cards' column names: `sentence_0`/`sentence_1` or
   `anchor`/`positive` (also `query`/`passage`). A tenth of the queries is held out for evaluation.
b. A BEIR folder with a train split: pairs are (query, title + text of each relevant document); the corpus is
   evaluated with `searcher eval` machinery on the test split (or dev, or `eval_split`).
Nothing but a corpus (a folder, a file, or an existing index) trains label-free: labelfree.py.

Bad data is reported, never silently used: empty queries or passages and duplicate pairs are dropped with a
warning, passages longer than the model's window are counted in a warning (training sees their start), and
a file with no usable pair is an error.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

from .chunking import embedding_input
from .errors import InvalidInputError
from .metrics import corpus_records, load_beir, read_jsonl

COLUMNS = (("sentence_0", "sentence_1"), ("anchor", "positive"), ("query", "passage"))
HELD_OUT = 0.1


@dataclass(frozen=True)
class Pair:
    query: str
    passage: str


@dataclass(frozen=True)
class PairEval:
    """Held-out queries against a corpus of passages, in the three-dict form of the IR evaluator."""

    queries: dict[str, str]
    corpus: dict[str, str]
    qrels: dict[str, dict[str, int]]


@dataclass(frozen=True)
class BeirEval:
    data_dir: Path
    split: str


@dataclass
class TrainingData:
    train: list[Pair]
    evaluation: PairEval | BeirEval | None
    description: str  # one line for the model card
    warnings: list[str] = field(default_factory=list)
    corpus: list[str] = field(default_factory=list)  # texts of the corpus searched, when known (no labels needed)
    triplets: list = field(default_factory=list)  # label-free: labelfree.Triplet, trained with MarginMSE instead


def load_training_data(
    source: Path | str, encoder, *, eval_split: str | None = None, seed: int = 42, max_pairs: int | None = None
) -> TrainingData:
    """Pairs from a JSONL file, a BEIR folder with qrels/train.tsv, or a corpus (see the module docstring)."""
    source = Path(source)
    if not source.exists():
        raise InvalidInputError(f"no such file or folder: {source}")
    if source.is_dir() and (source / "qrels" / "train.tsv").is_file():
        data = _from_beir(source, eval_split)
    elif source.is_file() and source.suffix == ".jsonl" and _looks_like_pairs(source):
        data = _from_jsonl(source, seed)
    else:
        raise InvalidInputError(
            f"{source} holds no labels (a BEIR folder with qrels/train.tsv, or a JSONL file of pairs); "
            "train label-free on it with train.finetune (searcher finetune)"
        )
    data.train = _clean(data.train, data.warnings)
    if max_pairs is not None and len(data.train) > max_pairs:
        data.train = random.Random(seed).sample(data.train, max_pairs)
        data.warnings.append(f"used a random {max_pairs} of the pairs (max_pairs)")
    if len(data.train) < 2:
        raise InvalidInputError(f"{source} gives {len(data.train)} usable training pair(s); at least 2 are needed")
    too_long = sum(n > encoder.info.max_seq_length for n in encoder.input_lengths([p.passage for p in data.train]))
    if too_long:
        data.warnings.append(
            f"{too_long} passage(s) are longer than the model's {encoder.info.max_seq_length}-token window; "
            "training sees only their beginning"
        )
    return data


def is_labelled(source: Path) -> bool:
    """Whether `source` holds labels to train on: a BEIR folder with a train split, or a JSONL file of pairs."""
    if source.is_dir():
        return (source / "qrels" / "train.tsv").is_file()
    return source.is_file() and source.suffix == ".jsonl" and _looks_like_pairs(source)


def _looks_like_pairs(path: Path) -> bool:
    _, record = next(read_jsonl(path), (0, None))
    if record is None:
        raise InvalidInputError(f"{path} is empty; it must hold one JSON object per line")
    return isinstance(record, dict) and not ("text" in record and ("_id" in record or "title" in record))


def _from_jsonl(path: Path, seed: int) -> TrainingData:
    pairs: list[Pair] = []
    columns = None
    for lineno, record in read_jsonl(path):
        if columns is None:
            columns = next((c for c in COLUMNS if isinstance(record, dict) and set(c) <= set(record)), None)
            if columns is None:
                found = ", ".join(sorted(record)) if isinstance(record, dict) else type(record).__name__
                raise InvalidInputError(
                    f"{path}:{lineno} has columns {found}; training pairs need sentence_0/sentence_1, "
                    "anchor/positive or query/passage"
                )
        if not all(isinstance(record.get(c), str) for c in columns):
            raise InvalidInputError(f"{path}:{lineno} lacks a string {columns[0]!r} and {columns[1]!r}")
        pairs.append(Pair(record[columns[0]], record[columns[1]]))
    # Hold out a tenth of the distinct queries; every passage stays in the evaluation corpus.
    queries = sorted({p.query for p in pairs if p.query.strip()})
    held = (
        set(random.Random(seed).sample(queries, max(1, int(len(queries) * HELD_OUT)))) if len(queries) > 10 else set()
    )
    train = [p for p in pairs if p.query not in held]
    evaluation = _pair_eval([p for p in pairs if p.query in held], [p.passage for p in pairs]) if held else None
    return TrainingData(train, evaluation, f"{len(pairs)} pairs from {path.name} ({', '.join(columns or ())})")


def _from_beir(data_dir: Path, eval_split: str | None) -> TrainingData:
    data = load_beir(data_dir, "train")
    docs = {doc_id: embedding_input(title, text) for doc_id, title, text in corpus_records(data.corpus)}
    pairs = [Pair(data.queries[q], docs[d]) for q, rel in data.qrels.items() for d in rel if d in docs]
    if eval_split is None:
        eval_split = next((s for s in ("test", "dev") if (data_dir / "qrels" / f"{s}.tsv").is_file()), None)
    evaluation = BeirEval(data_dir, eval_split) if eval_split else None
    return TrainingData(
        pairs,
        evaluation,
        f"{len(pairs)} (query, document) pairs from {data_dir.name} train split",
        corpus=list(docs.values()),
    )


def _pair_eval(held: list[Pair], passages: list[str]) -> PairEval:
    corpus_ids: dict[str, str] = {}
    for passage in passages:
        corpus_ids.setdefault(passage, f"p{len(corpus_ids)}")
    queries: dict[str, str] = {}
    qrels: dict[str, dict[str, int]] = {}
    for pair in held:
        qid = queries.setdefault(pair.query, f"q{len(queries)}")
        pid = corpus_ids.setdefault(pair.passage, f"p{len(corpus_ids)}")
        qrels.setdefault(qid, {})[pid] = 1
    return PairEval({q: t for t, q in queries.items()}, {p: t for t, p in corpus_ids.items()}, qrels)


def _clean(pairs: list[Pair], warnings: list[str]) -> list[Pair]:
    empty = [p for p in pairs if not p.query.strip() or not p.passage.strip()]
    if empty:
        warnings.append(f"dropped {len(empty)} pair(s) with an empty query or passage")
    seen: set[Pair] = set()
    out = []
    for p in pairs:
        if p.query.strip() and p.passage.strip() and p not in seen:
            seen.add(p)
            out.append(p)
    duplicates = len(pairs) - len(empty) - len(out)
    if duplicates:
        warnings.append(f"dropped {duplicates} duplicate pair(s)")
    return out
