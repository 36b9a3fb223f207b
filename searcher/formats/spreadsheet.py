"""Spreadsheets (.xlsx, .ods): each sheet a section headed by its name, each row a line that starts with the row's
number as the spreadsheet shows it (`Row 17: ...`), so that a hit says where to look.

A sheet whose first filled row reads as a header (two or more cells, all text) gives each later row its column names
(`Row 17: Name: Ada | Team: Data | Start: 2021-03-01`): a chunk of rows far down the sheet still says what its values
are, to the model and to a reader. Empty cells and rows are left out; numbers as written (an integral float without
its `.0`), dates as ISO dates; a formula's value as the application that saved the file computed it.

Readers: openpyxl (MIT; read-only, streaming) for .xlsx; the .ods package's content.xml with lxml, as the other
OpenDocument kinds (formats/opendocument.py), where repeated rows and cells (`number-rows-repeated`, which pads a
sheet to a million rows) are counted, not expanded, unless they hold a value.

Delimited text (.csv, .tsv; `read_delimited`, the standard library's csv) gets the same column names under a header
row, each record on the line of the file it starts on, so that a hit's line is the file's line (no `Row N:`); a file
without a header row (or whose records do not keep to its columns) is read as the plain text it is. A CSV's header
is a guess, as every tool's is: its first record has two or more distinct cells, none empty, a number or unlike a
column's name (long, a web address, an e-mail address, a date), none of which comes back in its column in the next
records (the csv module's `Sniffer.has_header` votes by the values' types and lengths, and on a short file calls
`apple,red,fruit` over `banana,yellow,fruit` a header).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re

MAX_REPEAT = 1000  # a filled cell or row an .ods repeats is written out at most this many times
SAMPLE_RECORDS = 50  # the records a CSV's delimiter, header and shape are judged on
NUMBER = re.compile(r"[-+]?[$€£]?\d[\d,. ]*%?")
NAME = re.compile(r"(?!.*(?:://|@|\d{4}-\d\d-\d\d)).{1,64}")  # a column's name: short, no address, e-mail or date


def read_xlsx(data: bytes) -> tuple[str, tuple[tuple[int, int, str], ...], str]:
    """(text, ((text offset, 1, sheet name), ...), title) of an .xlsx workbook; sheets separated by blank lines."""
    import openpyxl

    from .document import UnreadableFileError

    try:
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        sheets = [(sheet.title, enumerate(sheet.iter_rows(values_only=True), start=1)) for sheet in book.worksheets]
        return _document(sheets, (book.properties.title or "").strip())
    except UnreadableFileError:
        raise
    except Exception as e:  # noqa: BLE001 - zip, XML and workbook errors all mean: not a readable .xlsx
        raise UnreadableFileError(f"not a readable .xlsx file ({type(e).__name__})") from None


def read_ods(data: bytes) -> tuple[str, tuple[tuple[int, int, str], ...], str]:
    """(text, ((text offset, 1, sheet name), ...), title) of an .ods spreadsheet, as read_xlsx gives them."""
    from .opendocument import NS, inline_text, open_body

    body, title = open_body(data, "ods", "office:body/office:spreadsheet")
    table, office = f"{{{NS['table']}}}", f"{{{NS['office']}}}"

    def value(cell):
        kind = cell.get(f"{office}value-type")
        if kind in ("float", "percentage", "currency"):
            return float(cell.get(f"{office}value", "nan"))
        if kind == "date":
            return cell.get(f"{office}date-value", "")[:10]
        return "\n".join(inline_text(p) for p in cell.iter(f"{{{NS['text']}}}p")) or None

    def rows(sheet):
        number = 0
        for row in sheet.iter(f"{table}table-row"):
            repeat = int(row.get(f"{table}number-rows-repeated") or 1)
            cells: list = []
            for cell in row:
                if cell.tag in (f"{table}table-cell", f"{table}covered-table-cell"):
                    cells += [value(cell)] * min(int(cell.get(f"{table}number-columns-repeated") or 1), MAX_REPEAT)
            if any(c not in (None, "") for c in cells):
                for _ in range(min(repeat, MAX_REPEAT)):
                    number += 1
                    yield number, cells
                number += repeat - min(repeat, MAX_REPEAT)
            else:  # empty rows, often repeated to pad the sheet: counted, not read
                number += repeat

    sheets = [(sheet.get(f"{table}name", ""), rows(sheet)) for sheet in body.iterfind("table:table", NS)]
    return _document(sheets, title)


def _document(sheets, title: str) -> tuple[str, tuple[tuple[int, int, str], ...], str]:
    """The text and sheet headings of [(sheet name, ((row number, cell values), ...)), ...]."""
    from .document import join_blocks

    text, _, headings = join_blocks((_sheet_text(name, rows), 1, name) for name, rows in sheets)
    return text, headings, title


def _sheet_text(name: str, rows) -> str:
    """A sheet's name, then a line per row that holds a value ("" for a sheet with none); under a header row, each
    value named by its column."""
    lines: list[str] = []
    header: list[str] | None = None
    for number, values in rows:
        cells = [_cell(v) for v in values]
        if not any(cells):
            continue
        if header is None and not lines and _is_header(values):
            header = cells
        elif header:
            cells = [
                f"{header[i] if i < len(header) and header[i] else _column(i)}: {c}" if c else ""
                for i, c in enumerate(cells)
            ]
        lines.append(f"Row {number}: " + " | ".join(c for c in cells if c))
    return "\n".join([name, *lines] if name else lines) if lines else ""


def _is_header(values) -> bool:
    filled = [v for v in values if v not in (None, "")]
    return len(filled) >= 2 and all(isinstance(v, str) for v in filled)


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else f"{value:g}" if abs(value) < 1e15 else str(value)
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat(sep=" ")
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    return " ".join(str(value).split())


def _column(index: int) -> str:
    """A column's letters as a spreadsheet names it: 0 -> A, 25 -> Z, 26 -> AA."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def read_delimited(text: str, *, delimiter: str | None = None) -> str | None:
    """`text` (a CSV, or TSV with `delimiter="\\t"`; newlines normalised to \\n) with each record under its header
    row written as `Name: Ada | Team: Data` on the line it starts on (a quoted field's further lines left empty),
    the header's cells joined by ` | `; None when the text has no header row, or its records do not keep to the
    header's columns: read it as plain text."""
    sample = text[: 64 * 1024]
    if delimiter is None:
        try:
            delimiter = csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
        except csv.Error:
            delimiter = ","
    try:
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
        records: list[tuple[int, list[str]]] = []
        for start, record in _numbered(reader):
            records.append((start, record))
            if len(records) > SAMPLE_RECORDS:
                break
        filled = [r for _, r in records if any(c.strip() for c in r)]
        if len(filled) < 2 or not _csv_header(filled):
            return None
        header = [" ".join(c.split()) for c in filled[0]]
        if sum(len(r) == len(header) for r in filled[1:]) < 0.8 * (len(filled) - 1):
            return None
        lines = [""] * (text.count("\n") + 1)
        for start, record in [*records, *_numbered(reader)]:
            cells = [" ".join(c.split()) for c in record]
            if record is filled[0]:
                lines[start - 1] = " | ".join(header)
            elif any(cells):
                named = (f"{header[i] if i < len(header) else _column(i)}: {c}" for i, c in enumerate(cells) if c)
                lines[start - 1] = " | ".join(named)
    except csv.Error:  # a field past the csv module's size limit, a stray NUL: the text as it is
        return None
    return "\n".join(lines)


def _numbered(reader):
    """(line the record starts on, record) of a csv reader's records."""
    before = reader.line_num
    for record in reader:
        yield before + 1, record
        before = reader.line_num


def _csv_header(records: list[list[str]]) -> bool:
    first = [c.strip() for c in records[0]]
    if len(first) < 2 or not all(first) or any(NUMBER.fullmatch(c) or not NAME.fullmatch(c) for c in first):
        return False
    if len({c.lower() for c in first}) < len(first):
        return False
    return not any(i < len(r) and r[i].strip() == c for r in records[1:] for i, c in enumerate(first))
