"""Tiny PDF, DOCX, PPTX and ODT files made by the tests themselves (no binary fixtures in the repository): the office
files by the libraries that write them (python-docx, python-pptx, odfpy), as a user's tools would."""

from __future__ import annotations

from pathlib import Path


def write_pdf(path: Path, pages: list[list[str]], title: str = "") -> Path:
    """A valid PDF with one page per entry, each line drawn as text in Helvetica (an empty page has no text)."""
    objects = ["<< /Type /Catalog /Pages 2 0 R >>", None, "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    kids = []
    for lines in pages:
        ops = "".join(f"BT /F1 12 Tf 72 {720 - 16 * i} Td ({line}) Tj ET\n" for i, line in enumerate(lines))
        objects.append(f"<< /Length {len(ops)} >>\nstream\n{ops}endstream")
        content = len(objects)
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {content} 0 R "
            "/Resources << /Font << /F1 3 0 R >> >> >>"
        )
        kids.append(f"{len(objects)} 0 R")
    objects[1] = f"<< /Type /Pages /Kids [{' '.join(kids)}] /Count {len(kids)} >>"
    info = None
    if title:
        objects.append(f"<< /Title ({title}) >>")
        info = len(objects)
    out = b"%PDF-1.4\n"
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n{body}\nendobj\n".encode("latin-1")
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += "".join(f"{o:010d} 00000 n \n" for o in offsets).encode()
    trailer = f"<< /Size {len(objects) + 1} /Root 1 0 R" + (f" /Info {info} 0 R" if info else "") + " >>"
    out += f"trailer\n{trailer}\nstartxref\n{xref}\n%%EOF\n".encode()
    path.write_bytes(out)
    return path


def write_docx(path: Path, blocks: list[tuple[str, str]]) -> Path:
    """A .docx of (style, text) blocks: style 'Heading 1'.. or '' for a paragraph, 'table' for a 2x2 table."""
    import docx

    document = docx.Document()
    for style, text in blocks:
        if style.startswith("Heading"):
            document.add_heading(text, level=int(style.split()[1]))
        elif style == "table":
            table = document.add_table(rows=2, cols=2)
            for i, cell in enumerate(c for row in table.rows for c in row.cells):
                cell.text = f"{text} {i}"
        else:
            document.add_paragraph(text)
    document.save(str(path))
    return path


def write_pptx(path: Path, slides: list[tuple[str, list[str], str]], title: str = "") -> Path:
    """A .pptx of (title, bullet lines, speaker notes) slides; a bullet 'table:a,b' is a one-row table instead,
    'group:text' a text box inside a group shape, and a slide with no title uses the blank layout (a text box for
    its bullets)."""
    import pptx
    from pptx.util import Inches

    deck = pptx.Presentation()
    if title:
        deck.core_properties.title = title
    for heading, bullets, notes in slides:
        slide = deck.slides.add_slide(deck.slide_layouts[1] if heading else deck.slide_layouts[6])
        if heading:
            slide.shapes.title.text = heading
            body = slide.placeholders[1].text_frame
        else:
            body = slide.shapes.add_textbox(Inches(1), Inches(1), Inches(6), Inches(2)).text_frame
        lines = [b for b in bullets if not b.startswith(("table:", "group:"))]
        for i, line in enumerate(lines):
            (body.paragraphs[0] if i == 0 else body.add_paragraph()).text = line
        for b in bullets:
            if b.startswith("group:"):
                group = slide.shapes.add_group_shape()
                group.shapes.add_textbox(Inches(1), Inches(5), Inches(4), Inches(1)).text_frame.text = b[6:]
            if b.startswith("table:"):
                cells = b.removeprefix("table:").split(",")
                table = slide.shapes.add_table(1, len(cells), Inches(1), Inches(4), Inches(6), Inches(1)).table
                for cell, text in zip(table.rows[0].cells, cells):
                    cell.text = text
        if notes:
            slide.notes_slide.notes_text_frame.text = notes
    deck.save(str(path))
    return path


def write_odt(path: Path, blocks: list[tuple[str, str]], title: str = "") -> Path:
    """An .odt of (kind, text) blocks: kind 'h1'.. for a heading of that level, 'p' a paragraph, 'li' a list item,
    'table' a one-row table of the comma-separated cells."""
    from odf import table, text
    from odf.dc import Title
    from odf.opendocument import OpenDocumentText

    document = OpenDocumentText()
    if title:
        document.meta.addElement(Title(text=title))
    for kind, content in blocks:
        if kind.startswith("h"):
            document.text.addElement(text.H(outlinelevel=int(kind[1:]), text=content))
        elif kind == "li":
            items = text.List()
            item = text.ListItem()
            item.addElement(text.P(text=content))
            items.addElement(item)
            document.text.addElement(items)
        elif kind == "table":
            grid = table.Table(name="t")
            row = table.TableRow()
            for value in content.split(","):
                cell = table.TableCell()
                cell.addElement(text.P(text=value))
                row.addElement(cell)
            grid.addElement(row)
            document.text.addElement(grid)
        else:
            document.text.addElement(text.P(text=content))
    document.save(str(path))
    return path


def write_odp(path: Path, slides: list[tuple[str, list[str], str]], title: str = "") -> Path:
    """An .odp of (title, lines, speaker notes) slides, as LibreOffice Impress writes them: a title frame
    (presentation:class title), an outline frame of the lines, and the notes in the slide's notes page."""
    from odf import draw, presentation, style, text
    from odf.dc import Title
    from odf.namespaces import PRESENTATIONNS
    from odf.opendocument import OpenDocumentPresentation

    document = OpenDocumentPresentation()
    if title:
        document.meta.addElement(Title(text=title))
    layout = style.PageLayout(name="layout")
    layout.addElement(style.PageLayoutProperties(pagewidth="28cm", pageheight="21cm", printorientation="landscape"))
    document.automaticstyles.addElement(layout)
    master = style.MasterPage(name="master", pagelayoutname=layout)
    document.masterstyles.addElement(master)

    def frame(kind: str, lines: list[str]):
        box = draw.Frame(width="20cm", height="3cm", x="1cm", y="1cm")
        box.setAttrNS(PRESENTATIONNS, "class", kind)
        inner = draw.TextBox()
        for line in lines:
            inner.addElement(text.P(text=line))
        box.addElement(inner)
        return box

    for heading, lines, notes in slides:
        page = draw.Page(masterpagename=master)
        if heading:
            page.addElement(frame("title", [heading]))
        page.addElement(frame("outline", lines))
        if notes:
            page_notes = presentation.Notes()
            page_notes.addElement(frame("notes", [notes]))
            page.addElement(page_notes)
        document.presentation.addElement(page)
    document.save(str(path))
    return path


def write_epub(path: Path, chapters: list[tuple[str, str]], title: str = "", encrypted: bool = False) -> Path:
    """An EPUB 3 of (file name, XHTML body) chapters, in that reading order, built as the format's specification
    lays it out (no e-book library is a dependency): the mimetype first and stored, the container, the package
    document in OEBPS/ with its manifest and spine (a navigation document outside the spine), and, with
    `encrypted`, an encryption.xml naming the first chapter as a DRM scheme would."""
    import zipfile

    xhtml = '<?xml version="1.0" encoding="utf-8"?><html xmlns="http://www.w3.org/1999/xhtml"><head><title>{}</title></head><body>{}</body></html>'
    items = "".join(
        f'<item id="c{i}" href="text/{name}" media-type="application/xhtml+xml"/>'
        for i, (name, _) in enumerate(chapters)
    )
    spine = "".join(f'<itemref idref="c{i}"/>' for i in range(len(chapters)))
    opf = (
        '<?xml version="1.0" encoding="utf-8"?><package xmlns="http://www.idpf.org/2007/opf" version="3.0" '
        'unique-identifier="id"><metadata xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:identifier id="id">x'
        f"</dc:identifier><dc:title>{title}</dc:title><dc:language>en</dc:language></metadata><manifest>"
        f'<item id="nav" href="nav.xhtml" media-type="application/xhtml+xml" properties="nav"/>{items}</manifest>'
        f"<spine>{spine}</spine></package>"
    )
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as book:
        book.writestr(zipfile.ZipInfo("mimetype"), "application/epub+zip")  # stored, first
        book.writestr(
            "META-INF/container.xml",
            '<?xml version="1.0"?><container version="1.0" xmlns="urn:oasis:names:tc:opendocument:xmlns:container">'
            '<rootfiles><rootfile full-path="OEBPS/content.opf" media-type="application/oebps-package+xml"/>'
            "</rootfiles></container>",
        )
        book.writestr("OEBPS/content.opf", opf)
        book.writestr("OEBPS/nav.xhtml", xhtml.format("Contents", "<nav><ol><li>Contents</li></ol></nav>"))
        for name, body in chapters:
            book.writestr(f"OEBPS/text/{name}", xhtml.format(name, body))
        if encrypted:
            book.writestr(
                "META-INF/encryption.xml",
                '<encryption xmlns="urn:oasis:names:tc:opendocument:xmlns:container" '
                'xmlns:enc="http://www.w3.org/2001/04/xmlenc#"><enc:EncryptedData><enc:CipherData>'
                f'<enc:CipherReference URI="OEBPS/text/{chapters[0][0]}"/></enc:CipherData></enc:EncryptedData>'
                "</encryption>",
            )
    return path


def write_xlsx(path: Path, sheets: dict[str, list[list]], title: str = "") -> Path:
    """An .xlsx of {sheet name: rows of cell values} (None for an empty cell), written by openpyxl as Excel would."""
    import openpyxl

    book = openpyxl.Workbook()
    book.remove(book.active)
    for name, rows in sheets.items():
        sheet = book.create_sheet(name)
        for row in rows:
            sheet.append(row)
    if title:
        book.properties.title = title
    book.save(str(path))
    return path


def write_ods(path: Path, sheets: dict[str, list[list]]) -> Path:
    """An .ods of {sheet name: rows of cell values} written by odfpy, with LibreOffice's padding: each sheet ends in
    a row repeated a million times and every row in an empty cell repeated to the sheet's last column."""
    from odf import table, text
    from odf.opendocument import OpenDocumentSpreadsheet

    document = OpenDocumentSpreadsheet()
    for name, rows in sheets.items():
        grid = table.Table(name=name)
        for values in rows:
            row = table.TableRow()
            for value in values:
                if value is None:
                    cell = table.TableCell()
                elif isinstance(value, (int, float)):
                    cell = table.TableCell(valuetype="float", value=value)
                    cell.addElement(text.P(text=str(value)))
                else:
                    cell = table.TableCell(valuetype="string")
                    cell.addElement(text.P(text=value))
                row.addElement(cell)
            row.addElement(table.TableCell(numbercolumnsrepeated=16000))
            grid.addElement(row)
        padding = table.TableRow(numberrowsrepeated=1048000)
        padding.addElement(table.TableCell(numbercolumnsrepeated=16384))
        grid.addElement(padding)
        document.spreadsheet.addElement(grid)
    document.save(str(path))
    return path
