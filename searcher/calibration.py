"""Scores on one scale: a hit's score is the estimated probability that it is relevant to the query.

Ranking scores are not comparable between queries: a fused score is normalised within its query (fusion.py), BM25
grows with the query's length and rare words, a cosine's range depends on the model. What a user can act on
(`--min-score`, "no match") needs a scale that means the same for every query and mode, so each hit gets two pieces
of evidence that do, and a logistic model turns them into a probability:

- `cosine`: the hit's dense similarity with the query (full vectors);
- `coverage`: the share of the query's words the hit holds, each word weighted by its IDF in the index (a query's
  rare words count most, and a word the index has never seen counts fully against every hit).

    p = 1 / (1 + exp(-(b0 + b_cosine * cosine + b_coverage * coverage)))

with one (b0, b_cosine, b_coverage) per kind of search: `hybrid` uses both, the dense modes the cosine only,
`lexical` the coverage only (it embeds no query). The coefficients were fitted by logistic regression on the
tuning splits only (SciFact train, aie5-simonw-llms train and dev: each query's top 10 documents, relevant or not)
and checked on the other sets' reported splits: benchmarks/RESULTS.md, score calibration section, which also holds
the reliability table (predicted against observed relevance). They are the bundled model's (REFERENCE_MODEL);
another model's cosines are mapped onto its scale first (below).

A query has no match when its best hit's probability is below NO_MATCH (per kind of search), chosen on the same
tuning material: the largest threshold that flags under 0.5% of the tuning queries against their own index.

Another model's cosines sit elsewhere (many models put every pair of texts above 0.7), which would move both the
hybrid ranking's balance and the probabilities. An index built with a model other than REFERENCE_MODEL therefore
carries a CosineMap: an affine map of its model's cosines onto the reference model's scale, fitted without labels
when the index is built (fit_cosine_map: pseudo-queries from its own chunks, scored by both models), applied before
any cosine is weighed. benchmarks/RESULTS.md, cosine-map section, measures what it restores.

Pure functions; tests/test_relevance.py works them out.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from .config import DEFAULT_MODEL
from .model_info import CosineMap

REFERENCE_MODEL = DEFAULT_MODEL  # the model COEFFICIENTS were fitted with: its cosines need no map

# (b0, b_cosine, b_coverage) per kind of search; see the module docstring for where they come from.
COEFFICIENTS = {
    "hybrid": (-8.04, 6.47, 5.38),
    "dense": (-9.18, 12.29, 0.0),
    "lexical": (-5.96, 0.0, 7.88),
}
# The best hit of a query below this probability (per kind of search): no match.
NO_MATCH = {"hybrid": 0.006, "dense": 0.006, "lexical": 0.012}


MIN_FIT_QUERIES = 8  # fewer pseudo-queries than this: no map (a later, larger update fits one)
# A model whose cosines spread over less than 1/MAX_SLOPE of the reference's (or more than MAX_SLOPE times) gets no
# map: its cosines barely tell texts apart (a randomly initialised model puts every pair above 0.9999), and
# stretching them would weigh noise.
MAX_SLOPE = 20.0


def fit_cosine_map(cosines: np.ndarray, reference: np.ndarray) -> CosineMap | None:
    """The affine map taking the index model's `cosines` onto the `reference` model's, both (queries, chunks) for the
    same pseudo-queries and chunks: two anchors matched, each model's mean over queries of its best cosine (a
    query's own source chunk, a near-perfect match) and of its median cosine (the collection's background). None
    when there are too few queries or the model barely tells the two apart (MAX_SLOPE)."""
    cosines, reference = np.asarray(cosines, np.float64), np.asarray(reference, np.float64)
    if cosines.shape != reference.shape or cosines.ndim != 2 or cosines.shape[0] < MIN_FIT_QUERIES:
        return None

    def anchors(x: np.ndarray) -> tuple[float, float]:
        return float(x.max(axis=1).mean()), float(np.median(x, axis=1).mean())

    (hi, lo), (ref_hi, ref_lo) = anchors(cosines), anchors(reference)
    if hi - lo < 1e-6 or ref_hi - ref_lo < 1e-6:
        return None
    slope = (ref_hi - ref_lo) / (hi - lo)
    if not 1 / MAX_SLOPE <= slope <= MAX_SLOPE:
        return None
    return CosineMap(slope, ref_hi - slope * hi, cosines.shape[0])


def kind(mode: str) -> str:
    """The set of coefficients a search mode uses."""
    return mode if mode in ("hybrid", "lexical") else "dense"


def match_floor(mode: str) -> float | None:
    """The lowest score at which a hit of this mode is a match on its own, for output that lists matches with no
    score to judge them by (`searcher query -l`, as grep -l lists the files that match): NO_MATCH of its kind. None
    in lexical mode, whose every hit holds one of the query's words: a match as grep means it."""
    return None if kind(mode) == "lexical" else NO_MATCH[kind(mode)]


def probability(mode: str, cosine: np.ndarray | float, coverage: np.ndarray | float) -> np.ndarray:
    """The calibrated relevance of hits with this evidence, in (0, 1)."""
    b0, bc, bv = COEFFICIENTS[kind(mode)]
    z = b0 + bc * np.asarray(cosine, np.float64) + bv * np.asarray(coverage, np.float64)
    return 1.0 / (1.0 + np.exp(-z))


def idf(doc_freq: int, docs: int) -> float:
    """BM25's inverse document frequency (Lucene's, always positive)."""
    return math.log(1.0 + (docs - doc_freq + 0.5) / (doc_freq + 0.5))


def coverage(weights: dict[str, float], terms: Iterable[str]) -> float:
    """The IDF-weighted share of the query's words (`weights`: word -> IDF) among a hit's analysed `terms`."""
    total = sum(weights.values())
    if total <= 0:
        return 0.0
    found = set(terms)
    return sum(w for t, w in weights.items() if t in found) / total


def monotone(scores: list[float]) -> list[float]:
    """Scores capped by the one above, so a list never shows a later hit scored higher than an earlier one (the
    ranking decides the order; the probability says how good each place is)."""
    out: list[float] = []
    for s in scores:
        out.append(min(s, out[-1]) if out else s)
    return out
