"""Where an index is searched from: the seam between searcher and the engine that holds its chunks and vectors.

`local` (the default) is the FAISS generation store (store.py, searched by search.py). `qdrant` (qdrant.py) keeps
the same local generation as the indexer's working copy (file diffing, embeddings, projection) and mirrors every
published generation into a Qdrant collection, an embedded Edge shard (`qdrant_path`) or a server
(`qdrant_url`), which then answers the queries: the coarse shortlist, the full-vector rerank, filters and the
lexical side run inside Qdrant, the fusion and per-document grouping are searcher's own, on every backend.

`Backend` is the small interface search.py calls; `open_backend` returns None for local indexes.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from ..config import BACKENDS, IndexConfig  # noqa: F401 - BACKENDS re-exported


class Backend(Protocol):
    """What search.py needs from a remote engine: one query's candidates with their chunk records."""

    def search(self, xq: np.ndarray, texts: list[str] | None, k: int, shortlist: int, mode: str,
               weight: float, adaptive: bool, sources: list[str] | None, types: tuple[str, ...]
               ) -> tuple[np.ndarray, np.ndarray, list, dict[int, dict]]: ...

    def count(self) -> int: ...

    def close(self) -> None: ...


def open_backend(config: IndexConfig):
    """The Backend an index's config names, or None for the local FAISS store."""
    if config.backend == "local":
        return None
    from .qdrant import QdrantBackend

    return QdrantBackend(config)
