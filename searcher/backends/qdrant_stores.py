"""The two ways searcher talks to Qdrant, behind one interface (qdrant.py says what is stored and why).

`EdgeStore`: an embedded Qdrant Edge shard in a folder (qdrant-edge-py, Qdrant's own segment and shard code
in-process; one process at a time). `ClientStore`: a collection on a Qdrant server or cluster through
qdrant-client, retried on transient errors; its pure-Python local mode serves tests that check request shapes,
never as the engine. Both take a `Scope` (the generation readers use, and a filter's files and types) and return
`Found` points with their chunk records.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..config import IndexConfig
from ..errors import SearcherError, install_hint

log = logging.getLogger(__name__)

META_ID = 2**63 - 1  # the meta point: no vectors; the manifest, the rotation and the generation readers use
RETRIES = 4  # attempts per request to a server, with exponential back-off from RETRY_WAIT seconds
RETRY_WAIT = 0.5
LEXICAL = "lexical"  # the payload field holding the text BM25 indexes


class QdrantError(SearcherError):
    """Qdrant refused or could not be reached."""


def _edge():
    try:
        import qdrant_edge
    except ImportError:
        raise SearcherError(f"the qdrant backend needs the qdrant extra: {install_hint('qdrant')}") from None
    return qdrant_edge


def _client_models():
    try:
        import qdrant_client
        from qdrant_client.http import models
    except ImportError:
        raise SearcherError(f"the qdrant backend needs the qdrant extra: {install_hint('qdrant')}") from None
    return qdrant_client, models


@dataclass(frozen=True)
class Scope:
    """Which points a request may see: those of `generation`, from these files and types (None/(): all)."""

    generation: int
    sources: tuple[str, ...] | None = None
    types: tuple[str, ...] = ()  # extensions with the dot, lower case (filters.Where.types)
    word: str = ""  # only points whose lexical text holds this word (to count its document frequency)


@dataclass(frozen=True)
class Found:
    id: int  # the chunk id
    score: float
    payload: dict
    point: int = -1  # the point id (see EPOCH_SHIFT)


def _found(p) -> Found:
    return Found(int(p.payload["id"]), p.score, p.payload, int(p.id))


def _filter_parts(scope: Scope) -> tuple[list[tuple[str, str, Any]], list[tuple[str, str, Any]]]:
    """(must, must_not) as (key, kind, value) triples; each transport builds its own Filter from them."""
    must: list[tuple[str, str, Any]] = [("gen_from", "lte", scope.generation)]
    if scope.sources is not None:
        must.append(("source", "any", list(scope.sources)))
    if scope.types:
        must.append(("ext", "any", list(scope.types)))
    if scope.word:
        must.append((LEXICAL, "text", scope.word))
    return must, [("gen_to", "lte", scope.generation)]


# subtle: an Edge shard locks its write-ahead log, so a process can open it once: every EdgeStore of a process
# shares that one handle (a server's reader of the next generation opens before the previous one closes).
_SHARDS: dict[Path, list] = {}  # path -> [shard, users]
_SHARDS_LOCK = threading.Lock()


class _Store:
    """What the two transports share: `models` is the transport's module of request types (qdrant_edge, or
    qdrant_client.models), `_condition` builds one condition with them."""

    models: Any = None  # the engine's module of types (qdrant_edge, or qdrant_client.models)

    def _condition(self, key: str, kind: str, value) -> Any:
        raise NotImplementedError

    def _filter(self, scope: Scope):
        must, must_not = _filter_parts(scope)
        return self.models.Filter(
            must=[self._condition(*c) for c in must], must_not=[self._condition(*c) for c in must_not]
        )


class EdgeStore(_Store):
    """One embedded Qdrant Edge shard in a folder (qdrant-edge-py): Qdrant's segment and shard code in-process.
    One process at a time may hold a shard: an index served by `searcher serve` is updated by that process only."""

    def __init__(self, path: str) -> None:
        self.models = _edge()
        self.path = Path(path).resolve()
        self.shard: Any = None
        if self.path.is_dir() and any(self.path.iterdir()):
            self._hold(lambda: self.models.EdgeShard.load(str(self.path)))

    def _hold(self, make) -> None:
        with _SHARDS_LOCK:
            if self.path not in _SHARDS:
                try:
                    _SHARDS[self.path] = [make(), 0]
                except Exception as e:  # noqa: BLE001 - the engine raises bare Exception; one line says what
                    busy = "WouldBlock" in str(e)
                    raise QdrantError(
                        f"the Qdrant Edge shard at {self.path} is in use by another process (a searcher server?); "
                        "stop it, or use a Qdrant server with --qdrant-url"
                        if busy
                        else f"cannot open the Qdrant Edge shard at {self.path}: {_line(e)}"
                    ) from None
            _SHARDS[self.path][1] += 1
            self.shard = _SHARDS[self.path][0]

    def where(self) -> str:
        return f"the Qdrant Edge shard at {self.path}"

    def exists(self) -> bool:
        return self.shard is not None

    def create(self, dim: int, coarse_dim: int, quantization: str, shards: int = 0, replicas: int = 0) -> None:
        """An Edge shard is one shard: `shards` and `replicas` are a server's."""
        qe = self.models
        q = {
            "none": None,
            "scalar": qe.ScalarQuantizationConfig(type=qe.ScalarType.Int8, quantile=0.99, always_ram=True),
            "binary": qe.BinaryQuantizationConfig(always_ram=True),
        }[quantization]
        no_graph = qe.HnswIndexConfig(m=0, ef_construct=100, full_scan_threshold=10_000)
        config = qe.EdgeConfig(
            vectors={
                "coarse": qe.EdgeVectorParams(size=coarse_dim, distance=qe.Distance.Cosine, quantization_config=q),
                # on disk like the local backend's memory map: a query reads only the `shortlist` rows it rescores
                "full": qe.EdgeVectorParams(
                    size=dim, distance=qe.Distance.Cosine, hnsw_config=no_graph, memory=qe.Memory.Cold
                ),
            }
        )
        self.path.mkdir(parents=True, exist_ok=True)
        self._hold(lambda: qe.EdgeShard.create(str(self.path), config))
        self.ensure_indexes()

    def ensure_indexes(self) -> None:
        """The payload and text indexes (creating one that exists changes nothing): a sync killed between making
        the shard and its indexes would otherwise leave a shard without them for good."""
        qe = self.models
        stem = qe.SnowballParams(qe.SnowballLanguage.English)
        for name, schema in (
            ("gen_from", qe.IntegerIndexParams(lookup=False, range=True)),
            ("gen_to", qe.IntegerIndexParams(lookup=False, range=True)),
            ("source", qe.KeywordIndexParams()),
            ("ext", qe.KeywordIndexParams()),
            (LEXICAL, qe.TextIndexParams(tokenizer=qe.TokenizerType.Word, lowercase=True, stemmer=stem, scoring=True)),
        ):
            self.shard.update(qe.UpdateOperation.create_field_index(name, schema))

    def _condition(self, key: str, kind: str, value):
        """One (key, kind, value) condition of _filter_parts: kind "any" (a value among), else a range bound."""
        qe = self.models
        if kind == "any":
            return qe.FieldCondition(key=key, match=qe.MatchAny(value))
        if kind == "text":
            return qe.FieldCondition(key=key, match=qe.MatchText(value))
        return qe.FieldCondition(key=key, range=qe.RangeFloat(**{kind: value}))

    def upsert(self, ids, coarse, full, payloads) -> None:
        qe = self.models
        points = [
            qe.Point(int(i), {"coarse": c.tolist(), "full": f.tolist()}, p)
            for i, c, f, p in zip(ids, coarse, full, payloads)
        ]
        self.shard.update(qe.UpdateOperation.upsert_points(points))

    def set_payload(self, ids, payload: dict) -> None:
        self.shard.update(self.models.UpdateOperation.set_payload([int(i) for i in ids], payload))

    def delete_where(self, key: str, kind: str, value: int) -> None:
        """Delete the points whose `key` is in range (kind "gt" or "lte" `value`)."""
        qe = self.models
        doomed = qe.Filter(must=[self._condition(key, kind, value)])
        self.shard.update(qe.UpdateOperation.delete_points_by_filter(doomed))

    def unmark_after(self, generation: int) -> None:
        qe = self.models
        marked = qe.Filter(must=[self._condition("gen_to", "gt", generation)])
        self.shard.update(qe.UpdateOperation.delete_payload_by_filter(marked, ["gen_to"]))

    def ids(self) -> np.ndarray:
        """Every point id but the meta point's, with gen_to unset (not retired)."""
        qe = self.models
        live = qe.Filter(must=[qe.IsEmptyCondition("gen_to")], must_not=[qe.HasIdCondition({META_ID})])
        out: list = []
        offset = None
        while True:
            records, offset = self.shard.scroll(
                qe.ScrollRequest(offset=offset, limit=10_000, filter=live, with_payload=False, with_vector=False)
            )
            out.extend(r.id for r in records)
            if offset is None:
                return np.sort(np.asarray(out, dtype=np.int64))

    def sources(self, generation: int) -> list[str]:
        """Every file the generation holds chunks of."""
        qe = self.models
        request = qe.FacetRequest(key="source", limit=2**31 - 1, exact=True, filter=self._filter(Scope(generation)))
        return [str(h.value) for h in self.shard.facet(request).hits]

    def _params(self, ef: int, exact: bool, oversampling: float | None):
        qe = self.models
        return qe.SearchParams(
            hnsw_ef=ef, exact=exact, quantization=qe.QuantizationSearchParams(rescore=True, oversampling=oversampling)
        )

    def funnel(
        self, qc, qf, shortlist: int, k: int, scope: Scope, ef: int, exact: bool, oversampling: float | None = None
    ) -> list[Found]:
        qe = self.models
        params = self._params(ef, exact, oversampling)
        request = qe.QueryRequest(
            limit=k,
            with_payload=True,
            prefetches=[
                qe.Prefetch(
                    limit=shortlist,
                    query=qe.Query.Nearest(qc.tolist(), using="coarse"),
                    filter=self._filter(scope),
                    params=params,
                )
            ],
            query=qe.Query.Nearest(qf.tolist(), using="full"),
        )
        return [_found(p) for p in self.shard.query(request)]

    def nearest(
        self, q, using: str, k: int, scope: Scope, ef: int, exact: bool, oversampling: float | None = None
    ) -> list[Found]:
        qe = self.models
        params = self._params(ef, exact, oversampling)
        request = qe.QueryRequest(
            limit=k,
            with_payload=True,
            query=qe.Query.Nearest(q.tolist(), using=using),
            filter=self._filter(scope),
            params=params,
        )
        return [_found(p) for p in self.shard.query(request)]

    def text(self, query: str, k: int, scope: Scope) -> list[Found]:
        qe = self.models
        request = qe.QueryRequest(
            limit=k, with_payload=True, query=qe.TextQuery(LEXICAL, query), filter=self._filter(scope)
        )
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
        self.shard.update(self.models.UpdateOperation.upsert_points([self.models.Point(META_ID, {}, payload)]))

    def count(self, scope: Scope) -> int:
        return self.shard.count(self.models.CountRequest(filter=self._filter(scope), exact=True))

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


class ClientStore(_Store):
    """A collection on a Qdrant server or cluster, through qdrant-client (also its local mode: `location`
    ":memory:" or a path, a pure-Python re-implementation used by tests to check request shapes).
    Requests are retried on transient errors; an unreachable server is one clear error."""

    def __init__(self, url: str, collection: str, *, location: str | None = None) -> None:
        qdrant_client, self.models = _client_models()
        self.url, self.collection = url, collection
        if location is not None:
            self.client = (
                qdrant_client.QdrantClient(location=location)
                if location == ":memory:"
                else qdrant_client.QdrantClient(path=location)
            )
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
                    raise QdrantError(
                        f"cannot reach Qdrant at {self.url} ({_line(e)}); start the server or pass "
                        "another --qdrant-url (the local index is up to date: run the same "
                        "command again to sync)"
                    ) from None
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
        m = self.models
        q = {
            "none": None,
            "scalar": m.ScalarQuantization(
                scalar=m.ScalarQuantizationConfig(type=m.ScalarType.INT8, quantile=0.99, always_ram=True)
            ),
            "binary": m.BinaryQuantization(binary=m.BinaryQuantizationConfig(always_ram=True)),
        }[quantization]
        self._call(
            lambda: self.client.create_collection(
                self.collection,
                vectors_config={
                    "coarse": m.VectorParams(size=coarse_dim, distance=m.Distance.COSINE, quantization_config=q),
                    "full": m.VectorParams(
                        size=dim, distance=m.Distance.COSINE, hnsw_config=m.HnswConfigDiff(m=0), on_disk=True
                    ),
                },
                shard_number=shards or None,
                replication_factor=replicas or None,
            )
        )
        self._exists = True
        self.ensure_indexes()

    def ensure_indexes(self) -> None:
        """The payload and text indexes (see EdgeStore.ensure_indexes)."""
        m = self.models
        text = m.TextIndexParams(
            type=m.TextIndexType.TEXT,
            tokenizer=m.TokenizerType.WORD,
            lowercase=True,
            stemmer=m.SnowballParams(type=m.Snowball.SNOWBALL, language=m.SnowballLanguage.ENGLISH),
            scoring=m.TextScoringParams(type=m.TextScoringType.BM25),
        )
        for name, schema in (
            ("gen_from", m.PayloadSchemaType.INTEGER),
            ("gen_to", m.PayloadSchemaType.INTEGER),
            ("source", m.PayloadSchemaType.KEYWORD),
            ("ext", m.PayloadSchemaType.KEYWORD),
            (LEXICAL, text),
        ):
            self._call(lambda name=name, schema=schema: self.client.create_payload_index(self.collection, name, schema))

    def _condition(self, key: str, kind: str, value):
        """One (key, kind, value) condition of _filter_parts: kind "any" (a value among), else a range bound."""
        m = self.models
        if kind == "any":
            return m.FieldCondition(key=key, match=m.MatchAny(any=value))
        if kind == "text":
            return m.FieldCondition(key=key, match=m.MatchText(text=value))
        return m.FieldCondition(key=key, range=m.Range(**{kind: value}))

    def upsert(self, ids, coarse, full, payloads) -> None:
        points = [
            self.models.PointStruct(id=int(i), vector={"coarse": c.tolist(), "full": f.tolist()}, payload=p)
            for i, c, f, p in zip(ids, coarse, full, payloads)
        ]
        self._call(lambda: self.client.upsert(self.collection, points, wait=True))

    def set_payload(self, ids, payload: dict) -> None:
        self._call(lambda: self.client.set_payload(self.collection, payload, points=[int(i) for i in ids], wait=True))

    def delete_where(self, key: str, kind: str, value: int) -> None:
        """Delete the points whose `key` is in range (kind "gt" or "lte" `value`)."""
        selector = self.models.FilterSelector(filter=self.models.Filter(must=[self._condition(key, kind, value)]))
        self._call(lambda: self.client.delete(self.collection, selector, wait=True))

    def unmark_after(self, generation: int) -> None:
        marked = self.models.Filter(must=[self._condition("gen_to", "gt", generation)])
        self._call(lambda: self.client.delete_payload(self.collection, ["gen_to"], points=marked, wait=True))

    def ids(self) -> np.ndarray:
        m = self.models
        live = m.Filter(
            must=[m.IsEmptyCondition(is_empty=m.PayloadField(key="gen_to"))],
            must_not=[m.HasIdCondition(has_id=[META_ID])],
        )
        out: list = []
        offset = None
        while True:
            records, offset = self._call(
                lambda offset=offset: self.client.scroll(
                    self.collection,
                    scroll_filter=live,
                    limit=10_000,
                    offset=offset,
                    with_payload=False,
                    with_vectors=False,
                )
            )
            out.extend(r.id for r in records)
            if offset is None:
                return np.sort(np.asarray(out, dtype=np.int64))

    def _query(self, **request) -> list[Found]:
        response = self._call(lambda: self.client.query_points(self.collection, with_payload=True, **request))
        return [_found(p) for p in response.points]

    def _params(self, ef: int, exact: bool, oversampling: float | None):
        m = self.models
        return m.SearchParams(
            hnsw_ef=ef, exact=exact, quantization=m.QuantizationSearchParams(rescore=True, oversampling=oversampling)
        )

    def sources(self, generation: int) -> list[str]:
        """Every file the generation holds chunks of."""
        response = self._call(
            lambda: self.client.facet(
                self.collection, "source", limit=2**31 - 1, exact=True, facet_filter=self._filter(Scope(generation))
            )
        )
        return [str(h.value) for h in response.hits]

    def funnel(
        self, qc, qf, shortlist: int, k: int, scope: Scope, ef: int, exact: bool, oversampling: float | None = None
    ) -> list[Found]:
        prefetch = self.models.Prefetch(
            query=qc.tolist(),
            using="coarse",
            limit=shortlist,
            filter=self._filter(scope),
            params=self._params(ef, exact, oversampling),
        )
        return self._query(prefetch=prefetch, query=qf.tolist(), using="full", limit=k)

    def nearest(
        self, q, using: str, k: int, scope: Scope, ef: int, exact: bool, oversampling: float | None = None
    ) -> list[Found]:
        return self._query(
            query=q.tolist(),
            using=using,
            limit=k,
            query_filter=self._filter(scope),
            search_params=self._params(ef, exact, oversampling),
        )

    def text(self, query: str, k: int, scope: Scope) -> list[Found]:
        return self._query(
            query=self.models.TextQuery(text=query), using=LEXICAL, limit=k, query_filter=self._filter(scope)
        )

    def full_vectors(self, ids) -> dict[int, np.ndarray]:
        records = self._call(
            lambda: self.client.retrieve(
                self.collection, [int(i) for i in ids], with_payload=False, with_vectors=["full"]
            )
        )
        return {r.id: np.asarray(r.vector["full"], dtype=np.float32) for r in records}

    def meta(self) -> dict | None:
        if not self._exists:
            return None
        records = self._call(lambda: self.client.retrieve(self.collection, [META_ID], with_payload=True))
        return dict(records[0].payload) if records else None

    def generation(self) -> tuple[int, int]:
        """(the generation readers use, its chunk count)."""
        records = self._call(
            lambda: self.client.retrieve(self.collection, [META_ID], with_payload=["generation", "chunks"])
        )
        return (int(records[0].payload["generation"]), int(records[0].payload["chunks"])) if records else (0, 0)

    def set_meta(self, payload: dict) -> None:
        meta = self.models.PointStruct(id=META_ID, vector={}, payload=payload)
        self._call(lambda: self.client.upsert(self.collection, [meta], wait=True))

    def count(self, scope: Scope) -> int:
        return self._call(
            lambda: self.client.count(self.collection, count_filter=self._filter(scope), exact=True)
        ).count

    def finish(self) -> None:
        """Nothing: a server builds its indexes in the background."""

    def close(self) -> None:
        self.client.close()


def _line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return (text[0] if text else type(e).__name__)[:200]


def connect(config: IndexConfig):
    """The transport a config names: an Edge shard (`qdrant_path`) or a server (`qdrant_url`)."""
    if config.qdrant_path:
        return EdgeStore(config.qdrant_path)
    return ClientStore(config.qdrant_url, config.qdrant_collection)
