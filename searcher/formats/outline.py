"""Org, AsciiDoc and LaTeX: the text as written (offsets and lines stay the file's), their section titles as the
heading path, and the title the markup gives the document (`#+TITLE:`, `= Title`, `\\title{...}`).

Only the outline is read: the markup around words stays in the text, as in a .txt file. Section titles inside a
literal block (Org's `#+BEGIN_SRC`, AsciiDoc's `----`, LaTeX's `verbatim` and listings) and LaTeX comments are not
sections. What is left out: AsciiDoc's Markdown-style `#` titles and its include directives, Org's COMMENT trees,
LaTeX's \\input files and macros that make sections.
"""

from __future__ import annotations

import re

# Org: `* TODO A headline :tag:` (level by stars, the keyword and tags are not the title).
_ORG_HEADING = re.compile(r"^(\*+)[ \t]+(?:(?:TODO|DONE)[ \t]+)?(.*?)(?:[ \t]+:[\w@#%:]+:)?[ \t]*$", re.M)
_ORG_TITLE = re.compile(r"^#\+title:[ \t]*(.+?)[ \t]*$", re.M | re.I)
_ORG_BLOCK = re.compile(r"^[ \t]*#\+begin_(\w+).*?^[ \t]*#\+end_\1[ \t]*$", re.M | re.S | re.I)
# AsciiDoc: `= Document title`, then `== Section` (level 1) to `====== Section` (level 5).
_ADOC_HEADING = re.compile(r"^(={1,6})[ \t]+(\S.*?)[ \t]*$", re.M)
_ADOC_BLOCK = re.compile(r"^(-{4,}|\.{4,}|`{3})[ \t]*$.*?^\1[ \t]*$", re.M | re.S)
# LaTeX: \section{...} and its kin, starred or with a short title; levels in this order.
_LATEX_LEVELS = ("part", "chapter", "section", "subsection", "subsubsection", "paragraph")
_LATEX_HEADING = re.compile(r"\\(" + "|".join(_LATEX_LEVELS) + r")\*?(?:\[[^\]]*\])?\{([^{}]*)\}")
_LATEX_TITLE = re.compile(r"\\title(?:\[[^\]]*\])?\{([^{}]*)\}")
_LATEX_BLOCK = re.compile(r"\\begin\{(verbatim|lstlisting|minted|comment)\}.*?\\end\{\1\}|(?<!\\)%[^\n]*", re.S)

OUTLINES = frozenset({".org", ".adoc", ".asciidoc", ".tex"})


def outline(text: str, suffix: str) -> tuple[str, tuple[tuple[int, int, str], ...]]:
    """(the document's title or "", its headings as (offset, level 1-6, title), ascending) of the text of a file
    of `suffix` (one of OUTLINES)."""
    if suffix == ".org":
        title, headings = _org(text)
    elif suffix == ".tex":
        title, headings = _latex(text)
    else:
        title, headings = _asciidoc(text)
    return title, tuple(headings)


def _outside(blocks: re.Pattern, text: str):
    spans = [m.span() for m in blocks.finditer(text)]
    return lambda pos: not any(a <= pos < b for a, b in spans)


def _org(text: str) -> tuple[str, list[tuple[int, int, str]]]:
    outside = _outside(_ORG_BLOCK, text)
    headings = [
        (m.start(), min(len(m.group(1)), 6), m.group(2).strip())
        for m in _ORG_HEADING.finditer(text)
        if outside(m.start()) and m.group(2).strip()
    ]
    title = _ORG_TITLE.search(text)
    return (title.group(1) if title else ""), headings


def _asciidoc(text: str) -> tuple[str, list[tuple[int, int, str]]]:
    outside = _outside(_ADOC_BLOCK, text)
    title, headings = "", []
    for m in _ADOC_HEADING.finditer(text):
        if not outside(m.start()):
            continue
        if len(m.group(1)) == 1:  # the document's title (level 0)
            title = title or m.group(2)
        else:
            headings.append((m.start(), len(m.group(1)) - 1, m.group(2)))
    return title, headings


def _latex(text: str) -> tuple[str, list[tuple[int, int, str]]]:
    outside = _outside(_LATEX_BLOCK, text)
    headings = [
        (m.start(), _LATEX_LEVELS.index(m.group(1)) + 1, " ".join(m.group(2).split()))
        for m in _LATEX_HEADING.finditer(text)
        if outside(m.start()) and m.group(2).strip()
    ]
    title = next((m for m in _LATEX_TITLE.finditer(text) if outside(m.start())), None)
    return (" ".join(title.group(1).split()) if title else ""), headings
