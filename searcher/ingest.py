"""Files -> documents: walk a folder, decode each supported file, and extract its title and plain text.

Supported: .txt/.text, .md/.markdown, .rst, .html/.htm (visible text of the main content, and the <title>),
and .jsonl in BEIR corpus form (one document per line: `_id`, `title`, `text`). Everything is pure and
streaming: `parse_file` turns the bytes of one file into documents and never touches the index.

Left out on purpose: PDF and office formats, language detection, encodings other than UTF-8 (and UTF-16 with
a BOM). A file that cannot be decoded raises `UnreadableFileError`; the indexer counts it and moves on.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import orjson

from .errors import InvalidInputError, SearcherError

FORMATS = {
    ".txt": "text",
    ".text": "text",
    ".md": "markdown",
    ".markdown": "markdown",
    ".rst": "rst",
    ".html": "html",
    ".htm": "html",
    ".jsonl": "jsonl",
}


@dataclass(frozen=True)
class Document:
    doc_id: str  # relative path for plain files, `_id` for JSONL records
    title: str
    text: str  # the extracted plain text; chunk offsets point into it
    source: str  # absolute path of the file it came from


class UnreadableFileError(SearcherError):
    """A supported file whose bytes are not text (binary, or not UTF-8)."""


def is_supported(path: Path) -> bool:
    return path.suffix.lower() in FORMATS


def iter_files(
    root: Path,
    on_error: Callable[[str, str], None] | None = None,
    on_skip: Callable[[str, str], None] | None = None,
) -> Iterator[Path]:
    """Every non-hidden file under `root` (or `root` itself if it is a file), in a stable sorted order.

    Hidden files and folders (name starting with '.') are never entered: they hold VCS data and caches. A folder
    that is a searcher index is never entered either (an index must not ingest an index), nor are links to
    folders. A folder under `root` that cannot be read is passed to `on_error(folder, reason)`; a file or folder
    whose name is not valid UTF-8, or a nested index, to `on_skip(path, reason)`. `root` itself unreadable is an
    InvalidInputError. The walk is iterative, so any depth works.
    """
    if root.is_file():
        yield root
        return
    from .store import is_index_dir

    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as err:
            if folder == root:
                raise InvalidInputError(f"cannot read folder {root}: {err.strerror}") from None
            if on_error is not None:
                on_error(str(folder), err.strerror or str(err))
            continue
        if is_index_dir(folder, {e.name for e in entries}):
            if folder == root:
                raise InvalidInputError(f"{root} is a searcher index; index your documents, not an index")
            if on_skip is not None:
                on_skip(str(folder), "a searcher index")
            continue
        subfolders = []
        for entry in entries:
            if entry.name.startswith("."):
                continue
            if not _valid_name(entry.name):
                if on_skip is not None:
                    on_skip(printable_path(entry.path), "its name is not valid UTF-8; rename it to index it")
                continue
            try:
                is_dir = entry.is_dir()
            except OSError:
                is_dir = False
            if is_dir:
                if not entry.is_symlink():
                    subfolders.append(Path(entry.path))
            else:
                yield Path(entry.path)
        stack.extend(reversed(subfolders))  # depth first, in name order, as os.walk goes


def _valid_name(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # undecodable bytes arrive as lone surrogates (PEP 383)
        return False
    return True


def printable_path(path: str) -> str:
    """A path with undecodable bytes shown as \\xNN escapes, for messages."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def decode(data: bytes) -> str:
    """Bytes -> text. UTF-8 (with or without BOM), or UTF-16 with a BOM; anything else is unreadable."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as e:
            raise UnreadableFileError(f"invalid UTF-16 ({e.reason} at byte {e.start})") from None
    if b"\x00" in data[:8192]:
        raise UnreadableFileError("binary content (NUL bytes)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise UnreadableFileError(f"not UTF-8 text ({e.reason} at byte {e.start}); convert it to UTF-8") from None


def parse_file(path: Path, data: bytes, *, doc_id: str) -> tuple[list[Document], list[str]]:
    """The documents in one file, and warnings about parts that were dropped (bad JSONL lines).

    `doc_id` names the document of a plain file; JSONL records carry their own `_id`.
    """
    kind = FORMATS[path.suffix.lower()]
    text = decode(data)
    source = str(path)
    if kind == "jsonl":
        return _parse_jsonl(text, source)
    if kind == "html":
        title, body = html_to_text(text)
    elif kind == "markdown":
        title, body = _markdown_title(text)
    elif kind == "rst":
        title, body = _rst_title(text), text
    else:
        title, body = "", text
    body = _normalise_newlines(body)
    docs = [Document(doc_id=doc_id, title=title or path.stem, text=body, source=source)] if body.strip() else []
    return docs, []


def _normalise_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _parse_jsonl(text: str, source: str) -> tuple[list[Document], list[str]]:
    docs: list[Document] = []
    bad: list[int] = []
    seen: set[str] = set()
    # JSON Lines separates records by "\n" only: str.splitlines() would also split inside strings holding
    # U+0085, U+2028, U+2029 or other Unicode line breaks.
    for lineno, line in enumerate(text.split("\n"), start=1):
        line = line.removesuffix("\r")
        if not line.strip():
            continue
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError:
            bad.append(lineno)
            continue
        if not isinstance(record, dict) or not isinstance(record.get("text"), str):
            bad.append(lineno)
            continue
        doc_id = str(record.get("_id", record.get("id", f"line-{lineno}")))
        if doc_id in seen:
            bad.append(lineno)
            continue
        seen.add(doc_id)
        body = _normalise_newlines(record["text"])
        title = record.get("title") or ""
        if not isinstance(title, str):
            title = str(title)
        if not body.strip():
            body = title  # a title-only record is still a document: its title is its text
        if body.strip():
            docs.append(Document(doc_id=doc_id, title=str(title), text=body, source=source))
    warnings = []
    if bad:
        shown = ", ".join(map(str, bad[:5])) + (", ..." if len(bad) > 5 else "")
        warnings.append(
            f"{len(bad)} line(s) skipped (not a JSON object with a string 'text', or a repeated '_id'): {shown}"
        )
    return docs, warnings


_FRONT_MATTER = re.compile(r"\A---\n(.*?)\n(?:---|\.\.\.)\n", re.S)
_ATX_HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t#]*$", re.M)
_SETEXT_HEADING = re.compile(r"^(\S.*)\n(?:=+|-+)[ \t]*$", re.M)


def _markdown_title(text: str) -> tuple[str, str]:
    """(title, body): the front-matter title, else the first heading; front matter is dropped from the body."""
    text = _normalise_newlines(text)
    match = _FRONT_MATTER.match(text)
    if match:
        text = text[match.end():]
        for line in match.group(1).splitlines():
            key, _, value = line.partition(":")
            if key.strip().lower() == "title" and value.strip():
                return value.strip().strip("\"'"), text
    headings = [m for m in (_ATX_HEADING.search(text), _SETEXT_HEADING.search(text)) if m]
    if headings:
        first = min(headings, key=lambda m: m.start())
        return first.group(1).strip(), text
    return "", text


_RST_ADORNMENT = re.compile(r"^([=\-~^\"'`#*+:.<>_])\1{2,}[ \t]*$")


def _rst_title(text: str) -> str:
    """The first section title: a text line underlined (and maybe overlined) with a repeated punctuation mark."""
    lines = _normalise_newlines(text).splitlines()
    for i in range(len(lines) - 1):
        line, under = lines[i].strip(), lines[i + 1]
        if line and not _RST_ADORNMENT.match(line) and _RST_ADORNMENT.match(under) and len(under.strip()) >= len(line):
            return line
    return ""


# --- HTML -------------------------------------------------------------------------------------------------

_SKIP = {"script", "style", "noscript", "template", "svg", "nav", "header", "footer", "aside", "form", "button"}
_BLOCK = {
    "p", "div", "section", "article", "main", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "dl", "table",
    "blockquote", "pre", "figure", "figcaption", "hr", "address", "details", "summary",
}
_LINE = {"br", "li", "dt", "dd", "tr", "caption"}
_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class _TextExtractor(HTMLParser):
    """Collects visible text, with paragraph breaks at block elements; remembers the main region separately.

    The main region is the first <main> or element with role="main" (Sphinx, MkDocs and most blog themes mark
    their content this way); when present, navigation and sidebars outside it are left out.
    """

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.title_parts: list[str] = []
        self.all_parts: list[str] = []
        self.main_parts: list[str] = []
        self._skip: list[str] = []  # open skipped elements (their text is not visible content)
        self._in_title = False
        self._pre = 0
        self._main_tag: str | None = None  # tag name of the open main region
        self._main_depth = 0  # nesting of `_main_tag` inside the main region
        self._main_done = False

    def _emit(self, text: str) -> None:
        self.all_parts.append(text)
        if self._main_tag is not None:
            self.main_parts.append(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _VOID:
            if tag in ("br", "hr") and not self._skip:
                self._emit("\n")
            return
        attr = dict(attrs)
        if self._skip or tag in _SKIP or "headerlink" in (attr.get("class") or ""):
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

    def handle_endtag(self, tag: str) -> None:
        if self._skip:
            if tag == self._skip[-1]:
                self._skip.pop()
            return
        if tag == "title":
            self._in_title = False
        if tag == "pre" and self._pre:
            self._pre -= 1
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
        self._emit(data if self._pre else re.sub(r"\s+", " ", data))


def html_to_text(html: str) -> tuple[str, str]:
    """(title, visible text) of an HTML page; the text of its main region when it marks one."""
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    parts = parser.main_parts if "".join(parser.main_parts).strip() else parser.all_parts
    text = "".join(parts)
    text = re.sub(r"[ \t]*\n[ \t]*(?=\n)", "\n", text)  # blank lines made of spaces become empty
    text = re.sub(r"\n{3,}", "\n\n", text).strip()
    title = " ".join("".join(parser.title_parts).split())
    return title, text
