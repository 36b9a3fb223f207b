"""Reading back an indexed document by lines: what `Hit.line`/`end_line` point at, for a person or an agent
(the server's GET /document, the MCP tool get_document).

Only files the index holds can be read, so an endpoint built on this never serves an arbitrary path. Text formats
are read from the file as it is now, line for line (the numbers hits carry); PDF and DOCX, whose hits carry a
page or no line, give the lines of their extracted text.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .errors import InvalidInputError, SearcherError
from .ingest import decode, kind_of, parse_file
from .store import StoredIndex

MAX_LINES = 500  # lines returned by one call


@dataclass(frozen=True)
class DocumentLines:
    source: str
    start_line: int  # 1-based, inclusive
    end_line: int
    total_lines: int
    text: str  # those lines, joined by "\n"


def read_lines(index: StoredIndex, source: str, start_line: int = 1, end_line: int | None = None) -> DocumentLines:
    """Lines `start_line`..`end_line` (at most MAX_LINES) of `source`, a file the index holds."""
    if start_line < 1 or (end_line is not None and end_line < start_line):
        raise InvalidInputError(f"start_line must be >= 1 and end_line >= start_line, got {start_line}..{end_line}")
    known = {e.path for e in index.files()}
    path = source if source in known else str(Path(source).expanduser().resolve())
    if path not in known:
        raise InvalidInputError(f"{source} is not a file of this index; pass a hit's `source`")
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise SearcherError(f"cannot read {path} ({e.strerror}); `searcher update` takes vanished files out") from None
    if kind_of(Path(path)) in ("pdf", "docx"):
        docs, _ = parse_file(Path(path), data, doc_id=path)
        text = "\n".join(d.text for d in docs)
    else:
        text = decode(data)
    lines = [line.removesuffix("\r") for line in text.split("\n")]  # "\n" ends a line, as hits count them
    if lines and lines[-1] == "":
        lines.pop()
    end = min(len(lines), end_line if end_line is not None else start_line + MAX_LINES - 1,
              start_line + MAX_LINES - 1)
    return DocumentLines(path, start_line, max(end, start_line - 1), len(lines),
                         "\n".join(lines[start_line - 1:end]))
