"""The scan step of an indexing run: which files are unchanged, new or changed (and their chunks), and which
of the new chunks' vectors the previous generation already holds."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .chunking import Parsed
from .config import Progress
from .generation import NewFile, kept_rows
from .ingest import Ignore, is_supported, iter_changed, iter_files, read_regular, unsupported
from .report import IndexReport
from .store import (
    FileEntry,
    StoredIndex,
)


def scan(
    root: Path,
    base: Path,
    old_files: dict[str, FileEntry],
    rechunk_all: bool,
    parse_files: Callable[[list[tuple[str, bytes, str]]], list[Parsed]],
    report: IndexReport,
    progress: Progress,
    ignore: Ignore | None = None,
    window: tuple[int, int] = (1, 0),
    changed: list[Path] | None = None,
) -> tuple[list[FileEntry], list[NewFile], list[Path]]:
    """(files kept as indexed, files (re)chunked, folders that could not be read). Document ids are relative
    to `base`. `changed`: only these paths under `root` (and what is under those that are folders) are looked at
    (ingest.iter_changed), not the whole walk. New and changed files are read and hashed here, then parsed and
    chunked by `parse_files` [(path, bytes, doc id)] -> [Parsed], up to `window` (files, bytes) at a time: one by
    one locally, in rounds on a Ray cluster (cluster.py)."""
    kept: list[FileEntry] = []
    new_files: list[NewFile] = []
    unreadable: list[Path] = []
    pending: list[tuple[Path, os.stat_result, str, bytes]] = []

    def cannot_read(folder: str, reason: str) -> None:
        report.failed += 1
        unreadable.append(Path(folder))
        report.warnings.append(f"{folder}: cannot read folder ({reason}); kept what was indexed under it")

    def skip(path: str, reason: str) -> None:
        report.skip(path, reason, warn=True)

    def flush() -> None:
        results = parse_files([(str(path), data, path.relative_to(base).as_posix()) for path, _, _, data in pending])
        for (path, st, digest, _), parsed in zip(pending, results):
            if parsed.error:
                skip(str(path), parsed.error)
                continue
            report.warnings.extend(f"{path}: {w}" for w in parsed.warnings)
            report.seconds["read"] += parsed.read_seconds
            report.seconds["chunk"] += parsed.chunk_seconds
            if not parsed.chunks:
                report.skip(str(path), "no text")
                continue
            entry = FileEntry(
                str(path),
                digest,
                st.st_size,
                st.st_mtime_ns,
                parsed.documents,
                0,
                0,
                st.st_ctime_ns,
                tuple(parsed.warnings),
            )
            new_files.append(NewFile(entry, parsed.chunks))
            report.indexed += 1
        pending.clear()

    walk = (
        iter_files(root, cannot_read, skip, ignore)
        if changed is None
        else iter_changed(root, changed, cannot_read, skip, ignore)
    )
    for seen, path in enumerate(walk, start=1):
        progress("scan", seen, None)
        if not is_supported(path):
            report.skip(str(path), unsupported(path))
            continue
        old = old_files.get(str(path))
        started = time.perf_counter()
        try:
            st = path.stat()
            if (
                old
                and not rechunk_all
                and (old.size, old.mtime_ns, old.ctime_ns) == (st.st_size, st.st_mtime_ns, st.st_ctime_ns)
            ):
                kept.append(old)
                report.unchanged += 1
                continue
            data = read_regular(path)
        except OSError as e:
            report.failed += 1
            report.warnings.append(
                f"{path}: cannot read ({e.strerror})" + ("; kept the indexed version" if old else "")
            )
            if old:
                kept.append(old)
            continue
        digest = hashlib.sha256(data).hexdigest()
        report.seconds["read"] += time.perf_counter() - started
        if old and not rechunk_all and old.sha256 == digest:
            kept.append(dataclasses.replace(old, mtime_ns=st.st_mtime_ns, ctime_ns=st.st_ctime_ns))
            report.unchanged += 1
            continue
        pending.append((path, st, digest, data))
        del data
        if len(pending) >= window[0] or sum(len(p[3]) for p in pending) >= window[1] > 0:
            flush()
    flush()
    return kept, new_files, unreadable


def reusable_rows(prev: StoredIndex | None, kept: list[FileEntry], keys: list[str]) -> dict[str, int]:
    """key -> row in the previous generation, for chunks of files that changed or went away (edits and moves
    keep most of their text, so most of their chunks need no new embedding)."""
    if prev is None or not keys:
        return {}
    live = np.zeros(len(prev), dtype=bool)
    live[kept_rows(prev, kept)] = True
    wanted = set(keys)
    dead_rows = np.flatnonzero(~live)
    found = {}
    for row, record in zip(dead_rows, prev.chunks(dead_rows)):
        if record["hash"] in wanted:
            found[record["hash"]] = int(row)
    return found
