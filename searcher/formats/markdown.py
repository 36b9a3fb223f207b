"""Markdown: the text as written (offsets stay the file's own), front matter, comments, link targets and fences
blanked where they are noise, ATX and setext headings as the heading path."""

from __future__ import annotations

import re

from .document import normalise_newlines

_FRONT_MATTER = re.compile(r"\A---\n(.*?)\n(?:---|\.\.\.)\n", re.S)
# (the line whole, its closing #s trimmed in Python: a lazy `(.+?)[ \t#]*$` backtracked quadratically on a long
# run of spaces in a heading line)
_ATX_HEADING = re.compile(r"^#{1,6}[ \t]+(.+)$", re.M)
_SETEXT_HEADING = re.compile(r"^(\S.*)\n(?:=+|-+)[ \t]*$", re.M)


# Markup that is not text: HTML comments, empty anchors (<a id=...></a>), and link targets "(url)" after "[text]".
_MD_NOISE = re.compile(r"<!--.*?-->|<a\s+(?:id|name)=[^>]*>\s*</a>|(?<=\])\([^)\s]*(?:\s+\"[^\"]*\")?\)", re.S | re.I)
_FENCE = re.compile(r"^(?:```|~~~).*?^(?:```|~~~)[ \t]*$", re.M | re.S)


def _blank(match: re.Match) -> str:
    """Spaces for the matched markup, newlines kept: offsets and line numbers stay those of the file."""
    return re.sub(r"[^\n]", " ", match.group())


def _atx_title(line: str) -> str:
    """An ATX heading's text: without its closing #s (`## Setup ##`), which a space must precede (`# C#` keeps
    its #)."""
    title = line.strip()
    bare = title.rstrip("#")
    if bare != title and (not bare or bare[-1] in " \t"):
        title = bare.rstrip()
    return title


def markdown_document(text: str) -> tuple[str, str, dict]:
    """(title, body, Document fields): front matter dropped (and counted, so lines stay the file's), markup
    noise blanked, headings (ATX and setext, outside code fences) with their offsets."""
    text = normalise_newlines(text)
    title, first_line = "", 1
    match = _FRONT_MATTER.match(text)
    if match:
        first_line += text.count("\n", 0, match.end())
        for line in match.group(1).splitlines():
            key, _, value = line.partition(":")
            if key.strip().lower() == "title" and value.strip():
                title = value.strip().strip("\"'")
        text = text[match.end() :]
    body = _MD_NOISE.sub(_blank, text)
    fenced = [m.span() for m in _FENCE.finditer(body)]

    def outside(pos: int) -> bool:
        return not any(a <= pos < b for a, b in fenced)

    headings = [
        (m.start(), len(m.group(0)) - len(m.group(0).lstrip("#")), _atx_title(m.group(1)))
        for m in _ATX_HEADING.finditer(body)
        if outside(m.start()) and _atx_title(m.group(1))
    ]
    headings += [
        (m.start(), 1 if m.group(0).rstrip()[-1] == "=" else 2, m.group(1).strip())
        for m in _SETEXT_HEADING.finditer(body)
        if outside(m.start())
    ]
    headings.sort()
    if not title and headings:
        title = headings[0][2]
    return title, body, {"lines": ((0, first_line),), "headings": tuple(headings)}
