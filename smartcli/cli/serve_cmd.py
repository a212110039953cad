"""`smart serve`: the web view (smartcli/cli/web.py) on a socket, over one warm index."""

from __future__ import annotations

import secrets
from pathlib import Path

import typer

from smartcli import defaults
from smartcli.cli.errors import EXIT_ERROR, EXIT_OK, EXIT_USAGE, describe, exit_code
from smartcli.cli.options import DeviceOption, StoreOption
from smartcli.cli.present import warn
from smartcli.cli.web import LOOPBACK, ViewApp, make_server


def serve(
    store: Path | None = StoreOption,
    host: str = typer.Option(
        defaults.SERVE_HOST,
        "--host",
        help="Address to listen on. Anything but loopback needs a token (one is made up when --token is not given).",
    ),
    port: int = typer.Option(defaults.SERVE_PORT, "--port", min=0, max=65535, help="Port to listen on (0: any free one)."),
    token: str | None = typer.Option(
        None,
        "--token",
        envvar="SMART_SERVE_TOKEN",
        help="Secret every request must carry (?token=, or the cookie the page sets).",
        show_default=False,
    ),
    no_open: bool = typer.Option(False, "--no-open", help="Do not open the page in a browser."),
    device: str = DeviceOption,
) -> None:
    """A local web view: search, page thumbnails with the matched words boxed, each page large with its token matches."""
    raise typer.Exit(run_serve(store, host, port, token, not no_open, device))


def run_serve(store: Path | None, host: str, port: int, token: str | None, open_browser: bool, device: str) -> int:
    exposed = host not in LOOPBACK
    if token is not None and not token.strip():
        warn("--token must not be empty")
        return EXIT_USAGE
    if exposed and token is None:
        token = secrets.token_urlsafe(18)
    from smartcli import Index, SmartError

    warn("loading the index and the model…")
    allowed = None if exposed else {"127.0.0.1", "localhost", "::1"}
    try:
        index = Index.open(store, device=device, warm=True)
        app = ViewApp(index, token=token, allowed_hosts=allowed)
        app.call(index.load)  # on the thread that serves the index from now on
        pages = app.call(len, index)
    except SmartError as exc:
        warn(describe(exc))
        return exit_code(exc)
    try:
        server = make_server(app, host, port)
    except OSError as exc:
        warn(f"cannot listen on {host}:{port}: {exc.strerror or exc}")
        return EXIT_ERROR
    shown_host = f"[{host}]" if ":" in host else host
    url = f"http://{shown_host}:{server.server_address[1]}/" + (f"?token={token}" if token else "")
    if exposed:
        warn(f"serving on {host}, beyond this computer: anyone who can reach it and has the token can read the indexed pages")
    warn(f"{pages} pages of {index.path} at {url} (Ctrl-C stops)")
    if open_browser:
        import webbrowser

        webbrowser.open(url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        app.call(index.close)
        app.close()
    return EXIT_OK
