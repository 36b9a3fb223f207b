"""A reranking stage: a sentence-transformers CrossEncoder re-scores the top `depth` hits of a search (the query
and each hit's passage read together), and those hits are put in its order; the rest keep theirs below them.

Off unless asked (`Searcher.search(..., rerank=...)`, `searcher query --rerank [MODEL]`, HTTP and MCP `rerank`):
it loads torch and a second model, and costs one cross-encoder pass over `depth` pairs per query. A hit keeps its
calibrated `score` (the probability the first stage estimated) and gains `rerank_score`, the stage's ordering
score: the cross-encoder's raw output, comparable within a query only - or, for a reranker that carries a blend
weight (BLEND_FILE, written by `searcher finetune --reranker`, chosen on its held-out training queries),
(1 - blend) * score + blend * sigmoid(output), so a reranker trained on little data corrects the first stage
instead of replacing it. It reads the passage around each hit's matching sentences
(PASSAGE_CHARS), under bfloat16 autocast where the CPU has it and it measures faster with the same scores. Left out:
an ONNX or int8 path for the cross-encoder, and training one (`searcher finetune --reranker`).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from pathlib import Path

import numpy as np

from .encoder import no_progress_bars, resolve_model
from .errors import ModelError
from .machine import cpu_has_bf16

log = logging.getLogger(__name__)

DEFAULT_RERANKER = "cross-encoder/ms-marco-MiniLM-L6-v2"  # what `--rerank` alone asks for, where a user has it
DEFAULT_DEPTH = 30  # hits re-scored per query
# What the cross-encoder reads of a hit: the passage around its matching sentences, up to this many characters (the
# whole chunk costs several times as much: RESULTS.md, rerank).
PASSAGE_CHARS = 480
# bfloat16 autocast is used where the CPU has it natively, if it is this much faster on the first pairs and its scores
# stay this close to float32's (the bi-encoder's rule, encoder_choice.faster_and_close, in a cross-encoder's units).
BF16_FASTER = 1.1
BF16_MAX_DIFF = 0.02
BLEND_FILE = "searcher-rerank.json"  # in a reranker's directory: {"blend": weight of its probability, ...}
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

        self.bf16: bool | None = None  # chosen on the first call (_choose)
        self.blend = read_blend(target)

    def order_scores(self, hits: list, raw: np.ndarray) -> np.ndarray:
        """What the stage orders by: the raw output, or its blend with the first stage's probability."""
        if self.blend >= 1.0:
            return raw
        first = np.array([h.score for h in hits], dtype=np.float64)
        return (1.0 - self.blend) * first + self.blend / (1.0 + np.exp(-raw.astype(np.float64)))

    def scores(self, query: str, passages: list[str]) -> np.ndarray:
        if not passages:
            return np.empty(0, dtype=np.float32)
        pairs = [(query, p) for p in passages]
        if self.bf16 is None:
            self.bf16 = self._choose(pairs)
        return self._predict(pairs, self.bf16)

    def _predict(self, pairs: list[tuple[str, str]], bf16: bool) -> np.ndarray:
        import contextlib

        import torch

        context = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
        return raw_scores(self.model, pairs, context)

    def _choose(self, pairs: list[tuple[str, str]]) -> bool:
        """bfloat16 autocast or float32, by measurement on these pairs (see BF16_FASTER)."""
        if not cpu_has_bf16():
            return False
        self._predict(pairs[:2], False)  # warm both paths
        self._predict(pairs[:2], True)
        started = time.perf_counter()
        exact = self._predict(pairs, False)
        fp32 = time.perf_counter() - started
        started = time.perf_counter()
        fast = self._predict(pairs, True)
        bf16 = time.perf_counter() - started
        chosen = fp32 >= BF16_FASTER * bf16 and float(np.abs(exact - fast).max()) <= BF16_MAX_DIFF
        log.info(
            "reranker %s: float32 %.0f ms, bf16 %.0f ms -> %s",
            self.name,
            1000 * fp32,
            1000 * bf16,
            "bf16" if chosen else "float32",
        )
        return chosen


def raw_scores(model, pairs: list[tuple[str, str]], context=None) -> np.ndarray:
    """A CrossEncoder's first output for each pair, before any activation: a model saved with a sigmoid (as
    sentence-transformers saves a fresh one-label head) and one saved without give the same kind of number."""
    import contextlib

    import torch

    with no_progress_bars(), context or contextlib.nullcontext():
        out = model.predict(pairs, batch_size=32, show_progress_bar=False, activation_fn=torch.nn.Identity())
    return np.asarray(out, dtype=np.float32).reshape(len(pairs), -1)[:, 0]


def read_blend(target: str) -> float:
    """The blend weight a reranker's directory carries (1.0, the cross-encoder alone, when it carries none)."""
    import orjson

    path = Path(target) / BLEND_FILE
    try:
        blend = float(orjson.loads(path.read_bytes())["blend"])
    except FileNotFoundError:
        return 1.0
    except (OSError, ValueError, KeyError, TypeError, orjson.JSONDecodeError) as e:
        raise ModelError(
            f"{path} is not a valid blend file ({e}); delete it or retrain with `searcher finetune --reranker`"
        ) from None
    if not 0.0 <= blend <= 1.0:
        raise ModelError(
            f"{path}: blend {blend} is outside [0, 1]; delete it or retrain with `searcher finetune --reranker`"
        )
    return blend


def reranker(name: str | Reranker) -> Reranker:
    if isinstance(name, Reranker):
        return name
    with _LOCK:
        if name not in _LOADED:
            _LOADED[name] = Reranker(name)
        return _LOADED[name]


def rerank(model: Reranker, query: str, hits: list, depth: int = DEFAULT_DEPTH, passage=None) -> list:
    """The first `depth` hits in the cross-encoder's order (each with its `rerank_score`), then the rest.
    `passage(hit)`: what the cross-encoder reads of a hit (default: its whole text)."""
    if depth < 1:
        raise ModelError(f"rerank depth must be at least 1, got {depth}")
    head, tail = hits[:depth], hits[depth:]
    scores = model.order_scores(head, model.scores(query, [passage(h) if passage else h.text for h in head]))
    order = np.argsort(-scores, kind="stable")
    return [dataclasses.replace(head[i], rerank_score=float(scores[i])) for i in order] + list(tail)
