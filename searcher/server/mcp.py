"""`searcher mcp`: a Model Context Protocol server over stdio, so a coding agent can search a local index.

Two tools, both answering from the same Catalog as the HTTP server (so they follow new generations too):
`search` (query, k, paths, types, mode, index, min_score) returns, per hit, what an agent acts on - the file, the
passage's lines and section, the passage and its score - as structured content, with a short text listing beside
it (not the whole chunk, not the same JSON twice); `get_document` (source, start_line, end_line) returns lines of a
file the index holds, for reading around a hit. Every parameter is described, with its bounds, in the tool schema.
Built on the official `mcp` package (2.x: MCPServer).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any, Literal

from pydantic import Field  # (the serve extra's; this module is imported by `searcher mcp` only)

from ..errors import SearcherError
from ..filters import Where
from ..search import search_many
from .catalog import ALL, MAX_K, MAX_QUERY_CHARS, Catalog, read_any


def agent_record(rank: int, hit) -> dict[str, Any]:
    """A hit as an agent needs it: where (source, lines, section, page) and the passage, not the whole chunk."""
    record = {
        "rank": rank,
        "score": round(hit.score, 3),
        "source": hit.source,
        "line": hit.line,
        "end_line": hit.end_line,
        "heading": hit.heading,
        "snippet": hit.snippet,
    }
    if hit.page:
        record["page"] = hit.page
    if hit.more:
        record["also_at_lines"] = [m.line or m.page for m in hit.more[:8]]
    return record


def _listing(query: str, hits) -> str:
    """The hits as a few lines of text (the MCP text content): the JSON is in the structured content, once."""
    if hits.no_match:
        return f"no match for {query!r}: {hits.reason}"
    return (
        "\n".join(
            f"{i}. {h.score:.2f} {h.source}:{h.line or h.page} {h.heading}\n   {h.snippet}"
            for i, h in enumerate(hits, start=1)
        )
        or "no hits"
    )


def create_mcp(catalog: Catalog):
    from mcp.server.mcpserver import MCPServer
    from mcp.server.mcpserver.exceptions import ToolError
    from mcp_types import CallToolResult, TextContent

    server = MCPServer(
        "searcher",
        instructions=(
            "Search the user's local documents by meaning and exact words with `search`; each hit names its file "
            "(source) and lines. Read more around a hit with `get_document`."
        ),
    )

    @server.tool(structured_output=True)
    def search(
        query: Annotated[
            str,
            Field(
                min_length=1,
                max_length=MAX_QUERY_CHARS,
                description=(
                    'What to search for: words, "quoted phrases" that must occur, -word or -"phrase" to leave out, '
                    "code names (Py_Initialize, os.path.join) matched whole."
                ),
            ),
        ],
        k: Annotated[int, Field(ge=1, le=MAX_K, description="How many documents to return, best first.")] = 10,
        paths: Annotated[
            list[str] | None, Field(description='Only files matching any of these globs, e.g. "docs/*.md".')
        ] = None,
        types: Annotated[list[str] | None, Field(description='Only these file types, e.g. "md", "pdf".')] = None,
        changed_within: Annotated[
            str | None,
            Field(
                max_length=64,
                description='Only files last changed since then: a span back from now ("2d", "3 weeks") or a date '
                '("2026-11-01").',
            ),
        ] = None,
        changed_before: Annotated[
            str | None,
            Field(max_length=64, description="Only files last changed before then (the same forms)."),
        ] = None,
        mode: Annotated[
            Literal["hybrid", "dense", "lexical"],
            Field(
                description=(
                    "hybrid: meaning and exact words (default); dense: meaning only; lexical: exact words only."
                )
            ),
        ] = "hybrid",
        index: Annotated[
            str | None,
            Field(description="Which index, when the server has several; * for all of them, hits merged by score."),
        ] = None,
        min_score: Annotated[
            float | None,
            Field(
                ge=0,
                le=1,
                description=("Only hits at least this likely to be relevant (scores are probabilities, 0-1)."),
            ),
        ] = None,
        rerank: Annotated[
            bool,
            Field(description="Re-score the top 30 hits with the server's cross-encoder (if it was started with one)."),
        ] = False,
    ) -> dict[str, Any]:
        """Search the index for passages that answer `query`, best first, one per document. Each hit gives the
        file (source), the passage's lines and section, the passage itself and a score (the probability that it
        is relevant); no_match is true when nothing is likely relevant. Read around a hit with get_document."""
        try:
            options: dict[str, Any] = dict(
                mode=mode,
                per_doc=True,
                min_score=min_score,
                where=Where.of(paths or (), types or (), changed_within=changed_within, changed_before=changed_before),
                **catalog.rerank_options(rerank, 30),
            )
            if index == ALL:
                (hits,) = search_many([catalog.searcher(n) for n in catalog.names], [query], k, **options)
            else:
                hits = catalog.searcher(index).search(query, k, **options)
        except SearcherError as e:
            raise ToolError(str(e)) from None  # the agent sees the one-line reason and can correct itself
        records = [agent_record(rank, hit) for rank, hit in enumerate(hits, start=1)]
        if index == ALL:
            for record, origin in zip(records, hits.origins):
                record["index"] = catalog.names[origin]
        body = {"no_match": hits.no_match, "hits": records}
        listing: list[Any] = [TextContent(type="text", text=_listing(query, hits))]
        return CallToolResult(content=listing, structured_content=body)  # type: ignore[return-value]

    @server.tool(structured_output=True)
    def get_document(
        source: Annotated[str, Field(min_length=1, description="A file of the index: a hit's `source`.")],
        start_line: Annotated[int, Field(ge=1, description="First line to return (1-based).")] = 1,
        end_line: Annotated[int | None, Field(ge=1, description="Last line (at most 500 lines per call).")] = None,
        index: Annotated[str | None, Field(description="Which index, when the server has several.")] = None,
    ) -> dict[str, Any]:
        """Lines start_line..end_line (1-based, at most 500) of `source`, a file in the index (a hit's source)."""
        try:
            return asdict(read_any(catalog, index, source, start_line, end_line))
        except SearcherError as e:
            raise ToolError(str(e)) from None

    return server
