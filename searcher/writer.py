"""The write side of the on-disk index (store.py's layout): a new generation written beside the current one and
published in one rename of the manifest, garbage removal after it, and deleting an index. Only searcher's own
generated names, only inside a folder carrying the marker (manifest.py)."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import orjson

from . import vectors
from .atomic import fsync_dir, fsync_file, reserved_npy, write_atomic
from .manifest import _GARBAGE, MANIFEST, MARKER, PENDING, FileEntry, Manifest, generation_dir, has_marker
from .store import StoredIndex, remember_file_table, require_index


class GenerationWriter:
    """Writes the files of a new generation; `publish` makes it the index's current one in a single rename."""

    def __init__(self, index_dir: Path, generation: int, n: int, dim: int) -> None:
        self.index_dir = index_dir
        self.generation = generation
        self.published = False
        self.path = generation_dir(index_dir, generation)
        if self.path.exists() and not self.path.is_symlink():
            shutil.rmtree(self.path)
        self.path.mkdir(parents=True)
        self.n, self.dim = n, dim
        try:
            self.full: np.memmap | None = reserved_npy(self.path / vectors.FILES["float32"], (n, dim), np.float32)
        except BaseException:
            shutil.rmtree(self.path, ignore_errors=True)
            raise

    def write_chunks(self, lines: Iterable[bytes], kept: tuple[StoredIndex, np.ndarray] | None = None) -> None:
        """One serialized record per row, in row order (each ending with a newline): first the records of a
        previous generation's rows that `kept` names - (that generation, the rows, ascending) - then `lines`."""
        offsets = np.empty(self.n + 1, dtype=np.int64)
        pos, row = 0, 0
        with open(self.path / "chunks.jsonl", "wb") as f:
            if kept is not None:
                pos, row = _copy_rows(f, *kept, offsets)
            for line in lines:
                offsets[row] = pos
                f.write(line)
                pos += len(line)
                row += 1
        assert row == self.n, (row, self.n)
        offsets[self.n] = pos
        np.save(self.path / "chunks.offsets.npy", offsets, allow_pickle=False)

    def write_ids(self, ids: np.ndarray) -> None:
        assert len(ids) == self.n and (self.n < 2 or bool(np.all(np.diff(ids) > 0)))
        np.save(self.path / "ids.npy", np.asarray(ids, dtype=np.int64), allow_pickle=False)

    def write_rotation(self, rotation: np.ndarray | None) -> None:
        if rotation is not None:
            np.save(self.path / "rotation.npy", rotation.astype(np.float32), allow_pickle=False)

    def write_coarse(self, index) -> None:
        import faiss

        # Through a Python file, so that a full disk is an OSError (ENOSPC) like every other write.
        with open(self.path / "coarse.faiss", "wb") as f:
            faiss.write_index(index, faiss.PyCallbackIOWriter(f.write))

    def write_files(self, entries: Iterable[FileEntry]) -> None:
        entries = list(entries)
        data = b"".join([entry.to_json() + b"\n" for entry in entries])
        with open(self.path / "files.jsonl", "wb") as f:
            f.write(data)
        remember_file_table(data, entries)  # the next update reads this table back: no parse then

    def publish(self, manifest: Manifest) -> None:
        """fsync every file, then switch the manifest; the previous generation is deleted afterwards."""
        if self.full is not None:  # None once converted to another storage type (generation._encode_full)
            self.full.flush()
        self.full = None
        for folder, _, names in os.walk(self.path):
            for name in names:
                fsync_file(Path(folder) / name)
            fsync_dir(Path(folder))
        write_atomic(self.index_dir / MANIFEST, orjson.dumps(manifest.to_dict(), option=orjson.OPT_INDENT_2))
        self.published = True
        remove_garbage(self.index_dir, manifest)

    def discard(self) -> None:
        """Delete this unpublished generation (after a failure: a full disk wants its space back at once)."""
        self.__dict__.pop("full", None)
        shutil.rmtree(self.path, ignore_errors=True)


COPY_BLOCK = 1 << 20


def _copy_rows(out, prev: StoredIndex, rows: np.ndarray, new_offsets: np.ndarray) -> tuple[int, int]:
    """Copy the chunk records of `rows` of `prev` to `out` as bytes, a run of consecutive rows at a time, in blocks,
    filling their `new_offsets`; returns (bytes, rows) written. A one-file update keeps all rows but that file's: a
    few runs, where a record at a time was most of its write."""
    if not len(rows):
        return 0, 0
    starts, ends = prev.offsets[rows], prev.offsets[rows + 1]
    lengths = ends - starts
    new_offsets[: len(rows)] = np.cumsum(lengths) - lengths
    breaks = np.flatnonzero(np.diff(rows) != 1) + 1  # where a run of consecutive rows ends
    firsts, lasts = np.r_[0, breaks], np.r_[breaks, len(rows)] - 1
    for a, b in zip(starts[firsts].tolist(), ends[lasts].tolist()):
        for block in range(a, b, COPY_BLOCK):
            out.write(prev.chunk_bytes(block, min(block + COPY_BLOCK, b)))
    return int(lengths.sum()), len(rows)


def remove_garbage(index_dir: Path, manifest: Manifest | None) -> None:
    """Delete what the manifest does not name: older generations and encoders, and the leftovers of interrupted
    runs. Only exact names searcher generates, never a link, and only in a directory carrying the marker."""
    if not has_marker(index_dir):
        return
    keep = {MANIFEST, PENDING, MARKER, ".lock"}
    if manifest is not None:
        keep |= {generation_dir(index_dir, manifest.generation).name, manifest.query_encoder or ""}
    for entry in index_dir.iterdir():
        if entry.name in keep or not _GARBAGE.fullmatch(entry.name) or entry.is_symlink():
            continue
        if entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)


def delete_index(index_dir: Path) -> list[str]:
    """Delete an index: searcher's own files in it, then the folder if nothing else is left. Returns the names of
    entries it left alone (files someone else put there). Refuses a folder that is not an index."""
    require_index(index_dir)
    ours = {MANIFEST, PENDING, ".lock", MARKER}
    left = []
    for entry in sorted(index_dir.iterdir(), key=lambda e: e.name == MARKER):  # the marker last
        if entry.is_symlink() or not (entry.name in ours or _GARBAGE.fullmatch(entry.name)):
            left.append(entry.name)
        elif entry.is_dir():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    if not left:
        index_dir.rmdir()
    return left


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
