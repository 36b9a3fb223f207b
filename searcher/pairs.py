"""Training pairs for `searcher finetune`, from one of three sources, and held-out data to evaluate on.

a. A JSONL file of (query, passage) pairs, with the model cards' column names: `sentence_0`/`sentence_1` or
   `anchor`/`positive` (also `query`/`passage`). A tenth of the queries is held out for evaluation.
b. A BEIR folder with a train split: pairs are (query, title + text of each relevant document); the corpus is
   evaluated with `searcher eval` machinery on the test split (or dev, or `eval_split`).
c. Nothing but a corpus (a folder, a file, or an existing index): pairs are generated with no external model.
   For each chunk, a sentence is taken out and becomes the query for the rest of the chunk (the Inverse Cloze
   Task, Lee et al. 2019), and the first chunk of a titled document also gets its title as a query. A tenth
   of the documents is held out: their generated queries are evaluated against every chunk.

Bad data is reported, never silently used: empty queries or passages and duplicate pairs are dropped with a
warning, passages longer than the model's window are counted in a warning (training sees their start), and
a file with no usable pair is an error.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from .chunking import chunk_document, embedding_input
from .config import IndexConfig
from .errors import InvalidInputError
from .ingest import FORMATS, UnreadableFileError, is_supported, iter_files, parse_file
from .metrics import corpus_records, load_beir, read_jsonl
from .store import MANIFEST, open_index

COLUMNS = (("sentence_0", "sentence_1"), ("anchor", "positive"), ("query", "passage"))
HELD_OUT = 0.1
SENTENCE = re.compile(r"[^.!?\n]+(?:[.!?]+|$)")


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
        data = _generated(source, encoder, seed)
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
    pairs = [Pair(data.queries[q], docs[d]) for q, rel in data.qrels.items() for d in rel]
    if eval_split is None:
        eval_split = next((s for s in ("test", "dev") if (data_dir / "qrels" / f"{s}.tsv").is_file()), None)
    evaluation = BeirEval(data_dir, eval_split) if eval_split else None
    return TrainingData(
        pairs,
        evaluation,
        f"{len(pairs)} (query, document) pairs from {data_dir.name} train split",
        corpus=list(docs.values()),
    )


def _generated(source: Path, encoder, seed: int) -> TrainingData:
    warnings: list[str] = []
    chunks = list(_chunks_of(source, encoder, warnings))
    if not chunks:
        raise InvalidInputError(f"no documents in {source} to generate training pairs from")
    rng = random.Random(seed)
    doc_ids = sorted({c[0] for c in chunks})
    held = set(rng.sample(doc_ids, max(1, int(len(doc_ids) * HELD_OUT)))) if len(doc_ids) > 10 else set()
    train: list[Pair] = []
    held_pairs: list[Pair] = []
    first_seen: set[str] = set()
    for doc_id, title, text in chunks:
        out = held_pairs if doc_id in held else train
        if doc_id not in first_seen and len(title.split()) >= 3:
            # The title as a query for its first chunk, taken out of the chunk if it heads it (markdown, html).
            rest = text.replace(title, "", 1).lstrip("#=- \n") if title in text[: len(title) + 8] else text
            if len(rest.split()) >= 8:
                out.append(Pair(title, rest))
        first_seen.add(doc_id)
        pair = _cloze(text, rng)
        if pair:
            out.append(pair)
    passages = [text for _, _, text in chunks]
    evaluation = _pair_eval(held_pairs, passages) if held_pairs else None
    return TrainingData(
        train,
        evaluation,
        f"{len(train) + len(held_pairs)} pairs generated from {len(chunks)} chunks of {source.name} "
        "(titles and inverse-cloze sentences as queries)",
        warnings,
        passages,
    )


def _cloze(text: str, rng: random.Random) -> Pair | None:
    """A sentence of the chunk as the query, the chunk without it as the passage (Inverse Cloze Task)."""
    sentences = list(SENTENCE.finditer(text))
    candidates = [m for m in sentences if 5 <= len(m.group().split()) <= 64]
    if len(sentences) < 2 or not candidates:
        return None
    m = rng.choice(candidates)
    rest = (text[: m.start()] + text[m.end() :]).strip()
    if len(rest.split()) < 8:
        return None
    return Pair(m.group().strip(), rest)


def _chunks_of(source: Path, encoder, warnings: list[str]) -> Iterable[tuple[str, str, str]]:
    """(doc_id, title, chunk text) from an existing index, or from reading and chunking the files.

    Folders and files that cannot be read are skipped, each with a warning.
    """
    if (source / MANIFEST).is_file():
        for r in open_index(source).iter_chunks():
            yield r["doc_id"], r["title"], r["text"]
        return
    if source.is_file() and not is_supported(source):
        raise InvalidInputError(f"{source} is not a supported file type; searcher reads {', '.join(sorted(FORMATS))}")
    chunk_tokens, overlap_tokens = IndexConfig().chunking(encoder.info.max_seq_length)  # as `searcher index` would

    def unreadable(folder: str, reason: str) -> None:
        warnings.append(f"{folder}: cannot read folder ({reason}); skipped")

    for path in (p for p in iter_files(source, unreadable) if is_supported(p)):
        try:
            docs, _ = parse_file(path, path.read_bytes(), doc_id=path.name)
        except OSError as e:
            warnings.append(f"{path}: cannot read ({e.strerror}); skipped")
            continue
        except UnreadableFileError as e:
            warnings.append(f"{path}: {e}; skipped")
            continue
        for doc in docs:
            for chunk in chunk_document(doc, encoder, chunk_tokens=chunk_tokens, overlap_tokens=overlap_tokens):
                yield chunk.doc_id, chunk.title, chunk.text


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
