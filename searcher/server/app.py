"""The HTTP API and the search page: a FastAPI app over a Catalog of indexes, served by uvicorn.

FastAPI rather than bare Starlette because its request models give what the API needs with no code of ours:
validation of every parameter with a precise message, and the OpenAPI description at /openapi.json (no /docs
page: FastAPI's loads Swagger UI from a CDN, a third-party script on a page that can read files). Endpoints are plain
`def` functions: FastAPI runs them in its thread pool, so queries run side by side (FAISS, onnxruntime and
tantivy release the GIL; machine.query_threads keeps each query on one thread).

Every error is a 4xx with one line of JSON, {"error": "..."}: bad JSON, a bad parameter, an unknown index, a
body over MAX_BODY_BYTES (counted as it arrives, so a chunked body without Content-Length is cut off too), a
missing or wrong token, a foreign Host or Origin. Anything unexpected is a 500 with the exception's type only
(the traceback goes to the log, not to the client).

DNS rebinding: a web page the user visits can point its own name at 127.0.0.1 and then read this server as a
same-origin page would. So every endpoint but /health answers only a Host that is this server's (its bound
address, localhost, the loopback addresses, or a name passed with --allow-host) and an Origin, when a browser
sends one, on such a host and this server's port; with a token too.
"""

from __future__ import annotations

import hmac
import logging
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import orjson
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__
from ..config import DEFAULT_PER_DOC, DEFAULT_SHORTLIST, MODE_ALIASES, SEARCH_MODES
from ..errors import IndexNotFoundError, SearcherError
from ..filters import Where
from ..hits import hit_record
from ..search import search_many
from .catalog import ALL, MAX_K, MAX_QUERY_CHARS, Catalog, read_any

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"
MAX_SHORTLIST = 10_000
MAX_BATCH = 64
MAX_BODY_BYTES = 256 * 1024
if TYPE_CHECKING:
    Mode = str
else:  # the modes as one Literal, so that FastAPI validates them and lists them in /openapi.json
    Mode = Literal[tuple([*SEARCH_MODES, *MODE_ALIASES])]


class SearchRequest(BaseModel):
    """One query; the fields and defaults of `searcher query`."""

    model_config = ConfigDict(extra="forbid")
    query: str = Field(min_length=1, max_length=MAX_QUERY_CHARS, description="what to search for")
    k: int = Field(10, ge=1, le=MAX_K, description="hits (documents with per_doc) to return")
    mode: Mode = Field("hybrid", description="hybrid, dense, lexical, full or coarse")
    paths: list[str] = Field(default_factory=list, max_length=64, description="only files matching any glob")
    types: list[str] = Field(default_factory=list, max_length=64, description="only files of these types (md, pdf)")
    changed_within: str | None = Field(
        None, max_length=64, description="only files last changed since: a span back from now (2d) or a date"
    )
    changed_before: str | None = Field(
        None, max_length=64, description="only files last changed before: a span back from now or a date"
    )
    per_doc: bool = Field(DEFAULT_PER_DOC, description="one hit per document, its other passages in `more`")
    min_score: float | None = Field(
        None, ge=0, le=1, description="drop hits less likely than this to be relevant (scores are probabilities)"
    )
    shortlist: int = Field(DEFAULT_SHORTLIST, ge=1, le=MAX_SHORTLIST, description="coarse candidates to rerank")
    index: str | None = Field(None, description="which index (GET /indexes), or * for all; default: the first")
    rerank: bool = Field(False, description="re-score the top hits with the server's cross-encoder (serve --rerank)")
    rerank_depth: int = Field(30, ge=1, le=MAX_K * 5, description="how many of the top hits to rerank")


class BatchRequest(BaseModel):
    """Several queries with the same options, answered in one pass."""

    model_config = ConfigDict(extra="forbid")
    queries: list[Annotated[str, Field(min_length=1, max_length=MAX_QUERY_CHARS)]] = Field(
        min_length=1, max_length=MAX_BATCH
    )
    k: int = Field(10, ge=1, le=MAX_K)
    mode: Mode = "hybrid"
    paths: list[str] = Field(default_factory=list, max_length=64)
    types: list[str] = Field(default_factory=list, max_length=64)
    changed_within: str | None = Field(None, max_length=64)
    changed_before: str | None = Field(None, max_length=64)
    per_doc: bool = DEFAULT_PER_DOC
    rerank: bool = False
    rerank_depth: int = Field(30, ge=1, le=MAX_K * 5)
    min_score: float | None = None
    shortlist: int = Field(DEFAULT_SHORTLIST, ge=1, le=MAX_SHORTLIST)
    index: str | None = None


LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


def create_app(
    catalog: Catalog,
    *,
    token: str | None = None,
    host: str = "127.0.0.1",
    port: int | None = None,
    allow_hosts: tuple[str, ...] = (),
) -> FastAPI:
    """The app answering from `catalog`, served on `host`:`port`. With `token`, every endpoint but /health and the
    page's files needs `Authorization: Bearer TOKEN`. Every endpoint but /health answers only a Host (and a
    browser's Origin) naming this server: `host`, the loopback names, or one of `allow_hosts`."""
    app = FastAPI(
        title="searcher",
        version=__version__,
        docs_url=None,
        redoc_url=None,
        description="Search your indexed documents by meaning and by exact words.",
    )
    app.state.catalog = catalog
    open_paths = {"/health", "/", "/favicon.ico"}
    names = {h.lower().strip("[]") for h in (*LOOPBACK_NAMES, host, *allow_hosts)} - {"0.0.0.0", "::"}

    @app.middleware("http")
    async def guard(request: Request, call_next):
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY_BYTES):
            return _error(413, f"request body over {MAX_BODY_BYTES} bytes; send fewer or shorter queries")
        if request.url.path != "/health":
            refused = _foreign(request.headers.get("host", ""), request.headers.get("origin"), names, port)
            if refused:
                return _error(403, refused)
        if token is not None and request.url.path not in open_paths and not request.url.path.startswith("/static/"):
            given = request.headers.get("authorization", "")
            expected = f"Bearer {token}"
            if not hmac.compare_digest(given.encode(), expected.encode()):
                return _error(401, "missing or wrong token; send the header Authorization: Bearer $SEARCHER_TOKEN")
        return await call_next(request)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        loc = list(first.get("loc", ()))
        where = ".".join(str(p) for p in (loc[1:] if loc[:1] in (["body"], ["query"]) else loc))  # where it came in
        what = first.get("msg", "invalid request")
        if first.get("type") == "json_invalid":
            return _error(400, "the body is not valid JSON")
        return _error(422, f"{where}: {what}" if where else what)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        return _error(exc.status_code, str(exc.detail))

    @app.exception_handler(SearcherError)
    async def searcher_error(request: Request, exc: SearcherError):
        return _error(404 if isinstance(exc, IndexNotFoundError) else 400, str(exc))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception):
        log.exception("unexpected error answering %s", request.url.path)
        return _error(500, f"internal error ({type(exc).__name__}); the server log has the details")

    @app.get("/search", summary="Search one index (query string form)")
    def search_get(
        query: str | None = Query(None, min_length=1, max_length=MAX_QUERY_CHARS),
        q: str | None = Query(None, min_length=1, max_length=MAX_QUERY_CHARS, description="the same as query"),
        k: int = Query(10, ge=1, le=MAX_K),
        mode: Mode = Query("hybrid"),
        path: list[str] = Query(default_factory=list, max_length=64),
        type: list[str] = Query(default_factory=list, max_length=64),  # noqa: A002 - the CLI's --type
        changed_within: str | None = Query(None, max_length=64),
        changed_before: str | None = Query(None, max_length=64),
        per_doc: bool = Query(DEFAULT_PER_DOC),
        min_score: float | None = Query(None, ge=0, le=1),
        shortlist: int = Query(DEFAULT_SHORTLIST, ge=1, le=MAX_SHORTLIST),
        index: str | None = Query(None),
        rerank: bool = Query(False),
        rerank_depth: int = Query(30, ge=1, le=MAX_K * 5),
    ) -> Response:
        if (query is None) == (q is None):  # `q` as search APIs and the page's own address name it
            return _error(422, "query: give the query as query=... (or q=...), once")
        # model_construct: FastAPI has validated each parameter already, with the same bounds
        request = SearchRequest.model_construct(
            query=query if q is None else q,
            k=k,
            mode=mode,
            paths=path,
            types=type,
            changed_within=changed_within,
            changed_before=changed_before,
            per_doc=per_doc,
            min_score=min_score,
            shortlist=shortlist,
            index=index,
            rerank=rerank,
            rerank_depth=rerank_depth,
        )
        return search(request)

    @app.post("/search", summary="Search one index")
    def search(request: SearchRequest) -> Response:
        name, searcher, (hits,) = _run(catalog, [request.query], request)
        return _json(_result(name, searcher, request.query, hits, catalog.names))

    @app.post("/search/batch", summary="Search one index with several queries")
    def search_batch(request: BatchRequest) -> Response:
        name, searcher, results = _run(catalog, request.queries, request)
        return _json(
            {
                "index": name,
                **({"generation": searcher.manifest.generation} if searcher is not None else {}),
                "results": [
                    _result(name, searcher, q, hits, catalog.names) for q, hits in zip(request.queries, results)
                ],
            }
        )

    @app.get("/document", summary="Lines of an indexed file (a hit's source), to read around a hit")
    def document(
        source: str = Query(min_length=1, max_length=4096),
        start_line: int = Query(1, ge=1),
        end_line: int | None = Query(None, ge=1),
        index: str | None = Query(None),
    ) -> dict:
        return asdict(read_any(catalog, index, source, start_line, end_line))

    @app.get("/indexes", summary="The indexes this server answers from")
    def indexes() -> dict:
        return {"indexes": catalog.describe()}

    @app.get("/health", summary="Liveness")
    def health() -> dict:
        return {"status": "ok", "indexes": catalog.names}

    @app.get("/", include_in_schema=False)
    def page():
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


def _foreign(host_header: str, origin: str | None, names: set[str], port: int | None) -> str:
    """Why a request's Host or Origin is not this server's (see the module docstring), or "" if both are."""
    from urllib.parse import urlsplit

    try:
        host = urlsplit(f"//{host_header}")
        host_name, host_port = (host.hostname or ""), host.port
    except ValueError:
        return f"Host header {host_header!r} is not a host name"
    if host_name not in names or (port is not None and host_port not in (None, port)):
        return (
            f"Host {host_header!r} is not this server's; open it as http://localhost:{port or ''}/ or pass "
            f"--allow-host {host_name or 'NAME'}"
        )
    if origin is not None:
        try:
            o = urlsplit(origin)
            ok = (
                o.scheme in ("http", "https")
                and (o.hostname or "") in names
                and (port is None or (o.port or (443 if o.scheme == "https" else 80)) == port)
            )
        except ValueError:
            ok = False
        if not ok:
            return f"Origin {origin!r} is not this server's: another site's page may not read it"
    return ""


class BodyLimit:
    """ASGI middleware: a request body over `limit` bytes gets a 413, counted as it arrives, so a chunked body
    without Content-Length is refused after `limit` bytes instead of read whole. The body (at most `limit`
    bytes) is read here and handed on to the app."""

    def __init__(self, app, limit: int = MAX_BODY_BYTES) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD"):
            return await self.app(scope, receive, send)
        messages, seen = [], 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            seen += len(message.get("body", b""))
            if seen > self.limit:
                body = orjson.dumps({"error": f"request body over {self.limit} bytes; send fewer or shorter queries"})
                await send(
                    {
                        "type": "http.response.start",
                        "status": 413,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close"),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
            if not message.get("more_body", False):
                break

        async def replay():
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)


def _run(catalog: Catalog, queries: list[str], request):
    options = dict(
        shortlist=request.shortlist,
        mode=request.mode,
        min_score=request.min_score,
        where=Where.of(
            request.paths,
            request.types,
            changed_within=request.changed_within,
            changed_before=request.changed_before,
        ),
        per_doc=request.per_doc,
        **catalog.rerank_options(request.rerank, request.rerank_depth),
    )
    if request.index == ALL:
        return ALL, None, search_many([catalog.searcher(n) for n in catalog.names], queries, request.k, **options)
    name = request.index or catalog.default
    searcher = catalog.searcher(name)
    return name, searcher, searcher.search_batch(queries, request.k, **options)


def _result(name: str, searcher, query: str, hits, names: list[str] | None = None) -> dict:
    """One query's answer; for index=* (searcher None) each hit names its index, and `generation` is omitted."""
    records = [hit_record(query, rank, hit) for rank, hit in enumerate(hits, start=1)]
    if searcher is None:
        for record, origin in zip(records, hits.origins):
            record["index"] = (names or [])[origin]
    return {
        "query": query,
        "index": name,
        **({"generation": searcher.manifest.generation} if searcher is not None else {}),
        "no_match": hits.no_match,
        **({"reason": hits.reason} if hits.no_match else {}),
        "hits": records,
    }


def _json(body: dict) -> Response:
    """Hits as JSON bytes straight from orjson: the records are plain dicts, so FastAPI's validation and
    serialisation of a return value would only cost time on the request path."""
    return Response(orjson.dumps(body), media_type="application/json")


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def run(app: FastAPI, *, host: str, port: int, stop_after: float | None = None) -> None:
    """Serve `app` with uvicorn until Ctrl-C (or `stop_after` seconds: a test's or benchmark's safety net)."""
    import threading

    import uvicorn

    server = uvicorn.Server(uvicorn.Config(BodyLimit(app), host=host, port=port, log_level="warning", access_log=False))
    if stop_after is not None:
        timer = threading.Timer(stop_after, lambda: setattr(server, "should_exit", True))
        timer.daemon = True
        timer.start()
    server.run()
