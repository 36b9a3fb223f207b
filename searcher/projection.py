"""Coarse projections: how the 64-dim shortlist vectors are made from the full ones, and how `auto` chooses.

- `prefix`: the first `coarse_dim` dims, re-normalised. Right for Matryoshka-trained models, whose prefixes
  are trained to be embeddings on their own.
- `pca`: an orthogonal rotation R (principal directions of the corpus, strongest first) is applied to every
  full vector and query, so inner products are unchanged and the first `coarse_dim` rotated dims are the PCA
  projection. Models not trained with MatryoshkaLoss (the bundled MiniLM) have weak prefixes; PCA fixes that.
- `auto`: whichever of the two keeps more of the exact full-dim top-10 in a two-stage search over a sample of
  the corpus, with sample chunks as queries. Within CHOICE_MARGIN of each other, a model that declares Matryoshka
  dims keeps its trained prefix (no rotation), and any other model gets `pca`. subtle: chunks as queries find their
  near neighbours under either projection, so on a small or repetitive collection both measure near 1.0, while
  real queries, far from every chunk, are where a weak prefix loses: at the default shortlist the bundled MiniLM's
  prefix keeps far less of SciFact's exact top-10 for its real queries than `pca` does (RESULTS.md, shortlist
  sweep: agreement with exact search, no labels), and on a mailbox of 2,000 similar messages the prefix, measured
  a hair below `pca`, was chosen and left the one message about auroras out of the shortlist for "northern lights".
  subtle: this holds for Matryoshka-trained models too. MatryoshkaLoss makes the prefix a good embedding on
  its own, not a faithful summary of the full vector: fine-tuned on SciFact, MiniLM's 64-dim prefix kept 84% of
  the exact top-10 at a shortlist of 100, a PCA projection 98% (benchmarks/RESULTS.md). `searcher finetune`
  therefore ends its models with a PCA rotation (train.py), after which the two nearly agree; Matryoshka
  models made elsewhere still need measuring. The model's declared dims are recorded with the measurement.

Arrays are float32, C-contiguous, shape (n, d); names follow faiss (x, n, d, k).
"""

from __future__ import annotations

import math

import numpy as np

from .model_info import normalize_rows

FIT_SAMPLE = 20_000  # rows used to fit the rotation
MEASURE_SAMPLE = 5_000  # rows searched when `auto` measures
MEASURE_QUERIES = 250
MEASURE_K = 10
CHOICE_MARGIN = 0.01  # agreement within which the model decides (a trained prefix, else pca): see the docstring


def fit_rotation(x: np.ndarray) -> np.ndarray:
    """(d, d) orthogonal matrix whose columns are the principal directions of x, by decreasing variance."""
    x64 = np.asarray(x, dtype=np.float64)
    centred = x64 - x64.mean(axis=0)
    cov = centred.T @ centred / max(1, len(x64))
    eigenvalues, eigenvectors = np.linalg.eigh(cov)
    order = np.argsort(eigenvalues)[::-1]
    return np.ascontiguousarray(eigenvectors[:, order], dtype=np.float32)


def query_rotation(rotation: np.ndarray | None) -> np.ndarray | None:
    """The rotation as `rotated` takes it: float64, made once per index (not per query: at 1024 dims the copy
    alone was most of a query's rotation)."""
    return None if rotation is None else np.asarray(rotation, np.float64)


def rotated(xq: np.ndarray, rotation: np.ndarray | None) -> np.ndarray:
    """Query vectors in the index's frame (float32, C-contiguous); `rotation` from query_rotation. subtle: the
    product is taken in float64, so that one query alone and the same query in a batch (a vector against a matrix
    product, other BLAS kernels) land on the same float32 bits, and `search` returns what `search_batch` does."""
    if rotation is None:
        return xq
    return np.ascontiguousarray(np.asarray(xq, np.float64) @ rotation, dtype=np.float32)


def coarse_vectors(full: np.ndarray, coarse_dim: int) -> np.ndarray:
    """Coarse vectors from full vectors already in the projection's frame."""
    return normalize_rows(np.asarray(full)[:, :coarse_dim])


def agreement(x: np.ndarray, rotation: np.ndarray | None, coarse_dim: int, *, shortlist: int) -> float:
    """Mean share of the exact top-10 that a two-stage search keeps, with the first rows of x as queries.

    Each query's own row is excluded from both searches (it would always be found).
    """
    nq = min(MEASURE_QUERIES, len(x) - 1)
    k = min(MEASURE_K, len(x) - 1)
    if nq < 1 or k < 1:
        return 1.0
    frame = x @ rotation if rotation is not None else x
    exact = x[:nq] @ x.T
    coarse = coarse_vectors(frame, coarse_dim)
    approx = coarse[:nq] @ coarse.T
    own = np.arange(nq)
    exact[own, own] = -np.inf
    approx[own, own] = -np.inf
    shortlist = min(max(shortlist, k), len(x) - 1)
    kept = 0
    for i in range(nq):
        truth = np.argpartition(-exact[i], k - 1)[:k]
        candidates = np.argpartition(-approx[i], shortlist - 1)[:shortlist]
        reranked = candidates[np.argsort(-exact[i, candidates], kind="stable")[:k]]
        kept += len(np.intersect1d(truth, reranked))
    return kept / (nq * k)


def choose(
    x: np.ndarray,
    *,
    requested: str,
    coarse_dim: int,
    matryoshka_dims: tuple[int, ...],
    shortlist: int,
    total: int,
    seed: int = 0,
) -> tuple[str, np.ndarray | None, dict]:
    """(kind, rotation or None, measurement) for a sample `x` of raw full vectors out of `total` chunks."""
    rng = np.random.default_rng(seed)
    if len(x) > FIT_SAMPLE:
        x = x[np.sort(rng.choice(len(x), FIT_SAMPLE, replace=False))]
    if requested == "prefix":
        return "prefix", None, {}
    if requested == "pca":
        return "pca", fit_rotation(x), {}
    rotation = fit_rotation(x)
    sample = x[rng.permutation(len(x))[:MEASURE_SAMPLE]]
    # The shortlist scaled to the sample, so that it covers the same share of the corpus as in real searches.
    scaled = max(2 * MEASURE_K, math.ceil(shortlist * len(sample) / max(total, 1)))
    scores = {
        "prefix": agreement(sample, None, coarse_dim, shortlist=scaled),
        "pca": agreement(sample, rotation, coarse_dim, shortlist=scaled),
    }
    if matryoshka_dims:  # a trained prefix: pca must earn its rotation
        kind = "pca" if scores["pca"] > scores["prefix"] + CHOICE_MARGIN else "prefix"
    else:  # a prefix nobody trained: it must earn its place
        kind = "prefix" if scores["prefix"] > scores["pca"] + CHOICE_MARGIN else "pca"
    measurement = {
        "metric": f"share of exact top-{MEASURE_K} kept by a two-stage search, sample chunks as queries",
        "sample": len(sample),
        "queries": min(MEASURE_QUERIES, len(sample) - 1),
        "shortlist": scaled,
        "prefix": round(scores["prefix"], 4),
        "pca": round(scores["pca"], 4),
        "declared_matryoshka_dims": list(matryoshka_dims),
    }
    return kind, (rotation if kind == "pca" else None), measurement
