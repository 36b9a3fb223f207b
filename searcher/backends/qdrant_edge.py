"""An embedded Qdrant Edge shard in a folder (qdrant-edge-py; one process at a time): qdrant_stores.py."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import numpy as np

from .qdrant_base import LEXICAL, META_ID, Found, QdrantError, Scope, _edge, _found, _line, _Store

log = logging.getLogger(__name__)
# One open shard per folder in this process, shared by its readers and writer: path -> [shard, users]
_SHARDS: dict[Path, list] = {}
_SHARDS_LOCK = threading.Lock()


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
