"""The package's imports run one way: the README's architecture paragraph lists the layers top to bottom, and every
relative import in `searcher/` (at module level or inside a function) goes to its own layer or one below it.
So the paragraph cannot drift from the code, and a new module must be placed in it."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "searcher"
ENTRY = {"__init__", "__main__", "__version__"}  # the package's door: the lazy API and `python -m searcher`


def layers() -> dict[str, int]:
    text = (ROOT / "README.md").read_text()
    start = text.index("- Architecture, top to bottom")
    paragraph = text[start : text.index("\n- ", start + 1)]
    found: dict[str, int] = {}
    for depth, part in enumerate(re.split(r"\*\*[^*]+\*\*", paragraph)[1:]):
        for name in re.findall(r"`([a-z_]+)/?(?:\.py)?`", part):
            found.setdefault(name, depth)
    return found


def imports(path: Path) -> list[tuple[str, int]]:
    """(top-level searcher module, line) for each relative import that leaves the file's own subpackage."""
    depth = len(path.relative_to(PACKAGE).parts) - 1
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level > depth:
            targets = [node.module.split(".")[0]] if node.module else [a.name for a in node.names]
            out += [(t, node.lineno) for t in targets]
    return out


def test_the_readme_names_every_module_in_a_layer():
    known = layers()
    modules = {p.relative_to(PACKAGE).parts[0].removesuffix(".py") for p in PACKAGE.rglob("*.py")}
    assert not modules - set(known) - ENTRY, "add these to the README's architecture paragraph"


def test_imports_run_down_the_layers():
    known = layers()
    up = []
    for path in PACKAGE.rglob("*.py"):
        me = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
        if me in ENTRY:
            continue
        for target, line in imports(path):
            if target not in ENTRY and known[target] < known[me]:
                up.append(f"{path.relative_to(ROOT)}:{line} imports {target}")
    assert not up, up
