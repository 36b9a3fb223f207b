"""Files -> documents: walk a folder, decode each supported file, and extract its title and plain text.

Supported: .txt/.text, .md/.markdown, .rst, .html/.htm (visible text of the main content, and the <title>),
.jsonl in BEIR corpus form (one document per line: `_id`, `title`, `text`), and .pdf and .docx (formats/).
Everything is pure and streaming: `parse_file` turns the bytes of one file into documents and never touches the index.

Left out on purpose: other office formats, OCR, language detection, encodings other than UTF-8 (and UTF-16 with
a BOM). A file that cannot be decoded raises `UnreadableFileError`; the indexer counts it and moves on.
"""

from __future__ import annotations

import bisect
import contextlib
import errno
import os
import re
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

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
    ".pdf": "pdf",
    ".docx": "docx",
}
# Source code and other plain-text files, read as text (lines and all).
CODE = (
    ".py .pyi .js .mjs .cjs .jsx .ts .tsx .go .rs .java .kt .scala .c .h .cc .cpp .hpp .cs .rb .php .swift .m .lua .pl "
    ".r .jl .sh .bash .zsh .fish .ps1 .sql .css .scss .vue .svelte .ex .exs .erl .hs .ml .clj .dart .zig .nim .tex "
    ".toml .yaml .yml .ini .cfg .conf .xml .csv .tsv .org .adoc .asciidoc .log .json"
).split()
FORMATS.update(dict.fromkeys(CODE, "text"))
# Of those, the ones whose line breaks and indentation carry meaning: a hit's snippet keeps its lines.
LINE_FORMATS = frozenset(CODE) - {".org", ".adoc", ".asciidoc", ".tex", ".csv", ".tsv"}
IGNORE_FILES = (".gitignore", ".searcherignore")
# Compressed text (Debian ships most documentation gzipped: foo.md.gz is read as foo.md), and the most a
# compressed file may expand to.
MAX_GUNZIPPED = 64 * 1024 * 1024
# Definitions that open a section of source code, for a hit's heading path (`HTTPServer > serve`): the keyword and
# the name; nesting follows indentation.
_DEFINITION = re.compile(
    r"^([ \t]*)(?:(?:export|default|public|private|protected|static|async|pub(?:\([\w:]+\))?|abstract|final|"
    r"override|inline|extern|unsafe|const)\s+)*(?:def|class|function|fn|func|interface|struct|trait|impl|enum|"
    r"module|namespace|object|protocol|record)\s+(?:\([^)]*\)\s*)?([A-Za-z_$][\w$]*)",
    re.M,
)
# Python's own keywords only: a docstring line that starts "function returns ..." is prose, not a definition.
_PYTHON_DEFINITION = re.compile(r"^([ \t]*)(?:async\s+)?(?:def|class)\s+([A-Za-z_]\w*)", re.M)
# Lines that neither open nor end a section: a signature's or a block's closing bracket, comments, decorators.
_NOT_CODE = ("#", "//", "/*", "*", ")", "]", "}", "@", "--")
CODE_SECTIONS = set(
    ".py .pyi .js .mjs .cjs .jsx .ts .tsx .go .rs .java .kt .scala .cs .rb .php .swift .dart .ex .exs "
    ".lua .jl .zig .nim .clj .hs .ml".split()
)


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


def is_supported(path: Path) -> bool:
    """A known extension, or no extension and text inside (README, LICENSE, Makefile...); the same for the name
    inside a .gz file (`caching.md.gz`, `changelog.gz`)."""
    if path.suffix.lower() == ".gz":
        inner = _unzipped(path)
        return (
            inner.suffix.lower() in FORMATS
            and FORMATS[inner.suffix.lower()] not in ("pdf", "docx")
            or (inner.suffix.lower() not in FORMATS and _gz_sniffs_as_text(path))
        )
    if path.suffix.lower() in FORMATS:
        return True
    return not path.suffix and sniffs_as_text(path)


def _gz_sniffs_as_text(path: Path) -> bool:
    import gzip

    try:
        with gzip.open(path, "rb") as f:
            head = f.read(8192)
    except (OSError, EOFError):
        return False
    return _text_head(head)


def sniffs_as_text(path: Path) -> bool:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)  # a FIFO must not block the walk
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return False
            head = os.read(fd, 8192)
        finally:
            os.close(fd)
    except OSError:
        return False
    return _text_head(head)


def _text_head(head: bytes) -> bool:
    if not head or b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as e:
        return e.start >= len(head) - 3 or _legacy_text(head)  # a character cut by the 8 KB window
    return True


def _legacy_text(data: bytes) -> bool:
    """Reads as Windows-1252 / Latin-1 text: almost no control characters besides tabs and line ends."""
    controls = sum(1 for b in data[:65536] if b < 32 and b not in (9, 10, 12, 13))
    return controls <= len(data[:65536]) // 200


def kind_of(path: Path) -> str:
    return FORMATS.get(_unzipped(path).suffix.lower(), "text")


def _unzipped(path: Path) -> Path:
    """The name a compressed file has inside (`caching.md.gz` -> `caching.md`)."""
    return path.with_suffix("") if path.suffix.lower() == ".gz" else path


def keeps_lines(source: str) -> bool:
    """Whether a snippet of this file keeps its line breaks and indentation (source code, configuration)."""
    return _unzipped(Path(source)).suffix.lower() in LINE_FORMATS


def gunzip(path: Path, data: bytes) -> bytes:
    """A .gz file's content (at most MAX_GUNZIPPED bytes); any other file's bytes as they are."""
    if path.suffix.lower() != ".gz":
        return data
    import gzip
    import zlib

    try:
        with gzip.GzipFile(fileobj=__import__("io").BytesIO(data)) as f:
            out = f.read(MAX_GUNZIPPED + 1)
    except (OSError, EOFError, zlib.error) as e:
        raise UnreadableFileError(f"not a readable gzip file ({e})") from None
    if len(out) > MAX_GUNZIPPED:
        raise UnreadableFileError(f"expands to over {MAX_GUNZIPPED // 2**20} MB; unpack it to index it")
    return out


class Ignore:
    """What a walk leaves out: .gitignore/.searcherignore files (each for its own folder and below) and the user's
    --exclude patterns, with --include patterns limiting files to those they match (gitignore syntax, relative to
    the folder being indexed)."""

    def __init__(
        self, root: Path, include: tuple[str, ...] = (), exclude: tuple[str, ...] = (), removed: tuple[str, ...] = ()
    ) -> None:
        import pathspec

        self.root = root
        self.removed = tuple(Path(r) for r in removed)  # absolute paths `searcher remove` took out
        self.include = pathspec.GitIgnoreSpec.from_lines(include) if include else None
        self.exclude = pathspec.GitIgnoreSpec.from_lines(exclude) if exclude else None
        self.specs: dict[Path, Any] = {}  # pathspec.GitIgnoreSpec

    def load(self, folder: Path, names: set[str]) -> None:
        import pathspec

        lines = []
        for name in IGNORE_FILES:
            if name in names:
                with contextlib.suppress(OSError):
                    lines += (folder / name).read_text(encoding="utf-8", errors="replace").splitlines()
        if lines:
            self.specs[folder] = pathspec.GitIgnoreSpec.from_lines(lines)

    def ignored(self, path: Path, is_dir: bool) -> bool:
        if any(path == r or r in path.parents for r in self.removed):
            return True
        suffix = "/" if is_dir else ""
        for folder in (path.parent, *path.parent.parents):
            spec = self.specs.get(folder)
            if spec is not None and spec.match_file(path.relative_to(folder).as_posix() + suffix):
                return True
            if folder == self.root:
                break
        relative = path.relative_to(self.root).as_posix() + suffix
        if self.exclude is not None and self.exclude.match_file(relative):
            return True
        return not is_dir and self.include is not None and not self.include.match_file(relative)


def iter_files(
    root: Path,
    on_error: Callable[[str, str], None] | None = None,
    on_skip: Callable[[str, str], None] | None = None,
    ignore: Ignore | None = None,
) -> Iterator[Path]:
    """Every non-hidden regular file under `root` (or `root` itself if it is a file), in a stable sorted order.

    Hidden files and folders (name starting with '.') are never entered: they hold VCS data and caches. A folder
    that is a searcher index is never entered either (an index must not ingest an index), nor are links to
    folders. A folder under `root` that cannot be read is passed to `on_error(folder, reason)`; a file or folder
    whose name is not valid UTF-8, a nested index, or anything but a regular file (a FIFO, a socket, a link to a
    device), to `on_skip(path, reason)`. `root` itself unreadable is an
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
        if ignore is not None:
            ignore.load(folder, {e.name for e in entries})
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
            if ignore is not None and ignore.ignored(Path(entry.path), is_dir):
                continue
            if is_dir:
                if not entry.is_symlink():
                    subfolders.append(Path(entry.path))
            elif _regular(entry):
                yield Path(entry.path)
            elif on_skip is not None:  # a FIFO would block a read for ever, /dev/zero would never end
                on_skip(printable_path(entry.path), "not a regular file (a FIFO, socket, device or broken link)")
        stack.extend(reversed(subfolders))  # depth first, in name order, as os.walk goes


def _regular(entry: os.DirEntry) -> bool:
    try:
        return entry.is_file()  # (a link counts by what it points at)
    except OSError:
        return False


def read_regular(path: Path) -> bytes:
    """The bytes of `path` if it is a regular file now (checked on the open file: it may have been replaced by a
    FIFO or a link to a device since the walk); OSError otherwise, with the reason as its strerror."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file")
        with os.fdopen(fd, "rb", closefd=False) as f:
            return f.read()
    finally:
        os.close(fd)


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
    """Bytes -> text. UTF-8 (with or without BOM), UTF-16 with a BOM, else Windows-1252 (Latin-1 for its five
    unassigned bytes) when the bytes read as text, as editors guess; anything else is unreadable."""
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
        if not _legacy_text(data):
            raise UnreadableFileError(
                f"not text ({e.reason} at byte {e.start} as UTF-8, and control characters "
                "throughout); convert it to UTF-8"
            ) from None
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def parse_file(path: Path, data: bytes, *, doc_id: str) -> tuple[list[Document], list[str]]:
    """The documents in one file, and warnings about parts that were dropped (bad JSONL lines).

    `doc_id` names the document of a plain file; JSONL records carry their own `_id`.
    """
    kind = kind_of(path)
    source = str(path)
    data = gunzip(path, data)
    if kind == "pdf":
        from .formats.pdf import read_pdf

        body, pages, title = read_pdf(data)
        # lines of the extracted text, as /document and get_document give them back (and the page beside)
        return [Document(doc_id=doc_id, title=title or path.stem, text=body, source=source, pages=pages)], []
    if kind == "docx":
        from .formats.docx import read_docx

        body, headings, title = read_docx(data)
        docs = (
            [Document(doc_id=doc_id, title=title or path.stem, text=body, source=source, headings=headings)]
            if body.strip()
            else []
        )  # lines of the extracted text, as PDF
        return docs, []
    text = decode(data)
    if kind == "jsonl":
        return _parse_jsonl(text, source)
    fields: dict = {}
    if kind == "html":
        title, body, fields = html_document(text)
    elif kind == "markdown":
        title, body, fields = _markdown_document(text)
    elif kind == "rst":
        body = _normalise_newlines(text)
        headings = _rst_headings(body)
        title, fields = (headings[0][2] if headings else ""), {"headings": headings}
    else:
        title, body = "", _normalise_newlines(text)
        if _unzipped(path).suffix.lower() in CODE_SECTIONS:
            fields = {"headings": code_sections(body, python=_unzipped(path).suffix.lower() in (".py", ".pyi"))}
    docs = (
        [Document(doc_id=doc_id, title=title or path.stem, text=body, source=source, **fields)] if body.strip() else []
    )
    return docs, []


def code_sections(text: str, python: bool = False) -> tuple[tuple[int, int, str], ...]:
    """The definitions of source code (class, def, function, fn, ...) as headings: (offset, indentation + 1, name),
    so that a hit's heading path reads `HTTPServer > serve`. Where the code dedents out of a definition (the rest of
    the enclosing function after a nested one, module code after a class), a heading with no name ends it, so that
    the path there names the enclosing definition, or nothing."""
    pattern = _PYTHON_DEFINITION if python else _DEFINITION
    out: list[tuple[int, int, str]] = []
    open_: list[int] = []  # indentation of each definition whose body the walk is in
    offset = 0
    quoted = False  # inside a Python triple-quoted string (a docstring's example is not a definition)
    for line in text.split("\n"):
        stripped = line.lstrip()
        was_quoted = quoted
        if python and (line.count('"""') + line.count("'''")) % 2:
            quoted = not quoted
        if stripped and not was_quoted and not stripped.startswith(_NOT_CODE):
            indent = len(line[: len(line) - len(stripped)].expandtabs(4))
            found = pattern.match(line)
            if open_ and open_[-1] >= indent:
                while open_ and open_[-1] >= indent:
                    open_.pop()
                if not found:
                    out.append((offset, indent + 1, ""))
            if found:
                out.append((offset + found.start(), indent + 1, found.group(2)))
                open_.append(indent)
        offset += len(line) + 1
    return tuple(out)


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
            docs.append(
                Document(
                    doc_id=doc_id,
                    title=str(title),
                    text=body,
                    source=source,
                    lines=((0, lineno),),
                    count_newlines=False,
                )
            )
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


# Markup that is not text: HTML comments, empty anchors (<a id=...></a>), and link targets "(url)" after "[text]".
_MD_NOISE = re.compile(r"<!--.*?-->|<a\s+(?:id|name)=[^>]*>\s*</a>|(?<=\])\([^)\s]*(?:\s+\"[^\"]*\")?\)", re.S | re.I)
_FENCE = re.compile(r"^(?:```|~~~).*?^(?:```|~~~)[ \t]*$", re.M | re.S)


def _blank(match: re.Match) -> str:
    """Spaces for the matched markup, newlines kept: offsets and line numbers stay those of the file."""
    return re.sub(r"[^\n]", " ", match.group())


def _markdown_document(text: str) -> tuple[str, str, dict]:
    """(title, body, Document fields): front matter dropped (and counted, so lines stay the file's), markup
    noise blanked, headings (ATX and setext, outside code fences) with their offsets."""
    text = _normalise_newlines(text)
    title, first_line = "", 1
    match = _FRONT_MATTER.match(text)
    if match:
        first_line += text.count("\n", 0, match.end())
        for line in match.group(1).splitlines():
            key, _, value = line.partition(":")
            if key.strip().lower() == "title" and value.strip():
                title = value.strip().strip("\"'")
        text = text[match.end() :]
    body = _MD_NOISE.sub(_blank, text)
    fenced = [m.span() for m in _FENCE.finditer(body)]

    def outside(pos: int) -> bool:
        return not any(a <= pos < b for a, b in fenced)

    headings = [
        (m.start(), len(m.group(0)) - len(m.group(0).lstrip("#")), m.group(1).strip())
        for m in _ATX_HEADING.finditer(body)
        if outside(m.start())
    ]
    headings += [
        (m.start(), 1 if m.group(0).rstrip()[-1] == "=" else 2, m.group(1).strip())
        for m in _SETEXT_HEADING.finditer(body)
        if outside(m.start())
    ]
    headings.sort()
    if not title and headings:
        title = headings[0][2]
    return title, body, {"lines": ((0, first_line),), "headings": tuple(headings)}


_RST_ADORNMENT = re.compile(r"^([=\-~^\"'`#*+:.<>_])\1{2,}[ \t]*$")


def _rst_headings(text: str) -> tuple[tuple[int, int, str], ...]:
    """Section titles with their offsets; levels in the order adornment styles first appear, as RST defines."""
    out, styles, pos = [], [], 0
    lines = text.split("\n")
    starts = []
    for line in lines:
        starts.append(pos)
        pos += len(line) + 1
    for i in range(len(lines) - 1):
        line, under = lines[i].strip(), lines[i + 1]
        if line and not _RST_ADORNMENT.match(line) and _RST_ADORNMENT.match(under) and len(under.strip()) >= len(line):
            over = i > 0 and _RST_ADORNMENT.match(lines[i - 1]) is not None
            style = (under.strip()[0], over)
            if style not in styles:
                styles.append(style)
            out.append((starts[i] + len(lines[i]) - len(lines[i].lstrip()), min(styles.index(style) + 1, 6), line))
    return tuple(out)


# --- HTML -------------------------------------------------------------------------------------------------

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


def html_document(html: str) -> tuple[str, str, dict]:
    """(title, visible text, Document fields: file lines, headings, id anchors) of an HTML page; the text of its
    main region when it marks one."""
    parser = _TextExtractor()
    parser.feed(html)
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
