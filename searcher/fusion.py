"""Dense + lexical -> one ranking: a convex combination of the two pieces of evidence a hybrid score is made of.

    fused = w * cosine + (1 - w) * coverage

over the union of each side's top candidates (each side brings FUSION_DEPTH: BM25 finds the lexical ones).
`cosine` is the candidate's full-vector similarity with the query (a lexical-only candidate is scored with its full
vector); `coverage` is the IDF-weighted share of the query's words the candidate holds (calibration.coverage), for
every candidate, those the lexical side did not return included. These are the two features of the calibrated
hybrid score (calibration.py), and the default w is their ratio in it, b_cosine / (b_cosine + b_coverage): the
hybrid ranking is then the order of the calibrated probability itself, so the score a hit shows is the score that
ranked it. Neither term is normalised within its query, so a query where one side finds nothing close does not have
its best candidate stretched to 1. (An index of another model than the calibration's weighs its cosines on the
calibration's scale: the Searcher hands the backend the equivalent weight on the raw ones, model_info.CosineMap.)

Why coverage and not BM25 (divided by the query's ceiling, searcher's fusion before this one): BM25 keeps rewarding a
chunk for repeating a word and for being short; the share of the query's evidence a chunk holds does not, and it is
the lexical evidence the calibrated score already weighs. Chosen on the tuning splits only (SciFact train,
aie5-simonw-llms train and dev: at the calibration's ratio, the coverage fusion's mean nDCG@10 there was above the
BM25 fusion's at its best weight), then measured on the reported splits (benchmarks/RESULTS.md, hybrid section).
Why a convex combination rather than reciprocal rank fusion: it can put its weight on the stronger side when the
other is weak, where RRF gives a weak side's first hit the same credit as a strong side's (Bruch, Gai, Ingber, "An
Analysis of Fusion Functions for Hybrid Retrieval", TOIS 2023).
Why one weight for every query and index: the per-query weights tried (moved by the dense or lexical side's margin,
the query's word count, its top cosine or top coverage), BM25 or the proximity of the query's adjacent words as a
third feature, and pseudo-relevance feedback from the fused top chunks, each chosen on the tuning splits, did not beat
it on the reported splits, and the best weight per set, chosen on each reported split itself, gains little over it
(benchmarks/RESULTS.md, fusion-ceiling section: benchmarks/fusion_ceiling.py).

Pure functions over arrays; tests/test_hybrid.py works them out by hand.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def fuse(
    ids: np.ndarray,
    cosines: np.ndarray,
    coverages: np.ndarray,
    weight: float,
    k: int,
) -> tuple[np.ndarray, np.ndarray]:
    """(scores, ids) of the top k candidates, best first, ties by the smaller id: each candidate's cosine and
    coverage (in [0, 1]) fused with the dense side's `weight`."""
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"weight must be in [0, 1], got {weight}")
    ids = np.asarray(ids, dtype=np.int64)
    fused = weight * np.asarray(cosines, dtype=np.float64) + (1.0 - weight) * np.asarray(coverages, np.float64)
    top = np.lexsort((ids, -fused))[:k]
    return fused[top].astype(np.float32), ids[top]


def fuse_sides(
    dense_ids: np.ndarray,
    dense_scores: np.ndarray,
    lexical_ids: np.ndarray,
    weight: float,
    k: int,
    full_scores: Callable[[np.ndarray], np.ndarray],
    coverages: Callable[[np.ndarray], np.ndarray],
) -> tuple[np.ndarray, np.ndarray]:
    """`fuse` over one query's two sides as a backend finds them: the dense candidates with their cosines and the
    lexical hits' ids. Lexical-only candidates are scored by `full_scores(ids)` (ascending ids, their full-vector
    cosines with the query); every candidate's coverage comes from `coverages(ids)`. Every backend fuses here."""
    dense_ids = np.asarray(dense_ids, np.int64)
    extra = np.setdiff1d(np.asarray(lexical_ids, np.int64), dense_ids)
    cosines = np.asarray(dense_scores, np.float32)
    if len(extra):
        dense_ids = np.concatenate([dense_ids, extra])
        cosines = np.concatenate([cosines, full_scores(extra)])
    return fuse(dense_ids, cosines, coverages(dense_ids) if len(dense_ids) else np.empty(0), weight, k)
