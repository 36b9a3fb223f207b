"""Exact inner-product search over blocks of vectors: the local backend's search without a shortlist, and the
truth `searcher eval` and the benchmarks measure a shortlist against."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

EXACT_BLOCK = 65_536  # rows of full vectors scored at a time by exact search


def exact_top_k(
    xq: np.ndarray, blocks: Iterable[tuple[np.ndarray, np.ndarray]], k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Exact inner-product top k of each query over (vectors, ids) blocks; (D, I) best first, ties by id.

    One block in memory at a time, so the database may be a memory map larger than RAM.
    """
    best_d = np.full((len(xq), 0), -np.inf, dtype=np.float32)
    best_i = np.full((len(xq), 0), -1, dtype=np.int64)
    for xb, ids in blocks:
        scores = xq @ xb.T
        all_d = np.concatenate([best_d, scores], axis=1)
        all_i = np.concatenate([best_i, np.broadcast_to(ids, scores.shape)], axis=1)
        m = min(k, all_d.shape[1])
        part = np.argpartition(-all_d, m - 1, axis=1)[:, :m]
        best_d, best_i = np.take_along_axis(all_d, part, axis=1), np.take_along_axis(all_i, part, axis=1)
    order = np.lexsort((best_i, -best_d), axis=1)
    return np.take_along_axis(best_d, order, axis=1), np.take_along_axis(best_i, order, axis=1)
