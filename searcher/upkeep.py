"""Keeping an index, besides indexing a folder into it (indexer.py): re-scanning its sources, taking a path out,
setting its hybrid weight, deleting it."""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Iterable
from pathlib import Path

import orjson

from .atomic import exclusive_lock, write_atomic
from .config import Progress
from .errors import InvalidInputError
from .generation import Plan, write_generation
from .home import (
    collect_encoders,
)
from .home import resolve as resolve_index
from .indexer import build_index, os_error, sync_backend
from .ingest import is_under, named_path
from .report import IndexReport
from .store import (
    MANIFEST,
    generations_on_disk,
    open_index,
    read_manifest,
    require_index,
)
from .writer import delete_index as store_delete_index

log = logging.getLogger(__name__)


def files_by_source(sources: Iterable[str], files: Iterable) -> dict[str, list]:
    """{source: its files}, each file (a store.FileEntry) under the innermost source holding it: a file indexed by
    name inside an indexed folder is counted once, under its own source (`searcher list`)."""
    owned: dict[str, list] = {source: [] for source in sources}
    for entry in files:
        holders = [source for source in owned if is_under(entry.path, source)]
        if holders:
            owned[max(holders, key=len)].append(entry)
    return owned


def source_summaries(sources: Iterable[str], files: Iterable) -> list[dict]:
    """What `searcher list INDEX` shows of each source: its path, files, documents, chunk ids (files_by_source
    counts each file once) and whether it is still on disk."""
    return [
        {
            "path": source,
            "files": len(under),
            "documents": sum(e.documents for e in under),
            "chunk_ids": sum(e.id_end - e.id_start for e in under),
            "on_disk": Path(source).exists(),
        }
        for source, under in files_by_source(sources, files).items()
    ]


def remove_from_index(
    index_dir: Path | str | None, path: Path | str, *, progress: Progress | None = None
) -> IndexReport:
    """Take every indexed file under `path` (a source, a folder or a file, on disk or long gone) out of an index,
    and `path` and any source under it out of its sources. A `path` inside a source that stays is remembered
    (config.removed): later scans of that source leave it out until it is indexed again. Nothing is embedded and
    no model is loaded."""
    index_dir = resolve_index(index_dir)
    target = Path(os.path.realpath(Path(path).expanduser()))
    progress = progress or (lambda phase, done, total: None)
    try:
        with exclusive_lock(index_dir):
            current = read_manifest(index_dir)
            prev = open_index(index_dir)
            try:
                prev.check_order()
                files = prev.files()
                kept = [e for e in files if not is_under(Path(e.path), target)]
                if len(kept) == len(files):
                    raise InvalidInputError(
                        f"nothing in the index at {index_dir} is under {target}; "
                        "`searcher list --index ...` shows what is"
                    )
                sources = tuple(s for s in current.sources if not is_under(Path(s), target))
                config = current.config
                if any(is_under(target, Path(s)) and target != Path(s) for s in sources):
                    # inside a source that stays: remembered, or the next scan of the source brings it back
                    config = config.replace(
                        removed=(*(r for r in config.removed if not is_under(Path(r), target)), str(target))
                    )
                plan = Plan(
                    target,
                    config,
                    current.model,
                    kept,
                    [],
                    [],
                    {},
                    current.query_encoder,
                    current.document_encoder,
                    sources,
                    current.cosine_map,
                )
                manifest = write_generation(
                    index_dir,
                    plan,
                    current,
                    prev,
                    None,
                    progress,
                    max([current.generation, *generations_on_disk(index_dir)]) + 1,
                )
            finally:
                prev.close()
            synced = sync_backend(index_dir, progress)
    except OSError as e:
        raise os_error(e, index_dir) from None
    return IndexReport(
        index_dir=str(index_dir),
        removed=len(files) - len(kept),
        documents=manifest.documents,
        chunks=manifest.chunks,
        projection=manifest.projection.kind,
        generation=manifest.generation,
        synced=synced,
    )


def update_index(
    index_dir: Path | str | None = None,
    *,
    paths: Iterable[Path | str] | None = None,
    progress: Progress | None = None,
) -> list[tuple[str, IndexReport]]:
    """Re-scan every source the index records and update it (build_index). [(source, report)] in the index's order.

    A source that is missing - gone, or an empty folder where files were indexed (an unmounted disk leaves its
    mount point) - is kept, files included, and named in its report's `missing`: a cron `update` during an unmount
    must not wipe the index. Only `searcher remove` takes a source out; files missing inside a present source are
    deletes, as ever.

    `paths`: only these files or folders - new, edited or deleted, each under a source of the index - are looked
    at, not every file (build_index's `changed`): for a hook that knows what changed (an editor's save, `git diff
    --name-only`). A path under no source is an error, before anything is done."""
    index_dir = resolve_index(index_dir)
    manifest = read_manifest(index_dir)
    named = _by_source(manifest.sources, paths, index_dir) if paths is not None else None
    out = []
    for source in manifest.sources:
        if named is not None and source not in named:
            continue
        if _missing(Path(source), manifest.files):
            report = IndexReport(index_dir=str(index_dir), documents=manifest.documents, chunks=manifest.chunks)
            report.missing.append(source)
            out.append((source, report))
        else:
            changed = named[source] if named is not None else None
            out.append((source, build_index(source, index_dir, progress=progress, changed=changed)))
    return out


def _by_source(sources: tuple[str, ...], paths: Iterable[Path | str], index_dir: Path) -> dict[str, list[Path]]:
    """Each path (absolute, its folder resolved) under the outermost source that holds it."""
    named: dict[str, list[Path]] = {}
    for item in paths:
        path = named_path(item)
        holders = [s for s in sources if is_under(path, s)]
        if not holders:
            raise InvalidInputError(
                f"{item} is not under any source of {index_dir} ({', '.join(sources)}); "
                f"add it with `searcher index {item}`"
            )
        named.setdefault(min(holders, key=len), []).append(path)
    return named


def _missing(source: Path, indexed_files: int) -> bool:
    if not source.exists():
        return True
    try:
        return source.is_dir() and indexed_files > 0 and not any(os.scandir(source))
    except OSError:
        return False  # unreadable: build_index keeps what was indexed under it, with a warning


def delete_index(index_dir: Path | str) -> list[str]:
    """Delete an index (by name or path) and any shared encoder no other index uses; only searcher's own files
    are deleted, and the names of anything else found in the folder are returned (the folder is then kept)."""
    index_dir = resolve_index(index_dir)
    require_index(index_dir)  # before the lock, which would create a missing folder
    try:
        with exclusive_lock(index_dir):
            left = store_delete_index(index_dir)
    except OSError as e:  # a read-only mount, a folder not ours to change: one line
        raise os_error(e, index_dir) from None
    collect_encoders()
    return left


def set_fusion_weight(index_dir: Path | str, weight: float) -> None:
    """Store a hybrid fusion weight in an index, nothing else changed."""
    index_dir = Path(index_dir)
    with exclusive_lock(index_dir):
        manifest = read_manifest(index_dir)
        config = manifest.config.replace(fusion_weight=float(weight))
        write_atomic(
            index_dir / MANIFEST,
            orjson.dumps(dataclasses.replace(manifest, config=config).to_dict(), option=orjson.OPT_INDENT_2),
        )
