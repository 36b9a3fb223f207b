"""Org, AsciiDoc and LaTeX: the text as written (offsets and lines stay the file's), their section titles as the
heading path, and the title the markup gives the document (`#+TITLE:`, `= Title`, `\\title{...}`).

Only the outline is read: the markup around words stays in the text, as in a .txt file. Section titles inside a
literal block (Org's `#+BEGIN_SRC`, AsciiDoc's `----`, LaTeX's `verbatim` and listings) and LaTeX comments are not
sections. What is left out: AsciiDoc's Markdown-style `#` titles and its include directives, Org's COMMENT trees,
LaTeX's \\input files and macros that make sections.
"""

from __future__ import annotations

import re

# Patterns that take a line whole and trim it in Python: a lazy `.*?` before optional trailing parts backtracks
# quadratically on a long run of spaces in one line.
# Org: `* TODO A headline :tag:` (level by stars, the keyword and tags are not the title).
_ORG_HEADING = re.compile(r"^(\*+)[ \t]+(.*)$", re.M)
_ORG_TAGS = re.compile(r":[\w@#%:]+:")
_ORG_TITLE = re.compile(r"^#\+title:(.*)$", re.M | re.I)
_ORG_BLOCK = re.compile(r"^[ \t]*#\+begin_(\w+).*?^[ \t]*#\+end_\1[ \t]*$", re.M | re.S | re.I)
# AsciiDoc: `= Document title`, then `== Section` (level 1) to `====== Section` (level 5).
_ADOC_HEADING = re.compile(r"^(={1,6})[ \t]+(\S.*)$", re.M)
_ADOC_BLOCK = re.compile(r"^(-{4,}|\.{4,}|`{3})[ \t]*$.*?^\1[ \t]*$", re.M | re.S)
# LaTeX: \section{...} and its kin, starred or with a short title; levels in this order.
_LATEX_LEVELS = ("part", "chapter", "section", "subsection", "subsubsection", "paragraph")
# (a title's length bounded: an unclosed brace must not make every later \section scan to the end of the file)
_LATEX_HEADING = re.compile(r"\\(" + "|".join(_LATEX_LEVELS) + r")\*?(?:\[[^\]]{0,300}\])?\{([^{}]{0,300})\}")
_LATEX_TITLE = re.compile(r"\\title(?:\[[^\]]{0,300}\])?\{([^{}]{0,300})\}")
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
    headings = []
    for m in _ORG_HEADING.finditer(text):
        words = m.group(2).split()
        if words and words[0] in ("TODO", "DONE"):
            words = words[1:]
        if words and _ORG_TAGS.fullmatch(words[-1]):
            words = words[:-1]
        if words and outside(m.start()):
            headings.append((m.start(), min(len(m.group(1)), 6), " ".join(words)))
    title = next((" ".join(m.group(1).split()) for m in _ORG_TITLE.finditer(text) if m.group(1).strip()), "")
    return title, headings


def _asciidoc(text: str) -> tuple[str, list[tuple[int, int, str]]]:
    outside = _outside(_ADOC_BLOCK, text)
    title, headings = "", []
    for m in _ADOC_HEADING.finditer(text):
        if not outside(m.start()):
            continue
        name = " ".join(m.group(2).split())
        if len(m.group(1)) == 1:  # the document's title (level 0)
            title = title or name
        else:
            headings.append((m.start(), len(m.group(1)) - 1, name))
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
