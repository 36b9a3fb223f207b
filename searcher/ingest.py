"""Files -> documents: walk a folder (ignore rules, symlinks, special files), decode each supported file, and hand
it to its reader in formats/ for its title, plain text and places.

Supported: .txt/.text, .md/.markdown, .rst, .html/.htm (visible text of the main content, and the <title>),
.jsonl in BEIR corpus form (one document per line: `_id`, `title`, `text`), .pdf, .docx, .pptx, .odt, .odp, .epub,
.xlsx, .ods, .csv/.tsv (records named by their header row), .eml, .mbox (and mailboxes without a suffix), .ipynb
(formats/), code and other text.
Everything is pure and streaming: `parse_file` turns the bytes of one file into documents and never touches the index.

Text is read as UTF-8 (with or without a BOM), UTF-16 with a BOM, or else Windows-1252 where the bytes read as text
(`decode`). Left out on purpose: the old binary office formats (.doc, .xls, .ppt), .rtf and Apple's formats (listed
as skipped with what to save them as: `unsupported`), OCR, language detection, other legacy encodings. A file that
cannot be decoded raises `UnreadableFileError`; the indexer counts it and moves on.
"""

from __future__ import annotations

import codecs
import contextlib
import errno
import functools
import os
import re
import stat
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from .errors import InvalidInputError
from .formats.code import CODE_SECTIONS, code_sections
from .formats.document import Document, UnreadableFileError, normalise_newlines
from .formats.html import html_document, html_to_text
from .formats.jsonl import parse_jsonl
from .formats.mail import is_mbox
from .formats.markdown import markdown_document
from .formats.outline import OUTLINES, outline
from .formats.rst import rst_headings

# Re-exported: the readers' shared types and the extractors tests and callers name through ingest.
__all__ = ["Document", "UnreadableFileError", "code_sections", "html_to_text"]

FORMATS = {
    ".txt": "text",
    ".text": "text",
    ".md": "markdown",
    ".markdown": "markdown",
    ".rst": "rst",
    ".html": "html",
    ".htm": "html",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".pdf": "pdf",
    ".docx": "docx",
    ".pptx": "pptx",
    ".odt": "odt",
    ".odp": "odp",
    ".epub": "epub",
    ".xlsx": "xlsx",
    ".ods": "ods",
    ".csv": "csv",  # under a header row, each value named by its column (formats/spreadsheet.py)
    ".tsv": "tsv",
    ".eml": "eml",
    ".mbox": "mbox",
    ".ipynb": "notebook",
}
# Source code and other plain-text files, read as text (lines and all).
CODE = (
    ".py .pyi .js .mjs .cjs .jsx .ts .tsx .go .rs .java .kt .scala .c .h .cc .cpp .hpp .cs .rb .php .swift .m .lua .pl "
    ".r .jl .sh .bash .zsh .fish .ps1 .sql .css .scss .vue .svelte .ex .exs .erl .hs .ml .clj .dart .zig .nim .tex "
    ".toml .yaml .yml .ini .cfg .conf .xml .org .adoc .asciidoc .log .json"
).split()
FORMATS.update(dict.fromkeys(CODE, "text"))
# Files whose line breaks carry meaning - code and configuration (indentation too), and tables, a record per line:
# a hit's snippet keeps its whole lines.
LINE_FORMATS = frozenset(CODE) - {".org", ".adoc", ".asciidoc", ".tex"} | {".csv", ".tsv", ".xlsx", ".ods"}
# Kinds whose text is extracted, not the file's own: a hit's line is a line of that text (and /document, show and
# get_document read it back so).
EXTRACTED = frozenset({"pdf", "docx", "pptx", "odt", "odp", "epub", "xlsx", "ods", "csv", "tsv", "eml", "notebook"})
# Of those, packages of their own: never gzipped text.
BINARY = frozenset({"pdf", "docx", "pptx", "odt", "odp", "epub", "xlsx", "ods"})
IGNORE_FILES = (".gitignore", ".searcherignore")
# Compressed text (Debian ships most documentation gzipped: foo.md.gz is read as foo.md), and the most a
# compressed file may expand to.
MAX_GUNZIPPED = 64 * 1024 * 1024


# Formats a user will have that searcher does not read, and what to do about each (skipped files name it).
CONVERT = {
    ".doc": "Word 97-2003 (.doc): save it as .docx to index it",
    ".xls": "Excel 97-2003 (.xls): save it as .xlsx to index it",
    ".ppt": "PowerPoint 97-2003 (.ppt): save it as .pptx to index it",
    ".rtf": "RTF: save it as .docx or .odt to index it",
    ".pages": "Apple Pages: export it as .docx or PDF to index it",
    ".key": "Apple Keynote: export it as .pptx or PDF to index it",
    ".numbers": "Apple Numbers: export it as .xlsx to index it",
}


def _hidden(name: str) -> bool:
    """Left out of every walk: hidden names, and the owner files Microsoft Office keeps beside an open document
    (`~$report.docx`: a few bytes of its user's name, never the document)."""
    return name.startswith((".", "~$"))


def unsupported(path: Path) -> str:
    """Why a file searcher does not read is left out: what to convert it to, for a format in CONVERT."""
    return CONVERT.get(path.suffix.lower(), "not a type searcher reads")


def is_supported(path: Path) -> bool:
    """A known extension, or no extension and text inside (README, LICENSE, Makefile...); the same for the name
    inside a .gz file (`caching.md.gz`, `changelog.gz`)."""
    if path.suffix.lower() == ".gz":
        inner = _unzipped(path)
        return (
            inner.suffix.lower() in FORMATS
            and FORMATS[inner.suffix.lower()] not in BINARY
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
    """Whether a snippet of this file keeps its line breaks and indentation (source code, configuration, tables)."""
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

    def ignored(self, path: str | Path, is_dir: bool) -> bool:
        """Whether `path` (a file or folder under the root) is left out. On strings, not Path objects: a scan asks
        this of every file (a re-scan of 5,000 files spent most of its time in pathlib here)."""
        text = str(path)
        if any(is_under(text, r) for r in self.removed):
            return True
        suffix = "/" if is_dir else ""
        for folder, spec in self.specs.items():  # the ignore files of the folders above `path`, up to the root
            inner = _inside(text, str(folder))
            if inner is not None and spec.match_file(inner + suffix):
                return True
        relative = (_inside(text, str(self.root)) or "") + suffix
        if self.exclude is not None and self.exclude.match_file(relative):
            return True
        return not is_dir and self.include is not None and not self.include.match_file(relative)


def _inside(path: str, folder: str) -> str | None:
    """`path` relative to `folder` in / form, if it is strictly inside it; else None."""
    head = _prefix(folder)
    return path[len(head) :].replace(os.sep, "/") if path.startswith(head) else None


def _prefix(folder: str) -> str:
    """What every path strictly inside `folder` starts with."""
    return folder if folder.endswith(os.sep) else folder + os.sep


def named_path(item: Path | str) -> Path:
    """A path as a user or an event names it, absolute, its folders resolved and its own name kept (a link is
    indexed under its own name, and a deleted file cannot be resolved)."""
    path = Path(os.path.abspath(Path(item).expanduser()))
    return path.parent.resolve() / path.name if path.name else path


def is_under(path: str | Path, root: str | Path) -> bool:
    """`path` is `root` or inside it (lexically, as `root in path.parents`; on strings: a re-scan asks it of every
    indexed file)."""
    p, r = str(path), str(root)
    return p == r or p.startswith(_prefix(r))


def count_under(paths: Iterable[str], root: str | Path) -> int:
    """How many of `paths` are `root` or inside it (is_under's rule, without a call per path: an update counts
    every indexed file)."""
    r = str(root)
    head = _prefix(r)
    return sum(1 for p in paths if p.startswith(head) or p == r)


def iter_files(
    root: Path,
    on_error: Callable[[str, str], None] | None = None,
    on_skip: Callable[[str, str], None] | None = None,
    ignore: Ignore | None = None,
) -> Iterator[Path]:
    """Every non-hidden regular file under `root` (or `root` itself if it is a file), in a stable sorted order.

    Hidden files and folders (name starting with '.') are never entered: they hold VCS data and caches; nor are
    Office's owner files (`~$report.docx`, _hidden). A folder
    that is a searcher index is never entered either (an index must not ingest an index), nor are links to
    folders. A folder under `root` that cannot be read is passed to `on_error(folder, reason)`; a file or folder
    whose name is not valid UTF-8, a nested index, or anything but a regular file (a FIFO, a socket, a link to a
    device), to `on_skip(path, reason)`. `root` itself unreadable is an
    InvalidInputError. The walk is iterative, so any depth works.
    """
    if root.is_file():
        yield root
        return
    from .manifest import is_index_dir

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
            if _hidden(entry.name):
                continue
            if not _valid_name(entry.name):
                if on_skip is not None:
                    on_skip(printable_path(entry.path), "its name is not valid UTF-8; rename it to index it")
                continue
            try:
                is_dir = entry.is_dir()
            except OSError:
                is_dir = False
            if ignore is not None and ignore.ignored(entry.path, is_dir):
                continue
            if is_dir:
                if not entry.is_symlink():
                    subfolders.append(Path(entry.path))
            elif _regular(entry):
                yield Path(entry.path)
            elif on_skip is not None:  # a FIFO would block a read for ever, /dev/zero would never end
                on_skip(printable_path(entry.path), "not a regular file (a FIFO, socket, device or broken link)")
        stack.extend(reversed(subfolders))  # depth first, in name order, as os.walk goes


def iter_changed(
    root: Path,
    paths: Iterable[Path],
    on_error: Callable[[str, str], None] | None = None,
    on_skip: Callable[[str, str], None] | None = None,
    ignore: Ignore | None = None,
) -> Iterator[Path]:
    """The files a walk of the folder `root` (iter_files) would yield among `paths` (absolute, under `root`) and
    under those of them that are folders, each once: an update told what changed (a watch's events, `searcher
    update PATH`) reads these instead of walking all of `root`. A path that is gone, hidden, ignored or inside a
    nested index yields nothing; the ignore files of the folders above each path apply, as in a walk."""
    from .manifest import is_index_dir

    yielded: set[Path] = set()
    loaded: set[Path] = set()

    def enter(folder: Path) -> None:  # its ignore files apply below it, as when a walk enters it
        if ignore is not None and folder not in loaded:
            ignore.load(folder, {n for n in IGNORE_FILES if (folder / n).is_file()})
            loaded.add(folder)

    for path in sorted(set(paths)):
        parts = path.relative_to(root).parts
        if any(_hidden(part) for part in parts) or not all(_valid_name(part) for part in parts):
            continue
        folder, inside = root, True
        for part in parts[:-1]:  # the folders a walk would pass through on its way to `path`
            enter(folder)
            folder = folder / part
            if folder.is_symlink() or is_index_dir(folder) or (ignore is not None and ignore.ignored(folder, True)):
                inside = False
                break
        if not inside:
            continue
        enter(folder)
        try:
            st = os.stat(path)
            is_link = path.is_symlink()
        except OSError:
            continue  # gone (a delete or the old name of a rename)
        if stat.S_ISDIR(st.st_mode):
            if is_link or (ignore is not None and ignore.ignored(path, True)) or is_index_dir(path):
                continue
            try:
                os.scandir(path).close()
            except OSError as e:
                if on_error is not None:
                    on_error(str(path), e.strerror or str(e))
                continue
            files: Iterable[Path] = iter_files(path, on_error, on_skip, ignore)
        elif ignore is not None and ignore.ignored(path, False):
            continue
        elif not stat.S_ISREG(st.st_mode):
            if on_skip is not None:
                on_skip(printable_path(str(path)), "not a regular file (a FIFO, socket, device or broken link)")
            continue
        else:
            files = (path,)
        for file in files:
            if file not in yielded:
                yielded.add(file)
                yield file


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


# An HTML page's or an XML file's own word on its encoding, in its first bytes: <meta charset>, <?xml encoding>.
_DECLARED = re.compile(
    rb"<meta[^>]{0,300}?charset\s*=\s*[\"']?\s*([\w.:-]{2,40})|<\?xml[^>]{0,300}?encoding\s*=\s*[\"']([\w.:-]{2,40})",
    re.I,
)
# Declared names read as browsers read them (WHATWG Encoding): Latin-1 and ASCII as Windows-1252 (decode's own
# fallback), GB2312 and GBK as GB18030, Shift_JIS as Windows-31J.
_AS_BROWSERS_READ = {
    "iso8859-1": None,
    "ascii": None,
    "cp1252": None,
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "shift_jis": "cp932",
}


def _declared(data: bytes) -> str | None:
    """The codec a file's own declaration names (_DECLARED), other than those decode tries anyway."""
    m = _DECLARED.search(data[:4096])
    if m is None:
        return None
    try:
        codec = codecs.lookup((m.group(1) or m.group(2)).decode("ascii")).name
    except (LookupError, UnicodeDecodeError):
        return None
    return _AS_BROWSERS_READ.get(codec, codec) if not codec.startswith("utf") else None


def decode(data: bytes) -> str:
    """Bytes -> text. UTF-8 (with or without BOM), UTF-16 with a BOM, else the encoding an HTML or XML file declares
    (`<meta charset="shift_jis">`: pages in Japanese, Chinese, Cyrillic or Greek written before UTF-8), else
    Windows-1252 (Latin-1 for its five unassigned bytes) when the bytes read as text, as editors guess; anything else
    is unreadable."""
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
        declared = _declared(data)
        if declared is not None:
            with contextlib.suppress(UnicodeDecodeError):
                return data.decode(declared)
        if not _legacy_text(data):
            raise UnreadableFileError(
                f"not text ({e.reason} at byte {e.start} as UTF-8, and control characters "
                "throughout); convert it to UTF-8"
            ) from None
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _extracted(kind: str, data: bytes) -> tuple[str, tuple, tuple, str]:
    """(text, pages, headings, title) of a file whose text is extracted (EXTRACTED), from its reader in formats/:
    a PDF's pages, slides' pages and titles (pptx, odp), a document's headings (docx, odt, epub, notebook), a
    spreadsheet's sheet names (xlsx, ods), a message's subject (eml); delimited text's records under its header row
    (csv, tsv; the file's own text where it has none)."""
    if kind in ("csv", "tsv"):
        from .formats.spreadsheet import read_delimited

        text = normalise_newlines(decode(data))
        named = read_delimited(text, delimiter="\t" if kind == "tsv" else None)
        return (text if named is None else named), (), (), ""
    if kind == "pdf":
        from .formats.pdf import read_pdf

        body, pages, title = read_pdf(data)
        return body, pages, (), title
    if kind == "pptx":
        from .formats.pptx import read_pptx

        return read_pptx(data)
    if kind == "odp":
        from .formats.opendocument import read_odp

        return read_odp(data)
    if kind == "docx":
        from .formats.docx import read_docx as read
    elif kind == "odt":
        from .formats.opendocument import read_odt as read
    elif kind == "epub":
        from .formats.epub import read_epub as read
    elif kind == "xlsx":
        from .formats.spreadsheet import read_xlsx as read
    elif kind == "ods":
        from .formats.spreadsheet import read_ods as read
    elif kind == "eml":
        from .formats.mail import read_eml as read
    else:
        from .formats.notebook import read_notebook as read
    body, headings, title = read(data)
    return body, (), headings, title


def _guarded(read: Callable[[bytes], Any], data: bytes, what: str) -> Any:
    """read(data), where a reader library's own error on a malformed file (anything but UnreadableFileError) is that
    file's alone: `not a readable .docx file (KeyError in its reader)`, and the run goes on."""
    try:
        return read(data)
    except UnreadableFileError:
        raise
    except Exception as e:  # noqa: BLE001 - whatever a reader library raises on a malformed file
        raise UnreadableFileError(f"not a readable {what} ({type(e).__name__} in its reader)") from None


def _mailbox(data: bytes, source: str, doc_id: str, name: str) -> list[Document]:
    """Each message of an mbox mailbox a document (formats/mail.py), its lines anchored at the mailbox's own."""
    from .formats.mail import read_mbox

    messages = _guarded(read_mbox, data, "mailbox")
    return [
        Document(
            doc_id=f"{doc_id}#{n}",
            title=subject or f"{name}, message {n}",
            text=text,
            source=source,
            lines=lines,
            count_newlines=False,
        )
        for n, (text, subject, lines) in enumerate(messages, start=1)
        if text.strip()
    ]


def parse_file(path: Path, data: bytes, *, doc_id: str) -> tuple[list[Document], list[str]]:
    """The documents in one file, and warnings about parts that were dropped (bad JSONL lines).

    `doc_id` names the document of a plain file; JSONL records carry their own `_id`.
    """
    kind = kind_of(path)
    source = str(path)
    data = gunzip(path, data)
    if kind in EXTRACTED:  # lines of the extracted text, as /document and get_document give them back
        read = functools.partial(_extracted, kind)
        body, pages, headings, title = _guarded(read, data, f"{_unzipped(path).suffix} file")
        document = Document(
            doc_id=doc_id, title=title or path.stem, text=body, source=source, pages=pages, headings=headings
        )
        return ([document] if body.strip() else []), []
    if kind == "mbox" or (kind == "text" and not _unzipped(path).suffix and is_mbox(data[:200])):
        return _mailbox(data, source, doc_id, _unzipped(path).stem), []
    text = decode(data)
    if kind == "jsonl":
        return parse_jsonl(text, source, doc_id=doc_id, title=_unzipped(path).stem)
    fields: dict = {}
    if kind == "html":
        title, body, fields = html_document(text)
    elif kind == "markdown":
        title, body, fields = markdown_document(text)
    elif kind == "rst":
        body = normalise_newlines(text)
        headings = rst_headings(body)
        title, fields = (headings[0][2] if headings else ""), {"headings": headings}
    else:
        title, body = "", normalise_newlines(text)
        suffix = _unzipped(path).suffix.lower()
        if suffix in CODE_SECTIONS:
            fields = {"headings": code_sections(body, python=suffix in (".py", ".pyi"))}
        elif suffix in OUTLINES:  # Org, AsciiDoc, LaTeX
            title, headings = outline(body, suffix)
            fields = {"headings": headings}
    docs = (
        [Document(doc_id=doc_id, title=title or path.stem, text=body, source=source, **fields)] if body.strip() else []
    )
    return docs, []
