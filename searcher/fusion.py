"""Dense + lexical -> one ranking: a convex combination of scores that mean the same in every query.

    fused = w * cosine + (1 - w) * min(1, bm25 / ceiling)

over the union of each side's top candidates. `cosine` is the candidate's full-vector similarity with the query
(a lexical-only candidate is scored with its full vector); `ceiling` is the BM25 a chunk would get holding every
query word with saturated frequency, (k1 + 1) * sum of the words' IDF (`ceiling` below), so the
lexical term is the share of the query's evidence a chunk holds, 0 for a candidate the lexical side did not return.
Neither term is normalised within its query, so a query where one side finds nothing close does not have its best
candidate stretched to 1: a dense side with cosines of 0.8 outweighs a lexical side whose best chunk holds a fifth
of the query's words, and the other way round.

Why this and not the min-max normalised, per-query adaptive combination searcher used before (RESULTS.md, hybrid
section, for the older figures): measured on the tuning splits only (SciFact train, aie5-simonw-llms train and dev;
benchmarks/RESULTS.md, fusion section), the absolute combination ranked better at its best weight than min-max at
its best, adaptive or fixed, and it is what makes a hybrid score comparable between queries. w = 0.4 (DEFAULT_FUSION
_WEIGHT) was the best on those splits; the reported splits (SciFact test, aie5 test, StatPearls, msmarco-5k) were
measured after the choice. Why a convex combination rather than reciprocal rank fusion: it can put its weight on the
stronger side when the other is weak, where RRF gives a weak side's first hit the same credit as a strong side's
(Bruch, Gai, Ingber, "An Analysis of Fusion Functions for Hybrid Retrieval", TOIS 2023).

Pure functions over arrays; tests/test_hybrid.py works them out by hand.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .calibration import idf

K1 = 1.2  # tantivy's (and Qdrant's) BM25 k1: a word's score saturates at (k1 + 1) * its IDF


def ceiling(doc_freqs: list[int], docs: int) -> float:
    """The BM25 of a chunk holding every query word (these document frequencies among `docs` chunks) with
    saturated frequency: (k1 + 1) * sum of their IDF; never 0, so it can divide."""
    return max((K1 + 1) * sum(idf(df, docs) for df in doc_freqs), 1e-9)


def fuse(
    dense_ids: np.ndarray,
    dense_scores: np.ndarray,
    lexical_ids: np.ndarray,
    lexical_scores: np.ndarray,
    weight: float,
    k: int,
) -> tuple[np.ndarray, np.ndarray]:
    """(scores, ids) of the top k of the union, best first, ties by the smaller id.

    `dense_ids`/`dense_scores` (cosines) must cover every candidate of the union (the caller scores lexical-only
    candidates with their full vectors); `lexical_ids` are a subset, with their BM25 scores already divided by the
    query's ceiling (`lexical_scores` in [0, 1]).
    """
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"weight must be in [0, 1], got {weight}")
    dense_ids = np.asarray(dense_ids, dtype=np.int64)
    lex = np.zeros(len(dense_ids))
    if len(lexical_ids):
        order = np.argsort(dense_ids)
        where = order[np.searchsorted(dense_ids, np.asarray(lexical_ids, dtype=np.int64), sorter=order)]
        lex[where] = np.minimum(np.asarray(lexical_scores, np.float64), 1.0)
    fused = weight * np.asarray(dense_scores, dtype=np.float64) + (1.0 - weight) * lex
    top = np.lexsort((dense_ids, -fused))[:k]
    return fused[top].astype(np.float32), dense_ids[top]


def fuse_sides(
    dense_ids: np.ndarray,
    dense_scores: np.ndarray,
    lexical_ids: np.ndarray,
    lexical_scores: np.ndarray,
    query_ceiling: float,
    weight: float,
    k: int,
    full_scores: Callable[[np.ndarray], np.ndarray],
) -> tuple[np.ndarray, np.ndarray]:
    """`fuse` over one query's two sides as a backend finds them: the dense candidates with their cosines and the
    lexical hits with raw BM25. Lexical-only candidates are scored by `full_scores(ids)` (ascending ids, their
    full-vector cosines with the query), and BM25 is divided by the query's ceiling. Every backend fuses here."""
    extra = np.setdiff1d(lexical_ids, dense_ids)
    if len(extra):
        dense_ids = np.concatenate([dense_ids, extra])
        dense_scores = np.concatenate([np.asarray(dense_scores, np.float32), full_scores(extra)])
    return fuse(dense_ids, dense_scores, lexical_ids, np.asarray(lexical_scores) / query_ceiling, weight, k)
