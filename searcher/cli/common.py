"""What every command shares: the command group (errors become one line and an exit status), the common
options, the progress bar and small parsers."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import click

from .. import __version__
from ..config import (
    QDRANT_QUANTIZATIONS,
)
from ..errors import DISTRIBUTION, SearcherError

# Exit statuses, as grep and rg have them: 0 a match (or success), 1 no match, 2 an error (a bad option, a bad
# index, anything that stopped the command).
ERROR = 2
WRITES = {"index", "update", "remove", "drop", "finetune", "eval", "adopt"}  # commands that may write an index


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
            # `searcher query --no-cache-dir`, `searcher query -foo`: a flag's name searched for, unless it is
            # close to one of the command's own options (a typo: click's "Did you mean" says which)
            if ctx.invoked_subcommand == "query" and not e.possibilities:
                import shlex

                name = e.option_name if e.option_name.startswith("--") else "-foo"  # (click names -f of -foo)
                raise click.NoSuchOption(
                    e.option_name,
                    e.message.rstrip(".") + "; to search for it, put it after -- or pass it as -e QUERY "
                    f"(searcher query -e {shlex.quote(name)})",
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


def complete_index(ctx, param, incomplete: str) -> list:
    """Shell completion of an index: the named indexes starting with what was typed; a path (with a /) completes
    as folders do. (Enable with `eval "$(_SEARCHER_COMPLETE=bash_source searcher)"`, README.)"""
    from click.shell_completion import CompletionItem

    from ..home import named_indexes

    if "/" in incomplete:
        return [CompletionItem(incomplete, type="dir")]
    return [CompletionItem(p.name) for p in named_indexes() if p.name.startswith(incomplete)]


index_option = click.option(
    "--index",
    "index_dir",
    envvar="SEARCHER_INDEX",
    shell_complete=complete_index,
    show_envvar=True,
    help="Index name, or a folder (anything with a /) [default: the index named 'default' in "
    "$SEARCHER_HOME, else $XDG_DATA_HOME/searcher, else ~/.local/share/searcher].",
)

indexes_option = click.option(
    "--index",
    "indexes",
    multiple=True,
    envvar="SEARCHER_INDEX",
    shell_complete=complete_index,
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


def one_index(name: str | None, index_dir: str | None) -> str | None:
    """The index a command that shows one index was given: as its INDEX argument (`searcher info notes`) or
    --index (or $SEARCHER_INDEX, which the argument overrides); both on the command line must agree."""
    if name is None:
        return index_dir
    source = click.get_current_context().get_parameter_source("index_dir")
    if index_dir is not None and index_dir != name and source == click.core.ParameterSource.COMMANDLINE:
        raise click.UsageError(f"two indexes given ({name!r} and --index {index_dir!r}); give one")
    return name


def refuse_index_name(path: Path | str, index_dir, fix: str) -> None:
    """A usage error when `path`, given where a folder or file goes, is no path on disk but the name of an index
    (`searcher update notes`, as `searcher info notes` reads); `fix` says what was meant."""
    path = Path(path)
    if index_dir is None and len(path.parts) == 1 and not path.exists():
        from ..home import named_indexes

        if path.name in {p.name for p in named_indexes()}:
            raise click.UsageError(f"{path} is an index, not a path: {fix.format(name=path)}")


def counted(n: int, noun: str) -> str:
    """`1 file`, `2 files`: a count with its noun (a regular plural)."""
    return f"{n:,} {_noun(n, noun)}"


def _noun(n: int, noun: str) -> str:
    return noun if n == 1 else f"{noun}s"


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
    if "int8_top10_agreement" in record:
        later += f"; onnx-int8's top-10 agreement with float {record['int8_top10_agreement']:.3f}"
    return f"{record.get('choice')} (measured on {record.get('cpu')}: {rates}{later})"


def _unfinished(index_dir: Path) -> bool:
    """An index folder whose first build stopped before it published (`searcher index` resumes it)."""
    return not (index_dir / "manifest.json").exists() and (index_dir / "pending").is_dir()


def _disk_bytes(index_dir: Path) -> tuple[int, int]:
    """(bytes of the index's files, bytes of those hard-linked elsewhere too: the query encoder, which every index of
    a model shares with the home's store)."""
    total = shared = 0
    for f in Path(index_dir).rglob("*"):
        if f.is_file():
            st = f.stat()
            total += st.st_size
            shared += st.st_size if st.st_nlink > 1 else 0
    return total, shared


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
    for warning in report.warnings if verbose else report.unlisted_warnings():  # skipped files: the list below
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
        f"{counted(report.embedded, 'chunk')} embedded{f' ({report.embedded_with})' if report.embedded else ''}, "
        f"{report.reused} reused; index {report.index_dir}: {counted(report.documents, 'document')}, "
        f"{counted(report.chunks, 'chunk')}, {report.projection} projection"
    )
    if report.synced:
        click.echo(report.synced)
