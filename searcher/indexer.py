"""Folder -> index: scan the files, diff them against the published index, embed only what is new, and
publish a new generation.

Incremental by content: a file whose size and mtime are unchanged is not read; one whose bytes hash the same
is not re-chunked; a chunk whose exact text was embedded before (in the previous generation, or by an
interrupted run, see cache.py) is not embedded again. Removed files disappear from both indexes and the
metadata. Chunk ids are never reused. Writing the new generation is generation.py.

Watching a folder is watch.py. Left out: parallel parsing.
"""

from __future__ import annotations

import bisect
import errno
import logging
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from .atomic import exclusive_lock
from .cache import EmbeddingCache, text_key
from .chunking import check_chunking, chunk_document, parse_and_chunk
from .config import IndexConfig, Progress
from .embedding import embed_missing, export_query_encoder, fit_cosine_scale
from .encoder import (
    Encoder,
    load_encoder,
    resolve_model,
)
from .encoder_choice import embeds_small_edits_in_int8, open_graph
from .errors import IndexFormatError, InvalidInputError, ModelError, SearcherError
from .generation import NewFile, Plan, write_generation
from .home import (
    collect_encoders,
    remember_start,
)
from .home import resolve as resolve_index
from .ingest import CONVERT, IGNORE_FILES, Ignore, count_under, is_supported, is_under, named_path, unsupported
from .lexical import is_current as lexical_is_current
from .report import IndexReport
from .scan import reusable_rows, scan
from .store import (
    MANIFEST,
    PENDING,
    FileEntry,
    Manifest,
    StoredIndex,
    generations_on_disk,
    has_marker,
    is_index_dir,
    open_index,
    prepare_index_dir,
    read_manifest,
)
from .writer import delete_index as store_delete_index
from .writer import remove_garbage

log = logging.getLogger(__name__)

MAX_CHANGED = 1000  # changed paths one run may be told and still look at one by one; more are a whole walk

# progress(phase, done, total): phase is "scan" (files seen, total None), "chunk" (characters of one long
# document), "measure" (embedding paths timed, once per model and CPU), "embed" (chunks) or "write".


def existing_config(index_dir: Path | str | None) -> IndexConfig:
    """The config an index was built with, or the defaults when there is no index yet."""
    try:
        return read_manifest(resolve_index(index_dir)).config
    except SearcherError:  # no index, or an unreadable one that build_index will report
        return IndexConfig()


def build_index(
    source: Path | str,
    index_dir: Path | str | None = None,
    config: IndexConfig | None = None,
    *,
    rebuild: bool = False,
    encoder: Encoder | None = None,
    progress: Progress | None = None,
    cache_dir: Path | str | None = None,
    export_encoder: bool = True,
    load_model: Callable[[str], Encoder] | None = None,
    ray: str | None = None,
    changed: Iterable[Path | str] | None = None,
) -> IndexReport:
    """Index (or update the index of) a folder or a single file, into the index named or found at `index_dir`
    (home.resolve: a name in the per-user home, or a path; None is the default index).

    `config=None` keeps the settings the index was built with (the defaults for a new index). `rebuild=True`
    ignores the existing index and embeds everything again (required to change the model). New embeddings go
    to `<index>/pending` and are deleted once published; a `cache_dir` is used instead and kept, so another
    index of the same texts with the same model embeds nothing (`searcher eval` keeps one per model).
    `export_encoder` exports the model for torch-free queries (onnx_encoder.py) when the index has none.
    `load_model(name)` loads the model when this run needs it (watch.py passes one that keeps it for the next run).
    `ray` embeds on a Ray cluster (cluster.py): its address, or "local" to start one on this machine.
    An index whose config names the qdrant backend is then mirrored into its collection (backends/qdrant.py).
    `changed`: the paths under `source` that may have changed since the index last saw them (created, edited,
    deleted, renamed from or to; folders included): only they are looked at, the rest of the index is kept as it
    is, without walking `source` (watch.py passes its events; `searcher update PATH`). A path outside `source` is
    an error.
    """
    source = Path(source).expanduser()
    if not source.exists():
        raise InvalidInputError(f"no such file or folder: {source}")
    if source.is_file() and not is_supported(source):
        if source.suffix.lower() in CONVERT:
            raise InvalidInputError(f"{source} is {unsupported(source)}")
        raise InvalidInputError(f"{source} is not a type searcher reads (`searcher index --help` lists them)")
    if source.is_dir():  # fail before a model is loaded, not after
        try:
            os.scandir(source).close()
        except OSError as e:
            raise InvalidInputError(f"cannot read folder {source}: {e.strerror}") from None
    index_dir = resolve_index(index_dir)
    paths = _changed_paths(source, changed) if changed is not None else None
    if inside_index := next((p for p in (source.resolve(), *source.resolve().parents) if is_index_dir(p)), None):
        where = (
            "is a searcher index"
            if inside_index == source.resolve()
            else f"is inside the searcher index {inside_index}"
        )
        raise InvalidInputError(f"{source} {where}; index your documents, not an index")
    progress = progress or (lambda phase, done, total: None)
    first = not (index_dir / MANIFEST).exists()
    made = first and not index_dir.exists()
    try:
        return _build_locked(
            source, index_dir, config, rebuild, encoder, progress, cache_dir, export_encoder, load_model, ray, paths
        )
    except BaseException:
        if first and not (index_dir / MANIFEST).exists():
            _abandon_first_build(index_dir, made)
        raise


def _changed_paths(source: Path, changed: Iterable[Path | str]) -> list[Path] | None:
    """The changed paths, absolute (their folders resolved, the name itself kept: a link is indexed as its own
    name); None, a walk of everything, when `source` is a file. A path outside `source` is an InvalidInputError."""
    if not source.is_dir():
        return None
    root = source.resolve()
    out = []
    for item in changed:
        path = named_path(item)
        path = root if path.resolve() == root else path  # the source itself, named by a link to it
        if not is_under(path, root):
            raise InvalidInputError(f"{item} is not under {source}; name paths inside the folder being updated")
        out.append(path)
    return out


def _abandon_first_build(index_dir: Path, made: bool) -> None:
    """After a first build that published nothing (an error, Ctrl-C): take away what it made - the folder too, if
    it made the folder - unless it saved embeddings the next run can resume from (then `searcher list` says so)."""
    if not has_marker(index_dir):
        return  # not ours to clean (prepare_index_dir refused it)
    pending = index_dir / PENDING
    if pending.is_dir() and any(pending.rglob("*.npy")):
        return
    try:
        left = store_delete_index(index_dir)
        if left or not made:
            index_dir.mkdir(exist_ok=True)  # the user's empty folder stays theirs
    except OSError:
        pass  # best effort: a read-only or full disk keeps what it has; the next run cleans it


def _build_locked(
    source, index_dir, config, rebuild, encoder, progress, cache_dir, export_encoder, load_model, ray, changed
) -> IndexReport:
    try:
        prepare_index_dir(index_dir)
        with exclusive_lock(index_dir):
            try:
                current = read_manifest(index_dir) if (index_dir / MANIFEST).exists() else None
            except IndexFormatError:
                if not rebuild:
                    raise
                current = None  # a damaged index of ours: --rebuild starts it over
            else:
                remove_garbage(index_dir, current)
            generation = max([current.generation if current else 0, *generations_on_disk(index_dir)]) + 1
            prev = open_index(index_dir) if current and not rebuild else None
            workers = None
            try:
                if prev is not None:
                    prev.check_order()
                if ray is not None:
                    from .cluster import RayWorkers

                    name = (config or (current.config if current else IndexConfig())).model
                    workers = RayWorkers(resolve_model(name)[0], ray)
                report = _build(
                    source.resolve(),
                    index_dir,
                    config,
                    current,
                    prev,
                    encoder,
                    progress,
                    cache_dir,
                    export_encoder,
                    generation,
                    load_model or load_encoder,
                    workers,
                    changed,
                )
            finally:
                if workers is not None:
                    workers.close()
                if prev is not None:
                    prev.close()
            report.synced = sync_backend(index_dir, progress)
        if report.generation:
            collect_encoders()  # this index may have let go of an encoder it shared (a new model)
        return report
    except OSError as e:
        raise os_error(e, index_dir) from None


def sync_backend(index_dir: Path, progress: Progress) -> str:
    """Mirror the published generation into the index's Qdrant collection (backends/qdrant.py), if it has one;
    a no-op when the collection is in step. Runs under the index's lock: one writer at a time."""
    if read_manifest(index_dir).config.backend != "qdrant":
        return ""
    from .backends.qdrant import sync

    index = open_index(index_dir)
    try:
        done = sync(index, progress=progress)
    finally:
        index.close()
    return (
        f"qdrant generation {done.generation}: {done.upserted} points written, {done.retired} retired"
        if done.upserted or done.retired
        else f"qdrant generation {done.generation}: in step"
    )


def os_error(e: OSError, index_dir: Path) -> SearcherError:
    """An OSError while indexing as one line; the published index is untouched by then (publish is one rename)."""
    where = e.filename or index_dir
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        return SearcherError(f"disk full at {where}; free some space and run again (the index is as it was)")
    if e.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return SearcherError(f"cannot write to {where} ({e.strerror}); pass --index with a folder you can write to")
    return SearcherError(f"{e.strerror or e} at {where}; the index is as it was before this run")


def _build(
    root: Path,
    index_dir: Path,
    config: IndexConfig | None,
    current: Manifest | None,
    prev: StoredIndex | None,
    encoder: Encoder | None,
    progress: Progress,
    cache_dir: Path | str | None,
    export_encoder: bool,
    generation: int,
    load_model: Callable[[str], Encoder],
    workers=None,
    changed: list[Path] | None = None,
) -> IndexReport:
    config = config or (current.config if current else IndexConfig())
    if config.qdrant_path:  # the shard's folder, wherever the command runs from
        config = config.replace(qdrant_path=str(Path(config.qdrant_path).expanduser().resolve()))
    # subtle: updating an index with its own model loads that model (torch, seconds) only once a file needs
    # chunking or embedding; a run that finds nothing changed never imports torch.
    if encoder is None and prev is not None and resolve_model(config.model)[0] == prev.manifest.model.name:
        info = prev.manifest.model
    else:
        encoder = encoder or _load(load_model, config.model, progress)
        info = _checked(encoder.info, prev, index_dir)

    def model() -> Encoder:
        nonlocal encoder
        if encoder is None:
            assert config is not None  # set above, from the argument or the index
            encoder = _load(load_model, config.model, progress)
            _checked(encoder.info, prev, index_dir)
        return encoder

    # subtle: an update of an index that has the model as an ONNX graph chunks with the graph's tokenizer (the
    # model's own tokenizer.json) and, when little is to be embedded, embeds with the graph too: torch is never
    # imported for a small edit (small_edit_limit; RESULTS.md, upkeep).
    light: list[Encoder | None] = []

    def small_encoder() -> Encoder | None:
        if encoder is not None or prev is None or current is None or workers is not None:
            return None
        if not light:
            name = current.query_encoder
            int8 = bool(name) and embeds_small_edits_in_int8(current.document_encoder, index_dir / str(name))
            light.append(open_graph(index_dir, name, info, int8))
        return light[0]

    def chunking_model() -> Encoder:
        return encoder or small_encoder() or model()

    config = config.replace(model=info.name)
    chunk_tokens, overlap_tokens = config.chunking(info.max_seq_length)
    check_chunking(chunk_tokens, overlap_tokens, info.max_seq_length)
    rechunk_all = prev is not None and prev.manifest.config.chunking(info.max_seq_length) != (
        chunk_tokens,
        overlap_tokens,
    )
    report = IndexReport(index_dir=str(index_dir))
    old_files = {e.path: e for e in prev.files()} if prev is not None else {}

    def chunker(doc):
        return chunk_document(
            doc,
            chunking_model(),
            chunk_tokens=chunk_tokens,
            overlap_tokens=overlap_tokens,
            progress=lambda done, total: progress("chunk", done, total),
        )

    if workers is not None:  # parsing and chunking on the cluster (cluster.py), in rounds of files
        from .cluster import FILE_WINDOW

        def parse_files(items):
            return workers.chunk(items, chunk_tokens, overlap_tokens)

        window = FILE_WINDOW
    else:

        def parse_files(items):
            return [parse_and_chunk(Path(path), data, doc_id, chunker) for path, data, doc_id in items]

        window = (1, 0)

    # One file, one document id: ids are relative to the outermost folder this index was ever given that holds
    # the file, whichever root this run starts from.
    sources = [Path(s) for s in (current.sources if prev is not None and current is not None else ())] + [root]
    anchor = min((s for s in sources if is_under(root, s)), key=lambda s: len(s.parts))
    if config.removed and (prev is None or current is None or str(root) not in current.sources):
        # indexing a removed path (or a folder holding it) by name brings it back; re-scanning a source does not
        config = config.replace(removed=tuple(r for r in config.removed if not is_under(Path(r), root)))
    kept, new_files = _look(
        root, anchor.parent, config, current, old_files, rechunk_all, parse_files, report, progress, window, changed
    )
    kept.sort(key=lambda e: e.id_start)
    if (
        prev is not None
        and current is not None
        and not new_files
        and kept == sorted(old_files.values(), key=lambda e: e.id_start)
        and config == current.config
        and str(root) in current.sources
        and (lexical_dir := prev.lexical_path()) is not None
        and lexical_is_current(lexical_dir)  # an older one is made anew (generation._write_lexical)
        and (current.query_encoder is not None or not export_encoder)
    ):
        # Nothing changed: the published generation stays as it is (no write, no model).
        report.documents, report.chunks = current.documents, current.chunks
        report.projection = current.projection.kind
        return report

    keys = [text_key(c.embedding_input) for f in new_files for c in f.chunks]
    started = time.perf_counter()
    previous = current if prev is not None else None
    query_encoder = previous.query_encoder if previous and encoder is None else None
    if encoder is not None or new_files or (export_encoder and query_encoder is None):
        query_encoder = export_query_encoder(index_dir, model, previous, export_encoder, report)
    report.seconds["export"] = time.perf_counter() - started
    plan = Plan(root, config, info, kept, new_files, keys, reusable_rows(prev, kept, keys), query_encoder)
    pending = EmbeddingCache(Path(cache_dir) if cache_dir else index_dir / PENDING, info)
    embed_missing(
        model,
        index_dir,
        plan,
        pending,
        report,
        progress,
        current.document_encoder if current and prev is not None else None,
        workers,
        small_encoder(),
    )
    # The model's cosines on the calibration's scale: kept from the index's model, fitted once its model has text.
    plan.cosine_map = current.cosine_map if current is not None and prev is not None else None
    if plan.cosine_map is None and new_files and encoder is not None:
        plan.cosine_map = fit_cosine_scale(encoder, plan, pending, load_model, report)

    started = time.perf_counter()
    manifest = write_generation(index_dir, plan, current, prev, pending, progress, generation)
    if cache_dir is None:
        pending.clear()
    report.seconds["write"] = time.perf_counter() - started
    report.generation = manifest.generation
    report.documents, report.chunks = manifest.documents, manifest.chunks
    report.projection = manifest.projection.kind
    return report


def _look(
    root: Path,
    base: Path,
    config: IndexConfig,
    current: Manifest | None,
    old_files: dict[str, FileEntry],
    rechunk_all: bool,
    parse_files,
    report: IndexReport,
    progress: Progress,
    window: tuple[int, int],
    changed: list[Path] | None,
) -> tuple[list[FileEntry], list[NewFile]]:
    """Scan `root`, or only its `changed` paths when the index already has `root` with these settings (else, or
    for more than MAX_CHANGED paths or an ignore file among them, the whole of `root`): every file of the new
    generation, kept as indexed or (re)chunked, not yet in id order."""
    ignore = Ignore(root, config.include, config.exclude, config.removed)
    if changed is not None and not (
        old_files  # an index to compare with: not a first build, not --rebuild
        and current is not None
        and str(root) in current.sources
        and config == current.config
        and not rechunk_all
        and len(changed) <= MAX_CHANGED
        and not any(p.name in IGNORE_FILES for p in changed)  # what is left out may change anywhere below it
    ):
        changed = None
    kept, new_files, unreadable = scan(
        root, base, old_files, rechunk_all, parse_files, report, progress, ignore, window, changed
    )
    # The indexed files this run looked at: all under root, or those at or under a changed path.
    under_root = set(_under(old_files, [root] if changed is None else changed))
    seen = {e.path for e in kept} | {f.entry.path for f in new_files}
    # A folder that cannot be read right now (permissions, an unmounted share) keeps what was indexed under it; a
    # source inside root (a file the rules leave out, indexed by name) keeps its files that are still there: they
    # are its own scan's.
    nested = [s for s in (current.sources if current is not None else ()) if s != str(root) and is_under(s, root)]
    for path in sorted(under_root - seen):
        if any(is_under(path, folder) for folder in unreadable) or (
            any(is_under(path, source) for source in nested) and os.path.isfile(path)
        ):
            kept.append(old_files[path])
            seen.add(path)
    report.removed = len(under_root - seen)
    kept += [e for p, e in old_files.items() if p not in under_root]
    if changed is not None:  # the files under root not looked at count as unchanged, as a walk would find them
        report.unchanged += count_under(old_files, root) - len(under_root)  # changed paths are all under root
    if not new_files and not any(is_under(e.path, root) for e in kept):
        raise InvalidInputError(f"no documents to index in {root}: {_why_none(report)}; nothing was changed")
    return kept, new_files


def _why_none(report: IndexReport) -> str:
    """What a folder held instead of documents, for the error that says it has none: a few skipped files with
    their reasons (what to convert them to, binary, empty), or that nothing was there to read."""
    if not report.skipped_files:
        return (
            "no file there of a type searcher reads (`searcher index --help` lists them; hidden files and those an "
            "ignore rule or --include/--exclude leave out are not read)"
        )
    shown = "; ".join(report.skipped_files[:3])
    more = len(report.skipped_files) - 3
    return f"{report.skipped} file(s) skipped: {shown}" + (f"; and {more} more" if more > 0 else "")


def _under(files: dict[str, FileEntry], paths: list[Path]) -> Iterable[str]:
    """The indexed paths at or under any of `paths` (a sorted list and bisection: a watch may pass hundreds)."""
    ordered = sorted(files)
    for path in {str(p) for p in paths}:
        if path in files:
            yield path
        head = path if path.endswith(os.sep) else path + os.sep
        i = bisect.bisect_left(ordered, head)
        while i < len(ordered) and ordered[i].startswith(head):
            yield ordered[i]
            i += 1


def _load(load_model: Callable[[str], Encoder], name: str, progress: Progress) -> Encoder:
    progress("load", 0, None)
    started = time.perf_counter()
    encoder = load_model(name)
    seconds = time.perf_counter() - started
    if seconds > 0.5:  # a real load, not a model `watch` keeps from its last run
        remember_start(encoder.info.weights_id(), seconds)
    return encoder


def _checked(info, prev: StoredIndex | None, index_dir: Path):
    """The model's info, once it is known to be the one that built `prev`."""
    if prev is not None and prev.manifest.model.name != info.name:
        raise ModelError(
            f"the index at {index_dir} was built with model {prev.manifest.model.name!r}, not {info.name!r}; "
            "index with that model, use another --index, or pass --rebuild to re-embed everything"
        )
    if prev is not None and not prev.manifest.model.same_weights(info):
        raise ModelError(
            f"the model {info.name!r} has changed since the index at {index_dir} was built with it (other "
            "weights); pass --rebuild to re-embed everything with it, or use another --index"
        )
    return info
