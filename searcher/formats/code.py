"""Source code: the definitions (class, def, function, fn, ...) that give a hit in code its heading path
(`HTTPServer > serve`), and where the code dedents out of them."""

from __future__ import annotations

import re

# Definitions that open a section of source code, for a hit's heading path (`HTTPServer > serve`): the keyword and
# the name; nesting follows indentation.
_DEFINITION = re.compile(
    r"^([ \t]*)(?:(?:export|default|public|private|protected|static|async|pub(?:\([\w:]+\))?|abstract|final|"
    r"override|inline|extern|unsafe|const)\s+)*(?:def|class|function|fn|func|interface|struct|trait|impl|enum|"
    r"module|namespace|object|protocol|record)\s+(?:\([^)]*\)\s*)?([A-Za-z_$][\w$]*)",
    re.M,
)
# Python's own keywords only: a docstring line that starts "function returns ..." is prose, not a definition.
_PYTHON_DEFINITION = re.compile(r"^([ \t]*)(?:async\s+)?(?:def|class)\s+([A-Za-z_]\w*)", re.M)
# Lines that neither open nor end a section: a signature's or a block's closing bracket, comments, decorators (a
# decorator, or a Java/Kotlin annotation, begins the section of the definition it stands over).
_NOT_CODE = ("#", "//", "/*", "*", ")", "]", "}", "@", "--")
CODE_SECTIONS = set(
    ".py .pyi .js .mjs .cjs .jsx .ts .tsx .go .rs .java .kt .scala .cs .rb .php .swift .dart .ex .exs "
    ".lua .jl .zig .nim .clj .hs .ml".split()
)


def code_sections(text: str, python: bool = False) -> tuple[tuple[int, int, str], ...]:
    """The definitions of source code (class, def, function, fn, ...) as headings: (offset, indentation + 1, name),
    so that a hit's heading path reads `HTTPServer > serve`. Where the code dedents out of a definition (the rest of
    the enclosing function after a nested one, module code after a class), a heading with no name ends it, so that
    the path there names the enclosing definition, or nothing. A definition's decorators are in its section (a hit
    on `@property` names the property, not the method above it)."""
    pattern = _PYTHON_DEFINITION if python else _DEFINITION
    out: list[tuple[int, int, str]] = []
    open_: list[int] = []  # indentation of each definition whose body the walk is in
    decorated: tuple[int, int] | None = None  # (offset, indentation) of the first decorator over the next line
    offset = 0
    quoted = False  # inside a Python triple-quoted string (a docstring's example is not a definition)
    for line in text.split("\n"):
        stripped = line.lstrip()
        was_quoted = quoted
        if python and (line.count('"""') + line.count("'''")) % 2:
            quoted = not quoted
        indent = len(line[: len(line) - len(stripped)].expandtabs(4))
        if stripped.startswith("@") and not was_quoted and decorated is None:
            decorated = (offset + len(line) - len(stripped), indent)
        if stripped and not was_quoted and not stripped.startswith(_NOT_CODE):
            found = pattern.match(line)
            if open_ and open_[-1] >= indent:
                while open_ and open_[-1] >= indent:
                    open_.pop()
                if not found:
                    out.append((offset, indent + 1, ""))
            if found:
                start = decorated[0] if decorated is not None and decorated[1] == indent else offset + found.start()
                out.append((start, indent + 1, found.group(2)))
                open_.append(indent)
            if found or decorated is None or indent <= decorated[1]:  # (a decorator's own arguments go on)
                decorated = None
        offset += len(line) + 1
    return tuple(out)
