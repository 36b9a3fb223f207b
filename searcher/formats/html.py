"""HTML: the visible text of a page's main content (scripts, navigation, headers and footers left out), its
<title>, headings (permalink marks dropped), ids as anchors, and where each part of the text is in the file."""

from __future__ import annotations

import bisect
import re
from html.parser import HTMLParser

_SKIP = {"script", "style", "noscript", "template", "svg", "nav", "header", "footer", "aside", "form", "button"}
_BLOCK = {
    "p",
    "div",
    "section",
    "article",
    "main",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "ul",
    "ol",
    "dl",
    "table",
    "blockquote",
    "pre",
    "figure",
    "figcaption",
    "hr",
    "address",
    "details",
    "summary",
}
_LINE = {"br", "li", "dt", "dd", "tr", "caption"}
_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class _Stream:
    """Extracted text with, for each piece, where it came from: file lines, headings and id anchors."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.length = 0
        self.lines: list[tuple[int, int]] = []
        self.headings: list[tuple[int, int, str]] = []
        self.anchors: list[tuple[int, str]] = []

    def emit(self, text: str) -> None:
        self.parts.append(text)
        self.length += len(text)


_PERMALINK_CLASSES = {"headerlink", "mark", "anchor", "permalink", "header-anchor", "heading-anchor", "anchorjs-link"}


def _permalink(tag: str, attr: dict) -> bool:
    """A heading's permalink mark (Sphinx's ¶, Node.js's and GitHub's #): not text of the page."""
    classes = set((attr.get("class") or "").split())
    if "headerlink" in classes:
        return True
    return (
        tag == "a"
        and (attr.get("href") or "").startswith("#")
        and bool(classes & _PERMALINK_CLASSES or attr.get("aria-hidden") == "true")
    )


class _TextExtractor(HTMLParser):
    """Collects visible text, with paragraph breaks at block elements; remembers the main region separately.

    The main region is the first <main> or element with role="main" (Sphinx, MkDocs and most blog themes mark
    their content this way); when present, navigation and sidebars outside it are left out. Each stream records
    the file line of every piece of text, the headings (h1-h6) and the elements with an id.
    """

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.title_parts: list[str] = []
        self.all = _Stream()
        self.main = _Stream()
        self._skip: list[str] = []  # open skipped elements (their text is not visible content)
        self._in_title = False
        self._pre = 0
        self._main_tag: str | None = None  # tag name of the open main region
        self._main_depth = 0  # nesting of `_main_tag` inside the main region
        self._main_done = False
        self._heading: tuple[int, list[str], list[tuple[_Stream, int]]] | None = None  # level, text, starts

    def _streams(self) -> list[_Stream]:
        return [self.all, self.main] if self._main_tag is not None else [self.all]

    def _emit(self, text: str) -> None:
        for stream in self._streams():
            stream.emit(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _VOID:
            if tag in ("br", "hr") and not self._skip:
                self._emit("\n")
            return
        attr = dict(attrs)
        if self._skip or tag in _SKIP or _permalink(tag, attr):
            self._skip.append(tag)
            return
        if tag == "title":
            self._in_title = True
        if self._main_tag is None and not self._main_done and (tag == "main" or attr.get("role") == "main"):
            self._main_tag, self._main_depth = tag, 0
        if tag == self._main_tag:
            self._main_depth += 1
        if tag == "pre":
            self._pre += 1
        if tag in _BLOCK:
            self._emit("\n\n")
        elif tag in _LINE:
            self._emit("\n")
        elif tag in ("td", "th"):
            self._emit(" ")
        if attr.get("id"):
            for stream in self._streams():
                stream.anchors.append((stream.length, str(attr["id"])))
        if len(tag) == 2 and tag[0] == "h" and tag[1] in "123456":
            self._heading = (int(tag[1]), [], [(stream, stream.length) for stream in self._streams()])

    def handle_endtag(self, tag: str) -> None:
        if self._skip:
            if tag == self._skip[-1]:
                self._skip.pop()
            return
        if tag == "title":
            self._in_title = False
        if tag == "pre" and self._pre:
            self._pre -= 1
        if self._heading is not None and tag == f"h{self._heading[0]}":
            level, words, starts = self._heading
            text = " ".join("".join(words).split())
            if text:
                for stream, offset in starts:
                    stream.headings.append((offset, level, text))
            self._heading = None
        if tag in _BLOCK:
            self._emit("\n\n")
        if tag == self._main_tag:
            self._main_depth -= 1
            if self._main_depth == 0:
                self._main_tag, self._main_done = None, True

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        if self._in_title:
            self.title_parts.append(data)
            return
        if self._heading is not None:
            self._heading[1].append(data)
        line = self.getpos()[0]
        for k, piece in enumerate(data.split("\n")):  # an anchor per file line, so every line maps back
            for stream in self._streams():
                stream.lines.append((stream.length, line + k))
            if k:
                piece = "\n" + piece
            self._emit(piece if self._pre else re.sub(r"\s+", " ", piece))


def _sub_tracked(pattern: re.Pattern, repl: str, text: str) -> tuple[str, list[tuple[int, int, int]]]:
    """re.sub, and the edits it made as (start, end, length of the replacement), for mapping offsets."""
    out, edits, pos = [], [], 0
    for m in pattern.finditer(text):
        out += [text[pos : m.start()], repl]
        edits.append((m.start(), m.end(), len(repl)))
        pos = m.end()
    out.append(text[pos:])
    return "".join(out), edits


def _offset_mapper(edits: list[tuple[int, int, int]]):
    """old offset -> new offset after `edits` (ascending, non-overlapping)."""
    ends = [b for _, b, _ in edits]
    shifts, total = [], 0
    for a, b, n in edits:
        total += n - (b - a)
        shifts.append(total)

    def new(offset: int) -> int:
        i = bisect.bisect_right(ends, offset)  # edits ending at or before offset
        shift = shifts[i - 1] if i else 0
        if i < len(edits) and edits[i][0] < offset:  # inside an edit: its start (or within its replacement)
            a, _, n = edits[i]
            return a + shift + min(offset - a, n)
        return offset + shift

    return new


def _unclosed_tail_as_text(html: str) -> str:
    """`html` with each `<` after its last `>` made a space: the tags a file's end leaves open. The standard
    library's parser (before the fix of CVE-2025-6069, in Python 3.11.7 among others) scans from each such tag to
    the end of the file and then reads it as text, quadratic in their number (`<a <a <a ...`); a browser drops
    them. One character for one keeps every offset and line where it was."""
    tail = html.rfind(">") + 1
    return html if "<" not in html[tail:] else html[:tail] + html[tail:].replace("<", " ")


def html_document(html: str) -> tuple[str, str, dict]:
    """(title, visible text, Document fields: file lines, headings, id anchors) of an HTML page; the text of its
    main region when it marks one."""
    parser = _TextExtractor()
    parser.feed(_unclosed_tail_as_text(html))
    parser.close()
    stream = parser.main if "".join(parser.main.parts).strip() else parser.all
    text = "".join(stream.parts)
    text, first = _sub_tracked(re.compile(r"[ \t]*\n[ \t]*(?=\n)"), "\n", text)  # blank lines of spaces: empty
    text, second = _sub_tracked(re.compile(r"\n{3,}"), "\n\n", text)
    lead = len(text) - len(text.lstrip())
    text = text.strip()
    one, two = _offset_mapper(first), _offset_mapper(second)

    def where(offset: int) -> int:
        return min(max(two(one(offset)) - lead, 0), len(text))

    fields = {
        "lines": tuple((where(o), line) for o, line in stream.lines) or ((0, 1),),
        "count_newlines": False,
        "headings": tuple((where(o), level, t) for o, level, t in stream.headings),
        "anchors": tuple((where(o), name) for o, name in stream.anchors),
    }
    title = " ".join("".join(parser.title_parts).split())
    return title, text, fields


def html_to_text(html: str) -> tuple[str, str]:
    """(title, visible text) of an HTML page; the text of its main region when it marks one."""
    title, text, _ = html_document(html)
    return title, text
