"""The `smart` command line. Each command is one module (``*_cmd.py``): its Typer signature, then
its body, which builds the options, makes one call to the front door (``smartcli.Index``) and
presents what comes back. Heavy imports (numpy, torch, transformers) happen inside commands."""

from __future__ import annotations

import sys

import typer

from smartcli import __version__
from smartcli.cli import compact_cmd, eval_cmd, index_cmd, mcp_cmd, search_cmd, serve_cmd, status_cmd, sync_cmd, tune_cmd, watch_cmd
from smartcli.cli.errors import EXIT_BROKEN_PIPE, EXIT_ERROR
from smartcli.cli.help import ReadableHelp

app = typer.Typer(
    name="smart",
    help="Index local PDFs and images, then search them in plain language with SMART "
    "(pooled + late-interaction scoring from one frozen embedding model).",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    cls=ReadableHelp,
)


def _version_callback(value: bool) -> None:
    if value:
        print(f"smart {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version_callback, is_eager=True, help="Print the version and exit."),
) -> None:
    from smartcli.cli.present import print_engine_warnings

    print_engine_warnings()


app.command()(index_cmd.index)
app.command()(search_cmd.search)
app.command()(status_cmd.status)
app.command("eval")(eval_cmd.evaluate)
app.command()(compact_cmd.compact)
app.command()(serve_cmd.serve)
app.command()(tune_cmd.tune)
app.command()(sync_cmd.sync)
app.command()(watch_cmd.watch)
app.command()(mcp_cmd.mcp)


def _end_at_once_after_the_prompt(code) -> None:
    """After Ctrl-D at the search prompt nothing is left to write (the history is saved, the store
    was only read): end the process now rather than wait for the interpreter to tear down the
    model runtime and the warm token states."""
    import os

    if not search_cmd.ended_at_prompt:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code if isinstance(code, int) else 0)


def _reader_went_away() -> bool:
    """Whether whoever read the output closed it (``smart search ... | head -1``): Click answers
    a broken pipe by wrapping the streams; one left unflushed breaks on its flush here. Either way
    the rest of the output goes to /dev/null, so that nothing more is said."""
    # Typer carries its own copy of Click: the wrapper is known by its name.
    gone = any(type(stream).__name__ == "PacifyFlushWrapper" for stream in (sys.stdout, sys.stderr))
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        gone = True
    except (OSError, ValueError):
        pass
    if gone:
        _silence_output()
    return gone


def _silence_output() -> None:
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        for stream in (sys.__stdout__, sys.__stderr__):
            os.dup2(devnull, stream.fileno())
    except (OSError, ValueError, AttributeError):
        pass


def main() -> None:
    import os

    try:
        app()
    except SystemExit as exc:
        code = EXIT_BROKEN_PIPE if _reader_went_away() else exc.code
        _end_at_once_after_the_prompt(code)
        raise SystemExit(code) from None
    except KeyboardInterrupt:
        sys.stderr.write("smart: interrupted\n")
        sys.exit(130)
    except BrokenPipeError:
        _silence_output()
        sys.exit(EXIT_BROKEN_PIPE)
    except Exception as exc:  # the last line of defence: one line, never a traceback
        if os.environ.get("SMART_DEBUG"):
            raise
        from smartcli.cli.present import warn

        warn(f"unexpected error: {type(exc).__name__}: {exc} (set SMART_DEBUG=1 to see where)")
        sys.exit(EXIT_ERROR)
