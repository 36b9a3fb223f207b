"""Crash-safe file writing and the writer lock: the two primitives every on-disk change goes through."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from .errors import IndexBusyError


def write_atomic(path: Path, data: bytes) -> None:
    """Write beside, fsync, then rename: a reader sees the old file or the whole new one, never a part.

    subtle: the file beside is created new (O_EXCL, O_NOFOLLOW) after taking away whatever has its name, so a
    link planted there (to a file of the user's) is removed, never written through."""
    tmp = path.with_name(path.name + ".tmp")
    with open(_create_new(tmp), "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def _create_new(path: Path, flags: int = os.O_WRONLY) -> int:
    """A file descriptor of a new file at `path`; what was there (a stale file, a planted link) is removed first."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    return os.open(path, flags | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)


def reserved_npy(path: Path, shape: tuple[int, int], dtype) -> np.memmap:
    """A new .npy file of `shape`, its blocks reserved on disk, memory-mapped for writing.

    subtle: open_memmap alone makes a sparse file. Writing into its pages on a full disk raises no error but SIGBUS
    (seen on tmpfs); reserving the blocks first turns that into ENOSPC here, an OSError with a message.
    """
    dtype = np.dtype(dtype)
    with open(path, "wb") as f:
        np.lib.format.write_array_header_2_0(f, {"descr": dtype.str, "fortran_order": False, "shape": shape})
        os.posix_fallocate(f.fileno(), 0, f.tell() + shape[0] * shape[1] * dtype.itemsize)
    return np.lib.format.open_memmap(path, mode="r+")


def fsync_file(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def exclusive_lock(directory: Path) -> Iterator[None]:
    """Hold `directory/.lock` for writing; a second writer gets IndexBusyError at once instead of waiting.

    The kernel drops the lock when the process dies, however it dies, so a killed run never blocks the next. A
    symbolic link in the lock's place is removed, not followed (it could point at any file of the user's).
    """
    directory.mkdir(parents=True, exist_ok=True)
    lock = directory / ".lock"
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    except OSError as e:
        if e.errno != errno.ELOOP:
            raise
        fd = _create_new(lock, os.O_RDWR)  # a link planted as .lock: removed, never followed
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise IndexBusyError(
                f"another process is writing the index at {directory}; wait for it to finish"
            ) from None
        yield
    finally:
        os.close(fd)
