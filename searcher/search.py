"""Searcher: a query -> its vectors -> the index's backend -> hits a person can act on.

The backend (backends/) finds the chunks: locally, a coarse FAISS shortlist reranked with the memory-mapped full
vectors (backends/local.py); or the same funnel inside Qdrant (backends/qdrant.py). Searcher encodes the queries,
checks the model, and makes hits: chunk records, one hit per document (`per_doc`, near-duplicate files folded),
snippets; each backend applies filters inside its own search. `search_vectors` is the arrays-in, (D, I)-out core
that the evaluation code uses too; `search` and `search_batch` add query encoding and chunk metadata.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import calibration
from .backends import open_backend
from .chunking import lexical_text, record_fields
from .config import DEFAULT_K, DEFAULT_MODE, DEFAULT_PER_DOC, DEFAULT_SHORTLIST, FUSION_DEPTH, check_search_args
from .encoder import Encoder, load_encoder, normalize_rows, resolve_model
from .errors import InvalidInputError, ModelError
from .filters import Where
from .hits import NOTHING_RELEVANT, Hit, Hits, _located, _per_document
from .home import resolve as resolve_index
from .ingest import keeps_lines
from .lexical import LexicalIndex
from .machine import query_threads
from .model_info import IDENTITY, CosineMap
from .rerank import DEFAULT_DEPTH, PASSAGE_CHARS, Reranker, check_depth, rerank_order, reranker
from .rerank import rerank as rerank_hits
from .snippets import passages, query_terms, snippet
from .store import open_index
from .syntax import parse, unmet

log = logging.getLogger(__name__)


class Searcher:
    """Queries one index (a name in the per-user home, a path, or None for the default index: home.resolve).
    `model` (a name or path) or `encoder` override the model recorded in the index; either must embed like that
    model, or every query raises ModelError."""

    def __init__(
        self, index_dir: Path | str | None = None, *, model: str | None = None, encoder: Encoder | None = None
    ) -> None:
        self._setup(open_index(resolve_index(index_dir)), model, encoder)

    @classmethod
    def from_collection(
        cls,
        *,
        qdrant_url: str = "",
        qdrant_path: str = "",
        qdrant_collection: str = "searcher",
        model: str | None = None,
        encoder: Encoder | None = None,
    ) -> Searcher:
        """A Searcher over a Qdrant collection that `searcher index --qdrant-url/--qdrant-path` filled, with nothing
        of the indexer's local copy: the manifest (model, projection, chunking) comes from the collection. Path
        filters use the collection's list of files; queries embed with torch (the model must load here)."""
        from .backends.qdrant import RemoteIndex

        self = cls.__new__(cls)
        self._setup(
            RemoteIndex(qdrant_url=qdrant_url, qdrant_path=qdrant_path, qdrant_collection=qdrant_collection),
            model,
            encoder,
        )
        return self

    def _setup(self, index, model: str | None, encoder: Encoder | None) -> None:
        self.index = index
        self.manifest = self.index.manifest
        try:  # where the chunks are searched (backends/): this generation's FAISS files, or its Qdrant mirror
            self.backend = open_backend(self.index)
        except BaseException:
            self.index.close()
            raise
        self._model = None if model is None or resolve_model(model)[0] == self.manifest.model.name else model
        self._encoder = encoder
        self._lexical: LexicalIndex | None | bool = False  # False: not opened yet
        self._analyzer: Any = None  # the lexical analyzer snippets use, built on first use (_analyze)
        self._words: dict[str, tuple[str, ...]] = {}  # analyze()'s memo of short texts
        self._checked = False
        self.notices: list[str] = []  # things the user should know (the CLI prints them on stderr)

    def __enter__(self) -> Searcher:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.backend.close()
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
                    "querying the collection alone: the model loads with torch (slower than a local index's "
                    "exported query encoder)"
                    if getattr(self.index, "remote", False)
                    else "this index has no usable torch-free query encoder, so the model loads with torch (slower); "
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
            if self._lexical is None and not getattr(self.index, "remote", False):
                self.notices.append(
                    "this index has no usable lexical side (made by an older searcher, or damaged), so search is "
                    "dense only; re-run `searcher index` on it to build one"
                )
        return self._lexical if isinstance(self._lexical, LexicalIndex) else None

    def search(
        self,
        query: str,
        k: int = DEFAULT_K,
        *,
        shortlist: int = DEFAULT_SHORTLIST,
        mode: str = DEFAULT_MODE,
        fusion_weight: float | None = None,
        where: Where | None = None,
        min_score: float | None = None,
        per_doc: bool = DEFAULT_PER_DOC,
        rerank: str | Reranker | None = None,
        rerank_depth: int = DEFAULT_DEPTH,
    ) -> Hits:
        """The top `k` chunks (or documents, `per_doc`) for one query, best first (see `search_batch`)."""
        return self.search_batch(
            [query],
            k,
            shortlist=shortlist,
            mode=mode,
            fusion_weight=fusion_weight,
            where=where,
            min_score=min_score,
            per_doc=per_doc,
            rerank=rerank,
            rerank_depth=rerank_depth,
        )[0]

    def search_batch(
        self,
        queries: list[str],
        k: int = DEFAULT_K,
        *,
        shortlist: int = DEFAULT_SHORTLIST,
        mode: str = DEFAULT_MODE,
        fusion_weight: float | None = None,
        where: Where | None = None,
        min_score: float | None = None,
        per_doc: bool = DEFAULT_PER_DOC,
        rerank: str | Reranker | None = None,
        rerank_depth: int = DEFAULT_DEPTH,
    ) -> list[Hits]:
        """`search` for many queries at once (one encoder call, one coarse search).

        A hit's score is the estimated probability that it is relevant, on one scale for every query and mode
        (calibration.py); the order is the mode's ranking. A "quoted phrase" must occur in a hit and a -word or
        -"phrase" must not (syntax.py), in every mode. A query that names identifiers the index holds (`Py_Initialize`,
        `os.path.join`) lists the chunks holding them first (hybrid and lexical). `where` keeps only some files
        (filters.Where: path globs, file types), inside each side's search, so k hits come back whenever k chunks
        match. `min_score` drops hits scored below it. `per_doc` returns one hit per document, its best chunk,
        with the document's next-best chunks in `Hit.more` (those that match on their own: calibration.match_floor,
        and `min_score`). Each result list says `no_match` when its best hit
        scores below calibration.NO_MATCH for its mode, or below a lower `min_score` (or there is none); its hits are
        still there, with their scores.
        """
        mode = check_search_args(k=k, shortlist=shortlist, mode=mode, min_score=min_score, fusion_weight=fusion_weight)
        if not queries:
            return []
        parsed = []
        for query in queries:
            check_query(query)
            parsed.append(self._parse(query))
            if not parsed[-1].text:
                what = "only excludes" if parsed[-1].excluded else "has no word in it"
                raise InvalidInputError(f"query {query!r} {what}; add a word or a phrase to search for")
        fetch = k
        if per_doc:  # enough chunks for k documents (for hybrid, no more than it fuses anyway)
            fetch = max(FUSION_DEPTH, PER_DOC_CHUNKS * k) if mode == "hybrid" else PER_DOC_CHUNKS * k
        xq = None if mode == "lexical" else self.encoder.encode_queries([p.text for p in parsed])
        # Queries with the same phrases and exclusions share a filter (filters.Where), and a backend call.
        groups: dict[tuple, list[int]] = {}
        for i, p in enumerate(parsed):
            groups.setdefault((p.phrases, p.excluded), []).append(i)
        second = reranker(rerank) if rerank is not None else None
        keep = max(k, rerank_depth) if second is not None else k
        # each query's hits in order: its chunks, or its documents (per_doc), folded here once, which also answers
        # whether it has k documents yet
        ranked: list[list[Hit]] = [[] for _ in queries]
        for (phrases, excluded), members in groups.items():
            scope = dataclasses.replace(where or Where(), phrases=phrases, excluded=excluded)
            depth = fetch
            while members:
                D, I, _, records = self._search(
                    None if xq is None else xq[members],
                    [queries[i] for i in members],
                    depth,
                    shortlist,
                    mode,
                    fusion_weight,
                    scope,
                )
                for row, i in enumerate(members):
                    ranked[i] = self._hits(D[row], I[row], records)
                    if mode in ("hybrid", "lexical"):
                        ranked[i] = self._names_first(ranked[i], parsed[i].words)
                    if per_doc:
                        ranked[i] = _per_document(ranked[i], keep)
                # per_doc: a query whose chunks came from fewer than k documents, with more chunks to be had, asks
                # again for more (a few long documents can fill any fixed pool of chunks)
                if not per_doc or depth >= min(MAX_FETCH, self.manifest.chunks):
                    break
                members = [i for row, i in enumerate(members) if (I[row] >= 0).sum() >= depth and len(ranked[i]) < k]
                depth = min(depth * 4, MAX_FETCH)
        out = []
        for i in range(len(queries)):
            hits = self._calibrated(ranked[i][:keep], mode, parsed[i], None if xq is None else xq[i], min_score)
            # a --min-score below the no-match floor is the user's own bar for what matches
            floor = calibration.NO_MATCH[calibration.kind(mode)]
            no_match = not hits or hits[0].score < (floor if min_score is None else min(floor, min_score))
            terms = query_terms(parsed[i].text, self.analyze)
            if second is not None:  # rerank.py: the cross-encoder orders the first rerank_depth hits
                hits = rerank_hits(second, queries[i], hits, rerank_depth, lambda h, t=terms: self._passage(h, t))
            found = Hits(self._with_snippet(h, terms) for h in hits[:k] if min_score is None or h.score >= min_score)
            found.no_match = no_match
            if no_match:
                scoped = where is not None and where.by_file
                found.reason = (not ranked[i] and unmet(parsed[i], scoped=scoped)) or NOTHING_RELEVANT
            out.append(found)
        return out

    def search_vectors(
        self,
        xq: np.ndarray | None,
        *,
        k: int = DEFAULT_K,
        shortlist: int = DEFAULT_SHORTLIST,
        mode: str = "dense",
        texts: list[str] | None = None,
        fusion_weight: float | None = None,
        where: Where | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """(D, I) of shape (n, min(k, chunks)): scores and chunk ids of the top k for each query, best first.

        xq: (n, dim) query embeddings in the model's own frame; `texts`, the queries themselves, are needed by the
        `hybrid` and `lexical` modes (which may pass xq=None). Missing results are padded with -inf / -1.
        """
        mode = check_search_args(k=k, shortlist=shortlist, mode=mode, fusion_weight=fusion_weight)
        if mode in ("hybrid", "lexical") and texts is None:
            raise InvalidInputError(f"mode {mode!r} needs the query texts: pass texts=[...]")
        D, I, _, _ = self._search(xq, texts, k, shortlist, mode, fusion_weight, where)
        return D, I

    def _search(self, xq, texts, k, shortlist, mode, fusion_weight, where=None):
        """(D, I, [(lexical hits, best dense score)] per query, {id: chunk record} or None to read them from the
        local generation), from the index's backend (backends/), which applies the filter `where` inside its search."""
        n = len(texts) if xq is None else len(xq)
        if xq is not None and xq.shape[1] != self.manifest.model.dim:
            raise InvalidInputError(
                f"query vectors have {xq.shape[1]} dims, the index's model {self.manifest.model.dim}"
            )
        if mode in ("hybrid", "lexical"):
            self.lexical  # noqa: B018 - opened for its notice when the index has no usable lexical side
        weight = self.manifest.config.fusion_weight if fusion_weight is None else fusion_weight
        weight = self.cosine_map.weight(weight)  # the weight is for cosines on the calibration's scale
        with query_threads(n):
            return self.backend.search(
                None if xq is None else normalize_rows(xq), texts, k, shortlist, mode, weight, where or None
            )

    def analyze(self, text: str) -> Sequence[str]:
        """Words as the index's lexical side analyses them (its own analyzer; built here from
        config.lexical_tokenizer when an index has no usable lexical side, or a collection-only client, so that they
        have words too)."""
        if self._analyzer is None:
            lexical = self.index.open_lexical()  # (opened once per generation; no notice: a dense query needs none)
            if lexical is not None:
                self._analyzer = lexical.analyzer
            else:
                from .lexical import analyzer

                self._analyzer = analyzer(self.manifest.config.lexical_tokenizer)
        if len(text) > WORD_MEMO_CHARS:
            return self._analyzer.analyze(text)
        # A snippet's highlights analyse each word it shows, and the same words come back query after query.
        words = self._words.get(text)
        if words is None:
            if len(self._words) >= WORD_MEMO_SIZE:
                self._words.clear()
            words = self._words[text] = tuple(self._analyzer.analyze(text))
        return words

    def _parse(self, query: str):
        """The query's syntax (syntax.parse); a -word it would leave out is asked of the lexical side, which reads a
        flag the index holds (`ls -la`) as a word."""
        parsed = parse(query)
        if parsed.excluded and self.lexical is not None:
            parsed = self.lexical.parse(query)
        return parsed

    def _names_first(self, hits: list[Hit], words: str) -> list[Hit]:
        """The hits holding every identifier of the query that the index knows first, each group in its order."""
        lexical = self.lexical
        if lexical is None or not hits:
            return hits
        names = lexical.names(words)
        if not names:
            return hits
        holds = lexical.holding(names, np.array([h.id for h in hits], np.int64))
        return [h for h, y in zip(hits, holds) if y] + [h for h, y in zip(hits, holds) if not y]

    def _calibrated(
        self, hits: list[Hit], mode: str, query, q: np.ndarray | None, min_score: float | None = None
    ) -> list[Hit]:
        """The hits (and the chunks folded under them) scored by calibration.probability, capped by the hit above;
        of the folded chunks, those that match on their own (calibration.match_floor, and `min_score`)."""
        kind = calibration.kind(mode)
        flat = [h for hit in hits for h in (hit, *hit.more)]
        if not flat:
            return hits
        cosines = np.zeros(len(flat))
        if kind == "hybrid" and q is not None:
            cosines = self.cosines(q, [h.id for h in flat])
        elif kind == "dense":
            cosines = np.array([h.score for h in flat])
        coverages = np.zeros(len(flat))
        if kind != "dense":
            words = " ".join([query.words, *query.phrases])
            if self.lexical is not None:  # from the postings, as the fusion ranked with (LexicalIndex.coverage)
                coverages = self.lexical.coverage(words, np.array([h.id for h in flat], np.int64))
            else:
                coverages = self.coverages(words, [lexical_text(h.title, h.heading, h.text) for h in flat])
        p = calibration.probability(mode, self.cosine_map(cosines), coverages).tolist()
        rescored = {
            id(h): h.replace(
                score=p[j],
                rank_score=h.score,
                cosine=float(cosines[j]) if kind != "lexical" else None,
                coverage=float(coverages[j]) if kind != "dense" else None,
            )
            for j, h in enumerate(flat)
        }
        top = calibration.monotone([rescored[id(h)].score for h in hits])
        # A document's other places are those that match on their own: a chunk the fusion fetched only because one
        # side's top 100 reached it (probability ~0.001) is no place a reader should be sent to.
        floor = max(calibration.match_floor(mode) or 0.0, min_score or 0.0)
        return [
            rescored[id(h)].replace(
                score=s, more=tuple(rescored[id(m)] for m in h.more if rescored[id(m)].score >= floor)
            )
            for h, s in zip(hits, top)
        ]

    def coverages(self, query: str, texts: list[str]) -> np.ndarray:
        """The lexical evidence of the hybrid score (calibration.coverage) for any texts against a query: the
        IDF-weighted share of the query's words each text holds, with this index's IDFs. Label-free fine-tuning
        (labelfree.py) scores passages that are not in the index with it."""
        weights = self.word_weights(query)
        return np.array([calibration.coverage(weights, self.analyze(t)) for t in texts], np.float64)

    @property
    def cosine_map(self) -> CosineMap:
        """The index model's cosines on the calibration's scale (identity for the reference model)."""
        return self.manifest.cosine_map or IDENTITY

    def cosines(self, q: np.ndarray, ids: list[int]) -> np.ndarray:
        """Full-vector cosines of chunks with one query vector: from the backend (the local generation's vectors)."""
        return self.backend.cosines(normalize_rows(q[None])[0], np.asarray(ids, np.int64))

    def word_weights(self, text: str) -> dict[str, float]:
        """IDF of each of the query's words in this index, as the backend counts them (uniform when it cannot)."""
        words = list(
            dict.fromkeys(self.lexical.words(text) if self.lexical is not None else query_terms(text, self.analyze))
        )
        counts = self.backend.doc_freqs(words)
        if counts is None:
            return dict.fromkeys(words, 1.0)
        docs, freqs = counts
        return {t: calibration.idf(df, docs) for t, df in zip(words, freqs)}

    def passage(self, hit: Hit, query: str) -> str:
        """What a reranker reads of `hit` for `query` (rerank_train.py trains one on the same)."""
        return self._passage(hit, query_terms(self._parse(query).text, self.analyze))

    def _passage(self, hit: Hit, terms: set[str]) -> str:
        """The part of a hit a reranker reads: the sentences around its matching ones, up to PASSAGE_CHARS."""
        _, (a, b) = passages(hit.text, terms, self.analyze, PASSAGE_CHARS)
        return hit.text[a:b]

    def _with_snippet(self, hit: Hit, terms: set[str]) -> Hit:
        """The hit (and the chunks folded under it) with the passage that matches the query's terms, and the line,
        heading, anchor and page of that passage rather than of the chunk's start: computed for the hits returned
        only, not every chunk fetched to fill them (half a per-document query's time otherwise)."""
        (core, _), (a, b) = passages(hit.text, terms, self.analyze)  # the line points at the matching sentences
        text, marks = snippet(hit.text, terms, self.analyze, span=(a, b), keep_lines=keeps_lines(hit.source))
        hit = hit.replace(snippet=text, highlights=tuple(marks), **_located(hit, core, b))
        # Each other place once, and not the hit's own: overlapping chunks can match with the same sentences.
        places, more = {(hit.line, hit.page)}, []
        for m in (self._with_snippet(m, terms) for m in hit.more):
            if (m.line, m.page) not in places:
                places.add((m.line, m.page))
                more.append(m)
        return hit.replace(more=tuple(more))

    def _hits(self, scores: np.ndarray, ids: np.ndarray, records: Mapping[int, dict]) -> list[Hit]:
        """Hits from a backend's ids and scores, with the records it returned."""
        valid = ids >= 0
        rows = [records[int(i)] for i in ids[valid]]
        return [Hit(id=r["id"], score=float(s), **record_fields(r)) for r, s in zip(rows, scores[valid])]


def search_many(searchers: list[Searcher], queries: list[str], k: int = DEFAULT_K, **options) -> list[Hits]:
    """`Searcher.search_batch` over several indexes at once: each index's hits, merged by score (scores are
    calibrated probabilities, comparable between indexes of the bundled model), the best k kept. With a reranker,
    the merged list's first `rerank_depth` hits are re-scored together (its blend standardises over the hits it
    orders, so each index's list alone would not compare). A query has no match when it has none in any index."""
    rerank, depth = options.pop("rerank", None), check_depth(options.pop("rerank_depth", DEFAULT_DEPTH))
    second = reranker(rerank) if rerank is not None else None
    min_score = options.pop("min_score", None) if second is not None else None  # kept: applied after the rerank
    fetch = max(k, depth) if second is not None else k
    per_index = [s.search_batch(queries, fetch, **options) for s in searchers]
    out = []
    for i, query in enumerate(queries):
        ranked = sorted(((h, j) for j, results in enumerate(per_index) for h in results[i]), key=lambda x: -x[0].score)
        if second is not None:  # each hit read as its own index reads it (Searcher.passage)
            head = ranked[:depth]
            passages = [searchers[j].passage(h, query) for h, j in head]
            order, scores = rerank_order(second, query, [h for h, _ in head], passages)
            head = [(head[p][0].replace(rerank_score=float(scores[p])), head[p][1]) for p in order]
            ranked = [(h, j) for h, j in head + ranked[depth:] if min_score is None or h.score >= min_score]
        merged = Hits(h for h, _ in ranked[:k])
        merged.no_match = all(results[i].no_match for results in per_index)
        if merged.no_match:  # the indexes' one reason, if they agree
            reasons = {results[i].reason for results in per_index}
            merged.reason = reasons.pop() if len(reasons) == 1 else NOTHING_RELEVANT
        merged.origins = tuple(j for _, j in ranked[:k])  # which of `searchers` each hit came from
        out.append(merged)
    return out


WORD_MEMO_CHARS = 32  # Searcher.analyze remembers texts up to this long (words), at most WORD_MEMO_SIZE of them
WORD_MEMO_SIZE = 100_000
PER_DOC_CHUNKS = 5  # chunks fetched per document asked for, when grouping by document (at first: see MAX_FETCH)
MAX_FETCH = 50_000  # chunks a per-document search may fetch, deepening by 4x while it has fewer than k documents


def check_query(query) -> None:
    if not isinstance(query, str) or not query.strip():
        raise InvalidInputError("query is empty; pass some text to search for")
    try:
        query.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInputError("query is not valid UTF-8 text (it holds lone surrogates); pass text") from None
