"""EPUB (e-books, versions 2 and 3): the chapters in reading order (the package's spine), each read as the HTML it is
(formats/html.py: its visible text and headings), with their headings as the heading path and the book's title from
its metadata.

A hit's line is a line of that text, which `searcher show` prints (as for PDF and DOCX). Read with zipfile and lxml
(entities unresolved, nothing fetched), each part capped at document.MAX_PART_BYTES unpacked (a zip bomb). A book
whose chapters are encrypted (DRM) is reported as such, not indexed as noise.
"""

from __future__ import annotations

import functools
import io
import posixpath
import zipfile
from urllib.parse import unquote

_CONTAINER = "{urn:oasis:names:tc:opendocument:xmlns:container}"
_OPF = "{http://www.idpf.org/2007/opf}"
_DC = "{http://purl.org/dc/elements/1.1/}"
_CHAPTER_TYPES = ("application/xhtml+xml", "text/html")


def read_epub(data: bytes) -> tuple[str, tuple[tuple[int, int, str], ...], str]:
    """(text, ((text offset, level, heading), ...), title) of an .epub file; chapters separated by blank lines."""
    from .document import UnreadableFileError
    from .html import html_document

    try:
        chapters, title = _chapters(data)
    except UnreadableFileError:
        raise
    except Exception as e:  # noqa: BLE001 - zip and XML errors all mean: not a readable .epub
        raise UnreadableFileError(f"not a readable .epub file ({type(e).__name__})") from None
    parts: list[str] = []
    headings: list[tuple[int, int, str]] = []
    offset = 0
    for chapter in chapters:
        _, text, fields = html_document(chapter)
        if not text.strip():
            continue
        headings += [(offset + o, level, heading) for o, level, heading in fields["headings"]]
        parts.append(text)
        offset += len(text) + 2
    title = title or next((h for _, lvl, h in headings if lvl == 1), "")
    return "\n\n".join(parts), tuple(headings), title


def _chapters(data: bytes) -> tuple[list[str], str]:
    """(the spine's XHTML documents as text, in reading order; the title in the package's metadata)."""
    from .document import UnreadableFileError, package_part, parse_xml

    with zipfile.ZipFile(io.BytesIO(data)) as package:
        names = set(package.namelist())
        part = functools.partial(package_part, package)

        container = parse_xml(part("META-INF/container.xml"))
        rootfile = container.find(f".//{_CONTAINER}rootfile")
        if rootfile is None or not rootfile.get("full-path"):
            raise UnreadableFileError("not a readable .epub file (its container names no package document)")
        opf_path = rootfile.get("full-path", "")
        opf = parse_xml(part(opf_path))
        base = posixpath.dirname(opf_path)
        manifest = {
            item.get("id"): (item.get("href") or "", item.get("media-type") or "")
            for item in opf.iterfind(f"{_OPF}manifest/{_OPF}item")
        }
        paths = []
        for ref in opf.iterfind(f"{_OPF}spine/{_OPF}itemref"):
            href, media_type = manifest.get(ref.get("idref"), ("", ""))
            if href and media_type in _CHAPTER_TYPES:
                paths.append(posixpath.normpath(posixpath.join(base, unquote(href.split("#", 1)[0]))))
        if "META-INF/encryption.xml" in names:
            encrypted = {
                posixpath.normpath(unquote(ref.get("URI", "")))
                for ref in parse_xml(part("META-INF/encryption.xml")).iter()
                if ref.tag.endswith("}CipherReference")
            }
            if encrypted & set(paths):
                raise UnreadableFileError("its chapters are encrypted (DRM); remove the protection to index it")
        chapters = [part(p).decode("utf-8", errors="replace") for p in paths if p in names]
        title_node = opf.find(f"{_OPF}metadata/{_DC}title")
        title = " ".join((title_node.text or "").split()) if title_node is not None else ""
    return chapters, title
