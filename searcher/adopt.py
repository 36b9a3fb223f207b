"""Switching an index to another model (a fine-tuned one, say) without reading its sources again.

The index keeps its files, chunks and lexical side; every chunk is embedded again with the new model into a new
generation, which is published atomically (store.GenerationWriter): until then the old generation answers every
query, and a run killed at any point leaves it as it was. Embeddings are saved to the index's pending cache as they
are made (cache.py), so running the same switch again resumes where the killed run stopped.

A model whose tokenizer cuts the index's chunks into more tokens than its window holds cannot take them over (they
were measured in the old model's tokens): that is refused with the command that re-chunks instead.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from .atomic import exclusive_lock
from .cache import EmbeddingCache
from .chunking import Chunk, embedding_input, record_fields
from .embedding import fit_cosine_scale
from .encoder import Encoder, load_encoder
from .errors import InvalidInputError, ModelError
from .generation import NewFile, Plan, write_generation
from .home import collect_encoders
from .home import resolve as resolve_index
from .indexer import IndexReport, Progress, embed_missing, export_query_encoder, sync_backend
from .store import PENDING, generations_on_disk, open_index, read_manifest
from .writer import remove_garbage


def adopt_model(
    index_dir: Path | str | None,
    model: str,
    *,
    progress: Progress | None = None,
    load_model: Callable[[str], Encoder] = load_encoder,
) -> IndexReport:
    """Re-embed every chunk of the index (by name or path) with `model` and publish it as a new generation."""
    progress = progress or (lambda phase, done, total: None)
    index_dir = resolve_index(index_dir)
    current = read_manifest(index_dir)
    progress("load", 0, None)
    encoder = load_model(model)
    if encoder.info.same_weights(current.model):
        raise InvalidInputError(f"the index at {index_dir} already uses {model!r}; nothing to switch")
    report = IndexReport(index_dir=str(index_dir))
    started = time.perf_counter()
    with exclusive_lock(index_dir):
        current = read_manifest(index_dir)  # as it is now that no other run can change it
        remove_garbage(index_dir, current)  # what a killed run left, pending embeddings apart
        generation = max([current.generation, *generations_on_disk(index_dir)]) + 1
        prev = open_index(index_dir)
        try:
            records = list(prev.iter_chunks())
            files = prev.files()
        finally:
            prev.close()
        _check_window(encoder, records, model, current.sources)
        by_id = {r["id"]: r for r in records}
        new_files = [
            NewFile(
                entry, [Chunk(**record_fields(by_id[i])) for i in range(entry.id_start, entry.id_end) if i in by_id]
            )
            for entry in files
        ]
        config = current.config.replace(model=encoder.info.name)  # a local path stored absolute, as build_index does
        chunks = [c for f in new_files for c in f.chunks]
        keys = [by_id[i]["hash"] for f in files for i in range(f.id_start, f.id_end) if i in by_id]
        query_encoder = export_query_encoder(index_dir, lambda: encoder, None, True, report)
        plan = Plan(
            Path(current.sources[0]) if current.sources else index_dir,
            config,
            encoder.info,
            [],
            new_files,
            keys,
            {},
            query_encoder,
            sources=current.sources,
        )
        assert len(keys) == len(chunks)
        pending = EmbeddingCache(index_dir / PENDING, encoder.info)
        embed_missing(lambda: encoder, index_dir, plan, pending, report, progress, None)
        plan.cosine_map = fit_cosine_scale(encoder, plan, pending, load_model, report)  # the new model's scale
        manifest = write_generation(index_dir, plan, current, None, pending, progress, generation)
        pending.clear()
        report.synced = sync_backend(index_dir, progress)
    collect_encoders()  # the old model's shared encoder, if no other index uses it
    report.generation = manifest.generation
    report.documents, report.chunks = manifest.documents, manifest.chunks
    report.projection = manifest.projection.kind
    report.seconds["all"] = time.perf_counter() - started
    return report


def _check_window(encoder: Encoder, records: list[dict], model: str, sources: tuple[str, ...]) -> None:
    window = encoder.info.max_seq_length
    lengths = encoder.input_lengths([embedding_input(r["title"], r["text"]) for r in records])
    too_long = sum(n > window for n in lengths)
    if too_long:
        where = " ".join(sources) or "SOURCE"
        raise ModelError(
            f"{too_long} of the index's chunks are longer than {model!r}'s {window}-token window (they were cut "
            f"for another tokenizer); re-chunk instead: searcher index {where} --rebuild --model {model}"
        )


MODELS = ".models"  # in the home: never an index name (names start with a letter or digit)


def finetune_index(
    index: Path | str | None,
    output: Path | str | None = None,
    config=None,
    *,
    adopt: bool = True,
    progress: Progress | None = None,
):
    """`searcher finetune --index`: train label-free on the index's chunks (train.finetune), then switch the index
    to the tuned model when its held-out comparison says it is better (`adopt`). (FinetuneReport, the switch's
    IndexReport or None when the index was left as it was)."""
    from .config import FinetuneConfig
    from .train import finetune

    index_dir = resolve_index(index)
    read_manifest(index_dir)  # one clear error when there is no index
    if output is None:
        output = models_home() / f"{index_dir.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    report = finetune(index_dir, output, config or FinetuneConfig(), progress=progress)
    if adopt and report.better:
        return report, adopt_model(index_dir, report.output, progress=progress)
    return report, None


def models_home() -> Path:
    """Where `searcher finetune --index` puts a model when no output is named: beside the named indexes."""
    from .home import home

    return home() / MODELS
