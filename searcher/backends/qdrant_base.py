"""What both Qdrant transports share (qdrant_stores.py): the scope of a request, the points found, errors."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from ..errors import SearcherError, install_hint

log = logging.getLogger(__name__)


META_ID = 2**63 - 1  # the meta point: no vectors; the manifest, the rotation and the generation readers use
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


def _line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return (text[0] if text else type(e).__name__)[:200]
