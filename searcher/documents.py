"""Reading back an indexed document by lines: what `Hit.line`/`end_line` point at, for a person or an agent
(the server's GET /document, the MCP tool get_document).

Only files the index holds can be read, and only while each is still the file that was indexed: a regular file,
reached through no symbolic link, whose bytes hash to what the index recorded. So an endpoint built on this never
serves an arbitrary path - not a link planted in place of an indexed file (to /etc/passwd or /dev/zero), not a
FIFO (opened non-blocking, then refused), not a file a hostile index lists (its recorded hash would have to be
the file's, which only someone who already knows the content can write). Text formats give the file's lines (the
numbers hits carry); PDF and DOCX, whose hits carry a page or no line, give the lines of their extracted text.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from .errors import InvalidInputError, SearcherError
from .ingest import EXTRACTED, decode, gunzip, kind_of, parse_file
from .store import StoredIndex

MAX_LINES = 500  # lines returned by one call
MAX_BYTES = 64 * 1024 * 1024  # a larger file is not read back (indexing reads files this size and larger, rarely)


@dataclass(frozen=True)
class DocumentLines:
    source: str
    start_line: int  # 1-based, inclusive
    end_line: int
    total_lines: int
    text: str  # those lines, joined by "\n"


class PastTheEnd(InvalidInputError):
    """A read that starts after a file's last line; `total_lines` says how many it has."""

    def __init__(self, path: str, total_lines: int, start_line: int) -> None:
        super().__init__(f"{path} has {total_lines} lines; start_line {start_line} is past its end")
        self.total_lines = total_lines


def read_lines(index: StoredIndex, source: str, start_line: int = 1, end_line: int | None = None) -> DocumentLines:
    """Lines `start_line`..`end_line` (at most MAX_LINES) of `source`, a file the index holds."""
    if start_line < 1 or (end_line is not None and end_line < start_line):
        raise InvalidInputError(f"start_line must be >= 1 and end_line >= start_line, got {start_line}..{end_line}")
    known = {e.path: e for e in index.files()}
    path = source if source in known else str(Path(source).expanduser().resolve())
    if path not in known:
        raise InvalidInputError(f"{source} is not a file of this index; pass a hit's `source`")
    data = read_indexed(path, known[path].sha256)
    if kind_of(Path(path)) in EXTRACTED:  # the extracted text's lines, as hits count them
        docs, _ = parse_file(Path(path), data, doc_id=path)
        text = "\n".join(d.text for d in docs)
    else:
        text = decode(gunzip(Path(path), data))
    lines = [line.removesuffix("\r") for line in text.split("\n")]  # "\n" ends a line, as hits count them
    if lines and lines[-1] == "":
        lines.pop()
    if start_line > max(len(lines), 1):  # an empty answer would read as an empty stretch of the file
        raise PastTheEnd(path, len(lines), start_line)
    end = min(len(lines), end_line if end_line is not None else start_line + MAX_LINES - 1, start_line + MAX_LINES - 1)
    return DocumentLines(path, start_line, max(end, start_line - 1), len(lines), "\n".join(lines[start_line - 1 : end]))


def read_indexed(path: str, sha256: str) -> bytes:
    """The bytes of the indexed file at `path` if it is still that file (see the module docstring); else one line
    saying why not."""
    if os.path.realpath(path) != path:
        raise SearcherError(f"{path} is now reached through a symbolic link; only the file that was indexed is served")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise SearcherError(f"{path} is now a symbolic link; only the file that was indexed is served") from None
        raise SearcherError(f"cannot read {path} ({e.strerror}); `searcher update` takes vanished files out") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise SearcherError(f"{path} is no longer a regular file; only the file that was indexed is served")
        if st.st_size > MAX_BYTES:
            raise SearcherError(f"{path} is over {MAX_BYTES // 2**20} MB; open it directly")
        chunks, size = [], 0
        while size <= MAX_BYTES:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if size > MAX_BYTES or hashlib.sha256(data).hexdigest() != sha256:
        raise SearcherError(f"{path} has changed since it was indexed; run `searcher update` and search again")
    return data
