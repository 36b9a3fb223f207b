"""Where an index is searched from: the seam between searcher and the engine that holds its chunks and vectors.

`local` (the default, local.py) is the FAISS generation store (store.py) searched in-process. `qdrant` (qdrant.py) keeps
the same local generation as the indexer's working copy (file diffing, embeddings, projection) and mirrors every
published generation into a Qdrant collection, an embedded Edge shard (`qdrant_path`) or a server
(`qdrant_url`), which then answers the queries: the coarse shortlist, the full-vector rerank, filters and the
lexical side run inside Qdrant, the fusion and per-document grouping are searcher's own, on every backend.

`Backend` is the small interface search.py calls; `open_backend` picks an index's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

import numpy as np

from ..filters import Where
from ..store import StoredIndex


class Backend(Protocol):
    """What search.Searcher needs from where an index's chunks live."""

    def search(
        self,
        xq: np.ndarray | None,
        texts: list[str] | None,
        k: int,
        shortlist: int,
        mode: str,
        weight: float,
        where: Where | None,
    ) -> tuple[np.ndarray, np.ndarray, list, Mapping[int, dict]]:
        """(D, I, [(lexical hits, best dense score)] per query, {chunk id: record} of every id in I). xq:
        normalised query vectors in the model's frame (None for mode="lexical"); `where` is applied inside the
        search, so k hits come back whenever k chunks match."""

    def doc_freqs(self, words: list[str]) -> tuple[int, list[int]] | None:
        """(chunks, chunks holding each analysed word), for calibrated scores; None when not known."""

    def cosines(self, q: np.ndarray, ids: np.ndarray) -> np.ndarray:
        """Full-vector scores of chunk ids with one normalised query vector, for calibrated scores."""

    def close(self) -> None: ...


def open_backend(index: StoredIndex) -> Backend:
    """The backend an open generation's config names (or a qdrant.RemoteIndex's)."""
    if index.manifest.config.backend == "qdrant":
        from .qdrant import QdrantBackend

        return QdrantBackend(index.manifest.config, files=index.files)  # (a RemoteIndex's is None: no file table)
    from .local import LocalBackend

    return LocalBackend(index)
