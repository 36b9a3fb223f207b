"""Searcher: query -> coarse shortlist (64-dim FAISS index in RAM) -> rerank with full vectors -> hits.

The rerank reads only the shortlisted rows of the memory-mapped full vectors, so the full vectors never need
to fit in RAM. `mode="full"` (exact search over all full vectors) and `mode="coarse"` (the shortlist index
alone) exist to measure what the two stages buy. `search_vectors` is the arrays-in, (D, I)-out core that
the evaluation code uses too; `search` and `search_batch` add query encoding and chunk metadata.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .config import DEFAULT_INDEX_DIR, DEFAULT_K, DEFAULT_SHORTLIST, check_search_args
from .encoder import Encoder, load_encoder, normalize_rows, resolve_model
from .errors import InvalidInputError, ModelError
from .projection import coarse_vectors
from .store import open_index

log = logging.getLogger(__name__)
EXACT_BLOCK = 65_536  # rows of full vectors scored at a time by exact search


@dataclass(frozen=True)
class Hit:
    id: int  # chunk id, stable across incremental updates
    score: float  # cosine similarity with the full vectors (coarse vectors in mode="coarse")
    doc_id: str
    title: str
    source: str  # the file the chunk came from
    text: str  # the chunk's text
    start: int  # character offsets of the chunk in its document's extracted text
    end: int


class Searcher:
    """Queries one index. `model` (a name or path) or `encoder` override the model recorded in the index;
    either must embed like that model, or every query raises ModelError."""

    def __init__(
        self, index_dir: Path | str = DEFAULT_INDEX_DIR, *, model: str | None = None, encoder: Encoder | None = None
    ) -> None:
        self.index = open_index(index_dir)
        self.manifest = self.index.manifest
        self._coarse = self.index.load_coarse()
        self._model = None if model is None or resolve_model(model)[0] == self.manifest.model.name else model
        self._encoder = encoder
        self._checked = False
        self.notices: list[str] = []  # things the user should know (the CLI prints them on stderr)

    def __enter__(self) -> Searcher:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.index.close()

    @property
    def encoder(self) -> Encoder:
        """The query encoder, loaded on first use and checked against the model that built the index."""
        if self._encoder is None and self._model is None and self.manifest.query_encoder:
            try:
                from .onnx_encoder import OnnxEncoder

                self._encoder = OnnxEncoder(self.index.index_dir / self.manifest.query_encoder)
            except Exception as e:  # noqa: BLE001 - a broken export must not stop queries: torch still works
                log.warning("exported query encoder unusable (%s); loading the model with torch", e)
        if self._encoder is None:
            if self._model is None:
                self.notices.append(
                    "this index has no usable torch-free query encoder, so the model loads with torch (slower); "
                    "re-run `searcher index` on it to export one"
                )
            self._encoder = load_encoder(self._model or self.manifest.model.name)
        if not self._checked:
            built_with = self.manifest.model
            got = self._encoder.info
            if not got.same_weights(built_with):
                same_name = got.name == built_with.name
                raise ModelError(
                    f"model {got.name!r} {'has changed since it built' if same_name else 'did not build'} the "
                    f"index at {self.index.index_dir} (built with {built_with.name!r}); query with that model or "
                    "rebuild the index with `searcher index DIR --rebuild`"
                )
            self._checked = True
        return self._encoder

    def search(
        self, query: str, *, k: int = DEFAULT_K, shortlist: int = DEFAULT_SHORTLIST, mode: str = "two-stage"
    ) -> list[Hit]:
        """The top `k` chunks for one query, best first."""
        return self.search_batch([query], k=k, shortlist=shortlist, mode=mode)[0]

    def search_batch(
        self, queries: list[str], *, k: int = DEFAULT_K, shortlist: int = DEFAULT_SHORTLIST, mode: str = "two-stage"
    ) -> list[list[Hit]]:
        """`search` for many queries at once (one encoder call, one coarse search)."""
        check_search_args(k=k, shortlist=shortlist, mode=mode)
        if not queries:
            return []
        for query in queries:
            check_query(query)
        xq = self.encoder.encode_queries(list(queries))
        D, I = self.search_vectors(xq, k=k, shortlist=shortlist, mode=mode)
        return [self._hits(D[i], I[i]) for i in range(len(queries))]

    def search_vectors(
        self, xq: np.ndarray, *, k: int = DEFAULT_K, shortlist: int = DEFAULT_SHORTLIST, mode: str = "two-stage"
    ) -> tuple[np.ndarray, np.ndarray]:
        """(D, I) of shape (n, min(k, chunks)): scores and chunk ids of the top k for each query vector, best first.

        xq: (n, dim) query embeddings in the model's own frame. Missing results are padded with -inf / -1.
        """
        check_search_args(k=k, shortlist=shortlist, mode=mode)
        n, d = xq.shape
        if d != self.manifest.model.dim:
            raise InvalidInputError(f"query vectors have {d} dims, the index's model {self.manifest.model.dim}")
        # Nothing is allocated for more results than the index holds (-k 100000000 on 31 chunks).
        total = len(self.index)
        k, shortlist = min(k, total), min(max(shortlist, k), total)
        if k == 0:
            return np.empty((n, 0), np.float32), np.empty((n, 0), np.int64)
        xq = normalize_rows(xq)
        if self.index.rotation is not None:
            xq = np.ascontiguousarray(xq @ self.index.rotation)
        coarse_dim = self.manifest.projection.coarse_dim
        with query_threads(n):
            if mode == "coarse":
                return self._coarse.search(coarse_vectors(xq, coarse_dim), k)
            if mode == "full":
                return self._exact(xq, k)
            _, candidates = self._coarse.search(coarse_vectors(xq, coarse_dim), shortlist)
            return self._rerank(xq, candidates, k)

    def _rerank(self, xq: np.ndarray, candidates: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Score each query's candidate ids with the full vectors and keep the best k.

        Both two-stage and exact search end here, so the same chunk always gets a bit-identical score and ties
        (duplicate chunks) are broken the same way, by the smaller id.
        """
        n = len(xq)
        D = np.full((n, k), -np.inf, dtype=np.float32)
        I = np.full((n, k), -1, dtype=np.int64)
        for i in range(n):
            ids = candidates[i][candidates[i] >= 0]
            rows = np.sort(self.index.rows_of(ids))  # sorted rows read the memory map in one sweep
            scores = self.index.full[rows] @ xq[i]
            top = np.lexsort((self.index.ids[rows], -scores))[:k]
            D[i, : len(top)] = scores[top]
            I[i, : len(top)] = self.index.ids[rows[top]]
        return D, I

    def _exact(self, xq: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Exact top k over all full vectors, a block at a time (the full vectors need not fit in RAM)."""
        # subtle: keep a few more than k from the blockwise matmul, whose rounding differs from _rerank's, so
        # that ties at the k-th place are settled by _rerank like in two-stage search.
        keep = min(len(self.index), 2 * k + 8)
        blocks = (
            (np.asarray(self.index.full[a : a + EXACT_BLOCK]), np.asarray(self.index.ids[a : a + EXACT_BLOCK]))
            for a in range(0, len(self.index), EXACT_BLOCK)
        )
        _, candidates = exact_top_k(xq, blocks, keep)
        return self._rerank(xq, candidates, k)

    def _hits(self, scores: np.ndarray, ids: np.ndarray) -> list[Hit]:
        valid = ids >= 0
        rows = self.index.rows_of(ids[valid])
        records = self.index.chunks(rows)
        return [
            Hit(
                id=r["id"],
                score=float(s),
                doc_id=r["doc_id"],
                title=r["title"],
                source=r["source"],
                text=r["text"],
                start=r["start"],
                end=r["end"],
            )
            for r, s in zip(records, scores[valid])
        ]


def check_query(query) -> None:
    if not isinstance(query, str) or not query.strip():
        raise InvalidInputError("query is empty; pass some text to search for")
    try:
        query.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInputError("query is not valid UTF-8 text (it holds lone surrogates); pass text") from None


# Up to this many queries are searched on one thread. subtle: a single query gains nothing from a thread team,
# and when the machine is busy, waking idle OpenMP/BLAS threads cost tens of milliseconds a query (a coarse
# search 33.8 ms with FAISS's threads, 0.23 ms on one; benchmarks/RESULTS.md, busy machine).
SINGLE_THREAD_QUERIES = 8
_blas = None


@contextmanager
def query_threads(n_queries: int) -> Iterator[None]:
    """Run FAISS and BLAS on one thread for a small batch of queries, restoring the settings afterwards; large
    batches keep every thread. The user's environment (OMP_NUM_THREADS, ...) is not touched."""
    global _blas
    if n_queries > SINGLE_THREAD_QUERIES:
        yield
        return
    import faiss

    # subtle: the controller knows the libraries loaded when it was made; a later import (torch brings its own
    # BLAS) would escape it, so it is made again when the set of loaded modules has grown (0.2 ms; 0.02 ms to use).
    if _blas is None or _blas[0] != len(sys.modules):
        from threadpoolctl import ThreadpoolController

        _blas = (len(sys.modules), ThreadpoolController())
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        with _blas[1].limit(limits=1, user_api="blas"):
            yield
    finally:
        faiss.omp_set_num_threads(before)


def exact_top_k(xq: np.ndarray, blocks: Iterable[tuple[np.ndarray, np.ndarray]], k: int) -> tuple[np.ndarray, np.ndarray]:
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
