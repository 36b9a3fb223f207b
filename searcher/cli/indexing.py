"""Commands that build and keep indexes: index, list, remove, drop, update, info."""

from __future__ import annotations

from pathlib import Path

import click

from ..config import (
    BACKENDS,
    DEFAULT_FULL_STORAGE,
    DEFAULT_FUSION_WEIGHT,
    FULL_STORAGE_TYPES,
    LEXICAL_TOKENIZERS,
    PROJECTIONS,
)
from ..errors import SearcherError
from .common import (
    _backend_line,
    _disk_bytes,
    _encoder_choice,
    _noun,
    _print_report,
    _print_update,
    _Progress,
    _unfinished,
    _with_qdrant,
    cli,
    complete_index,
    counted,
    index_option,
    one_index,
    qdrant_options,
    refuse_index_name,
)


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

    Reads text, Markdown, reStructuredText (.rst), HTML; PDF; Word (.docx), PowerPoint (.pptx), Excel (.xlsx);
    OpenDocument (.odt, .odp, .ods); EPUB; CSV and TSV; e-mail (.eml) and mailboxes (.mbox); Jupyter notebooks
    (.ipynb); source code and other text; any of these gzipped; and JSON Lines (.jsonl: a BEIR-style corpus, or
    any records). Options left out keep the index's own settings.

    \b
    Example:
        searcher index ~/notes --index ~/.searcher/notes
    """
    from ..config import IndexConfig
    from ..indexer import build_index, existing_config

    refuse_index_name(source, index_dir, "searcher update --index {name} re-scans its sources")

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


def _watch(source: Path, index_dir, verbose: bool) -> None:
    import threading

    from ..watch import watch

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


@cli.command("list", short_help="List your indexes, or one index's sources and files.")
@click.argument("name", required=False, metavar="[INDEX]", shell_complete=complete_index)
@click.option(
    "--index",
    "index_dir",
    envvar="SEARCHER_INDEX",
    shell_complete=complete_index,
    help="Show this index's sources (and with --files, its files) instead of every named index.",
)
@click.option("--files", "show_files", is_flag=True, help="With --index: every indexed file.")
@click.option("--json", "as_json", is_flag=True, help="As JSON: an array of indexes, or one index's sources and files.")
def list_command(name, index_dir, show_files, as_json):
    """List your indexes, or what one index holds (INDEX, or --index).

    \b
    Example:
        searcher list                  # indexes in ~/.local/share/searcher
        searcher list notes            # its sources, with file, document and chunk counts
    """
    import orjson

    from ..home import home, named_indexes, resolve
    from ..store import open_index
    from ..upkeep import source_summaries

    index_dir = one_index(name, index_dir)
    if index_dir is None:
        records = [_listed(path) for path in named_indexes()]
        if as_json:
            click.echo(orjson.dumps(records, option=orjson.OPT_INDENT_2).decode())
            return
        if not records:
            click.echo(f"no indexes in {home()} yet; make one with `searcher index FOLDER`")
        for r in records:
            if r.get("unfinished"):
                click.echo(
                    f"{r['name']:<20} unfinished: its first build stopped; `searcher index FOLDER --index "
                    f"{r['name']}` resumes it (or `searcher drop {r['name']}`)"
                )
            elif "error" in r:
                click.echo(f"{r['name']:<20} unreadable: {r['error']}")
            else:
                click.echo(
                    f"{r['name']:<20} {r['documents']:>8,} {_noun(r['documents'], 'document'):<9} {r['chunks']:>9,} "
                    f"{_noun(r['chunks'], 'chunk'):<6}  updated {r['updated']}  {r['model']}  {', '.join(r['sources'])}"
                )
        return
    index = open_index(resolve(index_dir))
    try:
        files = index.files()
    finally:
        index.close()
    sources = source_summaries(index.manifest.sources, files)
    if as_json:
        record = {"name": index.index_dir.name, "path": str(index.index_dir), **index.manifest.summary()}
        record["sources"] = sources
        if show_files:
            record["files"] = [{"path": e.path, "documents": e.documents} for e in files]
        click.echo(orjson.dumps(record, option=orjson.OPT_INDENT_2).decode())
        return
    click.echo(
        f"index {index.index_dir}: {counted(index.manifest.documents, 'document')}, "
        f"{counted(index.manifest.chunks, 'chunk')}, "
        f"updated {index.manifest.updated}"
    )
    for source in sources:
        gone = "" if source["on_disk"] else "  (gone from disk: `searcher remove` or `searcher update`)"
        click.echo(
            f"  {source['path']}: {counted(source['files'], 'file')}, {counted(source['documents'], 'document')}, "
            f"{counted(source['chunk_ids'], 'chunk id')}{gone}"
        )
    if show_files:
        for entry in files:
            click.echo(f"    {entry.path}  {counted(entry.documents, 'document')}")


def _listed(path: Path) -> dict:
    """One index of `searcher list` (and its --json): its summary, or why it cannot be read (`unfinished`: a first
    build that stopped; `error`: a damaged index)."""
    from ..store import read_manifest

    try:
        return {"name": path.name, "path": str(path), **read_manifest(path).summary()}
    except Exception as e:  # noqa: BLE001 - one damaged index must not hide the others
        if _unfinished(path):
            return {"name": path.name, "path": str(path), "unfinished": True}
        return {"name": path.name, "path": str(path), "error": str(e).splitlines()[0]}


@cli.command(short_help="Take a folder or file out of an index (also one gone from disk).")
@click.argument("path")
@index_option
def remove(path, index_dir):
    """Take PATH (a source, a folder or a file, even one gone from disk) out of the index.

    \b
    Example:
        searcher remove ~/notes/old-project --index notes
    """
    from ..upkeep import remove_from_index

    refuse_index_name(path, index_dir, "searcher remove PATH --index {name} (searcher drop {name} deletes it)")
    report = remove_from_index(index_dir, path)
    click.echo(
        f"{counted(report.removed, 'file')} removed; index {report.index_dir}: "
        f"{counted(report.documents, 'document')}, {counted(report.chunks, 'chunk')}"
    )


@cli.command(short_help="Delete an index.")
@click.argument("index_name", metavar="INDEX", shell_complete=complete_index)
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
def drop(index_name, yes):
    """Delete the index INDEX (a name, or a path to an index folder); your documents are not touched.

    \b
    Example:
        searcher drop old-notes
    """
    from ..home import resolve
    from ..store import read_manifest, require_index
    from ..upkeep import delete_index

    path = resolve(index_name)
    require_index(path)  # nothing to confirm when there is no index
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


@cli.command(short_help="Re-scan every source of an index, or only the paths named.")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path, exists=False), metavar="[PATH]...")
@index_option
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def update(paths, index_dir, quiet):
    """Re-scan every source the index holds: changed files are re-indexed, vanished ones removed.

    With PATHs (files or folders under the index's sources: new, edited or deleted), only those are looked at -
    for an editor's save hook or a git hook, in a folder too large to re-scan on every save.

    \b
    Examples:
        searcher update --index notes
        git diff --name-only HEAD~1 | xargs searcher update --index notes
    """
    from ..upkeep import update_index

    if len(paths) == 1:
        refuse_index_name(paths[0], index_dir, "searcher update --index {name}")
    with _Progress(enabled=not quiet) as progress:
        results = update_index(index_dir, paths=paths or None, progress=progress)
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


@cli.command(short_help="Show what an index holds and how it was built.")
@click.argument("name", required=False, metavar="[INDEX]", shell_complete=complete_index)
@index_option
@click.option("--json", "as_json", is_flag=True, help="The whole manifest as JSON.")
def info(name, index_dir, as_json):
    """Show an index's manifest (INDEX, or --index): model, projection, chunking and counts.

    \b
    Example:
        searcher info notes
    """
    from ..home import resolve
    from ..store import read_manifest

    index_dir = resolve(one_index(name, index_dir))
    manifest = read_manifest(index_dir)
    data = manifest.to_dict()
    data["disk_bytes"], data["disk_shared_bytes"] = _disk_bytes(index_dir)
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
        f"scores      {_scale_line(manifest)}",
        "chunking    {} tokens, {} overlap".format(*c.chunking(m.max_seq_length)),
        f"vectors     full: {c.full_storage}; coarse: {manifest.coarse.get('kind')}"
        + (
            f" ({manifest.coarse.get('nlist')} cells, {manifest.coarse.get('nprobe')} scanned per query)"
            if manifest.coarse.get("kind") == "ivf"
            else " (exact)"
        ),
        f"backend     {_backend_line(c)}",
        f"contents    {counted(manifest.files, 'file')}, {counted(manifest.documents, 'document')}, "
        f"{counted(manifest.chunks, 'chunk')}",
        f"queries     {'ONNX, no torch (' + manifest.query_encoder + ')' if manifest.query_encoder else 'torch'}",
        f"documents   embedded with {_encoder_choice(manifest.document_encoder)}",
        f"sources     {', '.join(manifest.sources)}",
        *([f"include     {', '.join(c.include)}"] if c.include else []),
        *([f"exclude     {', '.join(c.exclude)}"] if c.exclude else []),
        *([f"removed     {', '.join(c.removed)} (`searcher index PATH` brings one back)"] if c.removed else []),
        f"disk        {(data['disk_bytes'] - data['disk_shared_bytes']) / 1e6:.1f} MB"
        + (
            f", and {data['disk_shared_bytes'] / 1e6:.1f} MB hard-linked: its model's query encoder, stored once for "
            "every index of the model"
            if data["disk_shared_bytes"]
            else ""
        ),
    ]
    click.echo("\n".join(lines))


def _scale_line(manifest) -> str:
    """How the index's cosines meet the calibrated score (calibration.py, model_info.CosineMap)."""
    from ..calibration import REFERENCE_MODEL

    m = manifest.cosine_map
    if m is not None:
        return (
            f"cosines mapped onto {REFERENCE_MODEL}'s scale: {m.offset:+.3f} + {m.slope:.3f} x cosine "
            f"(fitted on {m.fitted_on} pseudo-queries)"
        )
    if manifest.model.name == REFERENCE_MODEL:
        return "calibrated on this model's cosines"
    return f"this model's cosines as they are (no map onto {REFERENCE_MODEL}'s scale was fitted)"
