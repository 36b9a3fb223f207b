"""searcher: local semantic search with a coarse Matryoshka shortlist and a full-dimension rerank.

    from searcher import build_index, Searcher
    build_index("docs/", "indexes/default")
    for hit in Searcher("indexes/default").search("how do I ...", k=5):
        print(hit.score, hit.source, hit.text[:80])

Names are imported on first use (PEP 562), so `import searcher` - and `searcher --help` - load neither
numpy nor faiss nor torch. (`evaluate` is used as `from searcher.evaluate import evaluate`: a package-level
name would clash with the module.)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.3.0"

_EXPORTS = {
    "IndexConfig": "config",
    "FinetuneConfig": "config",
    "EvalReport": "evaluate",
    "finetune": "train",
    "FinetuneReport": "model_card",
    "SearcherError": "errors",
    "IndexNotFoundError": "errors",
    "IndexFormatError": "errors",
    "IndexBusyError": "errors",
    "ModelError": "errors",
    "InvalidInputError": "errors",
    "build_index": "indexer",
    "existing_config": "indexer",
    "remove_from_index": "upkeep",
    "update_index": "upkeep",
    "delete_index": "upkeep",
    "watch": "watch",
    "named_indexes": "home",
    "IndexReport": "indexer",
    "Searcher": "search",
    "search_many": "search",
    "Hit": "hits",
    "Hits": "hits",
    "Where": "filters",
    "open_index": "store",
    "load_encoder": "encoder",
}
__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:  # pragma: no cover
    from .config import FinetuneConfig, IndexConfig
    from .encoder import load_encoder
    from .errors import (
        IndexBusyError,
        IndexFormatError,
        IndexNotFoundError,
        InvalidInputError,
        ModelError,
        SearcherError,
    )
    from .evaluate import EvalReport
    from .filters import Where
    from .hits import Hit, Hits
    from .home import named_indexes
    from .indexer import IndexReport, build_index, existing_config
    from .model_card import FinetuneReport
    from .search import Searcher, search_many
    from .store import open_index
    from .train import finetune
    from .upkeep import delete_index, remove_from_index, update_index
    from .watch import watch


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'searcher' has no attribute {name!r}")
