"""How `searcher query` prints hits: text for reading (coloured on a terminal), jsonl, json, csv, paths (grep -l)
and grep (path:line:passage). The command parses and searches; this module only renders (qmd's formatter.ts)."""

from __future__ import annotations

import csv
import os
import re
import sys
import textwrap

import click
import orjson

from .errors import SearcherError
from .hits import hit_record

CSV_FIELDS = ("query", "rank", "score", "source", "line", "end_line", "page", "title", "heading", "snippet")
# A no match names its nearest passage when that scored at least this (shown as 0.001 or more): below, it is the
# nothing a gibberish query finds, and naming it would only add noise.
NEAREST_NAMED = 0.001


def echo(text: str, colored: bool | None = None, *, err: bool = False) -> None:
    # (color=: click strips escape codes from output that is not a terminal unless told they are wanted)
    click.echo(text, color=colored, err=err)


def render_results(
    queries: list[str], results, output: str, *, colored: bool, around: dict, min_score, null: bool = False
) -> None:
    """Print each query's hits in `output` format (see the module docstring). `null`: paths and grep end each path
    with a NUL byte (grep -Z), so that a file name holding a newline or ':' is still one name."""
    if output == "csv":
        writer = csv.writer(sys.stdout)
        writer.writerow(CSV_FIELDS)
    records: list[dict] = []
    for text, hits in zip(queries, results):
        if hits.no_match:
            nearest = (  # for a query whose answer may just be phrased otherwise
                f" (the nearest scored {hits[0].score:.3f}: --min-score 0 lists it)"
                if hits and hits[0].score >= NEAREST_NAMED
                else ""
            )
            echo(f"no match for {text!r}: {hits.reason}{nearest}", err=True)
            if output == "jsonl":  # a record for every query, so a batch's output lines up with its input
                echo(orjson.dumps({"query": text, "no_match": True, "reason": hits.reason}).decode())
            continue
        if not hits:
            echo(f"nothing scored {min_score} or more" if min_score is not None else "no hits", err=True)
        if output in ("jsonl", "json", "csv"):
            for rank, hit in enumerate(hits, start=1):
                record = hit_record(text, rank, hit)
                if output == "jsonl":
                    echo(orjson.dumps(record).decode())
                elif output == "csv":
                    writer.writerow([record[f] for f in CSV_FIELDS])
                else:
                    records.append(record)
            continue
        if output == "paths":  # every matching file, those folded as the same text included
            for source in dict.fromkeys(p for hit in hits for p in (hit.source, *hit.duplicates)):
                if null:
                    click.echo(source + "\0", nl=False)
                else:
                    echo(source)
            continue
        if output == "grep":
            for hit in hits:
                echo(f"{hit.source}{chr(0) if null else ':'}{hit.line or hit.page}:{' '.join(hit.snippet.split())}")
            continue
        if len(queries) > 1:
            echo(f"# {text}")
        for rank, hit in enumerate(hits, start=1):
            _print_hit(rank, hit, colored, around)
    if output == "json":
        echo(orjson.dumps(records, option=orjson.OPT_INDENT_2).decode())


def _page_word(source: str) -> str:
    """What a hit's `page` is in its file: a slide of a deck, else a page (of a PDF)."""
    return "slide" if source.lower().endswith((".pptx", ".odp")) else "page"


def _print_hit(rank: int, hit, colored: bool, around: dict) -> None:
    """One hit of the text format: rank, score, place and label, then its passage (or the file's lines around it)."""
    where = (
        _paint(_display_path(hit.source), "35", colored)
        + (_paint(f":{hit.line}", "32", colored) if hit.line else "")
        + (f"#{hit.anchor}" if hit.anchor else "")
        + (f" ({_page_word(hit.source)} {hit.page})" if hit.page else "")
    )
    echo(f"{rank:>2}. {hit.score:.3f}  {where}  {_label(hit)}", colored)
    if (hit.source, hit.line) in around:
        echo(around[(hit.source, hit.line)])
    else:
        echo(textwrap.indent(_highlight(hit.snippet, hit.highlights, colored), "    "), colored)
    others = [m.line or m.page for m in hit.more]  # each other place once (Searcher: not the hit's own)
    if others:
        echo(
            f"    also at line{'s' if len(others) > 1 else ''} "
            + ", ".join(str(p) for p in others[:8])
            + (" ..." if len(others) > 8 else "")
        )
    if hit.duplicates:
        echo("    the same text in " + ", ".join(_display_path(p) for p in hit.duplicates))


def _label(hit) -> str:
    """Title and section: the heading path, unless it already starts with the title."""
    if not hit.heading:
        return hit.title
    top = hit.heading.split(" > ")[0]
    if hit.heading.startswith(hit.title) or hit.title.startswith(top):  # the page's title is its first heading
        return hit.heading
    return f"{hit.title} > {hit.heading}"


def _paint(text: str, code: str, color: bool) -> str:
    return f"\x1b[{code}m{text}\x1b[0m" if color else text


def _highlight(text: str, marks, color: bool, width: int = 100) -> str:
    """The snippet wrapped to `width` (a code snippet's lines kept as they are), the query's words in bold yellow on
    a terminal (NO_COLOR turns it off)."""
    lines = text.split("\n") if "\n" in text else textwrap.wrap(text, width)
    if not color or not marks:
        return "\n".join(lines)
    # Wrapped on the plain text first: escape codes would count toward the width.
    words = re.compile(
        r"\b(" + "|".join(sorted({re.escape(text[a:b]) for a, b in marks}, key=len, reverse=True)) + r")\b"
    )
    return "\n".join(words.sub("\x1b[1;33m\\1\x1b[0m", line) for line in lines)


def _display_path(path: str) -> str:
    """A hit's file as a reader opens it: relative to the working directory, or whole where that is shorter (from
    /tmp/x, `/work/docs/a.md` rather than `../../work/docs/a.md`; from docs/md, `../html/a.html`)."""
    try:
        relative = os.path.relpath(path)
    except ValueError:  # another drive
        return path
    return path if len(path) < len(relative) else relative


def context_lines(searcher, results, lines: int) -> dict[tuple[str, int], str]:
    """{(source, line): the file's lines around that hit's passage, numbered} for `-C`; hits whose file cannot be
    read back (changed since indexed, a collection without files) keep their snippet."""
    from .documents import read_lines

    out = {}
    for hits in results:
        for hit in hits:
            if not hit.line or (hit.source, hit.line) in out or not hasattr(searcher.index, "files"):
                continue
            last = max(hit.end_line, hit.line)
            try:
                got = read_lines(searcher.index, hit.source, max(1, hit.line - lines), last + lines)
            except SearcherError:
                continue
            numbered = enumerate(got.text.split("\n"), start=got.start_line)
            out[(hit.source, hit.line)] = "\n".join(
                f"{n:>6}{':' if hit.line <= n <= last else '-'} {text}" for n, text in numbered
            )
    return out


def finetune_summary(report, index_name: str | None, switched, adopt: bool) -> list[str]:
    """What `searcher finetune` says when it is done: the training, the before/after table, and with a label-free
    model the verdict (and with --index, whether the index now uses the model)."""
    lines = [
        f"trained {report.pairs} {'triplets' if report.label_free else 'pairs'} in {report.train_seconds:.0f} s "
        f"({report.pairs_per_second:.1f}/s); model written to {report.output}"
    ]
    if report.before and report.after:
        lines.append(f"ndcg@10 on {report.evaluation}:")
        lines += [
            f"  {column:>10}: {report.before[column]['ndcg@10']:.4f} -> {report.after[column]['ndcg@10']:.4f}"
            for column in report.after
        ]
    if not report.verdict:
        return lines
    held = ", ".join(
        f"{name} {report.before[c]['ndcg@10']:.4f} -> {report.after[c]['ndcg@10']:.4f}"
        for name, c in (("hybrid", "hybrid"), ("dense", "two-stage"))
    )
    low = "" if report.hybrid_gain_low is None else f"; hybrid gain at least {report.hybrid_gain_low:+.4f}, 90% sure"
    if report.better:
        lines.append(f"the tuned model is better on the held-out pseudo-queries ({held} nDCG@10{low})")
    else:
        lines.append(
            f"the tuned model is not better on the held-out pseudo-queries ({held} nDCG@10{low}): adopting needs a "
            "hybrid gain that holds up (its 90% interval above 0) and a dense nDCG@10 no more than 0.005 lower"
        )
    if index_name is not None:
        if switched is not None:
            lines.append(f"index {index_name} now uses it (generation {switched.generation})")
        elif not report.better:
            lines.append(f"index {index_name} keeps its model; the tuned one is at {report.output}")
        elif not adopt:
            lines.append(
                f"index {index_name} is unchanged (--no-adopt); switch with: "
                f"searcher adopt {report.output} --index {index_name}"
            )
    return lines
