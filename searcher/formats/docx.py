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

    from .document import UnreadableFileError, join_blocks

    try:
        document: DocxDocument = docx.Document(io.BytesIO(data))
    except Exception as e:  # noqa: BLE001 - zip, XML and package errors all mean: not a readable .docx
        raise UnreadableFileError(f"not a readable .docx file ({type(e).__name__})") from None
    text, _, headings = join_blocks((text, _level(style), " ".join(text.split())) for text, style in _blocks(document))
    title = (document.core_properties.title or "").strip() or next((h for _, lvl, h in headings if lvl == 1), "")
    return text, headings, title


def _blocks(document):
    """(text, style name) of each paragraph and table row, in document order."""
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    for block in document.iter_inner_content():
        if isinstance(block, Paragraph):
            yield block.text, block.style.name if block.style is not None else ""
        elif isinstance(block, Table):
            for row in block.rows:
                yield " | ".join(cell.text.strip() for cell in row.cells), ""


def _level(style: str) -> int:
    """A Word paragraph style's heading level: `Heading 2` 2, `Title` 1, anything else 0."""
    level = re.fullmatch(r"Heading (\d)", style or "")
    return int(level.group(1)) if level else 1 if style == "Title" else 0
