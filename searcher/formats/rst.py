"""reStructuredText: the text as written; titles (a line over an adornment of =, -, ~, ...) as the heading path,
levels in the order the file first uses each adornment."""

from __future__ import annotations

import re

_RST_ADORNMENT = re.compile(r"^([=\-~^\"'`#*+:.<>_])\1{2,}[ \t]*$")


def rst_headings(text: str) -> tuple[tuple[int, int, str], ...]:
    """Section titles with their offsets; levels in the order adornment styles first appear, as RST defines."""
    out, styles, pos = [], [], 0
    lines = text.split("\n")
    starts = []
    for line in lines:
        starts.append(pos)
        pos += len(line) + 1
    for i in range(len(lines) - 1):
        line, under = lines[i].strip(), lines[i + 1]
        if line and not _RST_ADORNMENT.match(line) and _RST_ADORNMENT.match(under) and len(under.strip()) >= len(line):
            over = i > 0 and _RST_ADORNMENT.match(lines[i - 1]) is not None
            style = (under.strip()[0], over)
            if style not in styles:
                styles.append(style)
            out.append((starts[i] + len(lines[i]) - len(lines[i].lstrip()), min(styles.index(style) + 1, 6), line))
    return tuple(out)


# --- HTML -------------------------------------------------------------------------------------------------
