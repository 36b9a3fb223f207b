"""The two ways searcher talks to Qdrant, behind one interface (qdrant.py says what is stored and why).

`EdgeStore`: an embedded Qdrant Edge shard in a folder (qdrant-edge-py, Qdrant's own segment and shard code
in-process; one process at a time). `ClientStore`: a collection on a Qdrant server or cluster through
qdrant-client, retried on transient errors; its pure-Python local mode serves tests that check request shapes,
never as the engine. Both take a `Scope` (the generation readers use, and a filter's files and types) and return
`Found` points with their chunk records.
"""

from __future__ import annotations

from ..config import IndexConfig
from .qdrant_base import (  # noqa: F401 - re-exported: the interface both transports share
    LEXICAL,
    META_ID,
    Found,
    QdrantError,
    Scope,
)
from .qdrant_edge import EdgeStore
from .qdrant_server import ClientStore


def connect(config: IndexConfig):
    """The transport a config names: an Edge shard (`qdrant_path`) or a server (`qdrant_url`)."""
    if config.qdrant_path:
        return EdgeStore(config.qdrant_path)
    return ClientStore(config.qdrant_url, config.qdrant_collection)
