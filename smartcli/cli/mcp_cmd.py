"""`smart mcp`: the index served to LLM agents over the Model Context Protocol (cli/mcp_server.py):
stdio for a client that starts it, streamable HTTP behind a token for a shared daemon."""

from __future__ import annotations

import secrets
import signal
import threading
from pathlib import Path

import typer

from smartcli import defaults
from smartcli.cli.errors import EXIT_OK, EXIT_USAGE, describe, exit_code
from smartcli.cli.options import DeviceOption, StoreOption, complete
from smartcli.cli.present import warn

TRANSPORTS = ("stdio", "http")


def mcp(
    store: Path | None = StoreOption,
    transport: str = typer.Option(
        "stdio",
        "--transport",
        help="stdio (the MCP client starts `smart mcp` and talks over its stdin and stdout) or http "
        "(streamable HTTP, for a server several clients share; every request needs the token).",
        autocompletion=complete(*TRANSPORTS),
    ),
    host: str = typer.Option(defaults.MCP_HOST, "--host", help="--transport http: the address to listen on."),
    port: int = typer.Option(
        defaults.MCP_PORT, "--port", min=0, max=65535, help="--transport http: the port to listen on (0: any free one)."
    ),
    token: str | None = typer.Option(
        None,
        "--token",
        envvar="SMART_MCP_TOKEN",
        help="--transport http: the secret every request must carry (Authorization: Bearer TOKEN). Default: one made up and printed.",
        show_default=False,
    ),
    watch: bool = typer.Option(
        False, "--watch", help="Keep the index fresh from inside the server, as `smart watch` does (the model stays loaded)."
    ),
    device: str = DeviceOption,
) -> None:
    """Serve the index to LLM agents over the Model Context Protocol: tools search, get_page, similar and status,
    each page cited by path, page and file:// URI."""
    if transport not in TRANSPORTS:
        warn(f"--transport must be one of {', '.join(TRANSPORTS)}, not {transport!r}")
        raise typer.Exit(EXIT_USAGE)
    if token is not None and not token.strip():
        warn("--token must not be empty")
        raise typer.Exit(EXIT_USAGE)
    raise typer.Exit(run_mcp(store, transport, host, port, token, watch, device))


def run_mcp(store, transport: str, host: str, port: int, token: str | None, watch: bool, device: str) -> int:
    from smartcli import Index, SmartError

    try:
        require_sdk()
        index = Index.open(store, device=device, warm=True)
    except SmartError as exc:
        warn(describe(exc))
        return exit_code(exc)
    from smartcli.cli.mcp_server import SmartTools, WatchState, build_server

    state = WatchState()
    tools = SmartTools(index, state)
    watcher = Watcher(index.path, device, state)

    def start() -> None:
        tools.warm_up()
        if watch:
            watcher.start()

    server = build_server(tools, on_start=start if transport == "stdio" else None)
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        if transport == "stdio":
            warn(f"serving {index.path} to an MCP client over stdio")
            server.run("stdio")
        else:
            start()
            serve_over_http(server, host, port, token, index.path)
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        warn(f"cannot listen on {host}:{port}: {exc.strerror or exc}")
        return 1
    finally:
        signal.signal(signal.SIGTERM, previous)
        watcher.stop()
        tools.close()
    return EXIT_OK


def serve_over_http(server, host: str, port: int, token: str | None, store: Path) -> None:
    import json

    from smartcli.cli.mcp_server import serve_http

    token = token or secrets.token_urlsafe(24)

    def listening(url: str) -> None:
        if host not in ("127.0.0.1", "localhost", "::1"):
            warn(f"listening on {host}, beyond this computer: anyone who can reach it and has the token can search the index")
        config = {"mcpServers": {"smart": {"type": "http", "url": url, "headers": {"Authorization": f"Bearer {token}"}}}}
        warn(f"serving {store} over MCP at {url} (Ctrl-C stops); a client's configuration: {json.dumps(config)}")

    serve_http(server, host, port, token, listening)


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def require_sdk() -> None:
    """The MCP server is an optional extra: without its SDK (version 2 or later), say what to install."""
    from smartcli import ErrorKind, SmartError

    try:
        import mcp.server.mcpserver  # noqa: F401
    except ImportError:
        try:
            from importlib.metadata import version

            found = version("mcp")
        except Exception:
            found = None
        problem = f"mcp {found} is installed, and smart mcp needs version 2 or later" if found else "the mcp package is not installed"
        raise SmartError(
            ErrorKind.MISSING_DEPENDENCY,
            f"the MCP server needs the Model Context Protocol SDK: {problem}",
            package="--upgrade mcp" if found else "mcp",
            extra="mcp",
        ) from None


class Watcher:
    """`smart watch`'s watcher on a thread of this process (``--watch``), its news on stderr and
    in ``state`` for the status tool."""

    def __init__(self, store: Path, device: str, state):
        self.store, self.device, self.state = store, device, state
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="smart-watcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            return
        self._stop.set()
        warn("stopping the watcher after the batch being committed")
        self._thread.join()

    def _run(self) -> None:
        from smartcli import Index, SmartError

        try:
            Index.open(self.store, device=self.device).watch(events=self._events(), stop=self._stop, wait=True)
        except SmartError as exc:
            warn(f"the watcher stopped: {describe(exc)}")
        finally:
            self.state.active = False

    def _events(self):
        from smartcli import WatchEvents
        from smartcli.cli.watch_cmd import change_lines, changes_line_of

        state = self.state

        class Told(WatchEvents):
            def message(self, text: str) -> None:
                warn(text)

            def watching(self, watched, scanned) -> None:
                state.active = True
                for root, why in scanned.items():
                    warn(f"{root}: scanned every {defaults.WATCH_SCAN_SECONDS:g} s ({why})")
                warn(f"watching {len(watched)} path(s) for changes")

            def settling(self, paths) -> None:
                state.pending = list(paths)

            def changed(self, change) -> None:
                state.last_change = change.as_json()
                if change.cause == "start":
                    warn(f"up to date: {changes_line_of(change)}")
                for line in change_lines(change) if change.cause != "start" else []:
                    warn(line)

        return Told()
