"""BEIR corpus JSONL: one document per line (`_id`, `title`, `text`)."""

from __future__ import annotations

import orjson

from .document import Document, normalise_newlines


def parse_jsonl(text: str, source: str) -> tuple[list[Document], list[str]]:
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
