"""The Qdrant backend: each published generation mirrored into a Qdrant collection, and queries answered there.

A point per chunk, keyed by the chunk id, with two named vectors: `coarse` (the index's coarse vector: the first
coarse_dim dims of the projected full vector) and `full` (the projected full vector; it has no HNSW graph, it only
rescores), and the chunk record as payload, plus `ext`, `lexical` (the text the lexical side indexes: title,
heading and text, as tantivy gets it locally) and the generations that added and retired the point. One request
runs the funnel: a prefetch of `shortlist` points on `coarse`, with the filter applied there, then a main query
that rescores only those on `full`. The lexical side is Qdrant's BM25 text index on `lexical`. Fusion and
per-document grouping stay searcher's own (fusion.py, search.py), so they are the same on every backend.

Two transports behind one interface: `EdgeStore` (qdrant-edge-py: Qdrant's engine in-process, one shard in a
folder) and `ClientStore` (qdrant-client: a server or a cluster; its pure-Python local mode serves tests that
check request shapes, never as the engine).

Readers see one generation whole. A point is visible at generation G when gen_from <= G and not gen_to <= G, and
G is the one in the collection's meta point, which `sync` writes last (readers re-read it every 0.25 s). A sync upserts the new points with
gen_from = G+1, marks removed ones gen_to = G+1, writes the meta, then deletes the marked points; killed at any
step, readers still see G (BM25 statistics aside: hidden points count there until the next sync), and the next
sync first deletes what the killed one left (points with gen_from > G, marks > G, points retired at or before G).
Upserts are keyed by point id, so a retried batch never duplicates. When every point must be replaced (another
model, a refitted projection, a rebuilt index) the new ones get new point ids (EPOCH_SHIFT), so that too is
invisible until published.

Left out: shard, replica and alias administration (the cluster's own, docs/scale-out.md); the BM25 parameters are
Qdrant's defaults (k1 1.2, b 0.75, as tantivy's).
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson

from ..config import FUSION_DEPTH, IndexConfig
from ..errors import IndexFormatError, InvalidInputError, SearcherError
from ..filters import Where
from ..fusion import adaptive_weight, fuse

log = logging.getLogger(__name__)

META_ID = 2**63 - 1  # the meta point: no vectors; the manifest, the rotation and the generation readers use
# A point's id is its chunk id plus the collection's epoch << EPOCH_SHIFT. The epoch goes up when every point must
# be replaced (another model, a refitted projection, a rebuilt index): the new points then get new ids, so readers
# keep the old ones, whole, until the new generation is published.
EPOCH_SHIFT = 40
META_FORMAT = "searcher-qdrant"
META_VERSION = 1
BATCH = 256  # points per upsert request
RETRIES = 4  # attempts per request to a server, with exponential back-off from RETRY_WAIT seconds
RETRY_WAIT = 0.5
# A quantised coarse vector shortlists this many times the shortlist, rescored with the originals: at 4x, scalar
# int8 kept the unquantised top-10 (0.9955 agreement with an exact coarse search at 100k chunks, as without
# quantisation; 0.987 at 1x). Binary codes of 64 dims are too coarse: 0.81 at 4x, 0.86 at 8x (RESULTS.md, qdrant).
OVERSAMPLING = 4.0
GENERATION_TTL = 0.25  # seconds a reader keeps the published generation before reading it again
LEXICAL = "lexical"  # the payload field holding the text BM25 indexes
CHUNK_FIELDS = ("id", "doc_id", "title", "source", "start", "end", "line", "end_line", "heading", "anchor",
                "page", "hash", "text")


class QdrantError(SearcherError):
    """Qdrant refused or could not be reached."""


def _edge():
    try:
        import qdrant_edge
    except ImportError:
        raise SearcherError("the qdrant backend needs the qdrant extra: pip install 'searcher[qdrant]'") from None
    return qdrant_edge


def _client_models():
    try:
        import qdrant_client
        from qdrant_client.http import models
    except ImportError:
        raise SearcherError("the qdrant backend needs the qdrant extra: pip install 'searcher[qdrant]'") from None
    return qdrant_client, models


@dataclass(frozen=True)
class Scope:
    """Which points a request may see: those of `generation`, from these files and types (None/(): all)."""

    generation: int
    sources: tuple[str, ...] | None = None
    types: tuple[str, ...] = ()  # extensions with the dot, lower case (filters.Where.types)


@dataclass(frozen=True)
class Found:
    id: int  # the chunk id
    score: float
    payload: dict
    point: int = -1  # the point id (see EPOCH_SHIFT)


def _found(p) -> Found:
    return Found(int(p.payload["id"]), p.score, p.payload, int(p.id))


def _filter_parts(scope: Scope):
    """(must, must_not) as (key, kind, value) triples; each transport builds its own Filter from them."""
    must = [("gen_from", "lte", scope.generation)]
    if scope.sources is not None:
        must.append(("source", "any", list(scope.sources)))
    if scope.types:
        must.append(("ext", "any", list(scope.types)))
    return must, [("gen_to", "lte", scope.generation)]


# subtle: an Edge shard locks its write-ahead log, so a process can open it once: every EdgeStore of a process
# shares that one handle (a server's reader of the next generation opens before the previous one closes).
_SHARDS: dict[Path, list] = {}  # path -> [shard, users]
_SHARDS_LOCK = threading.Lock()


class EdgeStore:
    """One embedded Qdrant Edge shard in a folder (qdrant-edge-py): Qdrant's segment and shard code in-process.
    One process at a time may hold a shard: an index served by `searcher serve` is updated by that process only."""

    def __init__(self, path: str) -> None:
        self.qe = _edge()
        self.path = Path(path).resolve()
        self.shard = None
        if self.path.is_dir() and any(self.path.iterdir()):
            self._hold(lambda: self.qe.EdgeShard.load(str(self.path)))

    def _hold(self, make) -> None:
        with _SHARDS_LOCK:
            if self.path not in _SHARDS:
                try:
                    _SHARDS[self.path] = [make(), 0]
                except Exception as e:  # noqa: BLE001 - the engine raises bare Exception; one line says what
                    busy = "WouldBlock" in str(e)
                    raise QdrantError(
                        f"the Qdrant Edge shard at {self.path} is in use by another process (a searcher server?); "
                        "stop it, or use a Qdrant server with --qdrant-url" if busy else
                        f"cannot open the Qdrant Edge shard at {self.path}: {_line(e)}") from None
            _SHARDS[self.path][1] += 1
            self.shard = _SHARDS[self.path][0]

    def where(self) -> str:
        return f"the Qdrant Edge shard at {self.path}"

    def exists(self) -> bool:
        return self.shard is not None

    def create(self, dim: int, coarse_dim: int, quantization: str, shards: int = 0, replicas: int = 0) -> None:
        """An Edge shard is one shard: `shards` and `replicas` are a server's."""
        qe = self.qe
        q = {"none": None, "scalar": qe.ScalarQuantizationConfig(type=qe.ScalarType.Int8, quantile=0.99,
                                                                   always_ram=True),
             "binary": qe.BinaryQuantizationConfig(always_ram=True)}[quantization]
        no_graph = qe.HnswIndexConfig(m=0, ef_construct=100, full_scan_threshold=10_000)
        config = qe.EdgeConfig(vectors={
            "coarse": qe.EdgeVectorParams(size=coarse_dim, distance=qe.Distance.Cosine, quantization_config=q),
            # on disk like the local backend's memory map: a query reads only the `shortlist` rows it rescores
            "full": qe.EdgeVectorParams(size=dim, distance=qe.Distance.Cosine, hnsw_config=no_graph,
                                        memory=qe.Memory.Cold),
        })
        self.path.mkdir(parents=True, exist_ok=True)
        self._hold(lambda: qe.EdgeShard.create(str(self.path), config))
        stem = qe.SnowballParams(qe.SnowballLanguage.English)
        for name, schema in (
            ("gen_from", qe.IntegerIndexParams(lookup=False, range=True)),
            ("gen_to", qe.IntegerIndexParams(lookup=False, range=True)),
            ("source", qe.KeywordIndexParams()),
            ("ext", qe.KeywordIndexParams()),
            (LEXICAL, qe.TextIndexParams(tokenizer=qe.TokenizerType.Word, lowercase=True, stemmer=stem, scoring=True)),
        ):
            self.shard.update(qe.UpdateOperation.create_field_index(name, schema))

    def _filter(self, scope: Scope):
        qe = self.qe

        def condition(key, kind, value):
            if kind == "any":
                return qe.FieldCondition(key=key, match=qe.MatchAny(value))
            return qe.FieldCondition(key=key, range=qe.RangeFloat(**{kind: value}))

        must, must_not = _filter_parts(scope)
        return qe.Filter(must=[condition(*c) for c in must], must_not=[condition(*c) for c in must_not])

    def upsert(self, ids, coarse, full, payloads) -> None:
        qe = self.qe
        points = [qe.Point(int(i), {"coarse": c.tolist(), "full": f.tolist()}, p)
                  for i, c, f, p in zip(ids, coarse, full, payloads)]
        self.shard.update(qe.UpdateOperation.upsert_points(points))

    def set_payload(self, ids, payload: dict) -> None:
        self.shard.update(self.qe.UpdateOperation.set_payload([int(i) for i in ids], payload))

    def delete_where(self, key: str, gt: int | None = None, lte: int | None = None) -> None:
        qe = self.qe
        bound = {"gt": gt} if gt is not None else {"lte": lte}
        self.shard.update(qe.UpdateOperation.delete_points_by_filter(
            qe.Filter(must=[qe.FieldCondition(key=key, range=qe.RangeFloat(**bound))])))

    def unmark_after(self, generation: int) -> None:
        qe = self.qe
        self.shard.update(qe.UpdateOperation.delete_payload_by_filter(
            qe.Filter(must=[qe.FieldCondition(key="gen_to", range=qe.RangeFloat(gt=generation))]), ["gen_to"]))

    def ids(self) -> np.ndarray:
        """Every point id but the meta point's, with gen_to unset (not retired)."""
        qe = self.qe
        live = qe.Filter(must=[qe.IsEmptyCondition("gen_to")], must_not=[qe.HasIdCondition({META_ID})])
        out, offset = [], None
        while True:
            records, offset = self.shard.scroll(qe.ScrollRequest(offset=offset, limit=10_000, filter=live,
                                                                 with_payload=False, with_vector=False))
            out.extend(r.id for r in records)
            if offset is None:
                return np.sort(np.asarray(out, dtype=np.int64))

    def sources(self, generation: int) -> list[str]:
        """Every file the generation holds chunks of."""
        qe = self.qe
        request = qe.FacetRequest(key="source", limit=2**31 - 1, exact=True, filter=self._filter(Scope(generation)))
        return [str(h.value) for h in self.shard.facet(request).hits]

    def _params(self, ef: int, exact: bool, oversampling: float | None):
        qe = self.qe
        return qe.SearchParams(hnsw_ef=ef, exact=exact,
                               quantization=qe.QuantizationSearchParams(rescore=True, oversampling=oversampling))

    def funnel(self, qc, qf, shortlist: int, k: int, scope: Scope, ef: int, exact: bool,
               oversampling: float | None = None) -> list[Found]:
        qe = self.qe
        params = self._params(ef, exact, oversampling)
        request = qe.QueryRequest(
            limit=k, with_payload=True,
            prefetches=[qe.Prefetch(limit=shortlist, query=qe.Query.Nearest(qc.tolist(), using="coarse"),
                                    filter=self._filter(scope), params=params)],
            query=qe.Query.Nearest(qf.tolist(), using="full"))
        return [_found(p) for p in self.shard.query(request)]

    def nearest(self, q, using: str, k: int, scope: Scope, ef: int, exact: bool,
                oversampling: float | None = None) -> list[Found]:
        qe = self.qe
        params = self._params(ef, exact, oversampling)
        request = qe.QueryRequest(limit=k, with_payload=True, query=qe.Query.Nearest(q.tolist(), using=using),
                                  filter=self._filter(scope), params=params)
        return [_found(p) for p in self.shard.query(request)]

    def text(self, query: str, k: int, scope: Scope) -> list[Found]:
        qe = self.qe
        request = qe.QueryRequest(limit=k, with_payload=True, query=qe.TextQuery(LEXICAL, query),
                                  filter=self._filter(scope))
        return [_found(p) for p in self.shard.query(request)]

    def full_vectors(self, ids) -> dict[int, np.ndarray]:
        """point id -> its full vector."""
        records = self.shard.retrieve([int(i) for i in ids], with_payload=False, with_vector=["full"])
        return {r.id: np.asarray(r.vector["full"], dtype=np.float32) for r in records}

    def meta(self) -> dict | None:
        if self.shard is None:
            return None
        records = self.shard.retrieve([META_ID], with_payload=True, with_vector=False)
        return dict(records[0].payload) if records else None

    def generation(self) -> tuple[int, int]:
        """(the generation readers use, its chunk count)."""
        records = self.shard.retrieve([META_ID], with_payload=["generation", "chunks"], with_vector=False)
        return (int(records[0].payload["generation"]), int(records[0].payload["chunks"])) if records else (0, 0)

    def set_meta(self, payload: dict) -> None:
        self.shard.update(self.qe.UpdateOperation.upsert_points([self.qe.Point(META_ID, {}, payload)]))

    def count(self, scope: Scope) -> int:
        return self.shard.count(self.qe.CountRequest(filter=self._filter(scope), exact=True))

    def finish(self) -> None:
        """Build the HNSW graph and payload indexes of what was written (the server does this by itself)."""
        self.shard.optimize()
        self.shard.flush()

    def close(self) -> None:
        if self.shard is None:
            return
        with _SHARDS_LOCK:
            entry = _SHARDS[self.path]
            entry[1] -= 1
            if entry[1] == 0:
                del _SHARDS[self.path]
                self.shard.flush()
                self.shard.close()
        self.shard = None


class ClientStore:
    """A collection on a Qdrant server or cluster, through qdrant-client (also its local mode: `location`
    ":memory:" or a path, a pure-Python re-implementation used by tests to check request shapes).
    Requests are retried on transient errors; an unreachable server is one clear error."""

    def __init__(self, url: str, collection: str, *, location: str | None = None) -> None:
        qdrant_client, self.m = _client_models()
        self.url, self.collection = url, collection
        if location is not None:
            self.client = qdrant_client.QdrantClient(location=location) if location == ":memory:" else \
                qdrant_client.QdrantClient(path=location)
        else:
            self.client = qdrant_client.QdrantClient(url=url, timeout=60, check_compatibility=False)
        self._exists = self._call(lambda: self.client.collection_exists(collection))

    def where(self) -> str:
        return f"collection {self.collection!r} at {self.url or 'qdrant-client local mode'}"

    def _call(self, request: Callable):
        wait = RETRY_WAIT
        for attempt in range(RETRIES):
            try:
                return request()
            except Exception as e:  # noqa: BLE001 - httpx/grpc/qdrant types; transient ones are retried
                if not self._transient(e):
                    raise QdrantError(f"Qdrant refused a request to {self.where()}: {_line(e)}") from None
                if attempt == RETRIES - 1:
                    raise QdrantError(f"cannot reach Qdrant at {self.url} ({_line(e)}); start the server or pass "
                                      "another --qdrant-url (the local index is up to date: run the same "
                                      "command again to sync)") from None
                log.warning("Qdrant request failed (%s); retrying in %.1f s", _line(e), wait)
                time.sleep(wait)
                wait *= 2

    @staticmethod
    def _transient(e: Exception) -> bool:
        """A failure worth retrying: the server busy or restarting (408, 429, 5xx), or the connection failing."""
        import httpx
        from qdrant_client.http.exceptions import ResponseHandlingException

        status = getattr(e, "status_code", None)
        if status is not None:
            return status in (408, 429, 500, 502, 503, 504)
        return isinstance(e, (ResponseHandlingException, httpx.TransportError, ConnectionError, TimeoutError))

    def exists(self) -> bool:
        return self._exists

    def create(self, dim: int, coarse_dim: int, quantization: str, shards: int = 0, replicas: int = 0) -> None:
        m = self.m
        q = {"none": None,
             "scalar": m.ScalarQuantization(scalar=m.ScalarQuantizationConfig(type=m.ScalarType.INT8, quantile=0.99,
                                                                               always_ram=True)),
             "binary": m.BinaryQuantization(binary=m.BinaryQuantizationConfig(always_ram=True))}[quantization]
        self._call(lambda: self.client.create_collection(self.collection, vectors_config={
            "coarse": m.VectorParams(size=coarse_dim, distance=m.Distance.COSINE, quantization_config=q),
            "full": m.VectorParams(size=dim, distance=m.Distance.COSINE, hnsw_config=m.HnswConfigDiff(m=0),
                                   on_disk=True),
        }, shard_number=shards or None, replication_factor=replicas or None))
        text = m.TextIndexParams(type=m.TextIndexType.TEXT, tokenizer=m.TokenizerType.WORD, lowercase=True,
                                 stemmer=m.SnowballParams(type=m.Snowball.SNOWBALL, language=m.SnowballLanguage.ENGLISH),
                                 scoring=m.TextScoringParams(type=m.TextScoringType.BM25))
        for name, schema in (("gen_from", m.PayloadSchemaType.INTEGER), ("gen_to", m.PayloadSchemaType.INTEGER),
                             ("source", m.PayloadSchemaType.KEYWORD), ("ext", m.PayloadSchemaType.KEYWORD),
                             (LEXICAL, text)):
            self._call(lambda name=name, schema=schema: self.client.create_payload_index(self.collection, name, schema))
        self._exists = True

    def _filter(self, scope: Scope):
        m = self.m

        def condition(key, kind, value):
            if kind == "any":
                return m.FieldCondition(key=key, match=m.MatchAny(any=value))
            return m.FieldCondition(key=key, range=m.Range(**{kind: value}))

        must, must_not = _filter_parts(scope)
        return m.Filter(must=[condition(*c) for c in must], must_not=[condition(*c) for c in must_not])

    def upsert(self, ids, coarse, full, payloads) -> None:
        points = [self.m.PointStruct(id=int(i), vector={"coarse": c.tolist(), "full": f.tolist()}, payload=p)
                  for i, c, f, p in zip(ids, coarse, full, payloads)]
        self._call(lambda: self.client.upsert(self.collection, points, wait=True))

    def set_payload(self, ids, payload: dict) -> None:
        self._call(lambda: self.client.set_payload(self.collection, payload, points=[int(i) for i in ids], wait=True))

    def delete_where(self, key: str, gt: int | None = None, lte: int | None = None) -> None:
        m = self.m
        selector = m.FilterSelector(filter=m.Filter(must=[m.FieldCondition(key=key, range=m.Range(gt=gt, lte=lte))]))
        self._call(lambda: self.client.delete(self.collection, selector, wait=True))

    def unmark_after(self, generation: int) -> None:
        m = self.m
        selector = m.Filter(must=[m.FieldCondition(key="gen_to", range=m.Range(gt=generation))])
        self._call(lambda: self.client.delete_payload(self.collection, ["gen_to"], points=selector, wait=True))

    def ids(self) -> np.ndarray:
        m = self.m
        live = m.Filter(must=[m.IsEmptyCondition(is_empty=m.PayloadField(key="gen_to"))],
                        must_not=[m.HasIdCondition(has_id=[META_ID])])
        out, offset = [], None
        while True:
            records, offset = self._call(lambda offset=offset: self.client.scroll(
                self.collection, scroll_filter=live, limit=10_000, offset=offset, with_payload=False,
                with_vectors=False))
            out.extend(r.id for r in records)
            if offset is None:
                return np.sort(np.asarray(out, dtype=np.int64))

    def _query(self, **request) -> list[Found]:
        response = self._call(lambda: self.client.query_points(self.collection, with_payload=True, **request))
        return [_found(p) for p in response.points]

    def _params(self, ef: int, exact: bool, oversampling: float | None):
        m = self.m
        return m.SearchParams(hnsw_ef=ef, exact=exact,
                              quantization=m.QuantizationSearchParams(rescore=True, oversampling=oversampling))

    def sources(self, generation: int) -> list[str]:
        """Every file the generation holds chunks of."""
        response = self._call(lambda: self.client.facet(self.collection, "source", limit=2**31 - 1, exact=True,
                                                        facet_filter=self._filter(Scope(generation))))
        return [str(h.value) for h in response.hits]

    def funnel(self, qc, qf, shortlist: int, k: int, scope: Scope, ef: int, exact: bool,
               oversampling: float | None = None) -> list[Found]:
        prefetch = self.m.Prefetch(query=qc.tolist(), using="coarse", limit=shortlist, filter=self._filter(scope),
                                   params=self._params(ef, exact, oversampling))
        return self._query(prefetch=prefetch, query=qf.tolist(), using="full", limit=k)

    def nearest(self, q, using: str, k: int, scope: Scope, ef: int, exact: bool,
                oversampling: float | None = None) -> list[Found]:
        return self._query(query=q.tolist(), using=using, limit=k, query_filter=self._filter(scope),
                           search_params=self._params(ef, exact, oversampling))

    def text(self, query: str, k: int, scope: Scope) -> list[Found]:
        return self._query(query=self.m.TextQuery(text=query), using=LEXICAL, limit=k,
                           query_filter=self._filter(scope))

    def full_vectors(self, ids) -> dict[int, np.ndarray]:
        records = self._call(lambda: self.client.retrieve(self.collection, [int(i) for i in ids],
                                                          with_payload=False, with_vectors=["full"]))
        return {r.id: np.asarray(r.vector["full"], dtype=np.float32) for r in records}

    def meta(self) -> dict | None:
        if not self._exists:
            return None
        records = self._call(lambda: self.client.retrieve(self.collection, [META_ID], with_payload=True))
        return dict(records[0].payload) if records else None

    def generation(self) -> tuple[int, int]:
        """(the generation readers use, its chunk count)."""
        records = self._call(lambda: self.client.retrieve(self.collection, [META_ID],
                                                          with_payload=["generation", "chunks"]))
        return (int(records[0].payload["generation"]), int(records[0].payload["chunks"])) if records else (0, 0)

    def set_meta(self, payload: dict) -> None:
        self._call(lambda: self.client.upsert(self.collection, [self.m.PointStruct(id=META_ID, vector={},
                                                                                     payload=payload)], wait=True))

    def count(self, scope: Scope) -> int:
        return self._call(lambda: self.client.count(self.collection, count_filter=self._filter(scope), exact=True)).count

    def finish(self) -> None:
        """Nothing: a server builds its indexes in the background."""

    def close(self) -> None:
        self.client.close()


def _line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return (text[0] if text else type(e).__name__)[:200]


def connect(config: IndexConfig, *, location: str | None = None):
    """The transport a config names: an Edge shard (`qdrant_path`) or a server (`qdrant_url`)."""
    if config.qdrant_path:
        return EdgeStore(config.qdrant_path)
    return ClientStore(config.qdrant_url, config.qdrant_collection, location=location)


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
            return SyncReport(generation=manifest.generation)
        if not store.exists():
            store.create(manifest.model.dim, manifest.projection.coarse_dim, config.qdrant_quantization,
                         config.qdrant_shards, config.qdrant_replicas)
        published = int(meta["generation"]) if meta is not None else 0
        generation = max(manifest.generation, published + 1)
        # What a killed sync left, and what readers of `published` no longer see.
        store.delete_where("gen_from", gt=published)
        store.unmark_after(published)
        store.delete_where("gen_to", lte=published)
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
        store.set_meta({
            "format": META_FORMAT, "version": META_VERSION, "generation": generation, "chunks": len(ids),
            "epoch": epoch, "frame": frame,
            "manifest": orjson.dumps(manifest.to_dict()).decode(),
            "rotation": None if index.rotation is None else base64.b64encode(
                np.ascontiguousarray(index.rotation, dtype=np.float32).tobytes()).decode(),
        })
        # Readers now use `generation`: the retired points can go (a query that read the previous generation an
        # instant before may miss them: the removed files' chunks, never anything wrong).
        store.delete_where("gen_to", lte=generation)
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
            "collection (--qdrant-collection, --qdrant-path)")
    current = orjson.loads(orjson.dumps(manifest.to_dict()))  # as JSON has it: tuples are lists there
    return (old["model"] == current["model"] and meta.get("frame") == frame and old["created"] == manifest.created
            and old["next_id"] <= manifest.next_id and old["projection"]["coarse_dim"] == manifest.projection.coarse_dim)


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
    payload["ext"] = Path(record["source"]).suffix.lower()
    payload[LEXICAL] = lexical_text(record["title"], record.get("heading", ""), record["text"])
    payload["gen_from"] = generation
    return payload


# --- reading ---------------------------------------------------------------------------------------------------

def read_meta(store) -> tuple[dict, np.ndarray | None]:
    """(manifest dict, rotation) of a collection searcher synced, for a client that has nothing else."""
    meta = store.meta()
    if meta is None or meta.get("format") != META_FORMAT:
        raise IndexFormatError(f"{store.where()} holds no searcher index yet; run `searcher index` with the qdrant "
                               "backend to fill it")
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

        config = IndexConfig(backend="qdrant", qdrant_url=qdrant_url,
                             qdrant_path=str(Path(qdrant_path).expanduser().resolve()) if qdrant_path else "",
                             qdrant_collection=qdrant_collection)
        store = connect(config)
        try:
            manifest = Manifest.from_dict(read_meta(store)[0])
            self.index_dir = store.where()
        finally:
            store.close()
        connection = {k: getattr(config, k) for k in ("qdrant_url", "qdrant_path", "qdrant_collection")}
        self.manifest = dataclasses.replace(manifest, config=manifest.config.replace(**connection), query_encoder=None)

    def open_lexical(self):
        return None  # snippets match plain lower-case words

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
            manifest, self.rotation = read_meta(self.store)
        except BaseException:
            self.store.close()
            raise
        self.coarse_dim = manifest["projection"]["coarse_dim"]
        self.dim = manifest["model"]["dim"]
        quantized = manifest["config"].get("qdrant_quantization", "none") != "none"
        self.oversampling = OVERSAMPLING if quantized else None
        self.manifest = manifest  # as the collection holds it (a dict)
        self._files = files  # the local file table, if there is one: where filters find the files they keep
        self._paths: tuple[int, list[str]] | None = None  # (generation, every file's path)
        self._published: tuple[float, tuple[int, int]] | None = None  # (when read, (generation, chunks))

    def _generation(self) -> tuple[int, int]:
        """(generation, chunks) readers use, read again at most every GENERATION_TTL seconds: one round trip less
        per query on a server; a new generation is seen within that time (as the server's catalog sees a local
        one, server/catalog.py)."""
        now = time.monotonic()
        if self._published is None or now - self._published[0] > GENERATION_TTL:
            self._published = (now, self.store.generation())
        return self._published[1]

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
        sources = None
        if where.paths:
            if self._paths is None or self._paths[0] != generation:
                paths = [e.path for e in self._files()] if self._files is not None else self.store.sources(generation)
                self._paths = (generation, paths)
            sources = tuple(p for p in self._paths[1] if where.matches(p))
            if not sources:
                return None
        return Scope(generation, sources, where.types)

    def search(self, xq, texts, k, shortlist, mode, weight, adaptive, where):
        """(D, I, found, records) for backends.Backend, with the chunk record of every id returned."""
        n = len(texts) if xq is None else len(xq)
        generation, total = self._generation()
        scope = self._scope(where, generation)
        if scope is None:
            return np.empty((n, 0), np.float32), np.empty((n, 0), np.int64), [(-1, -1.0)] * n, {}
        if xq is not None and self.rotation is not None:
            xq = np.ascontiguousarray(xq @ self.rotation)
        k, shortlist = min(k, total), min(max(shortlist, k), total)  # (a filter may keep fewer: Qdrant stops there)
        if k == 0:
            return np.empty((n, 0), np.float32), np.empty((n, 0), np.int64), [(-1, -1.0)] * n, {}
        ef = max(128, self.EF_FACTOR * shortlist)
        # subtle: a few more than k, so that ties at the k-th place go to the smaller id, as locally (_arrays)
        keep = 2 * k + 8
        results, found = [], []
        for i in range(n):
            if mode == "lexical":
                hits = self.store.text(texts[i], keep, scope)
                found.append((len(hits), -1.0))
            elif mode == "coarse":
                hits = self.store.nearest(_unit(xq[i, : self.coarse_dim]), "coarse", keep, scope, ef, False,
                                          self.oversampling)
            elif mode == "full":
                hits = self.store.nearest(xq[i], "full", keep, scope, ef, True)
            else:
                depth = max(k, FUSION_DEPTH) if mode == "hybrid" else min(keep, shortlist)
                hits = self.store.funnel(_unit(xq[i, : self.coarse_dim]), xq[i], max(shortlist, depth), depth,
                                         scope, ef, False, self.oversampling)
                if mode == "hybrid":
                    best_dense = float(hits[0].score) if hits else -1.0
                    hits, lexical_count = self._fuse(xq[i], texts[i], hits, k, weight, adaptive, scope)
                    found.append((lexical_count, best_dense))
            if mode in ("coarse", "full", "dense"):  # -1: the lexical side was not asked
                found.append((-1, float(hits[0].score) if hits else -1.0))
            results.append(hits)
        return _arrays(results, k, found)

    def _fuse(self, q, text, dense: list[Found], k, weight, adaptive, scope):
        lexical = self.store.text(text, max(k, FUSION_DEPTH), scope)
        dense_ids = np.asarray([h.id for h in dense], dtype=np.int64)
        dense_scores = np.asarray([h.score for h in dense], dtype=np.float32)
        lex_ids = np.asarray([h.id for h in lexical], dtype=np.int64)
        lex_scores = np.asarray([h.score for h in lexical], dtype=np.float32)
        records = {h.id: h.payload for h in (*dense, *lexical)}
        w = adaptive_weight(weight, dense_scores, lex_scores, FUSION_DEPTH) if adaptive else weight
        extra = np.setdiff1d(lex_ids, dense_ids)
        if len(extra):  # lexical-only candidates get their dense score from their full vectors
            point = {h.id: h.point for h in lexical}
            vectors = self.store.full_vectors([point[int(i)] for i in extra])
            dense_ids = np.concatenate([dense_ids, extra])
            dense_scores = np.concatenate([dense_scores, [float(vectors[point[int(i)]] @ q) for i in extra]])
        scores, ids = fuse(dense_ids, dense_scores.astype(np.float32), lex_ids, lex_scores, w, k)
        return [Found(int(i), float(s), records[int(i)]) for s, i in zip(scores, ids)], len(lex_ids)


def _unit(x: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(x))
    return x / norm if norm > 0 else x


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
