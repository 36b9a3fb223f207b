"""A collection on a Qdrant server or cluster through qdrant-client, retried on transient errors:
qdrant_stores.py."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import numpy as np

from .qdrant_base import (
    LEXICAL,
    META_ID,
    Found,
    QdrantError,
    Scope,
    _client_models,
    _found,
    _line,
    _Store,
)

log = logging.getLogger(__name__)
RETRIES = 4  # attempts per request to a server, with exponential back-off from RETRY_WAIT seconds
RETRY_WAIT = 0.5


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
