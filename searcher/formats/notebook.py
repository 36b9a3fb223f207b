"""Jupyter notebooks (.ipynb): the sources of the cells in order - Markdown, code and raw; not their outputs -
separated by blank lines, with the Markdown cells' headings as the heading path.

A hit's line is a line of that text (as for PDF and DOCX, whose files' own lines mean nothing to a reader):
`searcher show` prints the same text. Outputs are left out: images are base64, tables and logs repeat what the
code computes, and a search finds the cell that makes them. Formats 4 (Jupyter's since 2015) and 3 are read.
"""

from __future__ import annotations

import orjson

from .document import UnreadableFileError
from .markdown import markdown_document


def read_notebook(data: bytes) -> tuple[str, tuple[tuple[int, int, str], ...], str]:
    """(text, ((text offset, level, heading), ...), title) of a notebook's bytes."""
    try:
        notebook = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise UnreadableFileError("not a readable notebook (not JSON)") from None
    if not isinstance(notebook, dict):
        raise UnreadableFileError("not a readable notebook (no cells)")
    cells = notebook.get("cells")
    if cells is None:  # format 3: cells inside worksheets, a code cell's source under "input"
        cells = [c for sheet in notebook.get("worksheets") or [] for c in (sheet.get("cells") or [])]
    if not isinstance(cells, list):
        raise UnreadableFileError("not a readable notebook (no cells)")
    parts: list[str] = []
    headings: list[tuple[int, int, str]] = []
    offset = 0
    for cell in cells:
        if not isinstance(cell, dict):
            continue
        source = cell.get("source", cell.get("input", ""))
        text = "".join(source) if isinstance(source, list) else str(source)
        text = text.replace("\r\n", "\n").strip("\n")
        if not text.strip():
            continue
        if cell.get("cell_type") == "heading":  # format 3: a heading of its own, its level beside it
            level = cell.get("level")
            text = "#" * (level if isinstance(level, int) and 1 <= level <= 6 else 1) + " " + text
        if cell.get("cell_type") in ("markdown", "heading"):
            _, body, fields = markdown_document(text)
            if len(body) != len(text):  # front matter dropped: the headings' offsets are the body's
                text = body
            # (else the cell as written, link targets and all: `searcher show` prints this text)
            headings += [(offset + at, level, name) for at, level, name in fields["headings"]]
        parts.append(text)
        offset += len(text) + 2
    metadata = notebook.get("metadata")
    metadata = metadata if isinstance(metadata, dict) else {}
    title = str(metadata.get("title") or metadata.get("name") or "").strip()
    title = title or next((name for _, level, name in headings if level == 1), "")
    return "\n\n".join(parts), tuple(headings), title
