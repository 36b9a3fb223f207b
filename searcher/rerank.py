"""A reranking stage: a sentence-transformers CrossEncoder re-scores the top `depth` hits of a search (the query
and each hit's passage read together), and those hits are put in its order; the rest keep theirs below them.

Off unless asked (`Searcher.search(..., rerank=...)`, `searcher query --rerank [MODEL]`, HTTP and MCP `rerank`):
it loads torch and a second model, and costs one cross-encoder pass over `depth` pairs per query. A hit keeps its
calibrated `score` (the probability the first stage estimated) and gains `rerank_score`, the cross-encoder's raw
output: comparable within a query only. Left out: an ONNX or int8 path for the cross-encoder (the bi-encoder's
measured choice, encoder_choice.py, is not applied here), and training one (`searcher finetune --reranker`).
"""

from __future__ import annotations

import dataclasses
import logging
import threading

import numpy as np

from .encoder import no_progress_bars, resolve_model
from .errors import ModelError

log = logging.getLogger(__name__)

DEFAULT_RERANKER = "cross-encoder/ms-marco-MiniLM-L6-v2"  # what `--rerank` alone asks for, where a user has it
DEFAULT_DEPTH = 30  # hits re-scored per query
_LOADED: dict[str, Reranker] = {}
_LOCK = threading.Lock()


class Reranker:
    """One CrossEncoder, loaded once (`reranker(name)` keeps one per name for the process)."""

    def __init__(self, name: str) -> None:
        canonical, target = resolve_model(name)
        self.name = canonical
        try:
            from sentence_transformers import CrossEncoder

            with no_progress_bars():
                self.model = CrossEncoder(target, device="cpu", local_files_only=True)
        except (OSError, ValueError, RuntimeError, KeyError) as e:
            reason = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
            raise ModelError(
                f"could not load reranker {name!r} ({reason}); pass a local CrossEncoder directory or a name "
                "available offline, or leave --rerank out"
            ) from None

    def scores(self, query: str, passages: list[str]) -> np.ndarray:
        if not passages:
            return np.empty(0, dtype=np.float32)
        with no_progress_bars():
            out = self.model.predict([(query, p) for p in passages], batch_size=32, show_progress_bar=False)
        return np.asarray(out, dtype=np.float32).reshape(len(passages), -1)[:, 0]


def reranker(name: str | Reranker) -> Reranker:
    if isinstance(name, Reranker):
        return name
    with _LOCK:
        if name not in _LOADED:
            _LOADED[name] = Reranker(name)
        return _LOADED[name]


def rerank(model: Reranker, query: str, hits: list, depth: int = DEFAULT_DEPTH) -> list:
    """The first `depth` hits in the cross-encoder's order (each with its `rerank_score`), then the rest."""
    if depth < 1:
        raise ModelError(f"rerank depth must be at least 1, got {depth}")
    head, tail = hits[:depth], hits[depth:]
    scores = model.scores(query, [h.text for h in head])
    order = np.argsort(-scores, kind="stable")
    return [dataclasses.replace(head[i], rerank_score=float(scores[i])) for i in order] + list(tail)
