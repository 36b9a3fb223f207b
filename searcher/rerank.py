"""A reranking stage: a sentence-transformers CrossEncoder re-scores the top `depth` hits of a search (the query
and each hit's passage read together), and those hits are put in its order; the rest keep theirs below them.

Off unless asked (`Searcher.search(..., rerank=...)`, `searcher query --rerank [MODEL]`, HTTP and MCP `rerank`):
it loads a second model and costs one cross-encoder pass over `depth` pairs per query. A hit keeps its calibrated
`score` (the probability the first stage estimated) and gains `rerank_score`, the stage's ordering score: the
cross-encoder's raw output, comparable within a query only - or, for a reranker that carries a blend weight
(BLEND_FILE, written by `searcher finetune --reranker`, chosen on its held-out training queries), a blend of the two
stages, so a reranker trained on little data corrects the first stage instead of replacing it: (1 - blend) x the
first stage's log-odds + blend x the cross-encoder's output, each standardised over the query's re-scored hits
(form "z"; see `blended`). It reads the passage around each hit's matching sentences (PASSAGE_CHARS), on the path
measured fastest on this CPU (see FASTER below; torch, bf16 autocast, an ONNX graph or its int8 version).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from pathlib import Path

import numpy as np
import orjson

from .atomic import write_atomic
from .encoder import no_progress_bars, resolve_model
from .errors import ModelError
from .machine import cpu_has_bf16, cpu_name
from .metrics import top_overlap
from .rerank_graph import CHOICE, GraphError, GraphScorer, export_reranker, graph_dir

log = logging.getLogger(__name__)

DEFAULT_RERANKER = "cross-encoder/ms-marco-MiniLM-L6-v2"  # what `--rerank` alone asks for, where a user has it
DEFAULT_DEPTH = 30  # hits re-scored per query
# What the cross-encoder reads of a hit: the passage around its matching sentences, up to this many characters (the
# whole chunk costs several times as much: RESULTS.md, rerank).
PASSAGE_CHARS = 480
# The path that scores is chosen on a reranker's first query on a machine, by measurement on that query's pairs:
# the model in float32, under bfloat16 autocast where the CPU has it, its exported ONNX graph and the graph's int8
# version (rerank_graph.py; local reranker directories only). A path must be FASTER times as quick as float32 and
# score like it: within MAX_DIFF of its logits (float paths), or, for int8, sharing INT8_MIN_AGREEMENT of the
# top 10 (the bi-encoder's rules, encoder_choice.py, in a cross-encoder's units). The choice is kept with the
# graphs, per CPU, so a later process with an ONNX choice scores without importing torch (RESULTS.md, rerank).
FASTER = 1.1
MAX_DIFF = 0.02
INT8_MIN_AGREEMENT = 0.9
PATHS = ("torch", "torch-bf16", "onnx", "onnx-int8")
MEASURE_PAIRS = 10  # the choice waits for a query with at least this many pairs (until then: float32)
# Pairs per forward pass, longest first: a batch is padded to its longest pair, and a hit's passage is mostly short
# with a few long ones, so small batches waste the least (RESULTS.md, rerank: p50 by batch size).
BATCH = 8
BLEND_FILE = "searcher-rerank.json"  # in a reranker's directory: {"blend": the reranker's weight, "form": ..., ...}
# How the stages are blended (`blended`): "z", each stage's scores standardised over the query's hits, which new
# trainings write; "probability", a blend of the two probabilities, which a blend file without a form means (the
# rerankers trained before "z"). "z" was chosen on SciFact dev queries, where the probability blend's weight did not
# carry over from one bi-encoder to another: their scores' scales differ (RESULTS.md, rerank-quality).
BLEND_FORMS = ("z", "probability")
_LOADED: dict[str, Reranker] = {}
_LOCK = threading.Lock()


class Reranker:
    """One CrossEncoder, loaded once (`reranker(name)` keeps one per name for the process). `path`: how it scores
    (PATHS), chosen on the first call or remembered from an earlier process on this CPU."""

    def __init__(self, name: str) -> None:
        canonical, target = resolve_model(name)
        self.name, self._target, self._requested = canonical, target, name
        self.blend, self.form = read_blend(target)
        self.graphs = graph_dir(target)
        self.path: str | None = None
        self.timings: dict[str, float] = {}  # ms per candidate on the first query's pairs, when measured here
        self.model = None
        self._graphs: dict[str, GraphScorer] = {}  # the ONNX paths' scorers: all while measuring, then the chosen
        self._lock = threading.Lock()
        remembered = self._remembered()
        if remembered in ("onnx", "onnx-int8") and self.graphs is not None:
            try:
                self._graphs = {remembered: GraphScorer(self.graphs, int8=remembered == "onnx-int8")}
                self.path = remembered
            except (GraphError, OSError, ValueError, KeyError) as e:
                log.info("reranker graph unusable (%s): measuring again", e)
        if self.path is None:
            self.model = load_cross_encoder(self._target, self._requested)
            self.path = remembered if remembered in ("torch", "torch-bf16") else None

    def order_scores(self, hits: list, raw: np.ndarray) -> np.ndarray:
        """What the stage orders by: the raw output, or its blend with the first stage (`blended`, self.form)."""
        if self.blend >= 1.0:
            return raw
        return blended(np.array([h.score for h in hits]), raw, self.blend, self.form)

    def scores(self, query: str, passages: list[str]) -> np.ndarray:
        if not passages:
            return np.empty(0, dtype=np.float32)
        pairs = [(query, p) for p in passages]
        if self.path is None and len(pairs) < MEASURE_PAIRS:
            return self._score(pairs, "torch")  # too few to time the paths on, or to compare their top 10
        if self.path is None:
            with self._lock:
                if self.path is None:
                    self.path = self._choose(pairs)
        return self._score(pairs, self.path)

    def _score(self, pairs: list[tuple[str, str]], path: str) -> np.ndarray:
        if path.startswith("onnx"):
            return self._graphs[path].logits(pairs, BATCH)
        import torch

        return raw_scores(
            self.model, pairs, torch.autocast("cpu", dtype=torch.bfloat16) if path == "torch-bf16" else None
        )

    def _remembered(self) -> str | None:
        if self.graphs is None:
            return None
        try:
            choice = orjson.loads((self.graphs / CHOICE).read_bytes()).get(cpu_name(), {}).get("choice")
        except (OSError, orjson.JSONDecodeError, AttributeError):
            return None
        return choice if choice in PATHS else None

    def _choose(self, pairs: list[tuple[str, str]]) -> str:
        """The fastest path that scores like float32 on these pairs (see FASTER), remembered for this CPU."""
        if self.graphs is not None:
            try:
                if not (self.graphs / "graph.json").is_file():
                    export_reranker(self.model, self.graphs, lambda p: raw_scores(self.model, p))
                self._graphs = {"onnx": GraphScorer(self.graphs), "onnx-int8": GraphScorer(self.graphs, int8=True)}
            except (GraphError, OSError, ValueError, ImportError) as e:
                log.info("reranker %s: no ONNX graph (%s)", self.name, e)
        candidates = ["torch"] + (["torch-bf16"] if cpu_has_bf16() else []) + list(self._graphs)
        scores: dict[str, np.ndarray] = {}
        for path in candidates:
            self._score(pairs[:2], path)  # warm-up: first-call allocations
            started = time.perf_counter()
            scores[path] = self._score(pairs, path)
            self.timings[path] = round(1000 * (time.perf_counter() - started), 1)
        eligible = [
            path
            for path in candidates
            if path == "torch"
            or self.timings["torch"] >= FASTER * self.timings[path]
            and (
                top_overlap([_ranking(scores["torch"])], [_ranking(scores[path])]) >= INT8_MIN_AGREEMENT
                if path == "onnx-int8"
                else float(np.abs(scores["torch"] - scores[path]).max()) <= MAX_DIFF
            )
        ]
        chosen = min(eligible, key=lambda path: self.timings[path])
        self._graphs = {chosen: self._graphs[chosen]} if chosen in self._graphs else {}
        if chosen.startswith("onnx"):
            self.model = None  # the graph scores from now on
        log.info("reranker %s: %s -> %s", self.name, self.timings, chosen)
        if self.graphs is not None and self.graphs.is_dir():
            remember_choice(self.graphs, {"choice": chosen, "ms": self.timings, "pairs": len(pairs)})
        return chosen


def load_cross_encoder(target: str, requested: str | None = None):
    """The sentence-transformers CrossEncoder at `target` (a resolved path or name), on the CPU, offline; a model
    that will not load is one ModelError naming what was asked for (`requested`)."""
    try:
        from sentence_transformers import CrossEncoder

        with no_progress_bars():
            return CrossEncoder(target, device="cpu", local_files_only=True)
    except (OSError, ValueError, RuntimeError, KeyError) as e:
        reason = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
        raise ModelError(
            f"could not load reranker {requested or target!r} ({reason}); pass a local CrossEncoder directory or a "
            "name available offline, or leave --rerank out"
        ) from None


def _ranking(scores: np.ndarray) -> list[tuple[str, float]]:
    return [(str(i), float(s)) for i, s in enumerate(scores)]


def blended(first: np.ndarray, raw: np.ndarray, blend: float, form: str = "z") -> np.ndarray:
    """The order of one query's re-scored hits: `first`, the first stage's probabilities, and `raw`, the reranker's
    logits, blended with the reranker's weight `blend` (BLEND_FORMS). "z": (1 - blend) x z(logit(first)) + blend x
    z(raw), z standardising over the query's hits, so that neither model's scale decides; "probability":
    (1 - blend) x first + blend x sigmoid(raw)."""
    first, raw = first.astype(np.float64), raw.astype(np.float64)
    if form == "probability":
        return (1.0 - blend) * first + blend / (1.0 + np.exp(-raw))
    return (1.0 - blend) * standardised_log_odds(first) + blend * _standardised(raw)


def standardised_log_odds(first: np.ndarray) -> np.ndarray:
    """The first stage's probabilities for one query's hits as "z" blends them: log-odds, standardised over the
    hits."""
    p = np.clip(first.astype(np.float64), 1e-6, 1 - 1e-6)
    return _standardised(np.log(p / (1 - p)))


def _standardised(x: np.ndarray) -> np.ndarray:
    spread = x.std()
    return (x - x.mean()) / spread if spread > 0 else np.zeros_like(x)


def remember_choice(graphs: Path, record: dict) -> None:
    """Keep a measured choice in the graphs' folder, per CPU (a shared home may serve several machines)."""
    try:
        known = orjson.loads((graphs / CHOICE).read_bytes())
    except (OSError, orjson.JSONDecodeError):
        known = {}
    known[cpu_name()] = record
    try:
        write_atomic(graphs / CHOICE, orjson.dumps(known, option=orjson.OPT_INDENT_2))
    except OSError as e:
        log.info("could not remember the reranker's path (%s)", e)


def raw_scores(model, pairs: list[tuple[str, str]], context=None) -> np.ndarray:
    """A CrossEncoder's first output for each pair, before any activation: a model saved with a sigmoid (as
    sentence-transformers saves a fresh one-label head) and one saved without give the same kind of number."""
    import torch

    with no_progress_bars(), context or contextlib.nullcontext():
        out = model.predict(pairs, batch_size=BATCH, show_progress_bar=False, activation_fn=torch.nn.Identity())
    return np.asarray(out, dtype=np.float32).reshape(len(pairs), -1)[:, 0]


def read_blend(target: str) -> tuple[float, str]:
    """The blend weight and form a reranker's directory carries (1.0, the cross-encoder alone, when it carries
    none; the form "probability" when the file names none: it was written before there were forms)."""
    path = Path(target) / BLEND_FILE
    try:
        record = orjson.loads(path.read_bytes())
        blend, form = float(record["blend"]), record.get("form", "probability")
    except FileNotFoundError:
        return 1.0, "z"
    except (OSError, ValueError, KeyError, TypeError, AttributeError, orjson.JSONDecodeError) as e:
        raise ModelError(
            f"{path} is not a valid blend file ({e}); delete it or retrain with `searcher finetune --reranker`"
        ) from None
    if not 0.0 <= blend <= 1.0 or form not in BLEND_FORMS:
        raise ModelError(
            f"{path}: blend {blend} ({form!r}) is not a weight in [0, 1] of a form in {BLEND_FORMS}; delete it or "
            "retrain with `searcher finetune --reranker`"
        )
    return blend, form


def write_blend(directory: Path | str, blend: float, **details) -> None:
    """Write a reranker's blend (BLEND_FILE) in today's form ("z"), with what chose it (`details`)."""
    record = {"blend": blend, "form": "z", **details}
    write_atomic(Path(directory) / BLEND_FILE, orjson.dumps(record, option=orjson.OPT_INDENT_2))


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
    head = hits[: check_depth(depth)]
    order, scores = rerank_order(model, query, head, [passage(h) if passage else h.text for h in head])
    return [head[i].replace(rerank_score=float(scores[i])) for i in order] + list(hits[depth:])


def rerank_order(model: Reranker, query: str, head: list, passages: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(the positions of the hits `head` in the stage's order, their ordering scores by position); the
    cross-encoder reads `passages`, one per hit."""
    scores = model.order_scores(head, model.scores(query, passages))
    return np.argsort(-scores, kind="stable"), scores


def check_depth(depth: int) -> int:
    if depth < 1:
        raise ModelError(f"rerank depth must be at least 1, got {depth}")
    return depth
