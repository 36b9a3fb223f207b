"""What every reader produces: a Document (its text and where its parts are in the file), or an
UnreadableFileError. The lowest module of reading: ingest and every format import it; it imports nothing of theirs."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import SearcherError


@dataclass(frozen=True)
class Document:
    doc_id: str  # relative path for plain files, `_id` for JSONL records
    title: str
    text: str  # the extracted plain text; chunk offsets point into it
    source: str  # absolute path of the file it came from
    # Where the text is in the file: (text offset, file line) anchors, ascending. With `count_newlines`, a later
    # offset's line adds the newlines after its anchor (text that is the file's own, as in .txt and .md); without,
    # it is its anchor's line (HTML, where the text is extracted; JSONL, a record per line).
    lines: tuple[tuple[int, int], ...] = ((0, 1),)
    count_newlines: bool = True
    headings: tuple[tuple[int, int, str], ...] = ()  # (text offset, level 1-6, heading text), ascending
    anchors: tuple[tuple[int, str], ...] = ()  # (text offset, id) of HTML elements with an id, ascending
    pages: tuple[tuple[int, int], ...] = ()  # PDF: (text offset, page number) where each page's text starts


class UnreadableFileError(SearcherError):
    """A supported file whose bytes are not text (binary, or not UTF-8)."""


def normalise_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")
