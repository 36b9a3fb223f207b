"""What every reader produces: a Document (its text and where its parts are in the file), or an
UnreadableFileError. The lowest module of reading: ingest and every format import it; it imports nothing of theirs."""

from __future__ import annotations

from collections.abc import Iterable
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


MAX_PART_BYTES = 64 * 1024 * 1024  # one part of a zip package (ODF, EPUB), unpacked: more is a zip bomb


def package_part(package, name: str) -> bytes:
    """The bytes of `name` in an open zipfile.ZipFile, refused past MAX_PART_BYTES unpacked."""
    with package.open(name) as f:
        content = f.read(MAX_PART_BYTES + 1)
    if len(content) > MAX_PART_BYTES:
        raise UnreadableFileError(f"its {name} unpacks past {MAX_PART_BYTES // 2**20} MB; not read")
    return content


def parse_xml(content: bytes):
    """An lxml element tree of a package's XML, parsed without resolving entities or fetching anything."""
    from lxml import etree

    return etree.fromstring(content, etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False))


def join_blocks(
    blocks: Iterable[tuple[str, int, str]],
) -> tuple[str, tuple[tuple[int, int], ...], tuple[tuple[int, int, str], ...]]:
    """(text, starts, headings) of blocks given in order as (text, heading level or 0, heading): each block stripped,
    empty ones left out, the rest apart by a blank line; `starts` is (text offset, the block's number, from 1) of each
    kept block (a slide's page), `headings` (text offset, level, heading) of each kept block with a level. The one
    join of the readers whose text is a sequence of blocks (docx, odt, slides, spreadsheets)."""
    parts: list[str] = []
    starts: list[tuple[int, int]] = []
    headings: list[tuple[int, int, str]] = []
    offset = 0
    for number, (text, level, heading) in enumerate(blocks, start=1):
        text = text.strip()
        if not text:
            continue
        starts.append((offset, number))
        if level:
            headings.append((offset, level, heading))
        parts.append(text)
        offset += len(text) + 2
    return "\n\n".join(parts), tuple(starts), tuple(headings)


def slide_deck(
    slides: Iterable[tuple[str, list[str]]],
) -> tuple[str, tuple[tuple[int, int], ...], tuple[tuple[int, int, str], ...]]:
    """(text, pages, headings) of a deck given as (title, lines) per slide, in order (formats/pptx.py, the .odp
    reader): a slide's lines joined, blank ones dropped; a slide without text left out (its number still counts);
    each slide a page, its title a heading ("" for an untitled one ends the heading of the one before,
    chunking.Locator)."""
    return join_blocks(
        ("\n".join(line.strip() for line in "\n".join(lines).splitlines() if line.strip()), 1, title)
        for title, lines in slides
    )


def normalise_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")
