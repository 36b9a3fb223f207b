"""Commands that search: query, show."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from ..config import (
    DEFAULT_K,
    DEFAULT_MODE,
    DEFAULT_PER_DOC,
    DEFAULT_SHORTLIST,
    MODE_ALIASES,
    SEARCH_MODES,
)
from ..errors import SearcherError
from .common import (
    OUTPUTS,
    _stdin_queries,
    _unfinished,
    _valid_text,
    cli,
    complete_index,
    index_option,
    qdrant_place,
)


@cli.command(short_help="Search an index: the best passages, with file, line and section.")
@click.argument("query", required=False)
@click.option(
    "-e",
    "--query",
    "queries",
    multiple=True,
    metavar="QUERY",
    help="A query (repeatable), e.g. one that starts with -: searcher query -e -foo.",
)
@click.option(
    "--index",
    "index_dirs",
    multiple=True,
    envvar="SEARCHER_INDEX",
    shell_complete=complete_index,
    show_envvar=True,
    help="Index name, or a folder (anything with a /); repeat it to search several at once [default: the "
    "index named 'default'].",
)
@click.option("--all", "all_indexes", is_flag=True, help="Search every named index at once, hits merged by score.")
@click.option("-k", "--k", "k", type=int, default=DEFAULT_K, show_default=True, help="Number of hits.")
@click.option(
    "--shortlist", type=int, default=DEFAULT_SHORTLIST, show_default=True, help="Coarse candidates to rerank."
)
@click.option(
    "--mode",
    type=click.Choice([*SEARCH_MODES, *MODE_ALIASES]),
    default=DEFAULT_MODE,
    show_default=True,
    help="hybrid: meaning and exact words together; dense: meaning only; lexical: words only (BM25); "
    "full and coarse: exact and shortlist-only dense search, for comparison.",
)
@click.option(
    "--path",
    "paths",
    multiple=True,
    metavar="GLOB",
    help="Only files whose path matches GLOB, e.g. 'api/*.md' (repeatable: any of them).",
)
@click.option("--type", "types", multiple=True, metavar="EXT", help="Only files of this type, e.g. md (repeatable).")
@click.option(
    "--changed-within",
    metavar="WHEN",
    help="Only files last changed since WHEN: a span back from now (2d, 3 weeks, 12h) or a date (2026-11-01); "
    "a file's time as it was indexed.",
)
@click.option("--changed-before", metavar="WHEN", help="Only files last changed before WHEN (the same forms).")
@click.option(
    "--min-score",
    type=float,
    help="Drop hits scoring below this. A score is the estimated probability that the hit is relevant "
    "(0-1, the same scale for every query and mode).",
)
@click.option(
    "--per-doc/--per-chunk",
    default=DEFAULT_PER_DOC,
    show_default=True,
    help="One hit per document, its best passage first, or every matching chunk.",
)
@click.option(
    "--rerank",
    is_flag=False,
    flag_value="cross-encoder/ms-marco-MiniLM-L6-v2",
    default=None,
    metavar="[MODEL]",
    help="Re-score the top hits with a CrossEncoder (a local directory or a model name you have; alone: "
    "cross-encoder/ms-marco-MiniLM-L6-v2). Loads torch: slower to start.",
)
@click.option("--rerank-depth", type=click.IntRange(1, 500), default=30, show_default=True, help="Hits reranked.")
@click.option(
    "--model",
    help="Query with this model (it must match the index's) [default: the index's own; "
    "SEARCHER_MODEL is for indexing, not for queries of other indexes].",
)
@click.option(
    "--format",
    "output",
    type=click.Choice(OUTPUTS),
    default="text",
    show_default=True,
    help="text: for reading; jsonl: a JSON object per hit; json: one JSON array; csv; paths: each "
    "matching file once; grep: path:line:passage. paths and grep list matches only: in hybrid and dense mode, hits "
    "scored at least the no-match threshold (unless --min-score says otherwise); in lexical, hits holding a word.",
)
@click.option("--json", "as_json", is_flag=True, help="Same as --format jsonl.")
@click.option("-l", "--files-with-matches", "files_only", is_flag=True, help="Same as --format paths (as grep -l).")
@click.option(
    "-0",
    "--null",
    "null",
    is_flag=True,
    help="With paths or grep: end each path with a NUL byte instead of a newline or ':', for `xargs -0` and "
    "file names holding either (as grep -Z and ripgrep's --null).",
)
@click.option(
    "-C",
    "--context",
    "context",
    type=click.IntRange(0, 200),
    metavar="NUM",
    help="Show NUM lines of the file before and after each hit's passage, with line numbers.",
)
@click.option(
    "--color",
    type=click.Choice(["auto", "always", "never"]),
    default="auto",
    show_default=True,
    help="Colour paths, lines and the query's words: on a terminal (auto, unless NO_COLOR is set), always or never.",
)
@qdrant_place
def query(
    query,
    queries,
    index_dirs,
    all_indexes,
    k,
    shortlist,
    mode,
    paths,
    types,
    changed_within,
    changed_before,
    min_score,
    per_doc,
    rerank,
    rerank_depth,
    model,
    output,
    as_json,
    files_only,
    null,
    context,
    color,
    qdrant_url,
    qdrant_path,
    qdrant_collection,
):
    """Search the index for QUERY; pass - to read one query per line from stdin.

    Exit status: 0 when something matched, 1 when nothing did (no match), 2 on an error, as grep's.

    Words in "double quotes" must occur together, as a phrase; -word and -"a phrase" leave out the passages
    holding them (in every mode), unless the documents hold that -word as written, a flag as in `ls -la`; a query
    of over 32 words, a pasted passage, is read as prose. Code names (Py_Initialize, os.path.join, --no-cache-dir,
    E0277) match whole: the files holding them come first. A query whose best hit is unlikely to be relevant prints
    "no match" and exits with status 1, like grep.
    With --qdrant-url or --qdrant-path and no --index, it queries a collection that `searcher index` filled, alone.

    \b
    Example:
        searcher query "how do I read a file line by line" -k 5 --json
    """
    from ..render import context_lines, render_results
    from ..search import Searcher

    if query is None and not queries:
        raise click.UsageError("pass a QUERY (or -e QUERY, or - to read queries from stdin)")
    if query == "-":
        queries = _stdin_queries()
        if not queries:
            raise click.ClickException("no queries on standard input; pass one query per line")
    else:
        queries = [_valid_text(q, "the query") for q in ([query] if query is not None else []) + list(queries)]
    from ..filters import Where
    from ..search import search_many

    output = "jsonl" if as_json else "paths" if files_only else output
    if null and output not in ("paths", "grep"):
        raise click.UsageError("--null is for --format paths (-l) or grep (jsonl, json and csv quote a path already)")
    if output in ("paths", "grep") and min_score is None:  # as grep: the matches only, with no scores to judge by
        from ..calibration import match_floor

        min_score = match_floor(mode)

    skipped_damaged = False  # --all: an index skipped as damaged (exit status 2 after the others' hits)
    if all_indexes:
        from ..home import named_indexes

        index_dirs = tuple(str(p) for p in named_indexes())
        if not index_dirs:
            raise click.ClickException("no named indexes to search; make one with `searcher index FOLDER`")
    if (qdrant_url or qdrant_path) and not index_dirs:
        opened = [
            Searcher.from_collection(
                qdrant_url=qdrant_url or "",
                qdrant_path=str(qdrant_path or ""),
                qdrant_collection=qdrant_collection or "searcher",
                model=model,
            )
        ]
    else:
        opened, skipped_damaged = _open_indexes(index_dirs, model, every=all_indexes)
    where = Where.of(paths, types, changed_within=changed_within, changed_before=changed_before)
    try:
        options = dict(
            shortlist=shortlist,
            mode=mode,
            where=where,
            min_score=min_score,
            per_doc=per_doc,
            rerank=rerank,
            rerank_depth=rerank_depth,
        )
        results = (
            search_many(opened, queries, k, **options)
            if len(opened) > 1
            else opened[0].search_batch(queries, k, **options)
        )
        around = {}
        if context is not None:
            for searcher in opened:
                around.update(context_lines(searcher, results, context))
        no_files = where.by_file and not any(results) and not _any_file_matches(opened, where)  # a glob's typo
    finally:
        for searcher in opened:
            searcher.close()
    for notice in dict.fromkeys(n for searcher in opened for n in searcher.notices):
        click.echo(f"notice: {notice}", err=True)
    if no_files:
        given = " ".join(
            [
                *(f"--path {p}" for p in paths),
                *(f"--type {t}" for t in types),
                *([f"--changed-within {changed_within}"] if changed_within else []),
                *([f"--changed-before {changed_before}"] if changed_before else []),
            ]
        )
        click.echo(f"no match: no file of the index matches {given} (`searcher list INDEX --files`)", err=True)
        sys.exit(1)
    colored = color == "always" or (color == "auto" and sys.stdout.isatty() and not os.environ.get("NO_COLOR"))
    render_results(queries, results, output, colored=colored, around=around, min_score=min_score, null=null)
    if skipped_damaged:  # an error, as grep's status 2, after the hits the other indexes gave
        sys.exit(2)
    if all(hits.no_match or not hits for hits in results):
        sys.exit(1)


def _any_file_matches(opened, where) -> bool:
    """Whether `where`'s globs and types keep any file of the indexes (True where the files are not known here)."""
    for searcher in opened:
        files = getattr(searcher.index, "files", None)
        if files is None or any(where.keeps(e) for e in files()):
            return True
    return False


def _open_indexes(index_dirs, model, *, every: bool):
    """(a Searcher per index, whether one was skipped as damaged). `every` (--all): an index that cannot be
    searched is skipped with a line on stderr, as `searcher list` shows it, instead of failing the query."""
    from ..search import Searcher

    opened: list = []
    damaged = False
    try:
        for index_dir in index_dirs or (None,):
            try:
                opened.append(Searcher(index_dir, model=model))
            except SearcherError as e:
                if not every or index_dir is None:
                    raise
                path = Path(index_dir)
                if _unfinished(path):
                    click.echo(f"notice: skipped {path.name}: its first build stopped", err=True)
                else:
                    click.echo(f"warning: skipped {path.name}: {str(e).splitlines()[0]}", err=True)
                    damaged = True
        if not opened:
            raise click.ClickException("none of the named indexes can be searched (`searcher list` says why)")
    except BaseException:
        for searcher in opened:
            searcher.close()
        raise
    return opened, damaged


@cli.command(short_help="Print the lines of an indexed file around a hit.")
@click.argument("location", metavar="PATH[:LINE]")
@index_option
@click.option(
    "-C",
    "--context",
    "context",
    type=click.IntRange(0, 250),
    default=10,
    show_default=True,
    metavar="NUM",
    help="Lines before and after LINE.",
)
def show(location, index_dir, context):
    """Print the lines of an indexed file around LINE (a hit's path:line), numbered; the whole file (up to 500
    lines) without LINE. The file must be one the index holds, still as it was indexed.

    \b
    Example:
        searcher show corpus/rst/faq/windows.rst:207 -C 5
    """
    from ..documents import PastTheEnd, read_lines
    from ..errors import InvalidInputError
    from ..home import resolve
    from ..store import open_index

    path, line = location, None
    head, _, tail = location.rpartition(":")
    if head and tail.isdigit():
        path, line = head, int(tail)
        if line < 1:
            raise InvalidInputError(f"{location}: lines are numbered from 1")
    index = open_index(resolve(index_dir))
    try:
        start = max(1, line - context) if line is not None else 1
        got = read_lines(index, path, start, line + context if line is not None else None)
        total = got.total_lines
    except PastTheEnd as e:
        total = e.total_lines
    finally:
        index.close()
    if line is not None and line > total:
        raise InvalidInputError(f"{path} has {total} lines; line {line} is past its end")
    for n, text in enumerate(got.text.split("\n") if got.text else [], start=got.start_line):
        click.echo(f"{n:>6}{':' if n == line else '-' if line is not None else ':'} {text}")
