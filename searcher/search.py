"""Searcher: query -> coarse shortlist (64-dim FAISS index in RAM) -> rerank with full vectors -> hits.

The rerank reads only the shortlisted rows of the memory-mapped full vectors, so the full vectors never need
to fit in RAM. `mode="full"` (exact search over all full vectors) and `mode="coarse"` (the shortlist index
alone) exist to measure what the two stages buy. `search_vectors` is the arrays-in, (D, I)-out core that
the evaluation code uses too; `search` and `search_batch` add query encoding and chunk metadata.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import sys
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .config import DEFAULT_K, DEFAULT_MODE, DEFAULT_SHORTLIST, FUSION_DEPTH, check_search_args
from .encoder import Encoder, load_encoder, normalize_rows, resolve_model
from .errors import IndexFormatError, InvalidInputError, ModelError
from . import coarse
from .backends import open_backend
from .filters import Where, selected_ids
from .fusion import adaptive_weight, fuse
from .home import resolve as resolve_index
from .lexical import LexicalIndex
from .projection import coarse_vectors
from .snippets import query_terms, snippet
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
    line: int = 0  # 1-based lines of the source file where the chunk starts and ends (0: unknown, older index)
    end_line: int = 0
    heading: str = ""  # section heading path: "Errors > ERR_REQUIRE_ESM"
    anchor: str = ""  # HTML: id of the nearest element with one (open source#anchor)
    page: int = 0  # PDF: the page the chunk starts on
    snippet: str = ""  # the passage of the chunk that holds most of the query's words (snippets.py)
    highlights: tuple[tuple[int, int], ...] = ()  # (start, end) of the query's words in the snippet
    more: tuple[Hit, ...] = ()  # per_doc: the document's next-best chunks, best first
    duplicates: tuple[str, ...] = ()  # per_doc: files whose best chunk says the same (the page as .md and .html)


# Below this best dense score, and with no word of the query in the index, a query has no match (measured for the
# bundled model on the given sets: benchmarks/RESULTS.md, hybrid section).
NO_MATCH_SCORE = 0.35


class Hits(list):
    """The hits of one query, best first; `no_match` is True when nothing in the index is close to the query
    (the hits are still there, with their scores)."""

    no_match: bool = False


class Searcher:
    """Queries one index (a name in the per-user home, a path, or None for the default index: home.resolve).
    `model` (a name or path) or `encoder` override the model recorded in the index; either must embed like that
    model, or every query raises ModelError."""

    def __init__(
        self, index_dir: Path | str | None = None, *, model: str | None = None, encoder: Encoder | None = None
    ) -> None:
        self.index = open_index(resolve_index(index_dir))
        self.manifest = self.index.manifest
        # backends/: an index mirrored into Qdrant is searched there; its local generation serves the file table
        try:
            self.backend = open_backend(self.manifest.config)
        except BaseException:
            self.index.close()
            raise
        self._coarse = self.index.load_coarse() if self.backend is None else None
        self._model = None if model is None or resolve_model(model)[0] == self.manifest.model.name else model
        self._encoder = encoder
        self._lexical: LexicalIndex | None | bool = False  # False: not opened yet
        self._filters: dict[Where, np.ndarray] = {}
        self._checked = False
        self.notices: list[str] = []  # things the user should know (the CLI prints them on stderr)

    def __enter__(self) -> Searcher:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.index.close()
        if self.backend is not None:
            self.backend.close()

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

    @property
    def lexical(self) -> LexicalIndex | None:
        """The lexical index of this generation, or None (with a notice) when the index has no usable one."""
        if self._lexical is False:
            self._lexical = self.index.open_lexical()
            if self._lexical is None:
                self.notices.append(
                    "this index has no usable lexical side (made by an older searcher, or damaged), so search is "
                    "dense only; re-run `searcher index` on it to build one"
                )
        return self._lexical

    def search(
        self, query: str, k: int = DEFAULT_K, *, shortlist: int = DEFAULT_SHORTLIST, mode: str = DEFAULT_MODE,
        fusion_weight: float | None = None, where: Where | None = None, min_score: float | None = None,
        per_doc: bool = False,
    ) -> Hits:
        """The top `k` chunks (or documents, `per_doc`) for one query, best first (see `search_batch`)."""
        return self.search_batch([query], k, shortlist=shortlist, mode=mode, fusion_weight=fusion_weight,
                                 where=where, min_score=min_score, per_doc=per_doc)[0]

    def search_batch(
        self, queries: list[str], k: int = DEFAULT_K, *, shortlist: int = DEFAULT_SHORTLIST, mode: str = DEFAULT_MODE,
        fusion_weight: float | None = None, where: Where | None = None, min_score: float | None = None,
        per_doc: bool = False,
    ) -> list[Hits]:
        """`search` for many queries at once (one encoder call, one coarse search).

        Scores are the fused score in [0, 1] for `hybrid`, BM25 for `lexical`, cosine similarity otherwise.
        `where` keeps only some files (filters.Where: path globs, file types), inside each side's search, so k hits
        come back whenever k chunks match. `min_score` drops weaker hits. `per_doc` returns one hit per document,
        its best chunk, with the document's next-best chunks in `Hit.more`. Each result list says `no_match` when
        neither side found anything close: no word of the query occurs in the index and (hybrid) the best dense
        score is below NO_MATCH_SCORE. Modes that do not ask the lexical side never say `no_match`: without it, a
        low dense score alone does not tell.
        """
        mode = check_search_args(k=k, shortlist=shortlist, mode=mode)
        if not queries:
            return []
        for query in queries:
            check_query(query)
        allowed = self._selected(where)
        fetch = k
        if per_doc:  # enough chunks for k documents (for hybrid, no more than it fuses anyway)
            fetch = max(FUSION_DEPTH, PER_DOC_CHUNKS * k) if mode == "hybrid" else PER_DOC_CHUNKS * k
        xq = None if mode == "lexical" else self.encoder.encode_queries(list(queries))
        D, I, found, records = self._search(xq, list(queries), fetch, shortlist, mode, fusion_weight, allowed)
        out = []
        for i in range(len(queries)):
            hits = self._hits(D[i], I[i], records)
            if per_doc:
                hits = _per_document(hits, k)
            terms = query_terms(queries[i], self._analyze)
            hits = Hits(self._with_snippet(h, terms) for h in hits[:k] if min_score is None or h.score >= min_score)
            hits.no_match = found[i][0] == 0 and found[i][1] < NO_MATCH_SCORE
            out.append(hits)
        return out

    def search_vectors(
        self, xq: np.ndarray | None, *, k: int = DEFAULT_K, shortlist: int = DEFAULT_SHORTLIST,
        mode: str = "dense", texts: list[str] | None = None, fusion_weight: float | None = None,
        where: Where | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """(D, I) of shape (n, min(k, chunks)): scores and chunk ids of the top k for each query, best first.

        xq: (n, dim) query embeddings in the model's own frame; `texts`, the queries themselves, are needed by the
        `hybrid` and `lexical` modes (which may pass xq=None). Missing results are padded with -inf / -1.
        """
        mode = check_search_args(k=k, shortlist=shortlist, mode=mode)
        if mode in ("hybrid", "lexical") and texts is None:
            raise InvalidInputError(f"mode {mode!r} needs the query texts: pass texts=[...]")
        D, I, _, _ = self._search(xq, texts, k, shortlist, mode, fusion_weight, self._selected(where))
        return D, I

    def _search(self, xq, texts, k, shortlist, mode, fusion_weight, allowed=None):
        """(D, I, [(lexical hits, best dense score)] per query, {id: chunk record} or None to read them from the
        local generation); `allowed`: sorted chunk ids a filter keeps."""
        n = len(texts) if xq is None else len(xq)
        if xq is not None and xq.shape[1] != self.manifest.model.dim:
            raise InvalidInputError(f"query vectors have {xq.shape[1]} dims, the index's model {self.manifest.model.dim}")
        if self.backend is not None:  # it holds its own generation, which it counts (backends/)
            return self._backend_search(xq, texts, k, shortlist, mode, fusion_weight, allowed)
        # Nothing is allocated for more results than the index (or the filter) holds (-k 100000000 on 31 chunks).
        total = len(self.index) if allowed is None else len(allowed)
        k, shortlist = min(k, total), min(max(shortlist, k), total)
        if k == 0:
            return np.empty((n, 0), np.float32), np.empty((n, 0), np.int64), [(-1, -1.0)] * n, None
        if mode == "hybrid" and self.lexical is None and self.backend is None:
            mode = "dense"
        if mode == "lexical":
            if self.lexical is None:
                raise IndexFormatError(f"the index at {self.index.index_dir} has no usable lexical side; "
                                       "re-run `searcher index` on it to build one")
            return (*self._lexical_only(texts, k, allowed), None)
        xq = normalize_rows(xq)
        if self.index.rotation is not None:
            xq = np.ascontiguousarray(xq @ self.index.rotation)
        coarse_dim = self.manifest.projection.coarse_dim
        with query_threads(n):
            if mode == "coarse":
                D, I = self._coarse_search(coarse_vectors(xq, coarse_dim), k, allowed)
            elif mode == "full":
                D, I = self._exact(xq, k, allowed)
            else:
                depth = min(max(k, FUSION_DEPTH), total) if mode == "hybrid" else k
                _, candidates = self._coarse_search(coarse_vectors(xq, coarse_dim), max(shortlist, depth), allowed)
                D, I = self._rerank(xq, candidates, depth)
                if mode == "hybrid":
                    weight = self.manifest.config.fusion_weight if fusion_weight is None else fusion_weight
                    return (*self._fuse(xq, texts, D, I, k, weight, allowed), None)
        return D, I, [(-1, float(D[i, 0])) for i in range(n)], None  # -1: the lexical side was not asked

    def _backend_search(self, xq, texts, k, shortlist, mode, fusion_weight, allowed):
        """The same search in the index's backend (backends/): the filter goes as the files it keeps."""
        sources = None
        if allowed is not None and not len(allowed):
            n = len(texts) if xq is None else len(xq)
            return np.empty((n, 0), np.float32), np.empty((n, 0), np.int64), [(-1, -1.0)] * n, {}
        if allowed is not None:
            starts = [(e, np.searchsorted(allowed, e.id_start)) for e in self.index.files()]
            sources = [e.path for e, i in starts if i < len(allowed) and allowed[i] < e.id_end]
        if xq is not None:
            xq = normalize_rows(xq)
            if self.backend.rotation is not None:
                xq = np.ascontiguousarray(xq @ self.backend.rotation)
        weight = self.manifest.config.fusion_weight if fusion_weight is None else fusion_weight
        return self.backend.search(xq, texts, k, shortlist, mode, weight, self.manifest.config.fusion_adaptive,
                                   sources, ())

    def _selected(self, where: Where | None) -> np.ndarray | None:
        """The chunk ids a filter keeps, worked out once per filter and Searcher (the index does not change)."""
        if not where:
            return None
        if where not in self._filters:
            if len(self._filters) > 64:
                self._filters.clear()
            self._filters[where] = selected_ids(self.index, where)
        return self._filters[where]

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
        adaptive = self.manifest.config.fusion_adaptive
        D = np.full((n, k), -np.inf, dtype=np.float32)
        I = np.full((n, k), -1, dtype=np.int64)
        found = []
        for i in range(n):
            valid = Id[i] >= 0
            dense_ids, dense_scores = Id[i][valid], Dd[i][valid]
            lex_scores, lex_ids = self.lexical.search(texts[i], depth, allowed)
            found.append((len(lex_ids), float(dense_scores[0]) if len(dense_scores) else -1.0))
            w = adaptive_weight(weight, dense_scores, lex_scores, FUSION_DEPTH) if adaptive else weight
            extra = np.setdiff1d(lex_ids, dense_ids)
            if len(extra):
                rows = self.index.rows_of(extra)  # ascending, as extra is: one sweep through the memory map
                dense_ids = np.concatenate([dense_ids, extra])
                dense_scores = np.concatenate([dense_scores, self.index.full[rows] @ xq[i]])
            scores, ids = fuse(dense_ids, dense_scores, lex_ids, lex_scores, w, k)
            D[i, : len(ids)], I[i, : len(ids)] = scores, ids
        return D, I, found

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

    def _exact(self, xq: np.ndarray, k: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Exact top k over all full vectors, a block at a time (the full vectors need not fit in RAM)."""
        # subtle: keep a few more than k from the blockwise matmul, whose rounding differs from _rerank's, so
        # that ties at the k-th place are settled by _rerank like in two-stage search.
        if allowed is not None:
            rows = self.index.rows_of(allowed)
            keep = min(len(rows), 2 * k + 8)
            blocks = ((np.asarray(self.index.full[rows[a : a + EXACT_BLOCK]]), allowed[a : a + EXACT_BLOCK])
                      for a in range(0, len(rows), EXACT_BLOCK))
            _, candidates = exact_top_k(xq, blocks, keep)
            return self._rerank(xq, candidates, k)
        keep = min(len(self.index), 2 * k + 8)
        blocks = (
            (np.asarray(self.index.full[a : a + EXACT_BLOCK]), np.asarray(self.index.ids[a : a + EXACT_BLOCK]))
            for a in range(0, len(self.index), EXACT_BLOCK)
        )
        _, candidates = exact_top_k(xq, blocks, keep)
        return self._rerank(xq, candidates, k)

    def _analyze(self, text: str) -> list[str]:
        """The lexical index's analyzer (lowercase words when the index has no lexical side)."""
        if self.lexical is not None:
            return self.lexical.analyzer.analyze(text)
        return [w.lower() for w in re.findall(r"\w+", text)]

    def _with_snippet(self, hit: Hit, terms: set[str]) -> Hit:
        """The hit (and the chunks folded under it) with the passage that matches the query's terms: computed for
        the hits returned only, not every chunk fetched to fill them (half a per-document query's time otherwise)."""
        text, marks = snippet(hit.text, terms, self._analyze)
        more = tuple(self._with_snippet(m, terms) for m in hit.more)
        return dataclasses.replace(hit, snippet=text, highlights=tuple(marks), more=more)

    def _hits(self, scores: np.ndarray, ids: np.ndarray, records: dict[int, dict] | None = None) -> list[Hit]:
        valid = ids >= 0
        if records is not None:  # a backend returned the records with the ids
            records = [records[int(i)] for i in ids[valid]]
        else:
            records = self.index.chunks(self.index.rows_of(ids[valid]))
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
                line=r.get("line", 0),
                end_line=r.get("end_line", 0),
                heading=r.get("heading", ""),
                anchor=r.get("anchor", ""),
                page=r.get("page", 0),
            )
            for r, s in zip(records, scores[valid])
        ]


def hit_record(query: str, rank: int, hit: Hit) -> dict:
    """One hit as a JSON record (`searcher query --format json`, the server, MCP): the query, where it matched,
    the score to 4 places, then the chunk."""
    fields = ("source", "line", "end_line", "page", "title", "heading", "anchor", "snippet", "doc_id", "id", "start",
              "end", "text")
    record = {"query": query, "rank": rank, "score": round(hit.score, 4), **{k: getattr(hit, k) for k in fields}}
    record["highlights"] = [list(span) for span in hit.highlights]
    if hit.duplicates:
        record["duplicates"] = list(hit.duplicates)
    if hit.more:
        record["more"] = [{"score": round(m.score, 4), "line": m.line, "end_line": m.end_line, "heading": m.heading,
                           "snippet": m.snippet, "id": m.id} for m in hit.more]
    return record


PER_DOC_CHUNKS = 5  # chunks fetched per document asked for, when grouping by document


# Two documents whose matching chunks share this share of their words (Jaccard) are shown as one hit. The words of
# all of a document's matching chunks, not its best one alone: the same text as .md and .html is chunked at
# different places.
NEAR_DUPLICATE = 0.8
_WORD = re.compile(r"\w+")


def _per_document(hits: list[Hit], k: int) -> list[Hit]:
    """The first k documents, one hit each, in order of its best chunk; its other chunks folded into `more`. A
    document whose matching chunks say what a better document's say (the same page as .md and .html, a copied
    file) is folded into that hit's `duplicates`."""
    groups: dict[str, list[Hit]] = {}
    for hit in hits:
        groups.setdefault(hit.doc_id, []).append(hit)
    out: list[Hit] = []
    words: list[set[str]] = []
    for best, *rest in groups.values():
        if len(out) == k:
            break
        mine = set(_WORD.findall(" ".join(h.text for h in (best, *rest)).lower()))
        same = next((i for i, w in enumerate(words) if out[i].source != best.source
                     and _jaccard(mine, w) >= NEAR_DUPLICATE), None)  # records of one JSONL file stay apart
        if same is None:
            out.append(dataclasses.replace(best, more=tuple(rest)))
            words.append(mine)
        elif best.source not in out[same].duplicates:
            out[same] = dataclasses.replace(out[same], duplicates=(*out[same].duplicates, best.source))
    return out


def _jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def check_query(query) -> None:
    if not isinstance(query, str) or not query.strip():
        raise InvalidInputError("query is empty; pass some text to search for")
    try:
        query.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInputError("query is not valid UTF-8 text (it holds lone surrogates); pass text") from None


# Up to this many queries are searched on one thread. subtle: on a busy machine, waking idle OpenMP/BLAS threads
# costs milliseconds a query: on SciFact, one thread took two-stage p95 from 4.77 to 0.87 ms with the other core
# loaded, for +0.08 ms p50 idle (RESULTS.md, threads; Intel Xeon with AMX). A large flat scan is what one thread
# cannot carry (1M chunks: 36.8 ms p50, same CPU, RESULTS.md ten million chunks), which is why an index that large
# gets an IVF coarse index (coarse.IVF_MIN_CHUNKS) instead of more threads.
SINGLE_THREAD_QUERIES = 8
_blas = None
_single = threading.Lock()
_blas_state = {"queries": 0, "original": None}  # single-thread queries running now; BLAS settings before the first


@contextmanager
def query_threads(n_queries: int) -> Iterator[None]:
    """Run FAISS and BLAS on one thread for a small batch of queries, restoring the settings afterwards; large
    batches keep every thread. The user's environment (OMP_NUM_THREADS, ...) is not touched.

    subtle: a server runs queries in several threads at once, and thread settings differ in scope: OpenMP's
    (FAISS, an OpenMP build of OpenBLAS) belong to the calling thread, a pthreads OpenBLAS's to the process. Each
    query lowers both for itself; the settings found before the first of overlapping queries are restored when
    the last one leaves (restoring what each query found would leave a process-wide setting lowered for good when
    two overlap)."""
    global _blas
    if n_queries > SINGLE_THREAD_QUERIES:
        yield
        return
    import faiss

    with _single:
        if _blas_state["queries"] == 0:
            # subtle: the controller knows the libraries loaded when it was made; a later import (torch brings its
            # own BLAS) would escape it, so it is made again when the set of loaded modules has grown (0.2 ms).
            if _blas is None or _blas[0] != len(sys.modules):
                from threadpoolctl import ThreadpoolController

                _blas = (len(sys.modules), ThreadpoolController())
            _blas_state["original"] = _blas[1].select(user_api="blas").info()
        _blas_state["queries"] += 1
        controller = _blas[1]
    controller.limit(limits=1, user_api="blas")
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)
        with _single:
            _blas_state["queries"] -= 1
            if _blas_state["queries"] == 0:
                controller.limit(limits=_blas_state["original"])


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
