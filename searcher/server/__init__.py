"""searcher serve and searcher mcp: long-lived endpoints over Searcher (the HTTP API and search page in app.py,
the MCP server in mcp.py, the indexes they answer from in catalog.py). They call the library, nothing lower.

Imported only by those two commands: FastAPI, uvicorn and mcp are the `serve` extra, and a missing one is one
line naming the package (`need`).
"""

from __future__ import annotations

import importlib

from ..errors import SearcherError, install_hint


def need(module: str, package: str) -> None:
    """Import `module` or fail with one line naming the package that provides it."""
    try:
        importlib.import_module(module)
    except ImportError:
        raise SearcherError(
            f"this needs the {package} package: {install_hint('serve')} (or pip install {package})"
        ) from None
