"""The local backend: the FAISS generation store (store.py) searched in-process.

Query -> coarse shortlist (the 64-dim FAISS index in RAM, coarse.py) -> rerank with the full vectors, reading only
the shortlisted rows of their memory map, so they never need to fit in RAM; tantivy for the lexical side
(lexical.py), fused with fusion.py. `mode="full"` (exact search over every full vector) and `mode="coarse"` (the
shortlist index alone) exist to measure what the two stages buy.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .. import coarse, vectors
from ..config import FUSION_DEPTH
from ..errors import IndexFormatError
from ..exact import EXACT_BLOCK, exact_top_k
from ..filters import FileTimes, Where, among, selected_ids
from ..fusion import fuse_sides
from ..machine import usable_cores
from ..projection import coarse_vectors, query_rotation, rotated
from ..store import StoredIndex

# A query's rerank of at least this many rows is split over the cores: reading scattered rows of the memory map is
# page faults, and numpy's gather and BLAS run outside the GIL, so two threads read and score at once. What it saves
# is what the faults cost, which varies on this VM: 10M chunks x 1024 dims, 2,000 rows not read before, 2.60 -> 2.38
# ms in the last run (RESULTS.md, both cores for one query), 23.9 -> 15.6 ms in an earlier one whose faults cost ~5x
# more (rows then decoded by FAISS); 2-core Xeon with AMX. Fewer rows stay on the caller's thread.
SPLIT_RERANK_ROWS = 1_000


@functools.cache
def _rerank_pool() -> tuple[ThreadPoolExecutor, int] | None:
    """The threads a large rerank is split over and their count (None on a single core), made on first use."""
    cores = usable_cores()
    return (ThreadPoolExecutor(cores, thread_name_prefix="searcher-rerank"), cores) if cores > 1 else None


class LocalBackend:
    """Searches one open generation (backends.Backend)."""

    def __init__(self, index: StoredIndex) -> None:
        self.index = index
        self.manifest = index.manifest
        self._coarse = index.load_coarse()
        self.lexical = index.open_lexical()  # None: no usable lexical side (the Searcher says so)
        self._rotation = query_rotation(index.rotation)
        self._filters: dict[Where, np.ndarray] = {}
        self._times: FileTimes | None = None

    def selected(self, where: Where) -> np.ndarray:
        """The sorted chunk ids a filter keeps, worked out once per filter (the generation does not change); a time
        filter's bounds move with the clock ("2d"), so its part is compared afresh, over arrays kept once."""
        if where.by_time:
            untimed = dataclasses.replace(where, changed_after=None, changed_before=None)
            if self._times is None:
                self._times = FileTimes.of(self.index.files())
            return among(self._times.ids(where), self.selected(untimed) if untimed else self.index.ids)
        if where not in self._filters:
            if len(self._filters) > 64:
                self._filters.clear()
            self._filters[where] = selected_ids(self.index, where)
        return self._filters[where]

    def close(self) -> None:
        """Nothing: the generation is the Searcher's to close."""

    def search(self, xq, texts, k, shortlist, mode, weight, where):
        """(D, I, found, records): see backends.Backend; the records of the ids found, from the generation."""
        D, I, found = self._search(xq, texts, k, shortlist, mode, weight, where)
        return D, I, found, _Records(self.index, I)

    def _search(self, xq, texts, k, shortlist, mode, weight, where):
        """(D, I, found).

        A filter becomes the sorted ids of the chunks it keeps (a file's chunks have one id range): the coarse FAISS
        search takes them as an id selector and the lexical search as a required id clause, so a filter that keeps
        0.1% of the index still yields k hits whenever k chunks match."""
        n = len(texts) if xq is None else len(xq)
        allowed = self.selected(where) if where else None
        # Nothing is allocated for more results than the index (or the filter) holds (-k 100000000 on 31 chunks).
        total = len(self.index) if allowed is None else len(allowed)
        k, shortlist = min(k, total), min(max(shortlist, k), total)
        if k == 0:
            return np.empty((n, 0), np.float32), np.empty((n, 0), np.int64), [(-1, -1.0)] * n
        if mode == "hybrid" and self.lexical is None:
            mode = "dense"
        if mode == "lexical":
            if self.lexical is None:
                raise IndexFormatError(
                    f"the index at {self.index.index_dir} has no usable lexical side; "
                    "re-run `searcher index` on it to build one"
                )
            return self._lexical_only(texts, k, allowed)
        xq = rotated(xq, self._rotation)
        coarse_dim = self.manifest.projection.coarse_dim
        if mode == "coarse":
            D, I = self._coarse_search(coarse_vectors(xq, coarse_dim), k, allowed)
        elif mode == "full":
            D, I = self._exact(xq, k, allowed)
        else:
            depth = min(max(k, FUSION_DEPTH), total) if mode == "hybrid" else k
            _, candidates = self._coarse_search(coarse_vectors(xq, coarse_dim), max(shortlist, depth), allowed)
            D, I = self._rerank(xq, candidates, depth)
            if mode == "hybrid":
                return self._fuse(xq, texts, D, I, k, weight, allowed)
        return D, I, [(-1, float(D[i, 0])) for i in range(n)]  # -1: the lexical side was not asked

    def doc_freqs(self, words: list[str]) -> tuple[int, list[int]] | None:
        """(chunks, chunks holding each analysed word) from the lexical index (backends.Backend)."""
        if self.lexical is None:
            return None
        return len(self.lexical), [self.lexical.doc_freq(w) for w in words]

    def cosines(self, q: np.ndarray, ids: np.ndarray) -> np.ndarray:
        """Full-vector scores of these chunk ids with one normalised query vector (backends.Backend)."""
        q = rotated(q[None], self._rotation)[0]
        order = np.argsort(ids)
        out = np.empty(len(ids), np.float64)
        rows = self.index.rows_of(ids[order])
        out[order] = vectors.scores(self.index.full, rows, np.ascontiguousarray(q, np.float32))
        return out

    def _coarse_search(self, x: np.ndarray, k: int, allowed: np.ndarray | None):
        """The coarse FAISS search (coarse.py), restricted to the filter's ids by a selector inside the search.
        An IVF visits some cells only, so a selective filter can leave fewer than k there: those queries are
        answered by an exact search of the allowed chunks' coarse vectors instead (the filter made them few)."""
        D, I = coarse.search(self._coarse, x, k, allowed, coarse.nprobe_for(self.manifest.coarse, k, len(self.index)))
        if allowed is not None and self.manifest.coarse.get("kind") == "ivf":
            short = np.flatnonzero((I >= 0).sum(axis=1) < min(k, len(allowed)))
            if len(short):
                rows = self.index.rows_of(allowed)
                xb = coarse_vectors(np.asarray(self.index.full[rows]), x.shape[1])
                D[short], I[short] = exact_top_k(x[short], [(xb, allowed)], k)
        return D, I

    def _lexical_only(self, texts, k, allowed):
        D = np.full((len(texts), k), -np.inf, dtype=np.float32)
        I = np.full((len(texts), k), -1, dtype=np.int64)
        found = []
        for i, text in enumerate(texts):
            scores, ids = self.lexical.search(text, k, allowed)
            D[i, : len(ids)], I[i, : len(ids)] = scores, ids
            found.append((len(ids), -1.0))
        return D, I, found

    def _fuse(self, xq, texts, Dd, Id, k, weight, allowed):
        """Fuse each query's dense candidates (D, I) with its lexical top hits; lexical-only candidates get their
        dense score from the full vectors."""
        n, depth = Id.shape
        D = np.full((n, k), -np.inf, dtype=np.float32)
        I = np.full((n, k), -1, dtype=np.int64)
        found = []
        for i in range(n):
            valid = Id[i] >= 0
            dense_ids, dense_scores = Id[i][valid], Dd[i][valid]
            _, lex_ids = self.lexical.search(texts[i], depth, allowed)
            found.append((len(lex_ids), float(dense_scores[0]) if len(dense_scores) else -1.0))
            scores, ids = fuse_sides(
                dense_ids,
                dense_scores,
                lex_ids,
                weight,
                k,
                # ascending ids, ascending rows: one sweep through the memory map
                lambda extra, q=xq[i]: vectors.scores(self.index.full, self.index.rows_of(extra), q),
                lambda ids, text=texts[i]: self.lexical.coverage(text, ids),
            )
            D[i, : len(ids)], I[i, : len(ids)] = scores, ids
        return D, I, found

    def _rerank(self, xq: np.ndarray, candidates: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Score each query's candidate ids with the full vectors and keep the best k.

        Both two-stage and exact search end here, so the same chunk gets the same score (to BLAS's rounding, which
        can differ by an ulp with the set of rows scored) and ties (duplicate chunks) are broken by the smaller id.
        """
        n = len(xq)
        D = np.full((n, k), -np.inf, dtype=np.float32)
        I = np.full((n, k), -1, dtype=np.int64)
        for i in range(n):
            ids = candidates[i][candidates[i] >= 0]
            rows = self.index.rows_of(np.sort(ids))  # ascending ids, ascending rows: one sweep of each memory map
            scores = self._scores(rows, xq[i])
            top = np.lexsort((self.index.ids[rows], -scores))[:k]
            D[i, : len(top)] = scores[top]
            I[i, : len(top)] = self.index.ids[rows[top]]
        return D, I

    def _scores(self, rows: np.ndarray, q: np.ndarray) -> np.ndarray:
        """Full-vector scores of sorted `rows` for one query; a long list is split over the cores
        (SPLIT_RERANK_ROWS)."""
        pool = _rerank_pool() if len(rows) >= SPLIT_RERANK_ROWS else None
        if pool is None:
            return vectors.scores(self.index.full, rows, q)
        parts = np.array_split(rows, pool[1])
        return np.concatenate(list(pool[0].map(lambda part: vectors.scores(self.index.full, part, q), parts)))

    def _exact(self, xq: np.ndarray, k: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Exact top k over all full vectors, a block at a time (the full vectors need not fit in RAM)."""
        # subtle: keep a few more than k from the blockwise matmul, whose rounding differs from _rerank's, so
        # that ties at the k-th place are settled by _rerank like in two-stage search.
        if allowed is not None:
            rows = self.index.rows_of(allowed)
            keep = min(len(rows), 2 * k + 8)
            blocks = (
                (np.asarray(self.index.full[rows[a : a + EXACT_BLOCK]]), allowed[a : a + EXACT_BLOCK])
                for a in range(0, len(rows), EXACT_BLOCK)
            )
            _, candidates = exact_top_k(xq, blocks, keep)
            return self._rerank(xq, candidates, k)
        keep = min(len(self.index), 2 * k + 8)
        blocks = (
            (np.asarray(self.index.full[a : a + EXACT_BLOCK]), np.asarray(self.index.ids[a : a + EXACT_BLOCK]))
            for a in range(0, len(self.index), EXACT_BLOCK)
        )
        _, candidates = exact_top_k(xq, blocks, keep)
        return self._rerank(xq, candidates, k)


class _Records(Mapping):
    """{chunk id: record} of the ids a search found, read from the generation on first use (a caller that wants
    only ids and scores, as the evaluation does, reads none)."""

    def __init__(self, index: StoredIndex, I: np.ndarray) -> None:
        self._index, self._ids = index, I[I >= 0]
        self._data: dict[int, dict] | None = None

    def _load(self) -> dict[int, dict]:
        if self._data is None:
            ids = np.unique(self._ids)
            self._data = {r["id"]: r for r in self._index.chunks(self._index.rows_of(ids))} if len(ids) else {}
        return self._data

    def __getitem__(self, chunk_id: int) -> dict:
        return self._load()[chunk_id]

    def __iter__(self):
        return iter(self._load())

    def __len__(self) -> int:
        return len(self._load())
