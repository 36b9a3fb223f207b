"""The `searcher` command: parse options, call the library, print. No logic lives here.

Library errors (`SearcherError`) become one line on stderr and exit status 1, translated once in
`_Group.invoke`. Heavy modules (numpy, faiss, torch) are imported inside the commands that need them.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import click

from . import __version__
from .config import (
    BACKENDS,
    DEFAULT_FULL_STORAGE,
    DEFAULT_FUSION_WEIGHT,
    DEFAULT_K,
    DEFAULT_MODE,
    DEFAULT_PER_DOC,
    DEFAULT_SHORTLIST,
    FULL_STORAGE_TYPES,
    LEXICAL_TOKENIZERS,
    MODE_ALIASES,
    PROJECTIONS,
    QDRANT_QUANTIZATIONS,
    SEARCH_MODES,
    FinetuneConfig,
)
from .errors import DISTRIBUTION, SearcherError

# Exit statuses, as grep and rg have them: 0 a match (or success), 1 no match, 2 an error (a bad option, a bad
# index, anything that stopped the command).
ERROR = 2
WRITES = {"index", "update", "remove", "drop", "finetune", "eval"}  # commands that may write an index


def _print_update(report, verbose: bool) -> None:
    click.echo(time.strftime("%H:%M:%S "), nl=False)
    _print_report(report, verbose, quiet=True)


class _Error(click.ClickException):
    """A failed command: one line on stderr and exit status 2, as grep's."""

    exit_code = ERROR


class _Group(click.Group):
    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except SearcherError as e:
            raise _Error(str(e)) from None
        except click.NoSuchOption as e:
            if ctx.invoked_subcommand == "query" and not e.option_name.startswith("--"):
                raise click.NoSuchOption(
                    e.option_name,
                    e.message + "; a query that starts with - goes after --, or as -e QUERY (searcher query -e -foo)",
                    possibilities=e.possibilities,
                    ctx=e.ctx,
                ) from None
            raise
        except click.UsageError:
            raise
        except click.ClickException as e:
            raise _Error(e.format_message()) from None
        except KeyboardInterrupt:
            if ctx.invoked_subcommand in WRITES:
                click.echo("interrupted; the index is as it was before this command", err=True)
            else:
                click.echo("interrupted", err=True)
            sys.exit(130)
        except BrokenPipeError:
            # `searcher query ... | head -1`: the reader has what it wanted; end quietly, like other Unix tools.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            sys.exit(0)


OUTPUTS = ("text", "jsonl", "json", "csv", "paths", "grep")

QDRANT_PLACE = [  # where a Qdrant collection is: `index` and `eval` fill it, `query` reads it with no local index
    click.option(
        "--qdrant-url",
        envvar="SEARCHER_QDRANT_URL",
        metavar="URL",
        help="A Qdrant server or cluster holding the index's collection (env SEARCHER_QDRANT_URL).",
    ),
    click.option(
        "--qdrant-path",
        type=click.Path(path_type=Path, file_okay=False),
        metavar="DIR",
        help="Or an embedded Qdrant Edge shard in DIR (one process at a time).",
    ),
    click.option("--qdrant-collection", metavar="NAME", help="The collection on the server [default: searcher]."),
]


def qdrant_place(f):
    for option in reversed(QDRANT_PLACE):
        f = option(f)
    return f


def qdrant_options(f):
    """The qdrant backend's options (backends/qdrant.py): where, and how a new collection is made."""
    for option in reversed(
        [
            *QDRANT_PLACE,
            click.option(
                "--qdrant-quantization",
                type=click.Choice(QDRANT_QUANTIZATIONS),
                help="Quantise the coarse vector in Qdrant, rescored with the original [default: none].",
            ),
            click.option(
                "--qdrant-shards",
                type=click.IntRange(min=1),
                help="Shards of a new collection on a server [default: Qdrant's].",
            ),
            click.option(
                "--qdrant-replicas",
                type=click.IntRange(min=1),
                help="Copies of each shard of a new collection on a server cluster [default: 1].",
            ),
        ]
    ):
        f = option(f)
    return f


index_option = click.option(
    "--index",
    "index_dir",
    envvar="SEARCHER_INDEX",
    show_envvar=True,
    help="Index name, or a folder (anything with a /) [default: the index named 'default' in "
    "$SEARCHER_HOME, else $XDG_DATA_HOME/searcher, else ~/.local/share/searcher].",
)

indexes_option = click.option(
    "--index",
    "indexes",
    multiple=True,
    envvar="SEARCHER_INDEX",
    show_envvar=True,
    help="An index name or folder to serve (repeatable) [default: the index named 'default'].",
)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="searcher", message=f"%(prog)s %(version)s ({DISTRIBUTION})")
def cli() -> None:
    """Search your documents by meaning and by exact words, on your own machine.

    Index a folder once (notes, docs, code, PDFs), then ask in plain language or paste an error code:
    searcher finds the passages that answer, with the file, line and section they are in.

    \b
    Example:
        searcher index ~/notes && searcher query "how did I configure the backup job"
    """


@cli.command(short_help="Index a folder or file (re-run to update it).")
@click.argument("source", type=click.Path(path_type=Path, readable=False))
@index_option
@click.option(
    "--model",
    envvar="SEARCHER_MODEL",
    show_envvar=True,
    help="sentence-transformers model name or path, or an OpenAI-compatible embeddings server as "
    "http://HOST:PORT/v1#NAME (Ollama, llama.cpp, TEI, vLLM, infinity) [default: the index's model, else the bundled "
    "all-MiniLM-L6-v2].",
)
@click.option("--projection", type=click.Choice(PROJECTIONS), help="Coarse projection [default: auto].")
@click.option("--coarse-dim", type=int, help="Width of the coarse index [default: 64].")
@click.option("--chunk-tokens", type=int, help="Max model tokens per chunk [default: the model's max_seq_length].")
@click.option("--overlap-tokens", type=int, help="Tokens shared by neighbouring chunks [default: chunk tokens / 8].")
@click.option("--batch-size", type=int, help="Chunks per encoder batch [default: 32].")
@click.option(
    "--full-storage",
    type=click.Choice(FULL_STORAGE_TYPES),
    help="How full vectors are stored: float32, float16, mixed or int8 (4, 2, ~1.06 or 1 byte per dimension; "
    "mixed keeps the 64 coarse dims in float16) "
    "[default: the index's own, else " + DEFAULT_FULL_STORAGE + "].",
)
@click.option(
    "--lexical-tokenizer",
    type=click.Choice(LEXICAL_TOKENIZERS),
    help="Words of the lexical index: english (stemmed), plain (other languages), ngram (Chinese, Japanese, "
    "Korean) [default: english].",
)
@click.option(
    "--fusion-weight",
    type=click.FloatRange(0, 1),
    help="Weight of meaning against exact words in hybrid search, 0-1 [default: "
    + str(DEFAULT_FUSION_WEIGHT)
    + ", or what `searcher eval --tune` stored].",
)
@click.option(
    "--include",
    multiple=True,
    metavar="GLOB",
    help="Index only files matching GLOB (gitignore syntax, repeatable; --include '' clears the index's) "
    "[default: the index's own, else every file it can read].",
)
@click.option(
    "--exclude",
    multiple=True,
    metavar="GLOB",
    help="Leave out files matching GLOB (repeatable; --exclude '' clears the index's), beside what "
    ".gitignore and .searcherignore leave out.",
)
@click.option(
    "--backend",
    type=click.Choice(BACKENDS),
    help="Where queries are answered: local FAISS files, or a Qdrant collection mirroring them [default: local].",
)
@qdrant_options
@click.option(
    "--ray",
    "ray_address",
    is_flag=False,
    flag_value="local",
    default=None,
    metavar="[ADDRESS]",
    help="Embed on a Ray cluster: ADDRESS (ray://... or auto), or a local one without it.",
)
@click.option(
    "--rebuild",
    is_flag=True,
    help="Ignore the existing index and its settings (options given apply) and embed everything again.",
)
@click.option("--watch", is_flag=True, help="Then keep watching SOURCE and update the index after each change.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar, no list of skipped files.")
@click.option("-v", "--verbose", is_flag=True, help="Name every skipped file, with the reason.")
def index(
    source,
    index_dir,
    model,
    projection,
    coarse_dim,
    chunk_tokens,
    overlap_tokens,
    batch_size,
    full_storage,
    lexical_tokenizer,
    fusion_weight,
    include,
    exclude,
    backend,
    qdrant_url,
    qdrant_path,
    qdrant_collection,
    qdrant_quantization,
    qdrant_shards,
    qdrant_replicas,
    ray_address,
    rebuild,
    watch,
    quiet,
    verbose,
):
    """Index the documents in SOURCE (a folder or a file); re-running updates the index incrementally.

    Reads .txt, .md, .rst, .html and BEIR-style .jsonl. Options left out keep the index's own settings.

    \b
    Example:
        searcher index ~/notes --index ~/.searcher/notes
    """
    from .config import IndexConfig
    from .indexer import build_index, existing_config

    config = (IndexConfig() if rebuild else existing_config(index_dir)).replace(
        model=model,
        projection=projection,
        coarse_dim=coarse_dim,
        chunk_tokens=chunk_tokens,
        overlap_tokens=overlap_tokens,
        batch_size=batch_size,
        full_storage=full_storage,
        lexical_tokenizer=lexical_tokenizer,
        fusion_weight=fusion_weight,
        include=tuple(p for p in include if p) if include else None,  # ('',): cleared
        exclude=tuple(p for p in exclude if p) if exclude else None,
    )
    config = _with_qdrant(
        config, backend, qdrant_url, qdrant_path, qdrant_collection, qdrant_quantization, qdrant_shards, qdrant_replicas
    )
    with _Progress(enabled=not quiet) as progress:
        report = build_index(source, index_dir, config, rebuild=rebuild, progress=progress, ray=ray_address)
    _print_report(report, verbose, quiet)
    if watch:
        _watch(source, index_dir, verbose)


def _with_qdrant(
    config,
    backend,
    qdrant_url,
    qdrant_path,
    qdrant_collection,
    qdrant_quantization,
    qdrant_shards=None,
    qdrant_replicas=None,
):
    """The config with the qdrant options applied (a URL or a path alone implies --backend qdrant)."""
    config = config.replace(
        backend=backend or ("qdrant" if qdrant_url or qdrant_path else None),
        qdrant_url=qdrant_url,
        qdrant_path=str(qdrant_path) if qdrant_path else None,
        qdrant_collection=qdrant_collection,
        qdrant_quantization=qdrant_quantization,
        qdrant_shards=qdrant_shards,
        qdrant_replicas=qdrant_replicas,
    )
    if qdrant_url:
        config = config.replace(qdrant_path="")
    elif qdrant_path:
        config = config.replace(qdrant_url="")
    return config


def _print_report(report, verbose: bool, quiet: bool = False) -> None:
    """The run's warnings and counts; skipped files one per line (the first 10 of them, all with -v, none with
    -q), and only when the run indexed something or was asked to say more: an unchanged re-run or a --watch
    update does not repeat the list."""
    for warning in report.warnings:
        if "skipped" not in warning or verbose:
            click.echo(f"warning: {warning}", err=True)
    if report.skipped_files and not quiet and (verbose or report.indexed):
        shown = report.skipped_files if verbose else report.skipped_files[:10]
        for line in shown:
            click.echo(f"skipped: {line}", err=True)
        if len(shown) < len(report.skipped_files):
            click.echo(f"skipped: ... and {len(report.skipped_files) - 10} more (-v lists them)", err=True)
    click.echo(
        f"{report.indexed} indexed, {report.unchanged} unchanged, {report.skipped} skipped, "
        f"{report.failed} failed, {report.removed} removed files; "
        f"{report.embedded} chunks embedded{f' ({report.embedded_with})' if report.embedded else ''}, "
        f"{report.reused} reused; "
        f"index {report.index_dir}: {report.documents} documents, {report.chunks} chunks, {report.projection} "
        "projection"
    )
    if report.synced:
        click.echo(report.synced)


def _watch(source: Path, index_dir, verbose: bool) -> None:
    import threading

    from .watch import watch

    click.echo(f"watching {source} (Ctrl-C to stop)", err=True)
    stop = threading.Event()
    try:
        watch(
            source,
            index_dir,
            stop=stop,
            on_update=lambda report: _print_update(report, verbose),  # the list once, at the start
            on_error=lambda e: click.echo(f"warning: {e} (still watching)", err=True),
        )
    except KeyboardInterrupt:
        stop.set()


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
    "matching file once; grep: path:line:passage.",
)
@click.option("--json", "as_json", is_flag=True, help="Same as --format jsonl.")
@click.option("-l", "--files-with-matches", "files_only", is_flag=True, help="Same as --format paths (as grep -l).")
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
    min_score,
    per_doc,
    rerank,
    rerank_depth,
    model,
    output,
    as_json,
    files_only,
    context,
    color,
    qdrant_url,
    qdrant_path,
    qdrant_collection,
):
    """Search the index for QUERY; pass - to read one query per line from stdin.

    Exit status: 0 when something matched, 1 when nothing did (no match), 2 on an error, as grep's.

    Words in "double quotes" must occur together, as a phrase; -word and -"a phrase" leave out the passages
    holding them (in every mode). Code names (Py_Initialize, os.path.join, --no-cache-dir, E0277) match whole:
    the files holding them come first. A query whose best hit is unlikely to be relevant prints "no match" and
    exits with status 1, like grep.
    With --qdrant-url or --qdrant-path and no --index, it queries a collection that `searcher index` filled, alone.

    \b
    Example:
        searcher query "how do I read a file line by line" -k 5 --json
    """
    from .render import context_lines, render_results
    from .search import Searcher

    if query is None and not queries:
        raise click.UsageError("pass a QUERY (or -e QUERY, or - to read queries from stdin)")
    if query == "-":
        queries = _stdin_queries()
        if not queries:
            raise click.ClickException("no queries on standard input; pass one query per line")
    else:
        queries = [_valid_text(q, "the query") for q in ([query] if query is not None else []) + list(queries)]
    from .filters import Where
    from .search import search_many

    if all_indexes:
        from .home import named_indexes

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
        opened = []
        try:
            for index_dir in index_dirs or (None,):
                opened.append(Searcher(index_dir, model=model))
        except BaseException:
            for searcher in opened:
                searcher.close()
            raise
    try:
        options = dict(
            shortlist=shortlist,
            mode=mode,
            where=Where(paths, types),
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
    finally:
        for searcher in opened:
            searcher.close()
    for notice in dict.fromkeys(n for searcher in opened for n in searcher.notices):
        click.echo(f"notice: {notice}", err=True)
    output = "jsonl" if as_json else "paths" if files_only else output
    colored = color == "always" or (color == "auto" and sys.stdout.isatty() and not os.environ.get("NO_COLOR"))
    render_results(queries, results, output, colored=colored, around=around, min_score=min_score)
    if all(hits.no_match or not hits for hits in results):
        sys.exit(1)


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
    from .documents import read_lines
    from .home import resolve
    from .store import open_index

    path, line = location, None
    head, _, tail = location.rpartition(":")
    if head and tail.isdigit():
        path, line = head, int(tail)
    index = open_index(resolve(index_dir))
    try:
        start = max(1, line - context) if line else 1
        got = read_lines(index, path, start, line + context if line else None)
    finally:
        index.close()
    for n, text in enumerate(got.text.split("\n") if got.text else [], start=got.start_line):
        click.echo(f"{n:>6}{':' if n == line else '-' if line else ':'} {text}")


@cli.command("list", short_help="List your indexes, or one index's sources and files.")
@click.option(
    "--index",
    "index_dir",
    envvar="SEARCHER_INDEX",
    help="Show this index's sources (and with --files, its files) instead of every named index.",
)
@click.option("--files", "show_files", is_flag=True, help="With --index: every indexed file.")
def list_command(index_dir, show_files):
    """List your indexes, or what one index holds.

    \b
    Example:
        searcher list                  # indexes in ~/.local/share/searcher
        searcher list --index notes    # its sources, with file, document and chunk counts
    """
    from .home import home, named_indexes, resolve
    from .store import open_index, read_manifest

    if index_dir is None:
        indexes = named_indexes()
        if not indexes:
            click.echo(f"no indexes in {home()} yet; make one with `searcher index FOLDER`")
            return
        for path in indexes:
            try:
                m = read_manifest(path)
                click.echo(
                    f"{path.name:<20} {m.documents:>8} documents {m.chunks:>9} chunks  updated {m.updated}  "
                    f"{m.model.name}  {', '.join(m.sources)}"
                )
            except Exception as e:  # noqa: BLE001 - one damaged index must not hide the others
                if not (path / "manifest.json").exists() and (path / "pending").is_dir():
                    click.echo(
                        f"{path.name:<20} unfinished: its first build stopped; `searcher index FOLDER --index "
                        f"{path.name}` resumes it (or `searcher drop {path.name}`)"
                    )
                else:
                    click.echo(f"{path.name:<20} unreadable: {str(e).splitlines()[0]}")
        return
    index = open_index(resolve(index_dir))
    try:
        files = index.files()
    finally:
        index.close()
    click.echo(
        f"index {index.index_dir}: {index.manifest.documents} documents, {index.manifest.chunks} chunks, "
        f"updated {index.manifest.updated}"
    )
    for source in index.manifest.sources:
        under = [e for e in files if e.path == source or e.path.startswith(source.rstrip("/") + "/")]
        gone = "" if Path(source).exists() else "  (gone from disk: `searcher remove` or `searcher update`)"
        click.echo(
            f"  {source}: {len(under)} files, {sum(e.documents for e in under)} documents, "
            f"{sum(e.id_end - e.id_start for e in under)} chunk ids{gone}"
        )
    if show_files:
        for entry in files:
            click.echo(f"    {entry.path}  {entry.documents} documents")


@cli.command(short_help="Take a folder or file out of an index (also one gone from disk).")
@click.argument("path")
@index_option
def remove(path, index_dir):
    """Take PATH (a source, a folder or a file, even one gone from disk) out of the index.

    \b
    Example:
        searcher remove ~/notes/old-project --index notes
    """
    from .indexer import remove_from_index

    report = remove_from_index(index_dir, path)
    click.echo(
        f"{report.removed} files removed; index {report.index_dir}: {report.documents} documents, "
        f"{report.chunks} chunks"
    )


@cli.command(short_help="Delete an index.")
@click.argument("index_name", metavar="INDEX")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
def drop(index_name, yes):
    """Delete the index INDEX (a name, or a path to an index folder); your documents are not touched.

    \b
    Example:
        searcher drop old-notes
    """
    from .home import resolve
    from .indexer import delete_index
    from .store import read_manifest

    path = resolve(index_name)
    if not yes:
        click.confirm(f"Delete the index at {path}?", abort=True, err=True)
    try:
        config = read_manifest(path).config
    except SearcherError:
        config = None  # not an index, or a damaged one: delete_index says which
    left = delete_index(path)
    if left:
        click.echo(f"deleted the index at {path}; kept what searcher did not create there: {', '.join(left[:10])}")
    else:
        click.echo(f"deleted the index at {path}")
    if config is not None and config.backend == "qdrant":
        where = (
            f"the Qdrant Edge shard at {config.qdrant_path} (rm -r it)"
            if config.qdrant_path
            else f"collection {config.qdrant_collection!r} at {config.qdrant_url} (delete it with Qdrant's API)"
        )
        click.echo(f"kept {where}: other clients may still query it")


@cli.command(short_help="Re-scan every source of an index.")
@index_option
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def update(index_dir, quiet):
    """Re-scan every source the index holds: changed files are re-indexed, vanished ones removed.

    \b
    Example:
        searcher update --index notes
    """
    from .indexer import update_index

    with _Progress(enabled=not quiet) as progress:
        results = update_index(index_dir, progress=progress)
    missing = [source for _, report in results for source in report.missing]
    for source, report in results:
        for warning in report.warnings:
            click.echo(f"warning: {warning}", err=True)
        if not report.missing:
            click.echo(
                f"{source}: {report.indexed} indexed, {report.unchanged} unchanged, {report.removed} removed, "
                f"{report.failed} failed"
            )
    if missing:
        raise click.ClickException(
            f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} missing (an unmounted disk, a renamed "
            "folder?); kept in the index with its files - `searcher remove PATH` takes a source out"
        )


@cli.command("eval", short_help="Measure retrieval quality on a labelled (BEIR) data set.")
@click.argument("data_dir", type=click.Path(path_type=Path))
@click.option("--split", default="test", show_default=True, help="Which qrels/<split>.tsv to evaluate.")
@click.option(
    "--index",
    "index_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Index of the corpus to build or reuse [default: indexes/eval/<data>-<hash of corpus, model, chunking>].",
)
@click.option(
    "--model", envvar="SEARCHER_MODEL", show_envvar=True, help="Model name or path [default: bundled MiniLM]."
)
@click.option(
    "--projection",
    type=click.Choice(PROJECTIONS),
    default="auto",
    show_default=True,
    help="How coarse vectors are made: the first dims (prefix), a PCA rotation, or measured (auto).",
)
@click.option("--coarse-dim", type=int, default=64, show_default=True, help="Width of the coarse index.")
@click.option("--chunk-tokens", type=int, help="Max model tokens per chunk [default: the model's max_seq_length].")
@click.option("--overlap-tokens", type=int, help="Tokens shared by neighbouring chunks [default: chunk tokens / 8].")
@click.option(
    "--shortlist",
    type=int,
    default=DEFAULT_SHORTLIST,
    show_default=True,
    help="Coarse candidates reranked with the full vectors.",
)
@click.option(
    "--full-storage",
    type=click.Choice(FULL_STORAGE_TYPES),
    help="How full vectors are stored: float32, float16, mixed or int8 (4, 2, ~1.06 or 1 byte per dimension; "
    "mixed keeps the 64 coarse dims in float16) "
    "[default: " + DEFAULT_FULL_STORAGE + "].",
)
@qdrant_options
@click.option("--no-latency", is_flag=True, help="Skip the single-query latency measurement.")
@click.option(
    "--tune",
    is_flag=True,
    help="First pick the hybrid fusion weight on another labelled split and store "
    "it in the index (train, else dev; never the split reported).",
)
@click.option("--tune-split", help="The split to tune on [default: train, else dev].")
@click.option("--json", "as_json", is_flag=True, help="The report as JSON.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def eval_command(
    data_dir,
    split,
    index_dir,
    model,
    projection,
    coarse_dim,
    chunk_tokens,
    overlap_tokens,
    shortlist,
    full_storage,
    qdrant_url,
    qdrant_path,
    qdrant_collection,
    qdrant_quantization,
    qdrant_shards,
    qdrant_replicas,
    no_latency,
    tune,
    tune_split,
    as_json,
    quiet,
):
    """Evaluate retrieval on a BEIR folder (corpus.jsonl, queries.jsonl, qrels/SPLIT.tsv).

    Reports the model cards' metrics for every search mode (hybrid, dense, lexical, exact full-dim, coarse)
    and each Matryoshka dim, the dense top-10 agreement with exact search, and query latency. Embeddings are
    cached, so a second run with other search settings embeds nothing. --tune picks the hybrid weight first.

    \b
    Example:
        searcher eval ../shared/data/scifact --split test --shortlist 100
    """
    from .config import IndexConfig
    from .evaluate import evaluate

    config = IndexConfig().replace(
        model=model,
        projection=projection,
        coarse_dim=coarse_dim,
        chunk_tokens=chunk_tokens,
        overlap_tokens=overlap_tokens,
        full_storage=full_storage,
    )
    config = _with_qdrant(
        config, None, qdrant_url, qdrant_path, qdrant_collection, qdrant_quantization, qdrant_shards, qdrant_replicas
    )
    with _Progress(enabled=not quiet) as progress:
        report = evaluate(
            data_dir,
            split=split,
            config=config,
            index_dir=index_dir,
            shortlist=shortlist,
            progress=progress,
            latency=not no_latency,
            tune=tune or tune_split is not None,
            tune_split=tune_split,
        )
    if as_json:
        import orjson

        click.echo(orjson.dumps(report.to_dict(), option=orjson.OPT_INDENT_2).decode())
    else:
        click.echo(report.to_markdown())


def _parse_dim_weights(ctx, param, values: tuple[str, ...]) -> tuple[tuple[int, float], ...]:
    """`--dim-weight 64=2` -> ((64, 2.0),)."""
    parsed = []
    for value in values:
        dim, _, weight = value.partition("=")
        try:
            parsed.append((int(dim), float(weight)))  # no "=": float("") fails
        except ValueError:
            raise click.BadParameter(f"expected DIM=WEIGHT such as 64=2, got {value!r}") from None
    return tuple(parsed)


@cli.command(short_help="Fine-tune an embedding model on your own documents or labels.")
@click.argument("data", type=click.Path(path_type=Path), required=False)
@click.option(
    "--index",
    "index_name",
    metavar="NAME",
    help="Train label-free on this index's chunks (instead of DATA), then switch the index to the tuned model "
    "if it is better on held-out pseudo-queries.",
)
@click.option(
    "--reranker",
    is_flag=True,
    help="Train a reranker (CrossEncoder) instead, on DATA's labels, with hard negatives from --index.",
)
@click.option(
    "--adopt/--no-adopt",
    default=True,
    show_default=True,
    help="With --index: switch the index to the tuned model when it is better.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory for the fine-tuned model [required with DATA; with --index, default: a new folder under "
    "the searcher home's .models].",
)
@click.option(
    "--model",
    envvar="SEARCHER_MODEL",
    show_envvar=True,
    help="Base model [default: the index's own when training on an index, else the bundled MiniLM].",
)
@click.option("--epochs", type=int, help="Passes over the pairs [default: 10 with labels, 1 label-free].")
@click.option(
    "--batch-size",
    type=int,
    default=FinetuneConfig.batch_size,
    show_default=True,
    help="Pairs per step; the others in a batch are each pair's negatives.",
)
@click.option(
    "--learning-rate",
    type=float,
    help="Peak learning rate, linear schedule [default: 5e-5 with labels, 2e-5 label-free].",
)
@click.option(
    "--warmup-ratio",
    type=float,
    default=FinetuneConfig.warmup_ratio,
    show_default=True,
    help="Share of steps spent warming the learning rate up.",
)
@click.option(
    "--max-seq-length",
    type=int,
    default=FinetuneConfig.max_seq_length,
    show_default=True,
    help="Training window in tokens (0: the base model's own); the saved model keeps its window.",
)
@click.option("--bf16/--no-bf16", default=None, help="bfloat16 autocast [default: when the CPU has native bf16].")
@click.option("--max-pairs", type=int, help="Train on a random sample of at most this many pairs.")
@click.option(
    "--dim-weight",
    "dim_weights",
    multiple=True,
    callback=_parse_dim_weights,
    metavar="DIM=WEIGHT",
    help="MatryoshkaLoss weight of one dim, e.g. 64=2 (repeatable) [default: every dim 1].",
)
@click.option(
    "--pca-prefix/--no-pca-prefix",
    default=FinetuneConfig.pca_prefix,
    show_default=True,
    help="End the model with a rotation onto the corpus's principal directions, so that its 64-dim "
    "prefix shortlists faithfully (full-dim similarities are unchanged).",
)
@click.option(
    "--seed", type=int, default=FinetuneConfig.seed, show_default=True, help="Random seed (shuffling, sampling)."
)
@click.option("--eval-split", help="BEIR split to evaluate on [default: test, else dev].")
@click.option("--no-eval", is_flag=True, help="Skip the before/after evaluation.")
@click.option("--overwrite", is_flag=True, help="Replace an existing output directory.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def finetune(
    data,
    index_name,
    reranker,
    adopt,
    output,
    model,
    epochs,
    batch_size,
    learning_rate,
    warmup_ratio,
    max_seq_length,
    bf16,
    max_pairs,
    dim_weights,
    pca_prefix,
    seed,
    eval_split,
    no_eval,
    overwrite,
    quiet,
):
    """Fine-tune a model with MatryoshkaLoss on DATA: a JSONL file of (query, passage) pairs, a BEIR folder
    with a train split, or a plain corpus (folder, file or index) to train on label-free; or on an index's chunks
    with --index, switching the index to the tuned model when it is better.

    Label-free, the training queries are made from the text (headings, sentences taken out, rare words) and scored
    by the index's hybrid search; part of them is held out, and the base and tuned model are compared there.

    \b
    Examples:
        searcher finetune ../shared/data/scifact -o models/scifact-minilm
        searcher finetune --index notes
    """
    from .config import FinetuneConfig
    from .train import finetune as run_finetune

    if reranker:
        _finetune_reranker(data, index_name, output, model, epochs, batch_size, learning_rate, seed, overwrite, quiet)
        return
    if (data is None) == (index_name is None):
        raise click.UsageError("give DATA to train on or --index NAME, one of the two")
    if data is not None and output is None:
        raise click.UsageError("training on DATA needs -o/--output, the directory for the model")
    config = FinetuneConfig(
        base_model=model,
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        warmup_ratio=warmup_ratio,
        seed=seed,
        max_seq_length=max_seq_length or None,
        max_pairs=max_pairs,
        bf16=bf16,
        dim_weights=dim_weights,
        pca_prefix=pca_prefix,
    )
    switched = None
    with _Progress(enabled=not quiet) as progress:
        if index_name is not None:
            from .adopt import finetune_index

            report, switched = finetune_index(index_name, output, config, adopt=adopt, progress=progress)
        else:
            report = run_finetune(
                data,
                output,
                config,
                eval_split=eval_split,
                evaluate_model=not no_eval,
                overwrite=overwrite,
                progress=progress,
            )
    for warning in report.warnings:
        click.echo(f"warning: {warning}", err=True)
    from .render import finetune_summary

    for line in finetune_summary(report, index_name, switched, adopt):
        click.echo(line)


def _finetune_reranker(data, index_name, output, model, epochs, batch_size, learning_rate, seed, overwrite, quiet):
    from .config import DEFAULT_MODEL
    from .rerank_train import finetune_reranker

    if data is None or index_name is None or output is None:
        raise click.UsageError(
            "--reranker needs DATA (a BEIR folder with a train split, or a JSONL file of pairs), --index NAME (the "
            "index of those documents, for hard negatives) and -o/--output"
        )
    with _Progress(enabled=not quiet) as progress:
        report = finetune_reranker(
            data,
            output,
            index_name,
            base_model=model or DEFAULT_MODEL,
            epochs=epochs or 1,
            batch_size=batch_size,
            learning_rate=learning_rate or 2e-5,
            seed=seed,
            overwrite=overwrite,
            progress=progress,
        )
    click.echo(
        f"trained a reranker on {report.positives} positive and {report.negatives} hard negative pairs "
        f"({report.data}) in {report.train_seconds:.0f} s; written to {report.output}\n"
        f'use it: searcher query --rerank {report.output} "..."'
    )


@cli.command(short_help="Switch an index to another model, re-embedding its chunks.")
@click.argument("model")
@index_option
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def adopt(model, index_dir, quiet):
    """Re-embed every chunk of the index with MODEL (a fine-tuned model's folder, say) into a new generation and
    switch to it at once; the index answers with its old model until then, and a killed run resumes.

    \b
    Example:
        searcher adopt ~/.local/share/searcher/.models/notes-20261206-101500 --index notes
    """
    from .adopt import adopt_model

    with _Progress(enabled=not quiet) as progress:
        report = adopt_model(index_dir, model, progress=progress)
    click.echo(
        f"{report.index_dir}: {report.chunks} chunks of {report.documents} documents re-embedded with {model} "
        f"({report.embedded} embedded, {report.reused} found from an interrupted run); generation {report.generation}"
    )


@cli.command(short_help="Answer searches over HTTP, with a search page in the browser.")
@indexes_option
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on; anything but this machine needs $SEARCHER_TOKEN.",
)
@click.option("--port", default=8765, show_default=True, type=click.IntRange(0, 65535), help="Port to listen on.")
@click.option(
    "--token",
    envvar="SEARCHER_TOKEN",
    show_envvar=True,
    help="Require this API token (Authorization: Bearer TOKEN) on every request.",
)
@click.option(
    "--allow-host",
    "allow_hosts",
    multiple=True,
    metavar="NAME",
    help="Also answer requests addressed to this host name (repeatable); by default only the address it "
    "listens on and localhost, so that no other web site can read it through DNS rebinding.",
)
@click.option(
    "--rerank",
    metavar="MODEL",
    help="Let requests ask for reranking (rerank=true) with this CrossEncoder, a local directory or a name you have.",
)
@click.option("--stop-after", type=float, hidden=True, help="Stop after this many seconds (tests, benchmarks).")
def serve(indexes, host, port, token, allow_hosts, rerank, stop_after):
    """Serve searches over HTTP: a search page at /, the API at /search, its description at /openapi.json.

    Each index is loaded once, and the server follows new index generations (from `searcher index`, `update`
    or `--watch`) within a second, without a restart.

    \b
    Example:
        searcher serve --index notes --port 8765   # then open http://127.0.0.1:8765/
    """
    from .server import need

    need("fastapi", "fastapi")
    need("uvicorn", "uvicorn")
    if not _loopback(host) and not token:
        raise click.ClickException(
            f"listening on {host} lets other machines search your documents; set "
            "SEARCHER_TOKEN (or --token) to a secret to require it, or keep --host 127.0.0.1"
        )
    from .server.app import create_app, run
    from .server.catalog import Catalog

    _check_port(host, port)
    catalog = Catalog(list(indexes), reranker=rerank)
    click.echo(f"serving {', '.join(catalog.names)} on http://{host}:{port}/ (Ctrl-C to stop)", err=True)
    run(
        create_app(catalog, token=token, host=host, port=port, allow_hosts=allow_hosts),
        host=host,
        port=port,
        stop_after=stop_after,
    )


def _check_port(host: str, port: int) -> None:
    """One line, before anything claims to serve, when the port cannot be had."""
    import errno
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                raise click.ClickException(f"port {port} is in use; pass --port with another") from None
            raise click.ClickException(f"cannot listen on {host}:{port}: {e.strerror}") from None


@cli.command(short_help="Let an AI agent search an index (MCP server on stdio).")
@indexes_option
@click.option("--rerank", metavar="MODEL", help="Let the agent ask for reranking with this CrossEncoder.")
def mcp(indexes, rerank):
    """Run a Model Context Protocol server on stdin/stdout with the tools `search` and `get_document`.

    \b
    Example (an agent's MCP configuration):
        {"command": "searcher", "args": ["mcp", "--index", "notes"]}
    """
    from .server import need

    need("mcp", "mcp")
    from .server.catalog import Catalog
    from .server.mcp import create_mcp

    create_mcp(Catalog(list(indexes), reranker=rerank)).run("stdio")


def _loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@cli.command(short_help="Show what an index holds and how it was built.")
@index_option
@click.option("--json", "as_json", is_flag=True, help="The whole manifest as JSON.")
def info(index_dir, as_json):
    """Show an index's manifest: model, projection, chunking and counts.

    \b
    Example:
        searcher info --index indexes/default
    """
    from .home import resolve
    from .store import read_manifest

    index_dir = resolve(index_dir)
    manifest = read_manifest(index_dir)
    data = manifest.to_dict()
    data["disk_bytes"] = _disk_bytes(index_dir)
    if as_json:
        import orjson

        click.echo(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode())
        return
    p, m, c = manifest.projection, manifest.model, manifest.config
    lines = [
        f"index       {index_dir} (format {data['format']} v{data['version']}, generation {manifest.generation})",
        f"updated     {manifest.updated} (created {manifest.created})",
        f"model       {m.name} ({m.dim} dims, max {m.max_seq_length} tokens)",
        f"projection  {p.kind} to {p.coarse_dim} dims (requested {p.requested})"
        + (
            f"; auto measured top-10 kept: prefix {p.measurement.get('prefix')}, pca {p.measurement.get('pca')}"
            if p.measurement
            else ""
        ),
        f"search      hybrid by default: dense weight {c.fusion_weight:g}, lexical words: {c.lexical_tokenizer}",
        "chunking    {} tokens, {} overlap".format(*c.chunking(m.max_seq_length)),
        f"vectors     full: {c.full_storage}; coarse: {manifest.coarse.get('kind')}"
        + (
            f" ({manifest.coarse.get('nlist')} cells, {manifest.coarse.get('nprobe')} scanned per query)"
            if manifest.coarse.get("kind") == "ivf"
            else " (exact)"
        ),
        f"backend     {_backend_line(c)}",
        f"contents    {manifest.files} files, {manifest.documents} documents, {manifest.chunks} chunks",
        f"queries     {'ONNX, no torch (' + manifest.query_encoder + ')' if manifest.query_encoder else 'torch'}",
        f"documents   embedded with {_encoder_choice(manifest.document_encoder)}",
        f"sources     {', '.join(manifest.sources)}",
        *([f"include     {', '.join(c.include)}"] if c.include else []),
        *([f"exclude     {', '.join(c.exclude)}"] if c.exclude else []),
        *([f"removed     {', '.join(c.removed)} (`searcher index PATH` brings one back)"] if c.removed else []),
        f"disk        {data['disk_bytes'] / 1e6:.1f} MB",
    ]
    click.echo("\n".join(lines))


def _backend_line(c) -> str:
    """Where queries are answered (backends/), as `searcher info` says it."""
    if c.backend != "qdrant":
        return "local (FAISS files in this folder)"
    where = (
        f"Qdrant Edge shard {c.qdrant_path}"
        if c.qdrant_path
        else f"Qdrant collection {c.qdrant_collection!r} "
        f"at {c.qdrant_url}"
        + (f", {c.qdrant_shards} shards" if c.qdrant_shards else "")
        + (f", {c.qdrant_replicas} replicas" if c.qdrant_replicas else "")
    )
    return f"{where}; coarse vector quantization: {c.qdrant_quantization}"


def _valid_text(text: str, what: str) -> str:
    """Command-line text with bytes that are not UTF-8 (they arrive as lone surrogates) replaced, with a notice."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        click.echo(f"notice: {what} holds bytes that are not UTF-8; they were replaced with U+FFFD", err=True)
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _stdin_queries() -> list[str]:
    """One query per line of standard input ("\n" only); a line that is not UTF-8 is repaired, not fatal."""
    queries = []
    for lineno, raw in enumerate(sys.stdin.buffer.read().split(b"\n"), start=1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            click.echo(
                f"notice: line {lineno} of standard input is not UTF-8; bad bytes replaced with U+FFFD", err=True
            )
            line = raw.decode("utf-8", "replace")
        line = line.removesuffix("\r")
        if line.strip():
            queries.append(line)
    return queries


class _Progress:
    """Turns the library's progress(phase, done, total) calls into tqdm bars on stderr."""

    def __init__(self, *, enabled: bool) -> None:
        self.enabled = enabled and sys.stderr.isatty()  # no bars written into a log file
        self.bar: Any = None  # a tqdm bar, made on the first phase
        self.phase: str | None = None

    def __enter__(self) -> _Progress:
        return self

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.close()

    def __call__(self, phase: str, done: int, total: int | None, **extra: float) -> None:
        if not self.enabled:
            return
        if phase != self.phase:
            from tqdm import tqdm

            if self.bar is not None:
                self.bar.close()
            units = {
                "load": ("loading the model", "it"),
                "scan": ("scanning", "file"),
                "chunk": ("chunking a long file", "char"),
                "measure": ("measuring the embedding paths (once per model and CPU)", "path"),
                "embed": ("embedding", "chunk"),
                "write": ("writing", "step"),
                "train": ("training", "step"),
            }
            desc, unit = units.get(phase, (phase, "it"))
            self.bar = tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, dynamic_ncols=True, leave=False)
            self.phase = phase
        self.bar.total = total
        if extra:
            self.bar.set_postfix({k: f"{v:.4f}" for k, v in extra.items()}, refresh=False)
        self.bar.update(done - self.bar.n)


def _encoder_choice(record: dict | None) -> str:
    if not record:
        return "torch (not measured)"
    rates = ", ".join(f"{name} {rate:.0f}/s" for name, rate in record.get("texts_per_second", {}).items())
    later = "".join(f"; {name} not yet: a larger run measures it" for name in record.get("unmeasured", []))
    return f"{record.get('choice')} (measured on {record.get('cpu')}: {rates}{later})"


def _disk_bytes(index_dir: Path) -> int:
    return sum(f.stat().st_size for f in Path(index_dir).rglob("*") if f.is_file())
