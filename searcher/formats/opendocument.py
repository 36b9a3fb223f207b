"""OpenDocument text and presentations (.odt, .odp: LibreOffice's own formats, which Google Docs and Word export too).

- Text: paragraphs, list items and table rows in document order, with its headings (`text:h` and their outline
  level) as the heading path.
- Presentation: each slide's title, then the text of its frames (text boxes, outlines, tables), then its speaker
  notes; a slide is a hit's page and its title the heading, as for PowerPoint (formats/pptx.py).

Read with lxml (python-docx's own dependency) from the package's content.xml: the format keeps its text in a few
elements, so no ODF library is needed. The XML is parsed without resolving entities or fetching anything, and a
content.xml that would unpack past document.MAX_PART_BYTES is refused (a zip bomb). Left out: headers, footers,
comments, footnotes (their markers and bodies), a text document's frames and drawings.
"""

from __future__ import annotations

import io
import zipfile

NS = {
    "office": "urn:oasis:names:tc:opendocument:xmlns:office:1.0",
    "text": "urn:oasis:names:tc:opendocument:xmlns:text:1.0",
    "table": "urn:oasis:names:tc:opendocument:xmlns:table:1.0",
    "dc": "http://purl.org/dc/elements/1.1/",
    "draw": "urn:oasis:names:tc:opendocument:xmlns:drawing:1.0",
    "presentation": "urn:oasis:names:tc:opendocument:xmlns:presentation:1.0",
}
_TEXT, _TABLE, _OFFICE = (f"{{{NS[p]}}}" for p in ("text", "table", "office"))
_SKIPPED = {f"{_OFFICE}annotation", f"{_TEXT}note", f"{_TEXT}tracked-changes", f"{_TEXT}bookmark-ref"}


def read_odt(data: bytes) -> tuple[str, tuple[tuple[int, int, str], ...], str]:
    """(text, ((text offset, level, heading), ...), title) of an .odt file; paragraphs separated by blank lines."""
    from .document import join_blocks

    body, title = open_body(data, "odt", "office:body/office:text")
    text, _, headings = join_blocks((block, level, " ".join(block.split())) for block, level in _blocks(body))
    title = title or next((h for _, lvl, h in headings if lvl == 1), "")
    return text, headings, title


def read_odp(
    data: bytes,
) -> tuple[str, tuple[tuple[int, int], ...], tuple[tuple[int, int, str], ...], str]:
    """(text, ((text offset, slide number), ...), ((text offset, 1, slide title or ""), ...), title) of an .odp
    file, as formats.pptx.read_pptx gives them; slides separated by blank lines, slides without text left out."""
    from .document import slide_deck

    body, title = open_body(data, "odp", "office:body/office:presentation")
    title_class = f"{{{NS['presentation']}}}class"
    slides = []
    for page in body.iterfind("draw:page", NS):
        frames = [f for f in page if f.tag == f"{{{NS['draw']}}}frame"]
        head = next((f for f in frames if f.get(title_class) == "title"), None)
        heading = " ".join(" ".join(block for block, _ in _blocks(head)).split()) if head is not None else ""
        lines = [heading] if heading else []
        slides.append((heading, lines + [block for child in page if child is not head for block, _ in _blocks(child)]))
    text, pages, headings = slide_deck(slides)
    title = title or next((h for _, _, h in headings if h), "")
    return text, pages, headings, title


def open_body(data: bytes, kind: str, body_path: str):
    """(the body element at `body_path` of the package's content.xml, the title in its meta.xml or "")."""
    from .document import UnreadableFileError, package_part, parse_xml

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as package:
            content = package_part(package, "content.xml")
            meta = package_part(package, "meta.xml") if "meta.xml" in package.namelist() else None
        body = parse_xml(content).find(body_path, NS)
        title_node = parse_xml(meta).find(".//dc:title", NS) if meta is not None else None
    except UnreadableFileError:
        raise
    except Exception as e:  # noqa: BLE001 - zip and XML errors all mean: not a readable file of its kind
        raise UnreadableFileError(f"not a readable .{kind} file ({type(e).__name__})") from None
    if body is None:
        what = {"odt": "text body", "odp": "slides"}.get(kind, "sheets")
        raise UnreadableFileError(f"not a readable .{kind} file (no {what}: another OpenDocument kind?)")
    title = (title_node.text or "").strip() if title_node is not None and title_node.text else ""
    return body, title


def _blocks(element):
    """(text, heading level or 0) of each paragraph, heading, list item and table row under `element`, in order."""
    for child in element:
        tag = child.tag
        if tag == f"{_TEXT}h":
            level = child.get(f"{_TEXT}outline-level")
            yield inline_text(child), int(level) if level and level.isdigit() else 1
        elif tag == f"{_TEXT}p":
            yield inline_text(child), 0
        elif tag == f"{_TABLE}table-row":
            yield " | ".join(" ".join(inline_text(p) for p in cell.iter(f"{_TEXT}p")).strip() for cell in child), 0
        elif tag in _SKIPPED:
            continue
        else:  # lists, list items, sections, tables and their row groups: their blocks in turn
            yield from _blocks(child)


def inline_text(element) -> str:
    """A paragraph's or heading's text: its spans in order, `text:s` as its count of spaces, tabs and line breaks
    as such; comments and footnotes left out."""
    out = [element.text or ""]
    for child in element:
        tag = child.tag
        if tag == f"{_TEXT}s":
            count = child.get(f"{_TEXT}c")
            out.append(" " * min(int(count) if count and count.isdigit() else 1, 64))
        elif tag == f"{_TEXT}tab":
            out.append("\t")
        elif tag == f"{_TEXT}line-break":
            out.append("\n")
        elif tag not in _SKIPPED and isinstance(tag, str):
            out.append(inline_text(child))
        out.append(child.tail or "")
    return "".join(out)
