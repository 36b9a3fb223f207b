"""JSON Lines: a BEIR corpus (one document per line: `_id`, `title`, `text`), or any other records.

A file in which some record has a string `text` is a corpus: each such record is a document, and the other lines
are skipped with a warning. Any other JSON Lines file (logs, chat exports, data) is one document whose lines are its
records, each written as its fields are named (`level: error | msg: disk full | user.name: ada`: nested objects by
dotted keys, lists of plain values joined by commas, strings unescaped) on the line of the file it stands on, as a
CSV's records are (formats/spreadsheet.py): JSON's quotes and braces left out of what is embedded, and a hit's
line the file's own.
"""

from __future__ import annotations

import orjson

from .document import Document, normalise_newlines


def parse_jsonl(text: str, source: str, *, doc_id: str, title: str) -> tuple[list[Document], list[str]]:
    """The documents of a JSON Lines file and warnings about lines skipped (see the module docstring); `doc_id` and
    `title` name the file's one document when it is not a corpus."""
    if not _is_corpus(text):
        body = "\n".join(_record_line(line) for line in text.split("\n"))
        return ([Document(doc_id=doc_id, title=title, text=body, source=source)] if body.strip() else []), []
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
        body = normalise_newlines(record["text"])
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


def _is_corpus(text: str) -> bool:
    """Whether some line is a record with a string `text` (parsed only for lines that name the field)."""
    for line in text.split("\n"):
        if '"text"' in line:
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            if isinstance(record, dict) and isinstance(record.get("text"), str):
                return True
    return False


def _record_line(line: str) -> str:
    """One line of a JSON Lines file that is no corpus, as read: its record's fields named, else the line."""
    if not line.strip():
        return ""
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError:
        return line.removesuffix("\r")
    if isinstance(record, dict):
        return " | ".join(f"{key}: {value}" for key, value in _fields(record, "") if value)
    return _plain(record)


def _fields(record: dict, prefix: str):
    for key, value in record.items():
        if isinstance(value, dict) and value:
            yield from _fields(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", _plain(value)


def _plain(value) -> str:
    if isinstance(value, str):
        return " ".join(value.split())
    if isinstance(value, list) and all(not isinstance(v, (dict, list)) for v in value):
        return ", ".join(_plain(v) for v in value)
    return orjson.dumps(value).decode()
