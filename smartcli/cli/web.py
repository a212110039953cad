"""`smart serve`: a local web view of search results, with the matched words marked on the pages.

The server is the standard library's threading HTTP server over one warm :class:`smartcli.Index`
(model loaded once, new index commits followed). :class:`ViewApp` maps a request to a
:class:`Response` and knows nothing of sockets, so tests call it in process; :func:`make_server`
puts it behind a socket.

Routes (GET only; everything else is 404 or 405):

    /                       the page (static HTML, vanilla JS and CSS served from this package)
    /static/app.js, /static/style.css
    /api/search?q=&k=&mode=&kind=&path_prefix=&glob=&min_score=&explain=1&like=ID
                            what `smart search --json [--explain]` prints, each result with its
                            ``id``, ``thumbnail``, ``picture`` and ``file_url`` (and ``marks``
                            with ``explain=1``: word boxes, or a patch heat map)
    /thumb/ID.png, /page/ID.png
                            a result page drawn 320 or 1200 pixels wide (cached on disk)

Security: pages are named by their catalog id only, never by a path taken from the request
(an id that is not an encoded page of the current snapshot, or whose file changed or resolves
outside the indexed paths, is 404); with a token every request must carry it (``?token=``,
the cookie the page sets, or ``Authorization: Bearer``); on loopback the Host header must be
loopback (no DNS rebinding); document text and file names reach the page as JSON only and
are put in with ``textContent``; a strict Content-Security-Policy allows nothing but this
server's own script, styles and pictures.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import threading
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path

from smartcli import defaults

STATIC = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/static/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/static/style.css": ("style.css", "text/css; charset=utf-8"),
}
PICTURE_ROUTE = re.compile(r"^/(thumb|page)/([0-9]{1,12})\.png$")
PICTURE_WIDTHS = {"thumb": defaults.THUMBNAIL_WIDTH, "page": defaults.PAGE_VIEW_WIDTH}
MODES = ("smart", "pooled", "late")
KINDS = ("pdf", "image")
TOKEN_COOKIE = "smart_token"
LOOPBACK = ("127.0.0.1", "localhost", "::1")
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


@dataclass
class Response:
    status: int
    content_type: str
    body: bytes
    headers: dict = field(default_factory=dict)

    def json(self):
        return json.loads(self.body)


def cache_dir() -> Path:
    """Where rendered pictures are kept: ``$XDG_CACHE_HOME/smart/pictures`` (``~/.cache/...``)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "smart" / "pictures"


class PictureCache:
    """Rendered page pictures on disk, at most ``max_bytes`` in all (least recently used go first).

    A picture is keyed by the store, the item, its file's path, size and mtime and the width, so
    a changed file is never shown from an old picture.
    """

    def __init__(self, folder: Path, max_bytes: int = defaults.THUMBNAIL_CACHE_BYTES):
        self.folder = Path(folder)
        self.max_bytes = max_bytes
        self._lock = threading.Lock()

    def key(self, *parts) -> str:
        return hashlib.sha256("\0".join(map(str, parts)).encode("utf-8", "surrogateescape")).hexdigest()[:40]

    def get(self, key: str) -> bytes | None:
        path = self.folder / f"{key}.png"
        try:
            data = path.read_bytes()
        except OSError:
            return None
        try:
            os.utime(path)  # recently used
        except OSError:
            pass
        return data

    def put(self, key: str, data: bytes) -> None:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            tmp = self.folder / f".{key}.{os.getpid()}.{threading.get_ident()}.tmp"
            tmp.write_bytes(data)
            os.replace(tmp, self.folder / f"{key}.png")
        except OSError:
            return  # a cache that cannot be written only costs time
        self._evict()

    def _evict(self) -> None:
        with self._lock:
            entries = []
            for entry in os.scandir(self.folder):
                if entry.name.endswith(".png"):
                    try:
                        st = entry.stat()
                    except OSError:
                        continue
                    entries.append((st.st_mtime, st.st_size, entry.path))
            total = sum(size for _, size, _ in entries)
            for _, size, path in sorted(entries):
                if total <= self.max_bytes:
                    break
                try:
                    os.unlink(path)
                    total -= size
                except OSError:
                    pass

    def size(self) -> int:
        try:
            return sum(e.stat().st_size for e in os.scandir(self.folder) if e.name.endswith(".png"))
        except OSError:
            return 0


class ViewApp:
    """The web view over one warm ``index``: requests in, :class:`Response` out."""

    def __init__(self, index, token: str | None = None, allowed_hosts: set[str] | None = None, cache: PictureCache | None = None):
        self.index = index
        self.token = token
        self.allowed_hosts = allowed_hosts  # None: any Host header
        self.cache = cache or PictureCache(cache_dir())
        # The index (its SQLite connection belongs to the thread that opened it), the model and
        # MuPDF are used by one thread, which serves the requests' work one at a time.
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="smart-index")
        self._static = {
            route: resources.files("smartcli.cli").joinpath("web_static", name).read_bytes() for route, (name, _) in STATIC.items()
        }

    def call(self, function, *args):
        """``function(*args)`` on the index's thread; its result, or its exception raised here."""
        return self._worker.submit(function, *args).result()

    def close(self) -> None:
        self._worker.shutdown(wait=True)

    # -- dispatch ----------------------------------------------------------------------------

    def handle(self, method: str, target: str, headers: dict | None = None) -> Response:
        headers = {k.lower(): v for k, v in (headers or {}).items()}
        parsed = urllib.parse.urlsplit(target)
        params = urllib.parse.parse_qs(parsed.query, keep_blank_values=True)
        if self.allowed_hosts is not None and _host_name(headers.get("host", "")) not in self.allowed_hosts:
            return _text(403, "forbidden: unexpected Host header")
        if not self._authorized(headers, params):
            return _text(403, "forbidden: this server needs its token (open the address it printed)")
        if method not in ("GET", "HEAD"):
            return _text(405, "only GET")
        path = parsed.path
        response = self._route(path, params)
        if self.token is not None and path == "/" and response.status == 200:
            response.headers["Set-Cookie"] = f"{TOKEN_COOKIE}={self.token}; HttpOnly; SameSite=Strict; Path=/"
        response.headers.update(SECURITY_HEADERS)
        return response

    def _authorized(self, headers: dict, params: dict) -> bool:
        if self.token is None:
            return True
        offered = []
        offered += params.get("token", [])
        auth = headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            offered.append(auth[7:].strip())
        for part in headers.get("cookie", "").split(";"):
            name, _, value = part.strip().partition("=")
            if name == TOKEN_COOKIE:
                offered.append(value)
        return any(hmac.compare_digest(o.encode("utf-8", "replace"), self.token.encode()) for o in offered)

    def _route(self, path: str, params: dict) -> Response:
        if path in STATIC:
            return Response(200, STATIC[path][1], self._static[path], {"Cache-Control": "no-cache"})
        if path == "/api/search":
            return self.search(params)
        match = PICTURE_ROUTE.match(path)
        if match:
            return self.picture(int(match.group(2)), PICTURE_WIDTHS[match.group(1)])
        return _text(404, "not found")

    # -- the API -----------------------------------------------------------------------------

    def search(self, params: dict) -> Response:
        from smartcli import ErrorKind, Scope, SmartError

        try:
            request = _search_request(params)
        except ValueError as exc:
            return _json(400, {"error": str(exc)})
        scope = Scope(path_prefixes=tuple(request["path_prefix"]), globs=tuple(request["glob"]), kinds=request["kinds"])
        options = dict(mode=request["mode"], scope=scope, min_score=request["min_score"])
        try:
            data = self.call(self._answer, request, options)
        except SmartError as exc:
            status = 404 if exc.kind is ErrorKind.NOT_FOUND else 400 if exc.kind in (ErrorKind.BAD_OPTION, ErrorKind.BAD_INPUT) else 500
            return _json(status, {"error": str(exc), "kind": exc.kind.value})
        return _json(200, data)

    def _answer(self, request: dict, options: dict) -> dict:
        from smartcli.cli.present import answer_json

        if request["like"] is not None:
            source = self.index.item_by_id(request["like"])
            hits = self.index.like(source.path, page=source.page, k=request["k"], **options)
            data = answer_json(hits, None, None, source, None, explain=request["explain"])
            data["like"]["id"] = source.item_id
        else:
            hits = self.index.search(request["q"], k=request["k"], **options)
            data = answer_json(hits, request["q"], None, None, None, explain=request["explain"])
        for hit, result in zip(hits, data["results"]):
            result.update(self._links(hit))
            if request["explain"]:
                result["marks"] = self._marks(hit)
        return data

    def _links(self, hit) -> dict:
        item = hit.item
        return {
            "id": item.item_id,
            "thumbnail": f"/thumb/{item.item_id}.png",
            "picture": f"/page/{item.item_id}.png",
            "file_url": file_url(item.path, item.page if item.kind == "pdf" else None),
        }

    def _marks(self, hit):
        from smartcli import SmartError

        try:
            return self.index.marks(hit.item, hit.matches)
        except SmartError:
            return None  # the file went away since it was indexed: the card says so by its picture

    def picture(self, item_id: int, width: int) -> Response:
        from smartcli import SmartError

        try:
            data = self.call(self._picture, item_id, width)
        except (SmartError, OSError):
            return _text(404, "not found")
        return Response(200, "image/png", data, {"Cache-Control": "private, max-age=3600"})

    def _picture(self, item_id: int, width: int) -> bytes:
        item = self.index.item_by_id(item_id)
        st = os.stat(item.path)
        key = self.cache.key(self.index.path, item.item_id, item.path, item.page, st.st_size, st.st_mtime_ns, width)
        data = self.cache.get(key)
        if data is None:
            data, _, _ = self.index.picture(item, width)
            self.cache.put(key, data)
        return data


def _search_request(params: dict) -> dict:
    """The search parameters, checked; ValueError says what is wrong."""

    def one(name, default=None):
        values = params.get(name)
        return values[-1] if values else default

    like = one("like")
    query = one("q", "")
    if like is None:
        if not query.strip():
            raise ValueError("the query is empty")
        if len(query) > defaults.SERVE_MAX_QUERY_CHARS:
            raise ValueError(f"the query is longer than {defaults.SERVE_MAX_QUERY_CHARS} characters")
    elif not like.isdigit():
        raise ValueError("like must be a page id")
    try:
        k = int(one("k", defaults.TOP_K))
    except ValueError:
        raise ValueError("k must be a whole number") from None
    if not 1 <= k <= defaults.SERVE_MAX_K:
        raise ValueError(f"k must be between 1 and {defaults.SERVE_MAX_K}")
    mode = one("mode", "smart")
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}")
    kind = one("kind", "") or None
    if kind is not None and kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}")
    min_score = one("min_score", "") or None
    if min_score is not None:
        try:
            min_score = float(min_score)
        except ValueError:
            raise ValueError("min_score must be a number") from None
    prefixes = [p for p in params.get("path_prefix", []) if p]
    globs = [g for g in params.get("glob", []) if g]
    if any(len(v) > defaults.SERVE_MAX_QUERY_CHARS for v in prefixes + globs) or len(prefixes) + len(globs) > 32:
        raise ValueError("too many or too long path filters")
    return {
        "q": query,
        "k": k,
        "mode": mode,
        "kinds": (kind,) if kind else (),
        "min_score": min_score,
        "path_prefix": [_absolute_prefix(p) for p in prefixes],
        "glob": globs,
        "like": int(like) if like is not None else None,
        "explain": one("explain", "") in ("1", "true", "yes"),
    }


def _absolute_prefix(prefix: str) -> str:
    absolute = os.path.abspath(os.path.expanduser(prefix))
    return absolute + os.sep if prefix.endswith(os.sep) and not absolute.endswith(os.sep) else absolute


def file_url(path: str, page: int | None) -> str:
    """``file://`` URL of ``path`` (bytes that are not UTF-8 kept), at ``#page=N`` for a PDF page."""
    url = "file://" + urllib.parse.quote(os.fsencode(path))
    return f"{url}#page={page}" if page is not None else url


def _host_name(host: str) -> str:
    host = host.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _json(status: int, obj) -> Response:
    # ASCII JSON (lone surrogates of non-UTF-8 file names stay \udcXX escapes) in which <, > and &
    # are escaped too: nothing in it can be read as markup, whatever a file name holds.
    text = json.dumps(obj, ensure_ascii=True).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return Response(status, "application/json", text.encode("ascii"), {"Cache-Control": "no-store"})


def _text(status: int, message: str) -> Response:
    return Response(status, "text/plain; charset=utf-8", (message + "\n").encode(), dict(SECURITY_HEADERS))


# -- sockets -----------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    app: ViewApp  # set on the subclass make_server builds
    protocol_version = "HTTP/1.1"
    server_version = "smart"
    sys_version = ""

    def _serve(self, method: str) -> None:
        response = self.app.handle(method, self.path, dict(self.headers.items()))
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if method != "HEAD":
            self.wfile.write(response.body)

    def do_GET(self):
        self._serve("GET")

    def do_HEAD(self):
        self._serve("HEAD")

    def do_POST(self):
        self._serve("POST")

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass  # quiet: results and pictures are for the browser, not the terminal


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def make_server(app: ViewApp, host: str, port: int) -> ThreadingHTTPServer:
    """``app`` behind a socket on ``host``:``port`` (port 0: any free one); raises OSError."""
    import socket

    handler = type("Handler", (_Handler,), {"app": app})
    server_class = _Server
    if ":" in host:
        server_class = type("Server6", (_Server,), {"address_family": socket.AF_INET6})
    return server_class((host, port), handler)
