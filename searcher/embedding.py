"""The embedding step of an indexing run: vectors for the chunks no generation or cache holds (on the path
measured fastest on this CPU, the index's ONNX graph for a small edit, or a Ray cluster), and the index's
torch-free query encoder."""

from __future__ import annotations

import logging
import os
import random
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .cache import FLOAT, INT8, EmbeddingCache, kind_of, text_key
from .calibration import MIN_FIT_QUERIES, REFERENCE_MODEL, fit_cosine_map
from .chunking import query_sentences
from .config import Progress
from .encoder import (
    Encoder,
    SentenceTransformerEncoder,
)
from .encoder_choice import choose_document_encoder, small_edit_limit, worth_remeasuring
from .generation import Plan
from .home import (
    adopt_encoder,
    remember_choice,
    remembered_choice,
    remembered_start,
    share_encoder,
)
from .model_info import CosineMap, normalize_rows
from .onnx_encoder import ExportError, export_onnx, exported_with_model
from .report import IndexReport
from .store import (
    Manifest,
)

log = logging.getLogger(__name__)


def export_query_encoder(
    index_dir: Path, model: Callable[[], Encoder], current: Manifest | None, export: bool, report: IndexReport
) -> str | None:
    """The directory name of the index's torch-free query encoder: the current one, or a new export (the model
    is loaded only then)."""
    if current is not None and current.query_encoder and (index_dir / current.query_encoder).is_dir():
        return current.query_encoder
    if not export:
        return None
    encoder = model()
    if not isinstance(encoder, SentenceTransformerEncoder):
        return None
    name = "encoder-" + encoder.info.weights_id()
    if (index_dir / name / "encoder.json").is_file():  # exported by an earlier run of the same model
        return name
    if adopt_encoder(index_dir / name):  # another index of this model exported it: share its copy
        return name
    carried = exported_with_model(encoder.info)
    if carried is not None:  # a fine-tuned model brings its own export: copy it, then switch it in
        shutil.copytree(carried, index_dir / (name + ".tmp"), dirs_exist_ok=True)
        os.replace(index_dir / (name + ".tmp"), index_dir / name)
    else:
        try:
            export_onnx(encoder, index_dir / name)
        except ExportError as e:
            report.warnings.append(f"could not export the model for torch-free queries ({e}); queries will load torch")
            return None
    share_encoder(index_dir / name)
    return name


def embed_missing(
    model: Callable[[], Encoder],
    index_dir: Path,
    plan: Plan,
    pending: EmbeddingCache,
    report: IndexReport,
    progress: Progress,
    previous: dict | None,
    workers=None,
    small: Encoder | None = None,
) -> None:
    """Embed every chunk not found in the previous generation or the pending cache, saving as we go (on a Ray
    cluster when there are `workers`; with `small`, the index's ONNX graph, when so little is to be embedded that
    loading torch would cost more than the graph's slower rate: small_edit_limit)."""
    config, keys = plan.config, plan.keys
    # The pending cache keys vectors by the kind of path that made them (cache.py): what a float run must embed
    # (`todo`) may be more than what an int8 run must (`unmade`, not cached at all).
    todo: dict[str, str] = {}
    for chunk, key in zip(plan.new_chunks, keys):
        if key not in plan.reusable and not pending.has(key, (FLOAT,)) and key not in todo:
            todo[key] = chunk.embedding_input
    unmade = {k: t for k, t in todo.items() if k not in pending}
    # Longest first, as sentence-transformers itself sorts, so batches hold texts of similar length (less
    # padding); each batch is saved to the pending cache before the next one starts, so a killed run loses at
    # most the batch in flight.
    batch_size = config.batch_size
    plan.document_encoder = previous
    report.embedded, report.reused = len(unmade), sum(1 for k in keys if k not in unmade)
    if not todo:
        return
    started = time.perf_counter()
    if workers is not None:
        kind = INT8 if any(kind_of(p) == INT8 for p in workers.paths) else FLOAT
        todo = unmade if kind == INT8 else todo
        order = sorted(todo, key=lambda k: len(todo[k]), reverse=True)
        progress("embed", 0, len(order))
        for start, x in workers.embed([todo[k] for k in order], batch_size):
            pending.add(order[start : start + len(x)], x, kind)
            progress("embed", start + len(x), len(order))
        report.embedded_with = "ray: " + ", ".join(sorted(workers.paths))
        report.embedded, report.reused = len(todo), sum(1 for k in keys if k not in todo)
        report.seconds["embed"] = time.perf_counter() - started
        return
    weights = plan.model.weights_id()
    # The index's documents were embedded with int8 on this CPU: so is an update too small to measure the paths
    # again (the full path would load torch only to keep int8; encoder_choice.embeds_small_edits_in_int8).
    small_int8 = getattr(small, "int8", False)
    if small_int8:
        on_graph = not worth_remeasuring(previous or {}, len(todo))
    else:
        known, load_seconds = previous or remembered_choice(weights), remembered_start(weights)
        on_graph = small is not None and len(todo) <= small_edit_limit(known, load_seconds, batch_size)
    if on_graph:
        assert small is not None
        kind = INT8 if small_int8 else FLOAT
        todo = unmade if kind == INT8 else todo
        report.embedded, report.reused = len(todo), sum(1 for k in keys if k not in todo)
        order = sorted(todo, key=lambda k: len(todo[k]), reverse=True)
        progress("embed", 0, len(order))
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            pending.add(batch, small.encode_documents([todo[k] for k in batch], batch_size=batch_size), kind)
            progress("embed", min(start + batch_size, len(order)), len(order))
        report.embedded_with = f"{'onnx-int8' if small_int8 else 'onnx'}: the index's graph, torch not loaded"
        report.seconds["embed"] = time.perf_counter() - started
        return
    measure_on = sorted((unmade or todo).values(), key=len, reverse=True)
    choice = choose_document_encoder(
        model(),
        index_dir / plan.query_encoder if plan.query_encoder else None,
        measure_on,
        batch_size,
        previous or remembered_choice(weights),
        progress,
    )
    report.embedded_with = choice.name
    plan.document_encoder = choice.record
    kind = kind_of(choice.name)
    todo = unmade if kind == INT8 else todo
    report.embedded, report.reused = len(todo), sum(1 for k in keys if k not in todo)
    order = sorted(todo, key=lambda k: len(todo[k]), reverse=True)
    progress("embed", 0, len(order))
    sampled = 0
    # A choice that measured: later new indexes of this model on this CPU need not, and the float vectors the
    # measurement made (of the texts it timed, and of those int8's retrieval check embedded) are kept.
    if choice.sample is not None and choice.record is not None:
        remember_choice(weights, choice.record)
        made = dict(zip(*choice.sample))  # position in measure_on -> float vector
        if choice.checked is not None:
            made.update(zip(*choice.checked))
        keys = [text_key(measure_on[i]) for i in made]  # a key is its text's hash
        pending.add(keys, np.stack(list(made.values())), FLOAT)
        done = set(keys)
        sampled = len(order)
        order = [k for k in order if k not in done]
        sampled -= len(order)
    for start in range(0, len(order), batch_size):
        batch = order[start : start + batch_size]
        if batch:
            pending.add(batch, choice.encoder.encode_documents([todo[k] for k in batch], batch_size=batch_size), kind)
        progress("embed", min(sampled + start + batch_size, len(todo)), len(todo))
    progress("embed", len(todo), len(todo))
    report.seconds["embed"] = time.perf_counter() - started


SCALE_CHUNKS = 128  # chunks a cosine map is fitted over: each pseudo-query against all of them
SCALE_QUERIES = 48  # pseudo-queries (a sentence of one of those chunks each)


def needs_cosine_map(encoder: Encoder | None) -> bool:
    """Whether an index embedded by `encoder` gets a model_info.CosineMap: a real model other than the reference."""
    return isinstance(encoder, SentenceTransformerEncoder) and encoder.info.name != REFERENCE_MODEL


def fit_cosine_scale(
    encoder: Encoder,
    plan: Plan,
    pending: EmbeddingCache,
    load_model: Callable[[str], Encoder],
    report: IndexReport,
) -> CosineMap | None:
    """The index model's cosines on the calibration's scale (calibration.fit_cosine_map), without labels: up to
    SCALE_QUERIES sentences of this run's new chunks as queries against SCALE_CHUNKS of those chunks, scored with
    the index's vectors of them (in `pending`) and again with the reference model (`load_model(REFERENCE_MODEL)`).
    None (no map: cosines are used as they are) for the reference model itself or a stand-in that is no real model
    (needs_cosine_map), or when the run has too little text; a failure is a warning, never a failed build."""
    if not needs_cosine_map(encoder):
        return None
    started = time.perf_counter()
    rng = random.Random(0)
    chunks = {k: c for k, c in zip(plan.keys, plan.new_chunks) if k in pending}
    sample = rng.sample(sorted(chunks), min(len(chunks), SCALE_CHUNKS))
    queries = []
    for key in sample:
        if sentences := query_sentences(chunks[key].text):
            queries.append(rng.choice(sentences).group().strip())
        if len(queries) == SCALE_QUERIES:
            break
    if len(queries) < MIN_FIT_QUERIES:
        return None
    try:
        ref = load_model(REFERENCE_MODEL)
        texts = [chunks[k].embedding_input for k in sample]
        cosines = normalize_rows(encoder.encode_queries(queries)) @ normalize_rows(pending.get(sample)).T
        wanted = normalize_rows(ref.encode_queries(queries)) @ normalize_rows(ref.encode_documents(texts)).T
    except Exception as e:  # noqa: BLE001 - the map is a refinement: without it, cosines are used as they are
        report.warnings.append(f"could not put the model's cosines on the calibrated scale ({e}); scores are rougher")
        return None
    report.seconds["cosine map"] = time.perf_counter() - started
    return fit_cosine_map(cosines, wanted)
