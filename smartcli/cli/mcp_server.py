"""`smart mcp`: the index served to LLM agents over the Model Context Protocol, on the official
SDK's ``MCPServer`` (mcp 2.x).

Tools, each typed, so that the SDK makes their input and output schemas from the signatures:

    search(query, k, mode, path_prefix, glob, kind)   the same ranking as `smart search`
    get_page(path, page)                              a page's text (bounded), its neighbours, its place
    similar(path, page, k)                            more like this page
    status()                                          what is indexed, what is pending, when it changed

Every page in a result carries what an agent needs to cite it: path, page, score, snippet, and
a ``file://`` URI (``#page=N`` for a document page). The tools call the same query session as
`smart search` (``Index.search``, ``like``, ``item``) on one warm index: the model and the token
states stay loaded between calls, and a query runs the torch-free query encoder.

One thread does the index's work, one call at a time (its SQLite connection belongs to the
thread that opened it), as in `smart serve`. Transports: stdio (the SDK's stdio transport
points file descriptor 1 at stderr while it serves, so that nothing but JSON-RPC reaches
stdout, whatever a library or a worker process prints) and streamable HTTP, where every request
must carry the token (:class:`TokenGuard`).
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from typing import Annotated, Literal

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import Field
from typing_extensions import TypedDict  # a TypedDict in a tool's return type, on Python < 3.12

from smartcli import defaults
from smartcli.cli.errors import describe
from smartcli.cli.web_access import token_accepted

MCP_PATH = "/mcp"
INSTRUCTIONS = (
    "Search the user's local PDFs and images (scans and photos included, through OCR) in plain language. "
    "Cite results by their path and page (or their uri). get_page reads a page's text; similar finds pages like one."
)


class Citation(TypedDict):
    """A page in a result, with what it takes to cite it."""

    rank: int
    path: str
    file: str
    page: int
    kind: str
    score: float
    anchor: float
    late: float | None
    snippet: str
    uri: str
    also: list[str]  # other paths holding this very page (copies of the file)


class SearchResult(TypedDict):
    query: str
    results: list[Citation]


class PageRef(TypedDict):
    path: str
    page: int
    uri: str


class SimilarResult(TypedDict):
    like: PageRef
    results: list[Citation]


class PageResult(TypedDict):
    path: str
    file: str
    page: int
    kind: str
    uri: str
    text: str
    chars: int  # the page's whole text length (text holds at most MCP_PAGE_CHARS of it)
    truncated: bool
    previous: int | None  # the file's encoded page before this one
    next: int | None
    pages: int  # encoded pages of the file


class ChangedOnDisk(TypedDict):
    modified: int
    missing: int
    new: int


class StatusResult(TypedDict):
    store: str
    model: str | None
    roots: list[str]
    files: int
    skipped_files: int
    pages: int
    updated: str | None  # when the index last changed (ISO 8601, UTC)
    changed_on_disk: ChangedOnDisk  # what an update would pick up now
    watching: bool
    pending: list[str]  # changed files the watcher waits to settle
    last_change: dict | None  # what the watcher's last update changed


class WatchState:
    """What the in-process watcher (``--watch``) did last and waits for, for ``status``."""

    def __init__(self):
        self.active = False
        self.pending: list[str] = []
        self.last_change: dict | None = None


class SmartTools:
    """The tools over one warm ``index``, run on the index's own thread."""

    def __init__(self, index, watch: WatchState | None = None):
        self.index = index
        self.watch = watch or WatchState()
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="smart-index")

    async def call(self, function, *args):
        """``function(*args)`` on the index's thread; a SmartError becomes the tool's error text."""
        from smartcli import SmartError

        try:
            return await asyncio.wrap_future(self._worker.submit(function, *args))
        except SmartError as exc:
            raise ToolError(describe(exc)) from None

    def warm_up(self) -> None:
        self._worker.submit(self.index.load)

    def close(self) -> None:
        self._worker.submit(self.index.close)
        self._worker.shutdown(wait=True)

    # -- on the index's thread ---------------------------------------------------------------

    def search(self, query: str, k: int, mode: str, path_prefix: str | None, glob: str | None, kind: str | None) -> SearchResult:
        from smartcli import Scope

        if not query.strip():
            raise ToolError("the query is empty")
        prefixes = (_absolute_prefix(path_prefix),) if path_prefix else ()
        scope = Scope(path_prefixes=prefixes, globs=(glob,) if glob else (), kinds=(kind,) if kind else ())
        hits = self.index.search(query, k=k, mode=mode, scope=scope)
        return {"query": query, "results": [citation(hit) for hit in hits]}

    def similar(self, path: str, page: int | None, k: int) -> SimilarResult:
        source = self.index.item(path, page)
        hits = self.index.like(source.path, page=source.page, k=k)
        return {"like": page_ref(source), "results": [citation(hit) for hit in hits]}

    def get_page(self, path: str, page: int | None) -> PageResult:
        item = self.index.item(path, page)
        pages = self.index.pages(item.path)
        at = pages.index(item.page)
        text = item.text or ""
        return {
            "path": item.path,
            "file": os.path.basename(item.path),
            "page": item.page,
            "kind": item.kind,
            "uri": page_ref(item)["uri"],
            "text": text[: defaults.MCP_PAGE_CHARS],
            "chars": len(text),
            "truncated": len(text) > defaults.MCP_PAGE_CHARS,
            "previous": pages[at - 1] if at > 0 else None,
            "next": pages[at + 1] if at + 1 < len(pages) else None,
            "pages": len(pages),
        }

    def status(self) -> StatusResult:
        status = self.index.status()
        return {
            "store": status.store,
            "model": status.model,
            "roots": status.roots,
            "files": sum(status.files.values()),
            "skipped_files": status.skipped_files,
            "pages": status.encoded_items,
            "updated": _iso(status.updated),
            "changed_on_disk": status.changed_on_disk,
            "watching": self.watch.active,
            "pending": list(self.watch.pending),
            "last_change": self.watch.last_change,
        }


def citation(hit) -> Citation:
    data = hit.as_json()
    return {
        "rank": data["rank"],
        "path": data["path"],
        "file": data["file"],
        "page": data["page"],
        "kind": data["kind"],
        "score": data["score"],
        "anchor": data["anchor"],
        "late": data["late"],
        "snippet": data["snippet"],
        "uri": file_url(hit.path, hit.page if hit.kind == "pdf" else None),
        "also": data.get("also", []),
    }


def page_ref(item) -> PageRef:
    return {"path": item.path, "page": item.page, "uri": file_url(item.path, item.page if item.kind == "pdf" else None)}


def _absolute_prefix(prefix: str) -> str:
    absolute = os.path.abspath(os.path.expanduser(prefix))
    return absolute + os.sep if prefix.endswith(os.sep) and not absolute.endswith(os.sep) else absolute


def _iso(timestamp: float | None) -> str | None:
    return None if timestamp is None else datetime.fromtimestamp(timestamp, timezone.utc).isoformat(timespec="seconds")


Query = Annotated[str, Field(description="What to look for, in plain language (a question, a phrase, keywords).")]
TopK = Annotated[int, Field(ge=1, le=defaults.MCP_MAX_K, description="How many pages to return.")]
Mode = Annotated[
    Literal["smart", "pooled", "late"],
    Field(description="smart (the default ranking), pooled (one vector per page) or late (word-level matching only)."),
]
PathPrefix = Annotated[str | None, Field(description="Only pages of files whose path starts with this.")]
Glob = Annotated[str | None, Field(description="Only pages of files matching this pattern: '*.pdf' matches names, 'manuals/*' paths.")]
Kind = Annotated[Literal["pdf", "image"] | None, Field(description="Only pages of this kind: pdf (any paged document) or image.")]
PagePath = Annotated[str, Field(description="The indexed file's path, as a result gave it (a unique file name also works).")]
PageNumber = Annotated[int | None, Field(ge=1, description="The page number (1-based); may be left out for a one-page file or an image.")]


def build_server(tools: SmartTools, on_start=None) -> MCPServer:
    """The MCP server with the four tools; ``on_start()`` runs once, when the first session starts."""
    started = threading.Event()

    @asynccontextmanager
    async def lifespan(server):
        if not started.is_set():
            started.set()
            if on_start is not None:
                on_start()
        yield {}

    from smartcli import __version__

    server = MCPServer("smart", version=__version__, instructions=INSTRUCTIONS, lifespan=lifespan, log_level="WARNING")

    @server.tool()
    async def search(
        query: Query,
        k: TopK = defaults.TOP_K,
        mode: Mode = "smart",
        path_prefix: PathPrefix = None,
        glob: Glob = None,
        kind: Kind = None,
    ) -> SearchResult:
        """Search the indexed PDFs and images in plain language; pages ranked best first, each with a
        snippet where the query's words meet, and its path, page and file:// URI to cite."""
        return await tools.call(tools.search, query, k, mode, path_prefix, glob, kind)

    @server.tool()
    async def get_page(path: PagePath, page: PageNumber = None) -> PageResult:
        """Read an indexed page's text (at most a few thousand characters), with the numbers of the
        file's pages before and after it."""
        return await tools.call(tools.get_page, path, page)

    @server.tool()
    async def similar(path: PagePath, page: PageNumber = None, k: TopK = defaults.TOP_K) -> SimilarResult:
        """More like this: pages ranked by their similarity to an indexed page (the page itself left out)."""
        return await tools.call(tools.similar, path, page, k)

    @server.tool()
    async def status() -> StatusResult:
        """What is indexed (files, pages, the folders covered), what changed on disk and is not
        indexed yet, and when the index last changed."""
        return await tools.call(tools.status)

    return server


class TokenGuard:
    """ASGI middleware: every HTTP request must carry ``Authorization: Bearer TOKEN`` (compared in
    constant time); anything else is answered 401 before the MCP app sees it.

    The check is `smart serve`'s (web_access.token_accepted), on the MCP app's ASGI server."""

    def __init__(self, app, token: str):
        self.app = app
        self.token = token

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and not self._authorized(scope):
            body = json.dumps({"error": "this server needs its token: send the header Authorization: Bearer TOKEN"}).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 401,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                        (b"www-authenticate", b"Bearer"),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)

    def _authorized(self, scope) -> bool:
        headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope.get("headers", [])}
        return token_accepted(self.token, headers, {})


def serve_http(server: MCPServer, host: str, port: int, token: str, on_listening) -> None:
    """Serve ``server`` over streamable HTTP at ``host``:``port`` (0: any free port) behind the
    token; ``on_listening(url)`` once the socket is bound. Returns when uvicorn stops (Ctrl-C, SIGTERM)."""
    import socket

    import uvicorn

    app = TokenGuard(server.streamable_http_app(streamable_http_path=MCP_PATH, host=host), token)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)  # a client may connect at once: it waits in the backlog until uvicorn accepts
    shown = f"[{host}]" if ":" in host else host
    on_listening(f"http://{shown}:{sock.getsockname()[1]}{MCP_PATH}")
    config = uvicorn.Config(app, log_level="warning", lifespan="on", access_log=False)
    uvicorn.Server(config).run(sockets=[sock])


def file_url(path: str, page: int | None) -> str:
    """``file://`` URL of ``path`` (bytes that are not UTF-8 kept), at ``#page=N`` for a PDF page."""
    url = "file://" + urllib.parse.quote(os.fsencode(path))
    return f"{url}#page={page}" if page is not None else url
