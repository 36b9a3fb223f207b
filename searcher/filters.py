"""Narrowing a search to some files: by path glob and by file type, applied inside each side's search.

A filter selects files from the index's file table; a file's chunks have a contiguous range of ids, so the filter
becomes a sorted array of chunk ids. The coarse FAISS search takes it as an id selector and the lexical search as
a required id clause, so a filter that keeps 0.1% of the index still yields k hits whenever k chunks match, rather
than the few that would survive filtering a shortlist afterwards.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

import numpy as np

from .errors import InvalidInputError


@dataclass(frozen=True)
class Where:
    """Which files a search may return. Empty fields do not filter; within a field any entry may match."""

    paths: tuple[str, ...] = ()  # globs, matched against the file's absolute path or any tail of it ("api/*.md")
    types: tuple[str, ...] = ()  # file extensions, with or without the dot ("md", ".html")

    def __post_init__(self) -> None:
        if isinstance(self.paths, str) or isinstance(self.types, str):
            raise InvalidInputError("Where(paths=..., types=...) takes tuples of strings, e.g. paths=('docs/*',)")
        object.__setattr__(self, "types", tuple(t.lower() if t.startswith(".") else f".{t.lower()}" for t in self.types))

    def __bool__(self) -> bool:
        return bool(self.paths or self.types)

    def matches(self, path: str) -> bool:
        if self.types and not path.lower().endswith(self.types):
            return False
        if self.paths and not any(_glob(path, g) for g in self.paths):
            return False
        return True


def _glob(path: str, pattern: str) -> bool:
    if pattern.startswith("/"):
        return fnmatch.fnmatchcase(path, pattern)
    pattern = pattern.removeprefix("./")
    return fnmatch.fnmatchcase(path, "*/" + pattern) or fnmatch.fnmatchcase(path, "*/" + pattern.rstrip("/") + "/*")


def selected_ids(index, where: Where) -> np.ndarray:
    """Sorted chunk ids of the files `where` keeps."""
    ranges = [(e.id_start, e.id_end) for e in index.files() if where.matches(e.path)]
    if not ranges:
        return np.empty(0, np.int64)
    ids = np.concatenate([np.arange(a, b, dtype=np.int64) for a, b in ranges])
    ids = np.sort(ids)
    return ids[np.isin(ids, np.asarray(index.ids))]
