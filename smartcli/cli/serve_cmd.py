"""`smart serve`: the web view (smartcli/cli/web.py) on a socket (smartcli/cli/web_server.py),
over one warm index."""

from __future__ import annotations

import html
import os
import shutil
import tempfile
from pathlib import Path

import typer

from smartcli import defaults
from smartcli.cli.errors import EXIT_ERROR, EXIT_OK, EXIT_USAGE, describe, exit_code
from smartcli.cli.options import DeviceOption, StoreOption
from smartcli.cli.present import warn
from smartcli.cli.web import ViewApp
from smartcli.cli.web_access import LOOPBACK, is_loopback, new_token
from smartcli.cli.web_server import make_server


def serve(
    store: Path | None = StoreOption,
    host: str = typer.Option(
        defaults.SERVE_HOST,
        "--host",
        help="Address to listen on. Anything but loopback is reachable by others: only with a token.",
    ),
    port: int = typer.Option(defaults.SERVE_PORT, "--port", min=0, max=65535, help="Port to listen on (0: any free one)."),
    token: str | None = typer.Option(
        None,
        "--token",
        envvar="SMART_SERVE_TOKEN",
        help="Secret every request must carry (?token=, or the cookie the page sets); made up when not given.",
        show_default=False,
    ),
    no_token: bool = typer.Option(
        False,
        "--no-token",
        help="Loopback only: let requests in without a token (then every user of this computer can read the pages).",
    ),
    no_open: bool = typer.Option(False, "--no-open", help="Do not open the page in a browser."),
    device: str = DeviceOption,
) -> None:
    """A local web view: search, page thumbnails with the matched words boxed, each page large with its token matches."""
    raise typer.Exit(run_serve(store, host, port, token, no_token, not no_open, device))


def run_serve(store: Path | None, host: str, port: int, token: str | None, no_token: bool, open_browser: bool, device: str) -> int:
    exposed = not is_loopback(host)
    if token is not None and not token.strip():
        warn("--token must not be empty")
        return EXIT_USAGE
    if no_token and (token is not None or exposed):
        warn("--no-token works on loopback only, without --token" if exposed else "--no-token and --token exclude each other")
        return EXIT_USAGE
    if not no_token and token is None:
        token = new_token()
    from smartcli import Index, SmartError

    warn("loading the index and the model…")
    try:
        index = Index.open(store, device=device, warm=True)
        app = ViewApp(index, token=token, allowed_hosts=None if exposed else set(LOOPBACK))
        app.call(index.load)  # on the thread that serves the index from now on
        pages = app.call(len, index)
    except SmartError as exc:
        warn(describe(exc))
        return exit_code(exc)
    try:
        server = make_server(app, host, port)
    except OSError as exc:
        warn(f"cannot listen on {host}:{port}: {exc.strerror or exc}")
        app.call(index.close)
        app.close()
        return EXIT_ERROR
    shown_host = f"[{host}]" if ":" in host else host
    url = f"http://{shown_host}:{server.server_address[1]}/" + (f"?token={token}" if token else "")
    if exposed:
        warn(f"serving on {host}, beyond this computer: anyone who can reach it and has the token can read the indexed pages")
    elif token is None:
        warn("no token (--no-token): every user of this computer can read the indexed pages through this server")
    warn(f"{pages} pages of {index.path} at {url} (Ctrl-C stops)")
    redirect = open_in_browser(url) if open_browser else None
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        app.call(index.close)
        app.close()
        if redirect is not None:
            shutil.rmtree(redirect, ignore_errors=True)
    return EXIT_OK


def open_in_browser(url: str) -> str | None:
    """Open ``url`` in a browser through a redirect file only this user can read, as notebook
    servers do: the token never appears on a command line, which other users can list. Returns
    the folder of that file (removed when the server stops), or None if none could be written."""
    import webbrowser

    try:
        folder = tempfile.mkdtemp(prefix="smart-serve-", dir=_runtime_dir())  # 0700
        path = os.path.join(folder, "open.html")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(_redirect_page(url))
    except OSError:
        return None
    webbrowser.open(Path(path).as_uri())
    return folder


def _runtime_dir() -> str | None:
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    return runtime if runtime and os.path.isdir(runtime) and os.access(runtime, os.W_OK) else None


def _redirect_page(url: str) -> str:
    shown = html.escape(url, quote=True)
    return (
        '<!doctype html>\n<html><head><meta charset="utf-8">'
        f'<meta http-equiv="refresh" content="0;url={shown}"><title>smart</title></head>\n'
        f'<body><p>Opening <a href="{shown}">smart serve</a>…</p></body></html>\n'
    )
