"""Commands that serve an index: serve (HTTP and the search page), mcp."""

from __future__ import annotations

import click

from .common import (
    cli,
    indexes_option,
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
    from ..server import need

    need("fastapi", "fastapi")
    need("uvicorn", "uvicorn")
    if not _loopback(host) and not token:
        raise click.ClickException(
            f"listening on {host} lets other machines search your documents; set "
            "SEARCHER_TOKEN (or --token) to a secret to require it, or keep --host 127.0.0.1"
        )
    from ..server.app import create_app, run
    from ..server.catalog import Catalog

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
    from ..server import need

    need("mcp", "mcp")
    from ..server.catalog import Catalog
    from ..server.mcp import create_mcp

    create_mcp(Catalog(list(indexes), reranker=rerank)).run("stdio")


def _loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
