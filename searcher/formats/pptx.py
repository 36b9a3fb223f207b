"""PowerPoint (.pptx): each slide's text in order - its title, then its shapes' text (text boxes, placeholders,
tables row by row, grouped shapes), then its speaker notes - with the slide's number as the page (a hit says
`(page 3)`: slide 3) and its title as the heading.

Reader: python-pptx (MIT; lxml underneath, as python-docx). Shapes are read in the slide's own order (the order
PowerPoint's selection pane and screen readers follow). Left out: charts' data, SmartArt, pictures' alternative text,
slide masters and layouts (template text such as "Click to add title" is not the deck's).
"""

from __future__ import annotations

import io


def read_pptx(
    data: bytes,
) -> tuple[str, tuple[tuple[int, int], ...], tuple[tuple[int, int, str], ...], str]:
    """(text, ((text offset, slide number), ...), ((text offset, 1, slide title or ""), ...), title) of a .pptx
    file; slides separated by blank lines, slides without text left out."""
    import pptx

    from .document import UnreadableFileError, slide_deck

    try:
        deck = pptx.Presentation(io.BytesIO(data))
        slides = list(deck.slides)
    except Exception as e:  # noqa: BLE001 - zip, XML and package errors all mean: not a readable .pptx
        raise UnreadableFileError(f"not a readable .pptx file ({type(e).__name__})") from None
    deck_slides = []
    for slide in slides:
        title_shape = slide.shapes.title
        title = " ".join(title_shape.text_frame.text.split()) if title_shape is not None else ""
        lines = [title] if title else []
        for shape in slide.shapes:
            if title_shape is None or shape.shape_id != title_shape.shape_id:
                lines += _shape_lines(shape)
        if slide.has_notes_slide and slide.notes_slide.notes_text_frame is not None:
            lines.append(slide.notes_slide.notes_text_frame.text)
        # (a line break inside a paragraph is a vertical tab in python-pptx's text)
        deck_slides.append((title, [line.replace("\v", "\n") for line in lines]))
    text, pages, headings = slide_deck(deck_slides)
    title = (deck.core_properties.title or "").strip() or next((h for _, _, h in headings if h), "")
    return text, pages, headings, title


def _shape_lines(shape) -> list[str]:
    """The lines of text a shape shows: a text frame's paragraphs, a table's rows (cells joined by ` | `), a group's
    shapes in turn."""
    from pptx.shapes.group import GroupShape

    if isinstance(shape, GroupShape):  # (not shape_type: it raises on a shape kind python-pptx does not know)
        return [line for inner in shape.shapes for line in _shape_lines(inner)]
    if getattr(shape, "has_table", False):
        return [" | ".join(cell.text.strip() for cell in row.cells) for row in shape.table.rows]
    if getattr(shape, "has_text_frame", False):
        return [paragraph.text for paragraph in shape.text_frame.paragraphs]
    return []
