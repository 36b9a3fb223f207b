"""`searcher mcp`: a Model Context Protocol server over stdio, so a coding agent can search a local index.

Two tools, both answering from the same Catalog as the HTTP server (so they follow new generations too):
`search` (query, k, paths, types, mode, index) returns the records of `searcher query --format json`, and
`get_document` (source, start_line, end_line) returns lines of a file the index holds, for reading around a hit.
Built on the official `mcp` package (2.x: MCPServer).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from ..documents import read_lines
from ..errors import SearcherError
from ..filters import Where
from ..search import hit_record
from .app import MAX_K, MAX_QUERY_CHARS
from .catalog import Catalog


def create_mcp(catalog: Catalog):
    from mcp.server.mcpserver import MCPServer
    from mcp.server.mcpserver.exceptions import ToolError

    server = MCPServer("searcher", instructions=(
        "Search the user's local documents by meaning and exact words with `search`; each hit names its file "
        "(source) and lines. Read more around a hit with `get_document`."))

    @server.tool(structured_output=True)
    def search(query: str, k: int = 10, paths: list[str] | None = None, types: list[str] | None = None,
               mode: str = "hybrid", index: str | None = None, min_score: float | None = None) -> dict[str, Any]:
        """Search the index for passages that answer `query`, best first, one per document.

        query: words, "quoted phrases" that must occur, -word or -"phrase" to exclude. paths: only files matching
        any of these globs (e.g. "docs/*.md"); types: only these file types ("md", "pdf"); mode: hybrid (default),
        dense (meaning only) or lexical (exact words); index: which index, when the server has several; min_score:
        only hits at least this likely to be relevant (scores are probabilities, 0-1). no_match is true when
        nothing is likely relevant."""
        if len(query) > MAX_QUERY_CHARS:
            raise ToolError(f"query is {len(query):,} characters; the limit is {MAX_QUERY_CHARS:,}")
        k = max(1, min(int(k), MAX_K))
        try:
            hits = catalog.searcher(index).search(query, k, mode=mode, per_doc=True, min_score=min_score,
                                                  where=Where(tuple(paths or ()), tuple(types or ())))
        except SearcherError as e:
            raise ToolError(str(e)) from None  # the agent sees the one-line reason and can correct itself
        return {"no_match": hits.no_match,
                "hits": [hit_record(query, rank, hit) for rank, hit in enumerate(hits, start=1)]}

    @server.tool(structured_output=True)
    def get_document(source: str, start_line: int = 1, end_line: int | None = None,
                     index: str | None = None) -> dict[str, Any]:
        """Lines start_line..end_line (1-based, at most 500) of `source`, a file in the index (a hit's source)."""
        try:
            return asdict(read_lines(catalog.searcher(index).index, source, start_line, end_line))
        except SearcherError as e:
            raise ToolError(str(e)) from None

    return server
