"""The indexes a server answers from, each followed to its newest published generation.

A request takes the current Searcher of its index and uses it to the end, so all of its hits come from one
generation. At most every CHECK_SECONDS a request stats the index's manifest; when a writer (`searcher index`,
`update`, `--watch`) has published a new generation, a new Searcher is opened on it and becomes current for later
requests. The old one is not closed while a request may hold it: its files were opened once, so the writer
deleting that generation's folder frees nothing until the last reference goes (POSIX keeps unlinked files that
are open or mapped), then the garbage collector releases them.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from ..documents import read_lines
from ..encoder import resolve_model
from ..errors import IndexNotFoundError, InvalidInputError, SearcherError
from ..home import resolve
from ..search import Searcher
from ..store import MANIFEST

# Shared by the HTTP API and MCP: what every face of the server accepts.
ALL = "*"  # index=* searches every index of the server, hits merged by score (search.search_many)
MAX_K = 100
MAX_QUERY_CHARS = 2_000

CHECK_SECONDS = 0.25  # how stale a server's view of an index may be


@dataclass
class _Entry:
    path: Path
    searcher: Searcher
    stamp: tuple
    checked: float


class Catalog:
    """Named indexes (`names`: index names or paths, as --index takes them), opened once and kept current."""

    def __init__(self, names: list[str | Path | None], reranker: str | None = None) -> None:
        self._entries: dict[str, _Entry] = {}
        # The cross-encoder a request may ask for (rerank.py), chosen by whoever starts the server: a request can
        # turn reranking on, never name a model to load. A path that is not there fails here, not at a request.
        if reranker is not None:
            resolve_model(reranker)
        self.reranker = reranker
        self._lock = threading.Lock()
        for name in names or [None]:
            path = resolve(name)
            key = path.name if path.name not in self._entries else str(path)  # a name, or a path where names clash
            if key in self._entries:
                raise SearcherError(f"index {key!r} is given twice; give each index once")
            searcher = Searcher(path)
            self._warm(searcher)
            self._entries[key] = _Entry(path, searcher, _stamp(path), time.monotonic())
        self.default = next(iter(self._entries))

    def rerank_options(self, wanted: bool, depth: int) -> dict:
        """Search options for a request's `rerank` (see __init__)."""
        if not wanted:
            return {}
        if self.reranker is None:
            raise InvalidInputError("this server has no reranker; start it with --rerank MODEL to allow rerank")
        return {"rerank": self.reranker, "rerank_depth": depth}

    @property
    def names(self) -> list[str]:
        return list(self._entries)

    def searcher(self, name: str | None = None) -> Searcher:
        """The current Searcher of index `name` (None: the first one given)."""
        key = self.default if name is None else name
        entry = self._entries.get(key)
        if entry is None:
            raise IndexNotFoundError(f"no index named {key!r} here; this server has {', '.join(self._entries)}")
        now = time.monotonic()
        if now - entry.checked < CHECK_SECONDS:
            return entry.searcher
        with self._lock:
            if now - entry.checked >= CHECK_SECONDS:
                stamp = _stamp(entry.path)
                if stamp != entry.stamp:
                    try:
                        entry.searcher = self._reopen(entry)
                        entry.stamp = stamp
                    except SearcherError:  # a generation being switched in, or damaged: keep answering from ours
                        pass
                entry.checked = now
            return entry.searcher

    def describe(self) -> list[dict]:
        out = []
        for key in self._entries:
            m = self.searcher(key).manifest
            out.append({"name": key, "path": str(self._entries[key].path), **m.summary()})
        return out

    def _reopen(self, entry: _Entry) -> Searcher:
        old = entry.searcher
        new = Searcher(entry.path, encoder=old.encoder)  # the same exported model (usually): keep its session
        if new.manifest.query_encoder != old.manifest.query_encoder or new.manifest.model != old.manifest.model:
            new = Searcher(entry.path)  # rebuilt with another model
        self._warm(new)
        return new

    @staticmethod
    def _warm(searcher: Searcher) -> None:
        """Load the encoder and open the lexical side now, not in the first request that needs them."""
        searcher.encoder  # noqa: B018
        searcher.lexical  # noqa: B018


def _stamp(path: Path) -> tuple:
    try:
        st = os.stat(path / MANIFEST)
    except OSError:
        return ()
    return (st.st_ino, st.st_mtime_ns, st.st_size)


def read_any(catalog: Catalog, index: str | None, source: str, start_line: int, end_line: int | None):
    """read_lines from the index named, or (none named) from the first index of the server that holds `source`."""
    if index is not None:
        return read_lines(catalog.searcher(index).index, source, start_line, end_line)
    missing = None
    for name in catalog.names:
        try:
            return read_lines(catalog.searcher(name).index, source, start_line, end_line)
        except InvalidInputError as e:  # not a file of this index: try the next
            if "not a file of this index" not in str(e):
                raise
            missing = e
    raise missing or InvalidInputError(f"{source} is not a file of these indexes; pass a hit's `source`")
