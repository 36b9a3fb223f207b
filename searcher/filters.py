"""Narrowing a search to some files: by path glob, file type and when a file was last changed, applied inside
each side's search.

A filter selects files from the index's file table; a file's chunks have a contiguous range of ids, so the filter
becomes a sorted array of chunk ids. The coarse FAISS search takes it as an id selector and the lexical search as
a required id clause, so a filter that keeps 0.1% of the index still yields k hits whenever k chunks match, rather
than the few that would survive filtering a shortlist afterwards.

A query's "quoted phrases" and -exclusions (syntax.py) narrow the same way: the Searcher adds them to the query's
Where, and the lexical index says which chunks hold them, so they filter every mode, dense included.
"""

from __future__ import annotations

import fnmatch
import re
import time
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from .errors import InvalidInputError


@dataclass(frozen=True)
class Where:
    """Which files a search may return. Empty fields do not filter; within a field any entry may match."""

    paths: tuple[str, ...] = ()  # globs, matched against the file's absolute path or any tail of it ("api/*.md")
    types: tuple[str, ...] = ()  # file extensions, with or without the dot ("md", ".html")
    phrases: tuple[str, ...] = ()  # each must occur in the chunk (set from the query's "quoted phrases")
    excluded: tuple[str, ...] = ()  # none may occur in the chunk (from the query's -word and -"phrase")
    # files last changed (their modification time when indexed) at or after / before these, in epoch seconds
    # (`moment` reads "2d" or "2026-11-01" as one)
    changed_after: float | None = None
    changed_before: float | None = None

    def __post_init__(self) -> None:
        if any(isinstance(f, str) for f in (self.paths, self.types, self.phrases, self.excluded)):
            raise InvalidInputError("Where(paths=..., types=...) takes tuples of strings, e.g. paths=('docs/*',)")
        object.__setattr__(
            self, "types", tuple(t.lower() if t.startswith(".") else f".{t.lower()}" for t in self.types)
        )

    @classmethod
    def of(
        cls,
        paths=(),
        types=(),
        *,
        changed_within: str | None = None,
        changed_before: str | None = None,
    ) -> Where:
        """The file filters as a user gives them (the CLI's --path, --type, --changed-within and --changed-before;
        the server's fields of those names): times as `moment` reads them."""
        return cls(
            tuple(paths),
            tuple(types),
            changed_after=moment(changed_within) if changed_within else None,
            changed_before=moment(changed_before) if changed_before else None,
        )

    def __bool__(self) -> bool:
        return bool(self.paths or self.types or self.phrases or self.excluded or self.by_time)

    @property
    def by_file(self) -> bool:
        return bool(self.paths or self.types or self.by_time)

    @property
    def by_time(self) -> bool:
        return self.changed_after is not None or self.changed_before is not None

    def matches(self, path: str) -> bool:
        """Whether the path and type filters keep `path` (the time filters need its file's entry: `keeps`)."""
        if self.types and not path.lower().endswith(self.types):
            return False
        return not self.paths or any(_glob(path, g) for g in self.paths)

    def keeps(self, entry) -> bool:
        """Whether every file filter keeps the indexed file `entry` (a manifest.FileEntry)."""
        if self.changed_after is not None and entry.mtime_ns < _ns(self.changed_after):
            return False
        if self.changed_before is not None and entry.mtime_ns >= _ns(self.changed_before):
            return False
        return self.matches(entry.path)


def _ns(seconds: float) -> int:
    """A bound in epoch seconds as the file table keeps times (nanoseconds), the same for every comparison."""
    return int(seconds * 1e9)


_SECONDS = {  # each name of a unit of a span, and its length
    **dict.fromkeys(("s", "sec", "secs", "second", "seconds"), 1),
    **dict.fromkeys(("m", "min", "mins", "minute", "minutes"), 60),
    **dict.fromkeys(("h", "hr", "hrs", "hour", "hours"), 3600),
    **dict.fromkeys(("d", "day", "days"), 86400),
    **dict.fromkeys(("w", "week", "weeks"), 7 * 86400),
    **dict.fromkeys(("mo", "month", "months"), 30 * 86400),
    **dict.fromkeys(("y", "yr", "yrs", "year", "years"), 365 * 86400),
}
_SPAN = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-z]+)")


def moment(text: str, *, now: float | None = None) -> float:
    """Epoch seconds of a time a filter names: a span back from now (`2d`, `3 weeks`, `1d12h`, `90min`; units s,
    m or min, h, d, w, mo (30 days), y (365 days)) or a date (`2026-11-01`, `2026-11-01 14:30`, ISO 8601; local
    time unless it names an offset). As fd's --changed-within and --changed-before read theirs."""
    spoken = text.strip().lower()
    parts = _SPAN.findall(spoken)
    whole = "".join(f"{n}{u}" for n, u in parts) == re.sub(r"\s+", "", spoken)  # nothing but spans
    if parts and whole and all(u in _SECONDS for _, u in parts):
        span = sum(float(n) * _SECONDS[u] for n, u in parts)
        return (time.time() if now is None else now) - span
    try:
        return datetime.fromisoformat(text.strip()).timestamp()
    except ValueError:
        raise InvalidInputError(
            f"cannot read {text!r} as a time; pass a span back from now (2d, 3 weeks, 12h) or a date (2026-11-01)"
        ) from None


def _glob(path: str, pattern: str) -> bool:
    if pattern.startswith("/"):
        return fnmatch.fnmatchcase(path, pattern)
    pattern = pattern.removeprefix("./")
    return fnmatch.fnmatchcase(path, "*/" + pattern) or fnmatch.fnmatchcase(path, "*/" + pattern.rstrip("/") + "/*")


@dataclass(frozen=True)
class FileTimes:
    """Each indexed file's modification time and chunk id range, as arrays: a time filter is a comparison over them
    rather than a pass over the file table (which a relative time such as "2d" would make on every query, its
    bound moving with the clock). Both measured in RESULTS.md, time-filters section."""

    mtime_ns: np.ndarray
    id_start: np.ndarray
    id_end: np.ndarray

    @classmethod
    def of(cls, files) -> FileTimes:
        n = len(files)
        return cls(
            np.fromiter((e.mtime_ns for e in files), np.int64, n),
            np.fromiter((e.id_start for e in files), np.int64, n),
            np.fromiter((e.id_end for e in files), np.int64, n),
        )

    def kept(self, where: Where) -> np.ndarray:
        """A mask over the files: changed inside `where`'s time bounds."""
        keep = np.ones(len(self.mtime_ns), bool)
        if where.changed_after is not None:
            keep &= self.mtime_ns >= _ns(where.changed_after)
        if where.changed_before is not None:
            keep &= self.mtime_ns < _ns(where.changed_before)
        return keep

    def ids(self, where: Where) -> np.ndarray:
        """Sorted chunk ids of the files changed inside `where`'s time bounds."""
        keep = self.kept(where)
        return _ids_in(self.id_start[keep], self.id_end[keep])


def _ids_in(starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """The ids of the disjoint ranges [start, end), sorted (the ranges are put in order, not the ids)."""
    order = np.argsort(starts, kind="stable")
    starts, ends = starts[order], ends[order]
    lengths = ends - starts
    total = int(lengths.sum())
    if not total:
        return np.empty(0, np.int64)
    # each id is its range's start plus its place within the range: arange over all, less each range's offset
    shift = np.repeat(starts - (np.cumsum(lengths) - lengths), lengths)
    return shift + np.arange(total, dtype=np.int64)


def among(ids: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """The ids of sorted `ids` that sorted `allowed` holds: a binary search per id, so that a filter's few ids are
    checked against an index's millions (memory-mapped) without reading or sorting them all."""
    if not len(ids) or not len(allowed):
        return np.empty(0, np.int64)
    at = np.minimum(np.searchsorted(allowed, ids), len(allowed) - 1)
    return ids[np.asarray(allowed[at]) == ids]


def selected_ids(index, where: Where) -> np.ndarray:
    """Sorted chunk ids of the files `where` keeps, holding its phrases and none of its exclusions."""
    ids = np.asarray(index.ids, dtype=np.int64)
    if where.paths or where.types:
        ranges = [(e.id_start, e.id_end) for e in index.files() if where.matches(e.path)]
        if not ranges:
            return np.empty(0, np.int64)
        ids = among(_ids_in(*(np.array(side, np.int64) for side in zip(*ranges))), ids)
    if where.by_time:
        ids = among(FileTimes.of(index.files()).ids(where), ids)
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
