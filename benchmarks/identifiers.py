"""Identifiers come first: every identifier that occurs in exactly one file of a tree, searched for by name, must
list that file first.

Trees: the repository's corpus/ (Python's documentation as HTML, Markdown, RST and text) and the .py files of an
installed package (click, by default). Identifiers are taken from the text searcher indexed, as the lexical index
holds it (each chunk's title - its file's name -, heading path and text; HTML markup does not count), with the same
rules as the lexical index (lexical.identifiers): snake_case, camelCase and PascalCase, dotted names, --flags, error
codes, versions. "Exactly one file": the identifier, matched whole and regardless of case (as search matches it),
occurs in the indexed text of one file only (a dotted name's tail counts as an occurrence: `self.ctx.command_path`
holds `ctx.command_path`). Each is searched with the defaults (hybrid, one hit per document, the bundled model) and
must come first; the misses are listed.

    python benchmarks/identifiers.py [--package click]
"""

from __future__ import annotations

import argparse
import importlib
import re
import time
from collections import defaultdict
from pathlib import Path

from _common import CACHE, HERE, write_section

from searcher import IndexConfig, Searcher, build_index
from searcher.chunking import lexical_text
from searcher.lexical import identifiers

KINDS = [  # (kind, test), first match names an identifier's kind
    ("flag", lambda t: t.startswith("--")),
    ("version", lambda t: re.fullmatch(r"v?\d+(\.\d+)+\w*", t) is not None),
    ("dotted", lambda t: "." in t or "::" in t),
    ("snake_case", lambda t: "_" in t.strip("_")),
    ("camelCase", lambda t: re.search(r"[a-z][A-Z]|[A-Z]{2}[a-z]", t) is not None),
    ("code", lambda t: True),  # letters and digits: E0277, utf8
]


def kind(name: str) -> str:
    return next(k for k, test in KINDS if test(name))


def unique_identifiers(searcher: Searcher) -> dict[str, str]:
    """{identifier: the one file whose indexed text holds it}."""
    text_of: dict[str, list[str]] = defaultdict(list)
    for record in searcher.index.iter_chunks():  # what the lexical index holds: title, heading path and text
        text_of[record["source"]].append(lexical_text(record["title"], record.get("heading", ""), record["text"]))
    texts = {source: "\n".join(parts) for source, parts in text_of.items()}
    candidates: dict[str, set[str]] = defaultdict(set)
    spelling: dict[str, str] = {}  # one spelling of each, as written, to search with
    for source, text in texts.items():
        for name in identifiers(text, parts=False):
            if name.startswith("-") and not name.startswith("--"):  # a -flag: kept for the query syntax, no look-up
                continue
            candidates[name.lower()].add(source)
            spelling.setdefault(name.lower(), name)
    out = {}
    for key, sources in candidates.items():
        name = spelling[key]
        if len(sources) != 1 or len(name) < 3:
            continue
        # whole: not inside a longer word or name, though a dotted name's tail counts (`self.ctx.command_path`
        # holds `ctx.command_path`, as the lexical index's tails say)
        pattern = re.compile(rf"(?<![\w$-]){re.escape(name)}(?![\w$]|\.\w)", re.IGNORECASE)
        holders = [s for s, text in texts.items() if pattern.search(text)]
        if holders == list(sources):
            out[name] = holders[0]
    return out


def check(tree: Path, label: str) -> tuple[str, list[str]]:
    index = CACHE / f"identifiers-{label}"
    build_index(tree, index, IndexConfig())
    with Searcher(index) as searcher:
        names = unique_identifiers(searcher)
        counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        misses = []
        start = time.perf_counter()
        for name, source in sorted(names.items()):
            hits = searcher.search(name, 10, per_doc=True)
            first = hits[0].source if hits else ""
            counts[kind(name)][1] += 1
            if first == source:
                counts[kind(name)][0] += 1
            else:
                misses.append(f"`{name}` ({Path(source).name}; first: {Path(first).name if first else 'nothing'})")
        seconds = time.perf_counter() - start
    found = sum(c[0] for c in counts.values())
    row = (
        f"| {label} | {len(names)} | {found} | "
        + ", ".join(f"{k} {c[0]}/{c[1]}" for k, c in sorted(counts.items()))
        + f" | {1000 * seconds / max(len(names), 1):.1f} ms |"
    )
    return row, misses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--package", default="click", help="an installed package whose .py files are the source tree")
    args = parser.parse_args()
    package = Path(importlib.import_module(args.package).__file__).parent
    lines = [
        "| tree | identifiers in exactly one file | first | by kind (first / all) | per query |",
        "|:--|--:|--:|:--|--:|",
    ]
    all_misses = []
    for tree, label in [(HERE.parent / "corpus", "corpus"), (package, f"{args.package} (.py)")]:
        row, misses = check(tree, label.split()[0])
        lines.append(row.replace(f"| {label.split()[0]} |", f"| {label} |", 1))
        all_misses += [f"{label}: {m}" for m in misses]
    lines += ["", "Misses: " + ("; ".join(all_misses) if all_misses else "none") + "."]
    write_section("identifiers", "Identifiers come first (corpus/ and a package's source)", "\n".join(lines))


if __name__ == "__main__":
    main()
