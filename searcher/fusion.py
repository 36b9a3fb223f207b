"""Dense + lexical -> one ranking: a convex combination of min-max-normalised scores, with a per-query weight.

    fused = w * norm(dense) + (1 - w) * norm(lexical)

over the union of each side's top candidates. Every candidate has a dense score (a lexical-only candidate is
scored with its full vector), and dense scores are normalised over the whole union; a candidate the lexical side
did not return gets that side's floor, 0 after normalisation. (Normalising each side by its own top list only, with
the rest clipped to 0, measured worse on the tuning splits: 0.8259 at a fixed weight of 0.6 in RESULTS.md as of
commit 7e30250, against 0.8329 now.)

Why a convex combination and not reciprocal rank fusion: it can put its weight on the stronger side when the other
is weak, where RRF gives a weak side's first hit the same credit as a strong side's. It beat RRF on every given set
(benchmarks/RESULTS.md, hybrid section), as in Bruch, Gai, Ingber, "An Analysis of Fusion Functions for Hybrid
Retrieval" (TOIS 2023).

The weight adapts to each query without labels (`adaptive_weight`): a side whose top scores stand out from the
rest of its list is confident, one whose scores are flat is not, and the index's base weight is shifted toward the
confident side. A query whose words are rare and match few chunks exactly leans lexical; one with no lexical match
is dense only. What else was tried, and did not do better, is in RESULTS.md.

Pure functions over arrays; tests/test_hybrid.py works them out by hand.
"""

from __future__ import annotations

import numpy as np

CONFIDENCE_RANK = 10  # a side's confidence: how far its 1st score stands above its 10th, within its list's range


def normalise(scores: np.ndarray) -> np.ndarray:
    """Min-max to [0, 1]; NaN (not returned by that side) stays NaN; if all are equal, they become 1."""
    x = np.asarray(scores, dtype=np.float64)
    finite = x[~np.isnan(x)]
    if not len(finite):
        return x
    lo, hi = finite.min(), finite.max()
    return (x - lo) / (hi - lo) if hi > lo else np.where(np.isnan(x), np.nan, 1.0)


def convex(dense: np.ndarray, lexical: np.ndarray, weight: float) -> np.ndarray:
    """Fused scores of candidates with these dense and lexical scores (NaN: not returned by the lexical side)."""
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"weight must be in [0, 1], got {weight}")
    lex = np.nan_to_num(normalise(lexical), nan=0.0)
    return weight * np.nan_to_num(normalise(dense), nan=0.0) + (1.0 - weight) * lex


def confidence(scores: np.ndarray, depth: int) -> float:
    """(1st - 10th) / (1st - last) of a side's top `depth` scores, in [0, 1]; fewer than 10 scores are confident
    (a handful of exact matches is a confident lexical answer)."""
    x = np.sort(np.asarray(scores, dtype=np.float64))[::-1][:depth]
    if len(x) < CONFIDENCE_RANK:
        return 1.0
    spread = x[0] - x[-1]
    return float((x[0] - x[CONFIDENCE_RANK - 1]) / spread) if spread > 0 else 0.0


def adaptive_weight(base: float, dense_scores: np.ndarray, lexical_scores: np.ndarray, depth: int) -> float:
    """The dense weight for one query: `base` shifted toward the more confident side,
    base * c_dense / (base * c_dense + (1 - base) * c_lexical)."""
    if not len(lexical_scores):
        return 1.0
    c_dense, c_lexical = confidence(dense_scores, depth), confidence(lexical_scores, depth)
    total = base * c_dense + (1.0 - base) * c_lexical
    return base * c_dense / total if total > 0 else base


def fuse(
    dense_ids: np.ndarray,
    dense_scores: np.ndarray,
    lexical_ids: np.ndarray,
    lexical_scores: np.ndarray,
    weight: float,
    k: int,
) -> tuple[np.ndarray, np.ndarray]:
    """(scores, ids) of the top k of the union, best first, ties by the smaller id.

    `dense_ids`/`dense_scores` must cover every candidate of the union (the caller scores lexical-only candidates
    with their full vectors); `lexical_ids` are a subset with their BM25 scores.
    """
    dense_ids = np.asarray(dense_ids, dtype=np.int64)
    lex = np.full(len(dense_ids), np.nan)
    if len(lexical_ids):
        order = np.argsort(dense_ids)
        where = order[np.searchsorted(dense_ids, np.asarray(lexical_ids, dtype=np.int64), sorter=order)]
        lex[where] = lexical_scores
    fused = convex(np.asarray(dense_scores, dtype=np.float64), lex, weight)
    top = np.lexsort((dense_ids, -fused))[:k]
    return fused[top].astype(np.float32), dense_ids[top]
