"""Documents -> chunks that fit the model's window, measured in the model's own tokens, with char offsets.

A chunk is embedded as `title + "\\n" + text` (the title is left out when the text already starts with it), so
every passage of a long document still says what it is about. The whole model input - special tokens, the
model's document prompt, the title and the text - is at most `chunk_tokens` tokens: text the model would
silently truncate could never be found.

How a document is cut: its text is split into sentence-sized units, each tagged with the strength of the
boundary before it (paragraph > line > sentence > word > token); units are packed greedily, and a full chunk
ends at the strongest boundary in its second half, so chunks end at paragraph breaks where they can. The next
chunk repeats the last `overlap_tokens` worth of units. Units only fall back to words and then to single
tokens for sentences longer than a chunk. Left out: semantic chunking, markup-aware splitting of tables/code.
"""

from __future__ import annotations

import bisect
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from .errors import InvalidInputError
from .formats.document import Document, UnreadableFileError
from .ingest import parse_file

# Documents longer than this are chunked a segment at a time, cut at a paragraph (else line, else space) break:
# memory stays bounded by the segment, not the document (the reliability issue saw a 50 MB file take 7.3 GB when
# chunked whole; tests/test_reliability.py bounds a 5.3 MB one).
SEGMENT_CHARS = 200_000
# WordPiece maps a "word" longer than this (its max_input_chars_per_word) to one [UNK]: a 5 MB line without
# spaces became one chunk with the vector of [UNK]. Longer runs are cut into pieces of this many characters,
# counted and embedded as separate words, so they cannot swallow text.
MAX_RUN_CHARS = 100


class TokenCounter(Protocol):
    """What chunking needs from a model's tokenizer."""

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        """Character spans of the tokens of `text` (no special tokens, no truncation)."""

    def input_lengths(self, texts: list[str]) -> list[int]:
        """Model input length of each text as a document: special tokens and document prompt included."""


@dataclass(frozen=True)
class Chunk:
    doc_id: str
    title: str
    source: str
    text: str  # == document.text[start:end]
    start: int  # character offsets into the document's extracted text
    end: int
    line: int = 0  # 1-based lines of the source file where the chunk starts and ends (0: unknown)
    end_line: int = 0
    heading: str = ""  # the section heading path at the chunk's start: "Errors > ERR_REQUIRE_ESM"
    anchor: str = ""  # HTML: the id of the nearest element with one, at or before the chunk's start
    page: int = 0  # PDF: the page the chunk starts on
    # Where line, heading, anchor or page change inside the chunk: (offset in the chunk, line, heading, anchor,
    # page), so a hit can name the place of its passage, not of the chunk's start (search.Searcher._located).
    places: tuple[tuple[int, int, str, str, int], ...] = ()
    count_newlines: bool = True  # lines inside the chunk follow its newlines (else only `places` give lines)

    @property
    def embedding_input(self) -> str:
        """The exact text given to the encoder for this chunk."""
        return embedding_input(self.title, self.text)


def record_fields(r: dict) -> dict:
    """A stored chunk record's Chunk fields (generation._chunk_lines writes them), an older record's missing ones at
    their defaults: what `Chunk(**...)` and search's `Hit(**...)` take."""
    return {
        "doc_id": r["doc_id"],
        "title": r["title"],
        "source": r["source"],
        "text": r["text"],
        "start": r["start"],
        "end": r["end"],
        "line": r.get("line", 0),
        "end_line": r.get("end_line", 0),
        "heading": r.get("heading", ""),
        "anchor": r.get("anchor", ""),
        "page": r.get("page", 0),
        "places": tuple(tuple(p) for p in r.get("places", ())),
        "count_newlines": r.get("count_newlines", True),
    }


def lexical_text(title: str, heading: str, text: str) -> str:
    """What the lexical index holds for a chunk: its title, heading path and text."""
    return "\n".join(part for part in (title, heading, text) if part)


class Locator:
    """Where offsets of a document's text are in its file: line, heading path, nearest id anchor."""

    def __init__(self, doc: Document) -> None:
        self.offsets = [o for o, _ in doc.lines]
        self.lines = [line for _, line in doc.lines]
        self.newlines = [m.start() for m in re.finditer("\n", doc.text)] if doc.count_newlines else None
        self.heading_offsets: list[int] = []
        self.paths: list[str] = []
        stack: list[tuple[int, str]] = []
        for offset, level, text in doc.headings:
            stack = [h for h in stack if h[0] < level] + [(level, text)]
            self.heading_offsets.append(offset)
            self.paths.append(" > ".join(t for _, t in stack if t))  # (a code section's end has no name)
        self.anchor_offsets = [o for o, _ in doc.anchors]
        self.anchor_ids = [a for _, a in doc.anchors]
        self.page_offsets = [o for o, _ in doc.pages]
        self.page_numbers = [p for _, p in doc.pages]

    def line(self, offset: int) -> int:
        i = max(bisect.bisect_right(self.offsets, offset) - 1, 0)
        if self.newlines is None:
            return self.lines[i]
        return (
            self.lines[i]
            + bisect.bisect_left(self.newlines, offset)
            - bisect.bisect_left(self.newlines, self.offsets[i])
        )

    def places(self, start: int, end: int) -> tuple[tuple[int, int, str, str, int], ...]:
        """(offset - start, line, heading, anchor, page) at each offset in (start, end) where one of them changes."""
        marks: set[int] = set()
        for offsets in (
            self.heading_offsets,
            self.anchor_offsets,
            self.page_offsets,
            self.offsets if self.newlines is None else (),
        ):
            marks.update(offsets[bisect.bisect_right(offsets, start) : bisect.bisect_left(offsets, end)])
        return tuple((o - start, self.line(o), self.heading(o), self.anchor(o), self.page(o)) for o in sorted(marks))

    def heading(self, offset: int) -> str:
        i = bisect.bisect_right(self.heading_offsets, offset) - 1
        return self.paths[i] if i >= 0 else ""

    def page(self, offset: int) -> int:
        i = bisect.bisect_right(self.page_offsets, offset) - 1
        return self.page_numbers[i] if i >= 0 else 0

    def anchor(self, offset: int) -> str:
        i = bisect.bisect_right(self.anchor_offsets, offset) - 1
        return self.anchor_ids[i] if i >= 0 else ""


def embedding_input(title: str, text: str) -> str:
    if len(text) > MAX_RUN_CHARS and _LONG_RUN.search(text):
        text = _LONG_RUN.sub(lambda m: " ".join(_pieces(m.group())), text)
    if not title or text.startswith(title):
        return text
    return f"{title}\n{text}"


_LONG_RUN = re.compile(rf"\w{{{MAX_RUN_CHARS + 1},}}")


def _pieces(run: str) -> list[str]:
    return [run[i : i + MAX_RUN_CHARS] for i in range(0, len(run), MAX_RUN_CHARS)]


# Boundaries between units, strongest first. The whitespace of a boundary belongs to no unit.
_PARAGRAPH, _LINE, _SENTENCE, _WORD, _TOKEN = 4, 3, 2, 1, 0
SENTENCE = re.compile(r"[^.!?\n]+(?:[.!?]+|$)")  # a sentence, roughly: pseudo-queries are made of them
_BOUNDARY = re.compile(
    r"(?P<para>[ \t]*\n[ \t]*\n\s*)|(?P<line>[ \t]*\n\s*)|(?:(?<=[.!?])|(?<=[.!?][\"')\]]))(?P<sent>[ \t]+)"
)


@dataclass(frozen=True)
class _Unit:
    start: int
    end: int
    strength: int  # strength of the boundary *before* this unit


def chunk_document(
    doc: Document,
    counter: TokenCounter,
    *,
    chunk_tokens: int,
    overlap_tokens: int,
    progress: Callable[[int, int], None] | None = None,
) -> list[Chunk]:
    """Cut one document into chunks whose model input is at most `chunk_tokens` tokens.

    `progress(characters done, total)` is called after each segment of a document longer than SEGMENT_CHARS.
    """
    text = doc.text
    if not text.strip():
        return []
    overhead = counter.input_lengths([""])[0]
    title = _cap_title(doc.title, counter, limit=max(0, (chunk_tokens - overhead) // 4))
    title_cost = len(counter.token_spans(title)) if title else 0
    budget = chunk_tokens - overhead - title_cost
    if budget < 8:
        raise InvalidInputError(
            f"chunk_tokens={chunk_tokens} leaves {budget} tokens for text after the model's prompt and the title; "
            "raise chunk_tokens"
        )
    chunks: list[Chunk] = []
    locate = Locator(doc)
    for a, b in _segments(text, SEGMENT_CHARS):
        for s, e in _chunk_ranges(doc.text, title, counter, a, b, chunk_tokens, overlap_tokens, budget, doc.doc_id):
            chunks.append(
                Chunk(
                    doc.doc_id,
                    title,
                    doc.source,
                    text[s:e],
                    s,
                    e,
                    locate.line(s),
                    locate.line(max(s, e - 1)),
                    locate.heading(s),
                    locate.anchor(s),
                    locate.page(s),
                    locate.places(s, e),
                    doc.count_newlines,
                )
            )
        if progress is not None and len(text) > SEGMENT_CHARS:
            progress(b, len(text))
    return chunks


def _chunk_ranges(
    text: str,
    title: str,
    counter: TokenCounter,
    a: int,
    b: int,
    chunk_tokens: int,
    overlap_tokens: int,
    budget: int,
    doc_id: str,
) -> list[tuple[int, int]]:
    """(start, end) of the chunks of text[a:b], each fitting `chunk_tokens` with its title."""
    segment = text[a:b]
    spans = [(s + a, e + a) for s, e in _split_runs(segment, counter.token_spans(segment), counter)]
    if not spans:
        return []
    starts = [s for s, _ in spans]
    while True:
        units = _units(text, spans, starts, budget, a, b)
        ranges = _pack(units, starts, budget, min(overlap_tokens, budget // 2), budget * MAX_RUN_CHARS)
        lengths = counter.input_lengths([embedding_input(title, text[s:e]) for s, e in ranges])
        excess = max(n - chunk_tokens for n in lengths)
        if excess <= 0:
            return ranges
        # subtle: a token count taken over the whole document can differ by a token or two from the count of a
        # chunk on its own (BPE merges at the edges); shrink the budget by what overflowed and pack again.
        budget -= excess
        if budget < 8:
            raise InvalidInputError(f"cannot fit the text of {doc_id!r} into chunks of {chunk_tokens} tokens")


def _segments(text: str, size: int) -> list[tuple[int, int]]:
    """(start, end) ranges of at most `size` characters covering `text`, cut at the strongest break available."""
    out, a, n = [], 0, len(text)
    while n - a > size:
        window = text[a : a + size]
        cut = max(window.rfind("\n\n"), 0) or max(window.rfind("\n"), 0) or max(window.rfind(" "), 0)
        b = a + cut if cut > size // 2 else a + size
        out.append((a, b))
        a = b
    out.append((a, n))
    return out


def _split_runs(text: str, spans: list[tuple[int, int]], counter: TokenCounter) -> list[tuple[int, int]]:
    """Token spans, with any token longer than MAX_RUN_CHARS (an [UNK] swallowing a run) re-tokenised in pieces."""
    if all(e - s <= MAX_RUN_CHARS for s, e in spans):
        return spans
    out: list[tuple[int, int]] = []
    for s, e in spans:
        if e - s <= MAX_RUN_CHARS:
            out.append((s, e))
            continue
        for p in range(s, e, MAX_RUN_CHARS):
            q = min(p + MAX_RUN_CHARS, e)
            out.extend((p + x, p + y) for x, y in counter.token_spans(text[p:q]) or [(0, q - p)])
    return out


def _cap_title(title: str, counter: TokenCounter, *, limit: int) -> str:
    """The title, cut to at most `limit` tokens so it never crowds out the text it labels."""
    title = " ".join(title.split())
    if not title:
        return ""
    spans = counter.token_spans(title)
    if len(spans) <= limit:
        return title
    return title[: spans[limit - 1][1]] if limit > 0 else ""


def _count(starts: list[int], a: int, b: int) -> int:
    """Number of tokens starting in [a, b)."""
    return bisect.bisect_left(starts, b) - bisect.bisect_left(starts, a)


def _units(text: str, spans: list[tuple[int, int]], starts: list[int], budget: int, a: int, b: int) -> list[_Unit]:
    """Sentence-sized units of text[a:b], each tagged with the strength of the boundary before it."""
    units: list[_Unit] = []
    strength = _PARAGRAPH
    segment = text[a:b]
    pos = a + len(segment) - len(segment.lstrip())
    for m in _BOUNDARY.finditer(text, pos, b):
        if m.start() > pos:
            units.extend(_split_long(text, spans, starts, pos, m.start(), strength, budget))
        pos = max(pos, m.end())
        kind = m.lastgroup
        strength = _PARAGRAPH if kind == "para" else _LINE if kind == "line" else _SENTENCE
    end = a + len(segment.rstrip())
    if end > pos:
        units.extend(_split_long(text, spans, starts, pos, end, strength, budget))
    return units


def _split_long(
    text: str, spans: list[tuple[int, int]], starts: list[int], a: int, b: int, strength: int, budget: int
) -> list[_Unit]:
    """One sentence as a unit, or, if it alone exceeds the budget, its words (or tokens) as units."""
    if _count(starts, a, b) <= budget and b - a <= budget * MAX_RUN_CHARS:
        return [_Unit(a, b, strength)]
    out: list[_Unit] = []
    for i, m in enumerate(re.finditer(r"\S+", text[a:b])):
        wa, wb = a + m.start(), a + m.end()
        s = strength if i == 0 else _WORD
        if _count(starts, wa, wb) <= budget:
            out.append(_Unit(wa, wb, s))
            continue
        lo, hi = bisect.bisect_left(starts, wa), bisect.bisect_left(starts, wb)
        for j in range(lo, hi):  # a "word" longer than a chunk (base64, a URL...): one unit per token
            out.append(
                _Unit(spans[j][0] if j > lo else wa, spans[j][1] if j < hi - 1 else wb, s if j == lo else _TOKEN)
            )
    return out


def _pack(units: list[_Unit], starts: list[int], budget: int, overlap: int, max_chars: int) -> list[tuple[int, int]]:
    """Greedy packing of units into (start, end) ranges of at most `budget` tokens and `max_chars` characters
    (so that long whitespace between words stays bounded too), with overlap."""
    ranges: list[tuple[int, int]] = []
    i, n = 0, len(units)
    while i < n:
        j = i
        while (
            j + 1 < n
            and _count(starts, units[i].start, units[j + 1].end) <= budget
            and units[j + 1].end - units[i].start <= max_chars
        ):
            j += 1
        if j + 1 < n:
            j = _best_end(units, starts, i, j, budget)
        ranges.append((units[i].start, units[j].end))
        if j + 1 >= n:
            break
        # Step back over the last units for the overlap, but always move forward and leave room for new text.
        k = j + 1
        while (
            k - 1 > i
            and _count(starts, units[k - 1].start, units[j].end) <= overlap
            and _count(starts, units[k - 1].start, units[j + 1].end) <= budget
        ):
            k -= 1
        i = k
    return ranges


def _best_end(units: list[_Unit], starts: list[int], i: int, j: int, budget: int) -> int:
    """The last unit of a full chunk [i..j]: the strongest boundary after it, searching the chunk's second half."""
    best, best_strength = j, units[j + 1].strength
    for e in range(j - 1, i - 1, -1):
        if _count(starts, units[i].start, units[e].end) < budget // 2:
            break
        if units[e + 1].strength > best_strength:
            best, best_strength = e, units[e + 1].strength
    return best


def check_chunking(chunk_tokens: int, overlap_tokens: int, max_seq_length: int) -> None:
    """Reject chunk settings the model cannot honour."""
    if chunk_tokens > max_seq_length:
        raise InvalidInputError(
            f"chunk_tokens={chunk_tokens} exceeds the model's max_seq_length of {max_seq_length}; "
            "use a smaller --chunk-tokens"
        )
    if overlap_tokens >= chunk_tokens // 2:
        raise InvalidInputError(
            f"overlap_tokens={overlap_tokens} must be less than half of chunk_tokens={chunk_tokens}"
        )


@dataclass
class Parsed:
    """One file parsed and chunked (by a worker or locally)."""

    documents: int = 0
    warnings: list[str] = field(default_factory=list)
    chunks: list = field(default_factory=list)
    error: str = ""  # why the file could not be read (UnreadableFileError); nothing else is set then
    read_seconds: float = 0.0
    chunk_seconds: float = 0.0


def parse_and_chunk(path, data: bytes, doc_id: str, chunker) -> Parsed:
    """Parse one file's bytes and chunk its documents: the step both the local path and a Ray worker run."""
    started = time.perf_counter()
    try:
        docs, warnings = parse_file(path, data, doc_id=doc_id)
    except UnreadableFileError as e:
        return Parsed(error=str(e))
    parsed = time.perf_counter()
    chunks = [c for doc in docs for c in chunker(doc)]
    return Parsed(len(docs), list(warnings), chunks, "", parsed - started, time.perf_counter() - parsed)


def query_sentences(text: str) -> list[re.Match]:
    """The sentences of `text` long enough to be a pseudo-query and short enough to be one (5-40 words)."""
    return [m for m in SENTENCE.finditer(text) if 5 <= len(m.group().split()) <= 40]
