"""The Qdrant backend: each published generation mirrored into a Qdrant collection, and queries answered there.

A point per chunk, keyed by the chunk id, with two named vectors: `coarse` (the index's coarse vector: the first
coarse_dim dims of the projected full vector) and `full` (the projected full vector; it has no HNSW graph, it only
rescores), and the chunk record as payload, plus `ext`, `lexical` (the text the lexical side indexes: title,
heading and text, as tantivy gets it locally) and the generations that added and retired the point. One request
runs the funnel: a prefetch of `shortlist` points on `coarse`, with the filter applied there, then a main query
that rescores only those on `full`. The lexical side is Qdrant's BM25 text index on `lexical`. Fusion and
per-document grouping stay searcher's own (fusion.py, search.py), so they are the same on every backend.

Two transports behind one interface (qdrant_stores.py): an embedded Edge shard (qdrant-edge-py) and a server or
cluster (qdrant-client).

Readers see one generation whole. A point is visible at generation G when gen_from <= G and not gen_to <= G, and
G is the one in the collection's meta point, which `sync` writes last (readers re-read it every 0.25 s). A sync
upserts the new points with gen_from = G+1, marks removed ones gen_to = G+1, writes the meta, then deletes the
marked points; killed at any step, readers still see G (BM25 statistics aside: hidden points count there until
the next sync), and the next sync first deletes what the killed one left (points with gen_from > G, marks > G,
points retired at or before G). Upserts are keyed by point id, so a retried batch never duplicates. When every
point must be replaced (another model, a refitted projection, a rebuilt index) the new ones get new point ids
(EPOCH_SHIFT), so that too is invisible until published.

Left out: re-sharding and aliases (the cluster's own administration, docs/scale-out.md); the BM25 parameters are
Qdrant's defaults (k1 1.2, b 0.75, as tantivy's).
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson

from ..calibration import idf
from ..config import FUSION_DEPTH, IndexConfig
from ..errors import IndexFormatError, InvalidInputError
from ..filters import FileTimes, Where
from ..fusion import fuse_sides
from ..lexical import analyzer, content_words
from ..projection import coarse_vectors, query_rotation, rotated
from .qdrant_stores import LEXICAL, Found, Scope, connect

# A point's id is its chunk id plus the collection's epoch << EPOCH_SHIFT. The epoch goes up when every point must
# be replaced (another model, a refitted projection, a rebuilt index): the new points then get new ids, so readers
# keep the old ones, whole, until the new generation is published.
EPOCH_SHIFT = 40
META_FORMAT = "searcher-qdrant"
META_VERSION = 1
BATCH = 256  # points per upsert request
# A quantised coarse vector shortlists this many times the shortlist, rescored with the originals. At 4x, scalar
# int8 kept the top-10 agreement with the local FAISS backend where the unquantised vector has it (0.998 / 0.987
# at 100k / 1M chunks, against 0.997 / 0.979); binary codes of 64 dims are too coarse (0.809 / 0.654): RESULTS.md,
# qdrant section.
OVERSAMPLING = 4.0
GENERATION_TTL = 0.25  # seconds a reader keeps the published generation before reading it again
CHUNK_FIELDS = (
    "id",
    "doc_id",
    "title",
    "source",
    "start",
    "end",
    "line",
    "end_line",
    "heading",
    "anchor",
    "page",
    "hash",
    "text",
)


# --- writing: bring the collection to the local index's published generation ---------------------------------


@dataclass
class SyncReport:
    generation: int = 0  # the generation readers now see (0: nothing was synced)
    upserted: int = 0
    retired: int = 0
    seconds: float = 0.0


def _frame_id(rotation: np.ndarray | None) -> str:
    return "identity" if rotation is None else hashlib.sha256(np.ascontiguousarray(rotation).tobytes()).hexdigest()[:16]


def sync(index, *, store=None, progress: Callable[[str, int, int | None], None] | None = None) -> SyncReport:
    """Mirror the published generation of `index` (a store.StoredIndex) into its Qdrant collection: upsert the
    chunks the collection lacks, retire the ones the index no longer has, then publish the generation to readers.
    Idempotent and resumable: it compares the collection with the index each time, so a killed or failed sync is
    finished by the next (at-least-once writes keyed by point id: no duplicates, no orphans)."""
    started = time.perf_counter()
    manifest, config = index.manifest, index.manifest.config
    progress = progress or (lambda phase, done, total: None)
    own = store is None
    store = store or connect(config)
    try:
        meta = store.meta()
        frame = _frame_id(index.rotation)
        same = meta is not None and _same_index(meta, manifest, frame, store.where())
        if same and meta["generation"] == manifest.generation:
            # In step - but a sync killed after publishing may have left its retired points (counted in BM25's
            # statistics) or half-written ones: verified, not trusted to the marker.
            store.delete_where("gen_from", "gt", manifest.generation)
            store.delete_where("gen_to", "lte", manifest.generation)
            return SyncReport(generation=manifest.generation)
        if not store.exists():
            store.create(
                manifest.model.dim,
                manifest.projection.coarse_dim,
                config.qdrant_quantization,
                config.qdrant_shards,
                config.qdrant_replicas,
            )
        elif meta is None:  # a shard a killed first sync made: its indexes may be missing
            store.ensure_indexes()
        published = int(meta["generation"]) if meta is not None else 0
        generation = max(manifest.generation, published + 1)
        # What a killed sync left, and what readers of `published` no longer see.
        store.delete_where("gen_from", "gt", published)
        store.unmark_after(published)
        store.delete_where("gen_to", "lte", published)
        points = store.ids()
        epoch = int(meta.get("epoch", 0)) if meta is not None else 0
        if not same and meta is not None:  # another model, frame or index: every point is replaced, under new ids
            epoch += 1
            _retire(store, points, generation)
            points = np.empty(0, np.int64)
        base = epoch << EPOCH_SHIFT
        have = points - base  # (every live point is of this epoch once the cleanup above has run)
        ids = np.asarray(index.ids)
        missing = np.setdiff1d(ids, have, assume_unique=True)
        gone = np.setdiff1d(have, ids, assume_unique=True)
        _upsert(store, index, missing, base, generation, progress)
        _retire(store, gone + base, generation)
        store.set_meta(
            {
                "format": META_FORMAT,
                "version": META_VERSION,
                "generation": generation,
                "chunks": len(ids),
                "epoch": epoch,
                "frame": frame,
                "manifest": orjson.dumps(manifest.to_dict()).decode(),
                "rotation": None
                if index.rotation is None
                else base64.b64encode(np.ascontiguousarray(index.rotation, dtype=np.float32).tobytes()).decode(),
            }
        )
        # Readers now use `generation`: the retired points can go (a query that read the previous generation an
        # instant before may miss them: the removed files' chunks, never anything wrong).
        store.delete_where("gen_to", "lte", generation)
        store.finish()
        return SyncReport(generation, len(missing), len(gone), time.perf_counter() - started)
    finally:
        if own:
            store.close()


def _same_index(meta: dict, manifest, frame: str, where: str) -> bool:
    """Whether the collection holds this index's points as they are (same model, frame, ids): only then can a sync
    keep them. Raises when the collection is not searcher's, or was made with another quantisation (a setting of
    the collection itself)."""
    if meta.get("format") != META_FORMAT:
        raise IndexFormatError(f"{where} was not made by searcher; pass another collection or path")
    old = orjson.loads(meta["manifest"])
    quantization = old["config"].get("qdrant_quantization", "none")
    if quantization != manifest.config.qdrant_quantization:
        raise InvalidInputError(
            f"{where} was made with --qdrant-quantization {quantization}; pass that, or index into another "
            "collection (--qdrant-collection, --qdrant-path)"
        )
    current = orjson.loads(orjson.dumps(manifest.to_dict()))  # as JSON has it: tuples are lists there
    return (
        old["model"] == current["model"]
        and meta.get("frame") == frame
        and old["created"] == manifest.created
        and old["next_id"] <= manifest.next_id
        and old["projection"]["coarse_dim"] == manifest.projection.coarse_dim
    )


def _upsert(store, index, ids: np.ndarray, base: int, generation: int, progress) -> None:
    """Write the chunks `ids` of `index` as points (id + base), BATCH at a time, invisible until `generation`."""
    progress("sync", 0, len(ids))
    rows = index.rows_of(ids)
    coarse_dim = index.manifest.projection.coarse_dim
    for a in range(0, len(rows), BATCH):
        block = rows[a : a + BATCH]
        full = np.asarray(index.full[block], dtype=np.float32)
        payloads = [_payload(r, generation) for r in index.chunks(block)]
        store.upsert(np.asarray(index.ids[block]) + base, full[:, :coarse_dim], full, payloads)
        progress("sync", min(a + BATCH, len(rows)), len(rows))


def _retire(store, points: np.ndarray, generation: int) -> None:
    """Mark points as gone from `generation` on (readers of earlier generations still see them)."""
    for a in range(0, len(points), 10_000):
        store.set_payload(points[a : a + 10_000], {"gen_to": generation})


def _payload(record: dict, generation: int) -> dict:
    from ..chunking import lexical_text

    payload = {k: record.get(k, 0 if k in ("line", "end_line", "page") else "") for k in CHUNK_FIELDS}
    for key in ("places", "count_newlines"):  # where lines and sections change inside the chunk (chunking.Chunk)
        if key in record:
            payload[key] = record[key]
    payload["ext"] = Path(record["source"]).suffix.lower()
    payload[LEXICAL] = lexical_text(record["title"], record.get("heading", ""), record["text"])
    payload["gen_from"] = generation
    return payload


# --- reading ---------------------------------------------------------------------------------------------------


def read_meta(store) -> tuple[dict, np.ndarray | None]:
    """(manifest dict, rotation) of a collection searcher synced, for a client that has nothing else."""
    meta = store.meta()
    if meta is None or meta.get("format") != META_FORMAT:
        raise IndexFormatError(
            f"{store.where()} holds no searcher index yet; run `searcher index` with the qdrant backend to fill it"
        )
    manifest = orjson.loads(meta["manifest"])
    rotation = None
    if meta.get("rotation"):
        d = manifest["model"]["dim"]
        rotation = np.frombuffer(base64.b64decode(meta["rotation"]), dtype=np.float32).reshape(d, d)
    return manifest, rotation


class RemoteIndex:
    """What a Searcher needs of an index when all it has is the collection (search.Searcher.from_collection): the
    manifest the last sync stored there. The connection is this client's; no exported query encoder is reachable
    from here, so queries embed with torch."""

    remote = True
    files = None  # no local file table: path filters ask the collection for its files

    def __init__(self, *, qdrant_url: str = "", qdrant_path: str = "", qdrant_collection: str = "searcher") -> None:
        from ..store import Manifest

        config = IndexConfig(
            backend="qdrant",
            qdrant_url=qdrant_url,
            qdrant_path=str(Path(qdrant_path).expanduser().resolve()) if qdrant_path else "",
            qdrant_collection=qdrant_collection,
        )
        store = connect(config)
        try:
            manifest = Manifest.from_dict(read_meta(store)[0])
            self.index_dir = store.where()
        finally:
            store.close()
        connection = {k: getattr(config, k) for k in ("qdrant_url", "qdrant_path", "qdrant_collection")}
        self.manifest = dataclasses.replace(manifest, config=manifest.config.replace(**connection), query_encoder=None)

    def open_lexical(self):
        return None  # the lexical side is Qdrant's; snippets use the manifest's analyzer (search.Searcher.analyze)

    def close(self) -> None:
        """Nothing: the backend holds the connection."""


class QdrantBackend:
    """Answers an index's queries from its Qdrant collection (backends.Backend). Queries use the generation the
    collection publishes (re-read every GENERATION_TTL seconds), so they see the newest complete sync and never a
    half-written one."""

    EF_FACTOR = 2  # HNSW ef of the coarse prefetch, as a multiple of the shortlist (at least 128)

    def __init__(self, config: IndexConfig, *, store=None, files: Callable[[], list] | None = None) -> None:
        self.store = store or connect(config)
        try:
            manifest, rotation = read_meta(self.store)
        except BaseException:
            self.store.close()
            raise
        self._rotation = query_rotation(rotation)
        self.coarse_dim = manifest["projection"]["coarse_dim"]
        self.tokenizer = manifest["config"].get("lexical_tokenizer", IndexConfig().lexical_tokenizer)
        quantized = manifest["config"].get("qdrant_quantization", "none") != "none"
        self.oversampling = OVERSAMPLING if quantized else None
        self._files = files  # the local file table, if there is one: where filters find the files they keep
        # (generation, every file's path, their times: None without a local file table), for filters
        self._paths: tuple[int, list[str], FileTimes | None] | None = None
        self._published: tuple[float, tuple[int, int]] | None = None  # (when read, (generation, chunks))

    def _generation(self) -> tuple[int, int]:
        """(generation, chunks) readers use, read again at most every GENERATION_TTL seconds: one round trip less
        per query on a server; a new generation is seen within that time (as the server's catalog sees a local
        one, server/catalog.py)."""
        now = time.monotonic()
        if self._published is None or now - self._published[0] > GENERATION_TTL:
            self._published = (now, self.store.generation())
        return self._published[1]

    def cosines(self, q: np.ndarray, ids: np.ndarray) -> np.ndarray:
        """Full-vector scores of these chunk ids with one normalised query vector (backends.Backend): the points of
        the collection's current epoch (see EPOCH_SHIFT)."""
        meta = self.store.meta() or {}
        base = int(meta.get("epoch", 0)) << EPOCH_SHIFT
        q = rotated(q[None], self._rotation)[0]
        found = self.store.full_vectors([int(i) + base for i in ids])
        return np.array([float(found[int(i) + base] @ q) if int(i) + base in found else np.nan for i in ids])

    def count(self) -> int:
        """Chunks in the generation readers see, counted by the engine."""
        return self.store.count(Scope(self.store.generation()[0]))

    def close(self) -> None:
        self.store.close()

    def _scope(self, where: Where | None, generation: int) -> Scope | None:
        """A filter as Qdrant conditions: file types as such (`ext`), path globs as the files they match, from the
        local file table when there is one, else from the collection's own list of files (a facet), cached per
        generation. None: nothing can match."""
        if not where:
            return Scope(generation)
        if where.phrases or where.excluded:
            raise InvalidInputError(
                "quoted phrases and -exclusions are not supported on the qdrant backend yet; "
                "search the local index (drop --qdrant-url/--qdrant-path) or leave them out"
            )
        if where.by_time and self._files is None:  # a file's time is in the local file table only
            raise InvalidInputError(
                "--changed-within and --changed-before need the index's local file table; query the index "
                "itself (--index) rather than the collection alone"
            )
        sources = None
        if where.paths or where.by_time:
            if self._paths is None or self._paths[0] != generation:
                if self._files is not None:
                    files = self._files()
                    self._paths = (generation, [e.path for e in files], FileTimes.of(files))
                else:
                    self._paths = (generation, self.store.sources(generation), None)
            _, paths, times = self._paths
            if where.by_time and times is not None:  # (a relative bound moves with the clock: not cached)
                paths = [paths[i] for i in np.flatnonzero(times.kept(where))]
            sources = tuple(p for p in paths if where.matches(p))
            if not sources:
                return None
        return Scope(generation, sources, where.types)

    def search(self, xq, texts, k, shortlist, mode, weight, where):
        """(D, I, found, records) for backends.Backend, with the chunk record of every id returned."""
        n = len(texts) if xq is None else len(xq)
        generation, total = self._generation()
        scope = self._scope(where, generation)
        if scope is None:
            return np.empty((n, 0), np.float32), np.empty((n, 0), np.int64), [(-1, -1.0)] * n, {}
        if xq is not None:
            xq = rotated(xq, self._rotation)
            xc = coarse_vectors(xq, self.coarse_dim)
        k, shortlist = min(k, total), min(max(shortlist, k), total)  # (a filter may keep fewer: Qdrant stops there)
        if k == 0:
            return np.empty((n, 0), np.float32), np.empty((n, 0), np.int64), [(-1, -1.0)] * n, {}
        ef = max(128, self.EF_FACTOR * shortlist)
        # subtle: a few more than k, so that ties at the k-th place go to the smaller id, as locally (_arrays)
        keep = 2 * k + 8
        results, found = [], []
        for i in range(n):
            if mode == "lexical":
                hits = self.store.text(content_words(texts[i]), keep, scope)
                found.append((len(hits), -1.0))
            elif mode == "coarse":
                hits = self.store.nearest(xc[i], "coarse", keep, scope, ef, False, self.oversampling)
            elif mode == "full":
                hits = self.store.nearest(xq[i], "full", keep, scope, ef, True)
            else:
                depth = max(k, FUSION_DEPTH) if mode == "hybrid" else min(keep, shortlist)
                hits = self.store.funnel(
                    xc[i], xq[i], max(shortlist, depth), depth, scope, ef, False, self.oversampling
                )
                if mode == "hybrid":
                    best_dense = float(hits[0].score) if hits else -1.0
                    hits, lexical_count = self._fuse(xq[i], texts[i], hits, k, weight, scope)
                    found.append((lexical_count, best_dense))
            if mode in ("coarse", "full", "dense"):  # -1: the lexical side was not asked
                found.append((-1, float(hits[0].score) if hits else -1.0))
            results.append(hits)
        return _arrays(results, k, found)

    def _fuse(self, q, text, dense: list[Found], k, weight, scope):
        words = content_words(text)
        lexical = self.store.text(words, max(k, FUSION_DEPTH), scope)
        dense_ids = np.asarray([h.id for h in dense], dtype=np.int64)
        dense_scores = np.asarray([h.score for h in dense], dtype=np.float32)
        lex_ids = np.asarray([h.id for h in lexical], dtype=np.int64)
        records = {h.id: h.payload for h in (*dense, *lexical)}
        point = {h.id: h.point for h in lexical}

        def full_scores(extra: np.ndarray) -> np.ndarray:
            vectors = self.store.full_vectors([point[int(i)] for i in extra])
            return np.asarray([float(vectors[point[int(i)]] @ q) for i in extra], np.float32)

        def coverages(ids: np.ndarray) -> np.ndarray:
            return self._coverages(words, [records[int(i)].get(LEXICAL, "") for i in ids], scope)

        scores, ids = fuse_sides(dense_ids, dense_scores, lex_ids, weight, k, full_scores, coverages)
        return [Found(int(i), float(s), records[int(i)]) for s, i in zip(scores, ids)], len(lex_ids)

    def _coverages(self, words: str, texts: list[str], scope: Scope) -> np.ndarray:
        """calibration.coverage of each text for the query's content `words`: each word weighted by its IDF from the
        engine's own counts (one count request per word, as Qdrant analyses it), held when the text has every
        token the manifest's analyzer makes of it."""
        n, freqs = self._counts(words.split(), scope)
        analyze = self._analyzer.analyze
        weights = [(set(analyze(w)), idf(f, n)) for w, f in zip(words.split(), freqs)]
        weights = [(tokens, w) for tokens, w in weights if tokens]
        total = sum(w for _, w in weights)
        if total <= 0:
            return np.zeros(len(texts))
        held = [set(analyze(t)) for t in texts]
        return np.array([sum(w for tokens, w in weights if tokens <= h) / total for h in held], np.float64)

    @functools.cached_property
    def _analyzer(self):
        """The manifest's analyzer, made when a hybrid query first needs it."""
        return analyzer(self.tokenizer, version="2")  # version 2's words: Qdrant's text index neither folds nor splits

    def _counts(self, words: list[str], scope: Scope) -> tuple[int, list[int]]:
        return self.store.count(scope), [self.store.count(dataclasses.replace(scope, word=w)) for w in words]

    def doc_freqs(self, words: list[str]) -> tuple[int, list[int]] | None:
        """(chunks, chunks holding each word) in the generation readers see (backends.Backend)."""
        return self._counts(words, Scope(self._generation()[0]))


def _arrays(results: list[list[Found]], k: int, found: list):
    n = len(results)
    D = np.full((n, k), -np.inf, dtype=np.float32)
    I = np.full((n, k), -1, dtype=np.int64)
    records: dict[int, dict] = {}
    for i, hits in enumerate(results):
        # ties by the smaller id, as the local backend breaks them; within float noise (Qdrant normalises the
        # stored vectors again, so equal scores can differ in the last bits)
        hits = sorted(hits, key=lambda h: (-round(h.score, 6), h.id))[:k]
        D[i, : len(hits)] = [h.score for h in hits]
        I[i, : len(hits)] = [h.id for h in hits]
        records.update((h.id, h.payload) for h in hits)
    return D, I, found, records
