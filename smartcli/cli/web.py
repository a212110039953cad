"""`smart serve`: a local web view of search results, with the matched words marked on the pages.

:class:`ViewApp` maps a request to a :class:`Response` over one warm :class:`smartcli.Index`
(model loaded once, new index commits followed) and knows nothing of sockets, so tests call it in
process; :mod:`smartcli.cli.web_server` puts it behind a socket.

Routes (GET only; everything else is 404 or 405):

    /                       the page (static HTML, vanilla JS and CSS served from this package)
    /static/app.js, /static/style.css
    /api/search?q=&k=&mode=&kind=&path_prefix=&glob=&min_score=&explain=1&like=ID
                            what `smart search --json [--explain]` prints, each result with its
                            ``id``, ``thumbnail``, ``picture``, ``file_url`` and ``near_duplicate_of``
                            (and ``marks`` with ``explain=1``: word boxes, or a patch heat map)
    /thumb/ID.png, /page/ID.png
                            a result page drawn 320 or 1200 pixels wide (cached on disk, privately)
    /file/ID                the indexed file of that page itself (a PDF opens at ``#page=N``)

Security: one rule for everything a page shows (its text in results, its picture, its file): it is
an encoded page of the current snapshot whose file is unchanged since indexing and, links
resolved, inside the indexed paths; pages are named by their catalog id only, never by a path
taken from the request. Every request must carry the token (:mod:`smartcli.cli.web_access`),
unless the server was started without one on loopback; on loopback the Host header must be
loopback (no DNS rebinding); document text and file names reach the page as JSON only and are put
in with ``textContent``; a strict Content-Security-Policy allows nothing but this server's own
script, styles and pictures, and a served file cannot run script in this origin.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import stat
import threading
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import BinaryIO

from smartcli import defaults
from smartcli.cli.web_access import host_accepted, token_accepted, token_cookie

STATIC = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/static/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/static/style.css": ("style.css", "text/css; charset=utf-8"),
}
PICTURE_ROUTE = re.compile(r"^/(thumb|page)/([0-9]{1,12})\.png$")
FILE_ROUTE = re.compile(r"^/file/([0-9]{1,12})$")
PICTURE_WIDTHS = {"thumb": defaults.THUMBNAIL_WIDTH, "page": defaults.PAGE_VIEW_WIDTH}
MODES = ("smart", "pooled", "late")
KINDS = ("pdf", "image")
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
# Served files, by the suffix of the document (a gzipped one is served decompressed): its type,
# and whether a browser shows it (inline) or saves it (attachment, for a reader of its own).
FILE_TYPES = {
    ".pdf": ("application/pdf", "inline"),
    ".svg": ("image/svg+xml", "inline"),
    ".jpg": ("image/jpeg", "inline"),
    ".jpeg": ("image/jpeg", "inline"),
    ".png": ("image/png", "inline"),
    ".gif": ("image/gif", "inline"),
    ".webp": ("image/webp", "inline"),
    ".bmp": ("image/bmp", "inline"),
    ".tif": ("image/tiff", "inline"),
    ".tiff": ("image/tiff", "inline"),
    ".epub": ("application/epub+zip", "attachment"),
    ".xps": ("application/vnd.ms-xpsdocument", "attachment"),
    ".oxps": ("application/oxps", "attachment"),
    ".cbz": ("application/vnd.comicbook+zip", "attachment"),
    ".fb2": ("application/x-fictionbook+xml", "attachment"),
    ".mobi": ("application/x-mobipocket-ebook", "attachment"),
}
# A served file runs no script here: a PDF opens in the browser's viewer, anything else (an SVG
# can hold script) is sandboxed into an origin of its own with nothing allowed but its styles.
FILE_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "private, no-cache",
}
SANDBOXED = "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:"
# Pages whose texts share this much of their word sequences (Jaccard of 3-word shingles) are one
# card: an EPUB's repeated sections, a page that exists in two editions.
NEAR_DUPLICATE = 0.8


@dataclass
class Response:
    """An answer: ``body``, or an open ``stream`` of ``length`` bytes (None: read it to its end)."""

    status: int
    content_type: str
    body: bytes = b""
    headers: dict = field(default_factory=dict)
    stream: BinaryIO | None = None
    length: int | None = None

    def json(self):
        return json.loads(self.body)

    def read(self) -> bytes:
        """The whole body (reads and closes a stream)."""
        if self.stream is None:
            return self.body
        try:
            return self.stream.read() if self.length is None else self.stream.read(self.length)
        finally:
            self.close()

    def close(self) -> None:
        if self.stream is not None:
            self.stream.close()


def cache_dir() -> Path:
    """Where rendered pictures are kept: ``$XDG_CACHE_HOME/smart/pictures`` (``~/.cache/...``)."""
    base = defaults.xdg_dir("XDG_CACHE_HOME", ".cache")
    return Path(base) / "smart" / "pictures"


class PictureCache:
    """Rendered page pictures on disk, at most ``max_bytes`` in all (least recently used go first).

    A picture is keyed by the store, the item, its file's path, size and mtime and the width, so
    a changed file is never shown from an old picture. The folder is the user's alone (0700, its
    files 0600): pictures of one user's pages are no one else's to read.
    """

    def __init__(self, folder: Path, max_bytes: int = defaults.THUMBNAIL_CACHE_BYTES):
        self.folder = Path(folder)
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._private = False

    def key(self, *parts) -> str:
        return hashlib.sha256("\0".join(map(str, parts)).encode("utf-8", "surrogateescape")).hexdigest()[:40]

    def get(self, key: str) -> bytes | None:
        path = self.folder / f"{key}.png"
        try:
            self._make_private()
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
            self._make_private()
            tmp = self.folder / f".{key}.{os.getpid()}.{threading.get_ident()}.tmp"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0), 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, self.folder / f"{key}.png")
        except OSError:
            return  # a cache that cannot be written only costs time
        self._evict()

    def _make_private(self) -> None:
        """Create the folder (and a missing parent) as 0700, and close one an older version left
        open to others (0755): its pictures are then out of their reach too."""
        if self._private:
            return
        for folder in (self.folder.parent, self.folder):
            try:
                folder.mkdir(mode=0o700)
            except FileExistsError:
                pass
        st = os.stat(self.folder, follow_symlinks=False)
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid():
            raise PermissionError(f"{self.folder} is not a folder of this user")
        if stat.S_IMODE(st.st_mode) & 0o077:
            os.chmod(self.folder, 0o700)
        self._private = True

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
    """The web view over one warm ``index``: requests in, :class:`Response` out.

    ``token`` None lets every request in (``smart serve --no-token``, loopback only);
    ``allowed_hosts`` None accepts any Host header.
    """

    def __init__(self, index, token: str | None = None, allowed_hosts: set[str] | None = None, cache: PictureCache | None = None):
        self.index = index
        self.token = token
        self.allowed_hosts = allowed_hosts
        self.cache = cache or PictureCache(cache_dir())
        self.port: int | None = None  # set once a socket is bound: it names the token's cookie
        # The index (its SQLite connection belongs to the thread that opened it), the model and
        # MuPDF are used by one thread, which serves the requests' work one at a time.
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="smart-index")
        self._static = {
            route: resources.files("smartcli.cli").joinpath("web_static", name).read_bytes() for route, (name, _) in STATIC.items()
        }

    def bound(self, port: int) -> None:
        self.port = port

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
        if not host_accepted(self.allowed_hosts, headers):
            return _text(403, "forbidden: unexpected Host header")
        if not token_accepted(self.token, headers, params):
            return _text(403, "forbidden: this server needs its token (open the address it printed)")
        if method not in ("GET", "HEAD"):
            return _text(405, "only GET")
        path = parsed.path
        try:
            response = self._route(path, params)
        except Exception as exc:  # a defect: one line on stderr and a 500, never a dropped connection
            if os.environ.get("SMART_DEBUG"):
                raise
            from smartcli.cli.present import warn

            warn(f"unexpected error answering {path}: {type(exc).__name__}: {exc}")
            response = _json(500, {"error": f"unexpected error: {type(exc).__name__}"})
        if self.token is not None and path == "/" and response.status == 200:
            response.headers["Set-Cookie"] = token_cookie(self.token, self.port)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    def _route(self, path: str, params: dict) -> Response:
        if path in STATIC:
            return Response(200, STATIC[path][1], self._static[path], {"Cache-Control": "no-cache"})
        if path == "/api/search":
            return self.search(params)
        match = PICTURE_ROUTE.match(path)
        if match:
            return self.picture(int(match.group(2)), PICTURE_WIDTHS[match.group(1)])
        match = FILE_ROUTE.match(path)
        if match:
            return self.file(int(match.group(1)))
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
        else:
            source = None
            hits = self.index.search(request["q"], k=request["k"], **options)
        shown = [hit for hit in hits if self._shown(hit)]
        data = answer_json(shown, request["q"] if source is None else None, None, source, None, explain=request["explain"])
        if source is not None:
            data["like"]["id"] = source.item_id
        data["withheld"] = len(hits) - len(shown)
        heads = near_duplicates([hit.item.text or "" for hit in shown])
        for hit, result, head in zip(shown, data["results"], heads):
            result.update(self._links(hit))
            result["near_duplicate_of"] = None if head is None else shown[head].item.item_id
            if request["explain"]:
                result["marks"] = self._marks(hit)
        return data

    def _shown(self, hit) -> bool:
        """Whether a hit's page may be shown at all: the rule of its picture and its file, for its
        text too (a file linked from outside the indexed paths is not shown in any way)."""
        from smartcli import SmartError

        try:
            self.index.item_by_id(hit.item.item_id)
        except SmartError:
            return False
        return True

    def _links(self, hit) -> dict:
        item = hit.item
        return {
            "id": item.item_id,
            "thumbnail": f"/thumb/{item.item_id}.png",
            "picture": f"/page/{item.item_id}.png",
            "file_url": file_link(item),
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

    def file(self, item_id: int) -> Response:
        """The indexed file of page ``item_id`` itself, under the rules of its picture."""
        from smartcli import SmartError

        try:
            item, (stream, length) = self.call(self._open_file, item_id)
        except (SmartError, OSError):
            return _text(404, "not found")
        name = _document_name(item.path)
        content_type, disposition = FILE_TYPES.get(_suffix(name), ("application/octet-stream", "attachment"))
        headers = dict(FILE_HEADERS, **{"Content-Disposition": _disposition(disposition, name)})
        if content_type != "application/pdf":
            headers["Content-Security-Policy"] = SANDBOXED
        return Response(200, content_type, headers=headers, stream=stream, length=length)

    def _open_file(self, item_id: int):
        item = self.index.item_by_id(item_id)
        return item, self.index.open_file(item)


def near_duplicates(texts: list[str], threshold: float = NEAR_DUPLICATE) -> list[int | None]:
    """For each text, the index of the first earlier text it nearly repeats (None for a text that
    starts a group of its own, and for texts too short to judge)."""
    shingles = [_shingles(text) for text in texts]
    heads: list[int | None] = [None] * len(texts)
    for i, mine in enumerate(shingles):
        if not mine:
            continue
        for j in range(i):
            theirs = shingles[j]
            if heads[j] is None and theirs and len(mine & theirs) >= threshold * len(mine | theirs):
                heads[i] = j
                break
    return heads


def _shingles(text: str, n: int = 3) -> frozenset:
    words = re.findall(r"\w+", text.lower())
    if len(words) < 2 * n:
        return frozenset()  # a few words are alike by chance, not repeated passages
    return frozenset(tuple(words[i : i + n]) for i in range(len(words) - n + 1))


def file_link(item) -> str:
    """Where the page's file is served, at its page for a PDF (``#page=N``)."""
    url = f"/file/{item.item_id}"
    return f"{url}#page={item.page}" if _suffix(_document_name(item.path)) == ".pdf" else url


def _document_name(path: str) -> str:
    """The file name of the document served for ``path``: a gzipped one (an indexed ``.gz`` is
    always a gzipped document, served decompressed) without its ``.gz``."""
    name = os.path.basename(path)
    return name[:-3] if name.lower().endswith(".gz") else name


def _suffix(name: str) -> str:
    return os.path.splitext(name)[1].lower()


def _disposition(kind: str, name: str) -> str:
    """A Content-Disposition naming the file: an ASCII fallback, and the exact name (RFC 6266)."""
    fallback = "".join(c if c.isascii() and c.isprintable() and c not in '"\\%' else "_" for c in name)
    exact = urllib.parse.quote(os.fsencode(name), safe="")
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{exact}"


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
        if not math.isfinite(min_score):
            raise ValueError(f"min_score must be a finite number, not {min_score}")
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


def _json(status: int, obj) -> Response:
    # Valid JSON only (a NaN or an infinity raises: the request then gets a 500, not a broken page).
    # ASCII JSON (lone surrogates of non-UTF-8 file names stay \udcXX escapes) in which <, > and &
    # are escaped too: nothing in it can be read as markup, whatever a file name holds.
    text = json.dumps(obj, ensure_ascii=True, allow_nan=False).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return Response(status, "application/json", text.encode("ascii"), {"Cache-Control": "no-store"})


def _text(status: int, message: str) -> Response:
    return Response(status, "text/plain; charset=utf-8", (message + "\n").encode(), dict(SECURITY_HEADERS))
