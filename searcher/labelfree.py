"""Label-free fine-tuning data: pseudo-queries from an index's own chunks, scored by the index's hybrid search.

Every chunk of the documents gets one pseudo-query, of one of three kinds (only `sentence` ones are trained on,
TRAINED_KINDS; every kind is held out for the comparison):

- `heading`: the chunk's title or heading path (three words or more), for the first chunk under it, the heading
  taken out of the passage;
- `sentence`: one of the chunk's sentences, taken out of it (the Inverse Cloze Task, Lee et al. 2019);
- `keywords`: three to five of the chunk's rarest words (by the index's IDF), in the order the text has them, as
  the short keyword queries people type.

The teacher is the hybrid search the index already runs. Its top TEACHER_DEPTH chunks for a pseudo-query are the
candidates, and the hybrid score's own evidence (calibration.py: the full-vector cosine with the index's model,
and the IDF-weighted share of the query's words a text holds), computed on the exact texts trained on, gives each
text a teacher score in cosine units: cosine + (b_coverage / b_cosine) x coverage, the calibrated hybrid logit
divided by its cosine coefficient. Each pseudo-query gives NEGATIVES triplets (query, its passage, a candidate)
labelled with the teacher's margin, for MarginMSE (Hofstätter et al. 2020), as GPL does (Wang et al. 2022) with a
cross-encoder in the teacher's place. The teacher's scores, not its top-1, are what is learned: a candidate that is
as relevant as the source passage has a margin near zero and is not pushed away, and where the words agree with
the model the target is the model's own margin, so training moves the model only where lexical evidence says it
is wrong.

What that can and cannot give: the student learns the teacher's evidence into its cosine, so its dense side and its
Matryoshka prefixes move toward the hybrid search; the hybrid search itself, which adds the same lexical evidence
again, is not lifted above the teacher (the tuned model's hybrid at its best fusion weight measured where the base
model's is at its own: RESULTS.md, label-free sections). A hybrid gain needs a stronger teacher than the hybrid.

Held out: the documents of a HELD_OUT share. Their pseudo-queries are written as a BEIR folder (queries, qrels,
and every chunk of the index with each source chunk's text replaced by its passage), so `searcher finetune`
compares the base and the tuned model with `searcher eval`'s hybrid search, as the index searches, without a
single label.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson

from . import calibration
from .atomic import write_atomic
from .chunking import SENTENCE, query_sentences
from .errors import InvalidInputError
from .pairs import BeirEval, Pair, TrainingData
from .syntax import literal

# Pseudo-queries trained on at most (a seeded sample): bounds the teacher's and the epoch's time, whatever the
# corpus's size (how long that is on 2 cores: RESULTS.md, label-free sections).
MAX_QUERIES = 4000
HELD_OUT = 0.1  # share of documents whose pseudo-queries are held out for the base/tuned comparison
MAX_HELD_OUT_QUERIES = 500
MAX_EVAL_CORPUS = 2000  # chunks in the held-out comparison's corpus (every source chunk, then a sample)
TEACHER_DEPTH = 10  # the hybrid search's top chunks a negative is drawn from
NEGATIVES = 1  # triplets per pseudo-query
# The hybrid logit's lexical coefficient over its cosine one: a share of a query's words, in cosine units.
COVERAGE_IN_COSINE = calibration.COEFFICIENTS["hybrid"][2] / calibration.COEFFICIENTS["hybrid"][1]
KINDS = ("heading", "sentence", "keywords")
# The kinds whose triplets are trained on (the held-out comparison uses every kind). Only `sentence`: for a heading
# or keyword query the lexical evidence is circular - the query's words are in the positive's indexed text (a title
# stays in its embedding input and lexical text; keywords are its own words) - so the teacher's margins for them ran
# several times the model's own, and training the cosine to them cost the model what it knew (SciFact train split:
# dense far below the base with every kind, above it with sentences alone; RESULTS.md, label-free sections).
TRAINED_KINDS = ("sentence",)
WORD = re.compile(r"[^\W\d_][\w\-]{2,}")


@dataclass(frozen=True)
class Triplet:
    query: str
    positive: str
    negative: str
    margin: float  # teacher score of the positive minus the negative's, in cosine units
    kind: str  # which kind of pseudo-query (KINDS)


@dataclass(frozen=True)
class PseudoQuery:
    text: str
    kind: str
    chunk_id: int  # the chunk it was made from
    passage: str  # that chunk's text as trained on: the query's words taken out for `heading` and `sentence`


def label_free_data(
    index_dir: Path | str,
    heldout_dir: Path | str,
    *,
    seed: int = 42,
    max_queries: int | None = None,
    progress: Callable | None = None,
    encoder=None,
    described_as: str | None = None,
) -> TrainingData:
    """Triplets for MarginMSE from the index at `index_dir` (see the module docstring) and its held-out
    pseudo-queries written to `heldout_dir` as a BEIR folder (split `test`). `encoder`: the index's model, if the
    caller has it loaded (else the index's own query encoder). `described_as`: what errors call the documents (the
    folder a scratch index was made of)."""
    from .search import Searcher
    from .store import open_index

    what = described_as or f"the index at {index_dir}"

    progress = progress or (lambda *a, **k: None)
    rng = random.Random(seed)
    index = open_index(index_dir)
    try:
        records = list(index.iter_chunks())
    finally:
        index.close()
    if len(records) < 2:
        raise InvalidInputError(f"{what} holds {len(records)} chunk(s); label-free training needs more")
    docs = sorted({r["doc_id"] for r in records})
    held_docs = set(rng.sample(docs, max(1, round(len(docs) * HELD_OUT)))) if len(docs) >= 10 else set()
    with Searcher(index_dir, encoder=encoder) as searcher:
        queries = _pseudo_queries(records, searcher, rng)
        train = [q for q in queries if _doc(records, q) not in held_docs and q.kind in TRAINED_KINDS]
        held = [q for q in queries if _doc(records, q) in held_docs]
        limit = MAX_QUERIES if max_queries is None else max_queries
        if len(train) > limit:
            train = rng.sample(train, limit)
        triplets = _teach(searcher, train, records, rng, progress)
    if not triplets:
        raise InvalidInputError(
            f"no pseudo-query of {what} found a passage to learn from; label-free training needs more text "
            "(sentences of 5 to 40 words, in more than a few documents)"
        )
    if len(held) > MAX_HELD_OUT_QUERIES:
        held = rng.sample(held, MAX_HELD_OUT_QUERIES)
    evaluation = _write_heldout(Path(heldout_dir), held, records) if held else None
    kinds = {k: sum(t.kind == k for t in triplets) for k in KINDS}
    data = TrainingData(
        [Pair(t.query, t.positive) for t in triplets],
        evaluation,
        f"{len(triplets)} label-free triplets from {len(records)} chunks of {Path(index_dir).name} "
        f"({', '.join(f'{n} {k}' for k, n in kinds.items())} pseudo-queries; margins from its hybrid search); "
        f"{len(held)} pseudo-queries of {len(held_docs)} held-out documents to compare on",
        corpus=[r["text"] for r in records],
    )
    data.triplets = triplets
    return data


def _doc(records: list[dict], q: PseudoQuery) -> str:
    return records[q.chunk_id]["doc_id"]


def _pseudo_queries(records: list[dict], searcher, rng: random.Random) -> list[PseudoQuery]:
    """One pseudo-query per chunk (records are indexed by position; chunk_id is that position), kinds in turn
    where a chunk can give several."""
    out: list[PseudoQuery] = []
    seen_headings: set[tuple[str, str]] = set()
    for i, r in enumerate(records):
        text = r["text"]
        options: list[PseudoQuery] = []
        heading = (r.get("heading") or r["title"] or "").strip()
        if heading and (r["doc_id"], heading) not in seen_headings and len(heading.split()) >= 3:
            rest = text.replace(heading, "", 1).lstrip("#=- \n") if heading in text[: len(heading) + 8] else text
            if len(rest.split()) >= 8:  # the first chunk under the heading with text of its own
                seen_headings.add((r["doc_id"], heading))
                options.append(PseudoQuery(heading, "heading", i, rest))
        if cloze := _cloze(text, rng):
            options.append(PseudoQuery(cloze[0], "sentence", i, cloze[1]))
        if words := _keywords(text, searcher, rng):
            options.append(PseudoQuery(words, "keywords", i, text))
        if options:
            out.append(options[i % len(options)] if len(options) > 1 else options[0])
    plain = [PseudoQuery(literal(q.text), q.kind, q.chunk_id, q.passage) for q in out]
    return [q for q in plain if q.text and q.passage.strip()]


def _cloze(text: str, rng: random.Random) -> tuple[str, str] | None:
    candidates = query_sentences(text)
    if len(SENTENCE.findall(text)) < 2 or not candidates:
        return None
    m = rng.choice(candidates)
    rest = (text[: m.start()] + text[m.end() :]).strip()
    return (m.group().strip(), rest) if len(rest.split()) >= 8 else None


def _keywords(text: str, searcher, rng: random.Random) -> str | None:
    words = list(dict.fromkeys(w.lower() for w in WORD.findall(text)))
    if len(words) < 6:
        return None
    idf = searcher.word_weights(" ".join(words))
    scored = []
    for w in words:
        analysed = searcher.analyze(w)
        if analysed and analysed[0] in idf:
            scored.append((idf[analysed[0]] * rng.uniform(0.5, 1.5), w))
    if len(scored) < 3:
        return None
    chosen = {w for _, w in sorted(scored, reverse=True)[: rng.randint(3, 5)]}
    return " ".join(w for w in words if w in chosen)


def _teach(searcher, queries: list[PseudoQuery], records: list[dict], rng: random.Random, progress) -> list[Triplet]:
    """Candidates from the hybrid search, scored by the hybrid evidence on the texts trained on."""
    by_id = {r["id"]: r for r in records}
    encoder = searcher.encoder
    # the hybrid score in the model's own cosine units (a model with a model_info.CosineMap weighs coverage so)
    coverage_weight = COVERAGE_IN_COSINE / searcher.cosine_map.slope
    out: list[Triplet] = []
    step = 256
    for start in range(0, len(queries), step):
        batch = queries[start : start + step]
        progress("teach", start, len(queries))
        hits = searcher.search_batch([q.text for q in batch], TEACHER_DEPTH, mode="hybrid", per_doc=False)
        positives = [_embedded(records[q.chunk_id], q.passage) for q in batch]
        xq = _unit(encoder.encode_queries([q.text for q in batch]))
        # A keyword query's passage is its chunk as indexed: its cosine is the stored vector's. The others are
        # chunks with the query taken out, embedded here.
        cosines = np.zeros(len(batch))
        changed = [j for j, q in enumerate(batch) if q.passage != records[q.chunk_id]["text"]]
        if changed:
            x = _unit(encoder.encode_documents([positives[j] for j in changed]))
            cosines[changed] = np.sum(xq[changed] * x, axis=1)
        for j, q in enumerate(batch):
            if q.passage == records[q.chunk_id]["text"]:
                cosines[j] = float(searcher.cosines(xq[j], [records[q.chunk_id]["id"]])[0])
        for q, found, positive, cosine in zip(batch, hits, positives, cosines):
            source = records[q.chunk_id]
            candidates = [h for h in found if h.id != source["id"] and h.cosine is not None]
            if not candidates:
                continue
            score = float(cosine) + coverage_weight * float(
                searcher.coverages(q.text, [_lexical(source, q.passage)])[0]
            )
            for h in rng.sample(candidates, min(NEGATIVES, len(candidates))):
                negative = float(h.cosine) + coverage_weight * float(h.coverage or 0.0)
                text = _embedded(by_id[h.id], by_id[h.id]["text"])
                out.append(Triplet(q.text, positive, text, score - negative, q.kind))
    progress("teach", len(queries), len(queries))
    return out


def _embedded(record: dict, text: str) -> str:
    from .chunking import embedding_input

    return embedding_input(record["title"], text)


def _lexical(record: dict, text: str) -> str:
    from .chunking import lexical_text

    return lexical_text(record["title"], record.get("heading", ""), text)


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def _write_heldout(folder: Path, held: list[PseudoQuery], records: list[dict]) -> BeirEval:
    """The held-out pseudo-queries as a BEIR folder: every chunk a document, each source chunk's text replaced
    by the passage its query was taken out of."""
    replaced = {q.chunk_id: q.passage for q in held}
    others = [i for i in range(len(records)) if i not in replaced]
    keep = sorted(replaced) + sorted(
        random.Random(0).sample(others, min(len(others), max(0, MAX_EVAL_CORPUS - len(replaced))))
    )
    (folder / "qrels").mkdir(parents=True, exist_ok=True)
    write_atomic(
        folder / "corpus.jsonl",
        b"".join(
            orjson.dumps({"_id": f"c{i}", "title": r["title"], "text": replaced.get(i, r["text"])}) + b"\n"
            for i, r in ((i, records[i]) for i in keep)
        ),
    )
    write_atomic(
        folder / "queries.jsonl",
        b"".join(orjson.dumps({"_id": f"q{n}", "text": q.text, "kind": q.kind}) + b"\n" for n, q in enumerate(held)),
    )
    write_atomic(
        folder / "qrels" / "test.tsv",
        ("query-id\tcorpus-id\tscore\n" + "".join(f"q{n}\tc{q.chunk_id}\t1\n" for n, q in enumerate(held))).encode(),
    )
    return BeirEval(folder, "test")
