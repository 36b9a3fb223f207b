"""IR metrics, BEIR data loading, and document-level rankings from chunk-level search results.

The metrics are those of the two model cards (sentence-transformers' InformationRetrievalEvaluator):
accuracy/precision/recall @1,3,5,10, ndcg@10, mrr@10 and map@100, with the same definitions - hits sorted by
score then by document id, recall over all relevant documents, MAP normalised by min(k, #relevant). One
extension: graded judgments (scores above 1) count as gains in nDCG (linear gain, as in trec_eval); with
binary judgments the numbers equal the evaluator's exactly, which tests/test_metrics.py checks.

One convention from BEIR's own evaluation (`ignore_identical_ids`): in sets such as ArguAna and Quora the query is
itself a document of the corpus, under the query's id, and counting it would rank the query above every answer;
`searcher eval` leaves such a document out of its query's ranking (`itself=`). Unlike BEIR's rule, an id alone
does not decide: the document must hold the query's own text (BeirData.itself). Sets converted from the classic
collections number queries and documents alike (query 1, document 1), and there the same id is a coincidence -
dropping document 1 from query 1's ranking would lose a judged answer.

A document ranks by its best chunk, so results compare with published document-level numbers.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from .errors import InvalidInputError

ACCURACY_AT = (1, 3, 5, 10)
PRECISION_RECALL_AT = (1, 3, 5, 10)
NDCG_AT = 10
MRR_AT = 10
MAP_AT = 100
DEPTH = max(MAP_AT, NDCG_AT, MRR_AT, *ACCURACY_AT, *PRECISION_RECALL_AT)  # documents ranked per query
METRICS = (
    *(f"accuracy@{k}" for k in ACCURACY_AT),
    *(f"precision@{k}" for k in PRECISION_RECALL_AT),
    *(f"recall@{k}" for k in PRECISION_RECALL_AT),
    f"ndcg@{NDCG_AT}",
    f"mrr@{MRR_AT}",
    f"map@{MAP_AT}",
)

Ranking = Sequence[tuple[str, float]]  # (doc_id, score), any order


@dataclass(frozen=True)
class BeirData:
    corpus: Path  # corpus.jsonl
    queries: dict[str, str]  # only the queries judged in the split
    qrels: dict[str, dict[str, int]]  # query id -> {doc id: grade > 0}
    documents: int = 0  # usable records in corpus.jsonl
    itself: frozenset[str] = frozenset()  # judged queries that are documents of the corpus: same id, same text


def load_beir(data_dir: Path | str, split: str = "test") -> BeirData:
    """Read a BEIR folder (corpus.jsonl, queries.jsonl, qrels/<split>.tsv); only judged queries are kept."""
    data_dir = Path(data_dir)
    corpus, queries_file, qrels_file = (
        data_dir / "corpus.jsonl",
        data_dir / "queries.jsonl",
        data_dir / "qrels" / f"{split}.tsv",
    )
    for path in (corpus, queries_file):
        if not path.is_file():
            raise InvalidInputError(f"{path} is missing; a BEIR folder holds corpus.jsonl, queries.jsonl and qrels/")
    if not qrels_file.is_file():
        splits = sorted(p.stem for p in (data_dir / "qrels").glob("*.tsv"))
        raise InvalidInputError(
            f"no split {split!r} in {data_dir}/qrels (found: {', '.join(splits) or 'none'}); pick one with --split"
        )
    qrels = _read_qrels(qrels_file)
    if not qrels:
        raise InvalidInputError(f"{qrels_file} has no relevance judgments with a score above 0")
    all_queries = {}
    for lineno, r in read_jsonl(queries_file):
        if not isinstance(r, dict) or not isinstance(r.get("_id"), (str, int)) or not isinstance(r.get("text"), str):
            raise InvalidInputError(
                f"{queries_file}:{lineno} is not a query: each line needs an '_id' and a string "
                "'text'; fix or remove that line"
            )
        all_queries[str(r["_id"])] = r["text"]
    missing = sorted(set(qrels) - set(all_queries))
    if missing:
        raise InvalidInputError(
            f"{len(missing)} query id(s) in {qrels_file.name} are not in queries.jsonl (first: {missing[0]!r})"
        )
    doc_ids, itself = [], set()
    for doc_id, title, text in corpus_records(corpus):
        doc_ids.append(doc_id)
        if doc_id in qrels and _same_text(all_queries[doc_id], title, text):
            itself.add(doc_id)
    judged = {d for rel in qrels.values() for d in rel}
    unknown = sorted(judged - set(doc_ids))
    if len(unknown) == len(judged):  # not one: another corpus's judgments, or ids written differently
        raise InvalidInputError(
            f"none of the {len(judged)} judged document id(s) in {qrels_file.name} is in corpus.jsonl (first: "
            f"{unknown[0]!r}); are these the judgments for this corpus?"
        )
    # Some judged documents missing (a sample of a larger corpus): they stay judged, so they cap recall, as in
    # sentence-transformers' evaluator and BEIR's; `searcher eval` reports them.
    return BeirData(
        corpus=corpus,
        queries={q: all_queries[q] for q in qrels},
        qrels=qrels,
        documents=len(doc_ids),
        itself=frozenset(itself),
    )


def _same_text(query: str, title: str, text: str) -> bool:
    """Whether a document holds the query's own text: the same words (case and spacing aside) as its text, or its
    title and text; or one holds the other and they differ by under a tenth of their length."""
    q = " ".join(query.lower().split())
    for d in (" ".join(text.lower().split()), " ".join(f"{title} {text}".lower().split())):
        if q == d or ((q in d or d in q) and min(len(q), len(d)) >= 0.9 * max(len(q), len(d))):
            return True
    return False


def corpus_records(path: Path) -> Iterator[tuple[str, str, str]]:
    """(id, title, text) of each usable BEIR corpus line; lines that are not such a record are skipped here
    (the indexer skips the same lines and warns about them)."""
    for _, r in read_jsonl(path, strict=False):
        if isinstance(r, dict) and "_id" in r and isinstance(r.get("text"), str):
            yield str(r["_id"]), str(r.get("title") or ""), r["text"]


def read_jsonl(path: Path, *, strict: bool = True) -> Iterator[tuple[int, Any]]:
    """(line number, record) for each non-blank line of a JSON Lines file (records end at "\\n" only); bad JSON
    names its line, or is skipped when not `strict`."""
    with open(path, "rb") as f:
        for lineno, line in enumerate(f, start=1):
            if line.strip():
                try:
                    yield lineno, orjson.loads(line)
                except orjson.JSONDecodeError:
                    if strict:
                        raise InvalidInputError(f"{path}:{lineno} is not valid JSON; fix or remove that line") from None


def _read_qrels(path: Path) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            parts = line.rstrip("\r\n").split("\t")
            if not line.strip():
                continue
            if len(parts) != 3:
                raise InvalidInputError(f"{path}:{lineno} must have 3 tab-separated columns: query-id corpus-id score")
            try:
                grade = int(float(parts[2]))
            except ValueError:
                if lineno == 1:  # a header: BEIR's query-id, corpus-id, score, or another set's names for them
                    continue
                raise InvalidInputError(f"{path}:{lineno} has a score that is not a number: {parts[2]!r}") from None
            if grade > 0:
                qrels.setdefault(parts[0], {})[parts[1]] = grade
    return qrels


def document_rankings(
    D: np.ndarray, I: np.ndarray, doc_of: Mapping[int, str], *, depth: int = DEPTH
) -> list[list[tuple[str, float]]]:
    """Chunk results (D, I), best first, -> per query the best `depth` documents, each scored by its best chunk."""
    out = []
    for scores, ids in zip(D, I):
        ranking: dict[str, float] = {}
        for score, chunk_id in zip(scores, ids):
            if chunk_id < 0:
                break
            ranking.setdefault(doc_of[int(chunk_id)], float(score))
            if len(ranking) == depth:
                break
        out.append(list(ranking.items()))
    return out


def _dcg(gains: Sequence[float]) -> float:
    return sum(g / math.log2(i + 2) for i, g in enumerate(gains))


def ir_metrics(
    rankings: Mapping[str, Ranking], qrels: Mapping[str, Mapping[str, int]], *, itself: Collection[str] = ()
) -> dict[str, float]:
    """Mean of each metric in METRICS over the queries of `qrels` (a query with no ranking scores 0)."""
    totals = dict.fromkeys(METRICS, 0.0)
    for values in query_metrics(rankings, qrels, itself=itself).values():
        for name, value in values.items():
            totals[name] += value
    return {name: value / len(qrels) for name, value in totals.items()}


def query_metrics(
    rankings: Mapping[str, Ranking], qrels: Mapping[str, Mapping[str, int]], *, itself: Collection[str] = ()
) -> dict[str, dict[str, float]]:
    """Each metric in METRICS for each query of `qrels` (a query with no ranking scores 0); for the query ids in
    `itself`, the document of the same id (the query itself: BeirData.itself) is left out of its ranking."""
    out = {}
    for qid, relevant in qrels.items():
        ranking = rankings.get(qid, ())
        if qid in itself:
            ranking = [hit for hit in ranking if hit[0] != qid]
        hits = sorted(ranking, key=lambda h: (-h[1], h[0]))[:DEPTH]
        found = [doc in relevant for doc, _ in hits]
        m: dict[str, float] = {}
        for k in ACCURACY_AT:
            m[f"accuracy@{k}"] = float(any(found[:k]))
        for k in PRECISION_RECALL_AT:
            m[f"precision@{k}"] = sum(found[:k]) / k
            m[f"recall@{k}"] = sum(found[:k]) / len(relevant)
        gains = [relevant.get(doc, 0) for doc, _ in hits[:NDCG_AT]]
        ideal = sorted(relevant.values(), reverse=True)[:NDCG_AT]
        m[f"ndcg@{NDCG_AT}"] = _dcg(gains) / _dcg(ideal)
        first = next((rank for rank, hit in enumerate(found[:MRR_AT]) if hit), None)
        m[f"mrr@{MRR_AT}"] = 0.0 if first is None else 1.0 / (first + 1)
        correct, precision_sum = 0, 0.0
        for rank, hit in enumerate(found[:MAP_AT]):
            if hit:
                correct += 1
                precision_sum += correct / (rank + 1)
        m[f"map@{MAP_AT}"] = precision_sum / min(MAP_AT, len(relevant))
        out[qid] = m
    return out


def top_overlap(a: Sequence[Ranking], b: Sequence[Ranking], *, k: int = 10) -> float:
    """Mean share of b's top-k documents that a's top-k also holds (set overlap)."""
    shares = []
    for ra, rb in zip(a, b):
        top_a = {d for d, _ in sorted(ra, key=lambda h: (-h[1], h[0]))[:k]}
        top_b = {d for d, _ in sorted(rb, key=lambda h: (-h[1], h[0]))[:k]}
        if top_b:
            shares.append(len(top_a & top_b) / len(top_b))
    return float(np.mean(shares)) if shares else 1.0


def metrics_table(columns: Mapping[str, Mapping[str, float]], metrics: Sequence[str] = METRICS) -> list[str]:
    """The model cards' layout: one row per metric, one column per search mode or dim, nDCG in bold."""
    names = list(columns)
    lines = ["| Metric | " + " | ".join(names) + " |", "|:--|" + "--:|" * len(names)]
    for metric in metrics:
        cells = [f"{columns[name][metric]:.4f}" for name in names]
        if metric.startswith("ndcg"):
            metric, cells = f"**{metric}**", [f"**{c}**" for c in cells]
        lines.append(f"| {metric} | " + " | ".join(cells) + " |")
    return lines
