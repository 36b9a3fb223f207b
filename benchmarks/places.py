"""Hits point at the place: every hit of a fixed set of questions and identifiers, checked against the file itself.

Trees: the repository's corpus/ (HTML, Markdown, RST, text), a real documentation tree (Markdown, gzipped Markdown
and HTML under /usr/share/doc, the first --docs-files of them by path) and a source tree (an installed package's
.py files, click by default). Queries, fixed by rule so that any tree has them: its identifiers that occur in one
file only (as benchmarks/identifiers.py finds them) and, as questions, the headings of its sections (every n-th
chunk's last heading, in words), each searched in hybrid and lexical mode, 10 hits, one per document (the defaults).

Checked for every hit:
- **line in snippet**: the file's own words are read (tags stripped, entities decoded) with their line numbers; the
  snippet's runs of three words are found there, and the reported line must lie between the line of the first run
  found and the line of the last. Hits whose snippet cannot be found in the raw file (text a converter changed) are
  counted apart, as unverifiable.
- **heading**: for Markdown, RST and HTML files, the last heading at or above the reported line (for .py, the
  innermost def or class enclosing it, or the one a decorator on it stands over) must be the hit's heading path's
  last part.
- **snippet length**: no snippet under 40 characters unless the whole chunk is.
- **k documents**: `-k 10` returns min(10, documents that match) documents: in lexical mode, documents holding
  one of the query's words (counted by reading every chunk with the index's analyzer); in hybrid, every document.
- **paths**: in lexical mode with k = all documents, the hits and their folded duplicates (what `--format paths`
  prints) are exactly the files holding one of the query's words.

    python benchmarks/places.py [--docs /usr/share/doc] [--docs-files 200] [--package click]
"""

from __future__ import annotations

import argparse
import gzip
import html
import importlib
import re
import shutil
from collections import defaultdict
from pathlib import Path

from _common import CACHE, HERE, write_section
from identifiers import unique_identifiers

from searcher import IndexConfig, Searcher, build_index
from searcher.chunking import lexical_text

K = 10
QUERIES_PER_KIND = 40
_WORDS = re.compile(r"\w+")
_TAG = re.compile(r"<[^>]*>")
_ATX = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
_RST_RULE = re.compile(r"^([=\-~^\"'`#*+.:_])\1{2,}\s*$")
_HTML_HEADING = re.compile(r"<h[1-6][^>]*>(.*?)</h[1-6]>", re.S | re.I)
_DOCSTRING = re.compile(r'"""([A-Z][^."\n]{20,100})')  # a docstring's first sentence, as a question
_DEF = re.compile(r"^(\s*)(?:async\s+)?(?:def|class)\s+(\w+)")


def raw_text(source: str) -> str:
    data = Path(source).read_bytes()
    if source.endswith(".gz"):
        data = gzip.decompress(data)
    return data.decode("utf-8", errors="replace")


_COMMENT = re.compile(r"<!--.*?-->", re.S)
_LINK_TARGET = re.compile(r"\]\([^)\s]*\)")


def readable(text: str) -> str:
    """The file as the indexer reads its words, line for line: comments (Markdown's YAML blocks) and Markdown link
    targets are not text."""
    return _LINK_TARGET.sub("]", _COMMENT.sub(lambda m: "\n" * m.group().count("\n"), text))


def words_with_lines(text: str, markup: bool) -> list[tuple[str, int]]:
    """The words of `text` with their line numbers (in HTML, tags are not words, a tag across lines included)."""
    if markup:
        text = _TAG.sub(lambda m: " " + "\n" * m.group().count("\n"), text)
    out = []
    for number, line in enumerate(text.split("\n"), start=1):
        out += [(w.lower(), number) for w in _WORDS.findall(html.unescape(line) if markup else line)]
    return out


def snippet_spans(snippet: str, words: list[tuple[str, int]]) -> list[tuple[int, int]]:
    """Every (first, last) line of the raw file where the snippet's text could lie: its first run of three words
    found there and its last, close together (a phrase may recur in a file); [] when it is not found at all."""
    wanted = [w.lower() for w in _WORDS.findall(snippet)]
    runs = [tuple(wanted[i : i + 3]) for i in range(max(1, len(wanted) - 2))] if wanted else []
    if not runs:
        return []
    width = len(runs[0])
    at: dict[tuple, list[tuple[int, int]]] = defaultdict(list)  # run -> [(line of its first word, of its last)]
    for i in range(len(words) - width + 1):
        at[tuple(w for w, _ in words[i : i + width])].append((words[i][1], words[i + width - 1][1]))
    found = [at[run] for run in runs if run in at]
    if not found:
        return []
    reach = snippet.count("\n") + len(wanted) + 5  # at most a line per word, and some blank lines
    return [(a, b) for a, _ in found[0] for _, b in found[-1] if 0 <= b - a <= reach]


def line_within(line: int, spans: list[tuple[int, int]], lines: list[str], markup: bool) -> bool:
    """Whether `line` lies in one of the spans, counting lines with no words (a blank line, a lone `>`) just
    before a span as its own (the snippet starts there; a word-based span cannot see them)."""

    def empty(number: int) -> bool:
        text = lines[number - 1] if 0 < number <= len(lines) else ""
        return not _WORDS.search(html.unescape(_TAG.sub(" ", text)) if markup else text) or (
            markup and not _WORDS.search(re.sub(r"^[^<]*>|<[^>]*$", " ", text))
        )  # only a tag's end or start

    return any(a <= line <= b or (line < a and all(empty(n) for n in range(line, a))) for a, b in spans)


def expected_heading(source: str, text: str, line: int) -> str | None:
    """The heading that contains `line` as the file's own markup says it, or None when the format has none here."""
    lines = text.split("\n")
    name = source[:-3] if source.endswith(".gz") else source
    suffix = Path(name).suffix.lower()
    above = lines[:line]
    if suffix in (".md", ".markdown"):
        fenced = False
        last = None
        for i, row in enumerate(lines[: line + 1]):  # one line past: the hit's line may be a setext title
            if row.lstrip().startswith(("```", "~~~")):
                fenced = not fenced
            elif fenced:
                continue
            elif i < line and (m := _ATX.match(row)):
                last = m.group(2)
            elif (
                i > 0
                and re.fullmatch(r" {0,3}(=+|-+)\s*", row)
                and lines[i - 1].strip()
                and not _ATX.match(lines[i - 1])
                and not lines[i - 1].lstrip().startswith(("-", "*", "|"))
            ):
                last = lines[i - 1].strip()
        return last
    if suffix == ".rst":
        last = None
        for i in range(1, len(lines)):
            if i > line:
                break
            title = lines[i - 1].strip()
            if (
                title
                and _RST_RULE.match(lines[i])
                and len(lines[i].strip()) >= len(title)
                and not _RST_RULE.match(title)
            ):
                last = title
        return last
    if suffix in (".html", ".htm"):
        # Several headings may share the hit's line (a page written on few lines): any that starts on it, or the
        # last one before it, is right; returned as alternatives joined by a tab.
        starts = [(text.count("\n", 0, m.start()) + 1, m.group(1)) for m in _HTML_HEADING.finditer(text)]
        before = [h for at, h in starts if at < line]
        found = before[-1:] + [h for at, h in starts if at == line]
        return "\t".join(html.unescape(_TAG.sub("", h)).strip() for h in found) if found else None
    if suffix == ".py":
        target = next((r for r in reversed(above) if r.strip()), "")
        quoted = sum(r.count('"""') + r.count("'''") for r in above[:-1]) % 2  # inside a docstring's example
        if target.lstrip().startswith("@") and not quoted:  # a decorator is its definition's: the def below it
            below = next((r for r in lines[line:] if not r.lstrip().startswith(("@", ")", "#")) and r.strip()), "")
            if (m := _DEF.match(below)) and len(m.group(1)) == len(target) - len(target.lstrip()):
                return m.group(2)
        indent = len(target) - len(target.lstrip()) + target.lstrip().startswith((")", "]", "}"))
        for row in reversed(above):
            m = _DEF.match(row)
            if m and (len(m.group(1)) < indent or row is target):
                return m.group(2)
            if (
                m is None
                and row.strip()
                and len(row) - len(row.lstrip()) < indent
                and row is not target
                and not row.lstrip().startswith((")", "]", "}", "#"))
            ):  # a signature's close, a comment
                indent = len(row) - len(row.lstrip())
        return None
    return None


def _plain(heading: str) -> str:
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # [text](url) -> text
    return " ".join(_WORDS.findall(html.unescape(_TAG.sub("", text)).lower()))


def queries_of(searcher: Searcher) -> list[tuple[str, str]]:
    """(kind, query): identifiers found in one file only, then section headings as questions."""
    names = sorted(unique_identifiers(searcher))
    step = max(1, len(names) // QUERIES_PER_KIND)
    out = [("identifier", n) for n in names[::step][:QUERIES_PER_KIND]]
    headings = sorted({h.split(" > ")[-1] for r in searcher.index.iter_chunks() if (h := r.get("heading"))})
    questions = [" ".join(_WORDS.findall(h)) for h in headings if len(_WORDS.findall(h)) >= 2]
    if len(questions) < QUERIES_PER_KIND:  # source code: its headings are names; its docstrings say what it does
        questions += sorted({m.group(1) for r in searcher.index.iter_chunks() for m in _DOCSTRING.finditer(r["text"])})
    step = max(1, len(questions) // QUERIES_PER_KIND)
    return out + [("question", q) for q in questions[::step][:QUERIES_PER_KIND]]


def matching_sources(searcher: Searcher, chunk_terms: dict[str, set[str]], query: str) -> set[str]:
    terms = set(searcher.lexical.words(query))
    return {source for source, held in chunk_terms.items() if held & terms}


def check(tree: Path, label: str, files: list[Path] | None = None) -> dict:
    index = CACHE / f"places-{label}"
    if files is not None:  # a chosen part of a large tree: indexed from a copy of those files
        chosen = CACHE / f"places-{label}-files"
        if not chosen.exists():
            chosen.mkdir(parents=True)
            for i, f in enumerate(files):
                shutil.copyfile(f, chosen / f"{i:04d}-{f.parent.name}-{f.name}")
        tree = chosen
    build_index(tree, index, IndexConfig())
    counts = defaultdict(int)
    misses: list[str] = []
    with Searcher(index) as searcher:
        analyze = searcher.lexical.analyzer.analyze
        chunk_terms: dict[str, set[str]] = defaultdict(set)
        for record in searcher.index.iter_chunks():
            chunk_terms[record["source"]] |= set(
                analyze(lexical_text(record["title"], record.get("heading", ""), record["text"]))
            )
        documents = len(chunk_terms)
        texts: dict[str, str] = {}
        for kind, query in queries_of(searcher):
            counts[f"queries {kind}"] += 1
            for mode in ("hybrid", "lexical"):
                hits = searcher.search(query, K, mode=mode, per_doc=True)
                matched = documents if mode == "hybrid" else len(matching_sources(searcher, chunk_terms, query))
                # a hit's folded duplicates (the same text in another file) are documents it shows too
                shown = len(hits) + sum(len(h.duplicates) for h in hits)
                counts["k queries"] += 1
                counts["k met"] += len(hits) == K or shown >= min(K, matched)
                if not (len(hits) == K or shown >= min(K, matched)):
                    misses.append(f"k: `{query}` ({mode}) {shown} of {min(K, matched)}")
                for hit in hits:
                    counts["hits"] += 1
                    if len(hit.snippet) >= 40 or len(" ".join(hit.text.split())) < 40:
                        counts["snippet ok"] += 1
                    else:
                        misses.append(f"snippet: `{query}` {Path(hit.source).name}:{hit.line} {hit.snippet!r}")
                    if not hit.line:
                        continue
                    text = texts.get(hit.source)
                    if text is None:
                        text = texts[hit.source] = raw_text(hit.source)
                    markup = hit.source.endswith((".html", ".htm", ".html.gz"))
                    clean = readable(text)
                    spans = snippet_spans(hit.snippet, words_with_lines(clean, markup))
                    if not spans:
                        counts["line unverifiable"] += 1
                    else:
                        counts["line checked"] += 1
                        if line_within(hit.line, spans, clean.split("\n"), markup):
                            counts["line in snippet"] += 1
                        else:
                            misses.append(f"line: `{query}` {Path(hit.source).name}:{hit.line} snippet at {spans[:3]}")
                    want = expected_heading(hit.source, text, hit.line)
                    if want is not None:
                        counts["heading checked"] += 1
                        got = hit.heading.split(" > ")[-1]
                        if _plain(got) in {_plain(w) for w in want.split("\t")}:
                            counts["heading right"] += 1
                        else:
                            misses.append(
                                f"heading: `{query}` {Path(hit.source).name}:{hit.line} {got!r}, file says {want!r}"
                            )
            if kind == "identifier" or counts["paths queries"] < QUERIES_PER_KIND // 2:
                every = searcher.search(query, documents, mode="lexical", per_doc=True)
                listed = {p for h in every for p in (h.source, *h.duplicates)}
                counts["paths queries"] += 1
                want = matching_sources(searcher, chunk_terms, query)
                counts["paths exact"] += listed == want
                if listed != want:
                    misses.append(f"paths: `{query}` listed {len(listed)}, {len(want)} files hold its words")
    counts["documents"] = documents
    return {"label": label, "counts": counts, "misses": misses}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=Path, default=Path("/usr/share/doc"), help="a documentation tree")
    parser.add_argument("--docs-files", type=int, default=200, help="how many of its files (the first by path)")
    parser.add_argument("--package", default="click", help="an installed package whose .py files are the source tree")
    args = parser.parse_args()
    docs = sorted(
        p
        for p in args.docs.rglob("*")
        if p.is_file() and p.stat().st_size < 200_000 and p.name.lower().endswith((".md", ".md.gz", ".html"))
    )[: args.docs_files]
    package = Path(importlib.import_module(args.package).__file__).parent
    results = [check(HERE.parent / "corpus", "corpus"), check(args.docs, "docs", docs), check(package, args.package)]
    pct = lambda a, b: f"{a}/{b} ({100 * a / b:.1f}%)" if b else "-"  # noqa: E731
    lines = [
        "| tree | documents | queries (identifiers + questions) | hits | line within snippet | unverifiable | "
        "heading right | snippet >= 40 chars | -k 10 gives min(10, matching) | paths = matching files |",
        "|:--|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for r in results:
        c = r["counts"]
        label = {"docs": f"{args.docs} ({len(docs)} .md/.md.gz/.html)", "corpus": "corpus/"}.get(
            r["label"], f"{r['label']} (.py)"
        )
        lines.append(
            f"| {label} | {c['documents']} | {c['queries identifier']} + {c['queries question']} | "
            f"{c['hits']} | {pct(c['line in snippet'], c['line checked'])} | {c['line unverifiable']} | "
            f"{pct(c['heading right'], c['heading checked'])} | {pct(c['snippet ok'], c['hits'])} | "
            f"{pct(c['k met'], c['k queries'])} | {pct(c['paths exact'], c['paths queries'])} |"
        )
    misses = [f"{r['label']}: {m}" for r in results for m in r["misses"]]
    lines += [
        "",
        f"Misses ({len(misses)}): "
        + ("; ".join(misses[:40]) if misses else "none")
        + (" ..." if len(misses) > 40 else "")
        + ".",
    ]
    write_section("places", "Hits point at the place (line, heading, snippet, k documents, paths)", "\n".join(lines))


if __name__ == "__main__":
    main()
