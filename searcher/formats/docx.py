"""DOCX: paragraphs and table cells in document order, with Word's heading styles as headings.

Reader: python-docx (MIT; lxml underneath). Left out: headers, footers, footnotes, comments, text boxes.
"""

from __future__ import annotations

import io
import re


def read_docx(data: bytes) -> tuple[str, tuple[tuple[int, int, str], ...], str]:
    """(text, ((text offset, level, heading), ...), title) of a .docx file; paragraphs separated by blank lines."""
    import docx
    from docx.document import Document as DocxDocument
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    from .document import UnreadableFileError

    try:
        document: DocxDocument = docx.Document(io.BytesIO(data))
    except Exception as e:  # noqa: BLE001 - zip, XML and package errors all mean: not a readable .docx
        raise UnreadableFileError(f"not a readable .docx file ({type(e).__name__})") from None
    parts, headings, offset = [], [], 0
    for block in document.iter_inner_content():
        if isinstance(block, Paragraph):
            texts = [(block.text, block.style.name if block.style is not None else "")]
        elif isinstance(block, Table):
            texts = [(" | ".join(cell.text.strip() for cell in row.cells), "") for row in block.rows]
        else:
            continue
        for text, style in texts:
            text = text.strip()
            if not text:
                continue
            level = re.fullmatch(r"Heading (\d)", style or "")
            if level or style == "Title":
                headings.append((offset, int(level.group(1)) if level else 1, " ".join(text.split())))
            parts.append(text)
            offset += len(text) + 2
    title = (document.core_properties.title or "").strip() or next((h for _, lvl, h in headings if lvl == 1), "")
    return "\n\n".join(parts), tuple(headings), title
