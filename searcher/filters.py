"""Narrowing a search to some files: by path glob and by file type, applied inside each side's search.

A filter selects files from the index's file table; a file's chunks have a contiguous range of ids, so the filter
becomes a sorted array of chunk ids. The coarse FAISS search takes it as an id selector and the lexical search as
a required id clause, so a filter that keeps 0.1% of the index still yields k hits whenever k chunks match, rather
than the few that would survive filtering a shortlist afterwards.

A query's "quoted phrases" and -exclusions (syntax.py) narrow the same way: the Searcher adds them to the query's
Where, and the lexical index says which chunks hold them, so they filter every mode, dense included.
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
    phrases: tuple[str, ...] = ()  # each must occur in the chunk (set from the query's "quoted phrases")
    excluded: tuple[str, ...] = ()  # none may occur in the chunk (from the query's -word and -"phrase")

    def __post_init__(self) -> None:
        if any(isinstance(f, str) for f in (self.paths, self.types, self.phrases, self.excluded)):
            raise InvalidInputError("Where(paths=..., types=...) takes tuples of strings, e.g. paths=('docs/*',)")
        object.__setattr__(
            self, "types", tuple(t.lower() if t.startswith(".") else f".{t.lower()}" for t in self.types)
        )

    def __bool__(self) -> bool:
        return bool(self.paths or self.types or self.phrases or self.excluded)

    @property
    def by_file(self) -> bool:
        return bool(self.paths or self.types)

    def matches(self, path: str) -> bool:
        if self.types and not path.lower().endswith(self.types):
            return False
        return not self.paths or any(_glob(path, g) for g in self.paths)


def _glob(path: str, pattern: str) -> bool:
    if pattern.startswith("/"):
        return fnmatch.fnmatchcase(path, pattern)
    pattern = pattern.removeprefix("./")
    return fnmatch.fnmatchcase(path, "*/" + pattern) or fnmatch.fnmatchcase(path, "*/" + pattern.rstrip("/") + "/*")


def selected_ids(index, where: Where) -> np.ndarray:
    """Sorted chunk ids of the files `where` keeps, holding its phrases and none of its exclusions."""
    ids = np.asarray(index.ids, dtype=np.int64)
    if where.by_file:
        ranges = [(e.id_start, e.id_end) for e in index.files() if where.matches(e.path)]
        if not ranges:
            return np.empty(0, np.int64)
        kept = np.sort(np.concatenate([np.arange(a, b, dtype=np.int64) for a, b in ranges]))
        ids = kept[np.isin(kept, ids)]
    if where.phrases or where.excluded:
        lexical = index.open_lexical()
        if lexical is None:
            raise InvalidInputError(
                "quoted phrases and -exclusions need the index's lexical side, which it lacks; "
                "re-run `searcher index` on it to build one"
            )
        required, banned = lexical.matching(where.phrases, where.excluded)
        if required is not None:
            ids = np.intersect1d(ids, required, assume_unique=True)
        if len(banned):
            ids = np.setdiff1d(ids, banned, assume_unique=True)
    return ids
