"""`smart search`: one query, many (--queries, streamed from a pipe), a prompt, a picture (--image) or --like."""

from __future__ import annotations

import json
import os
import re
import stat
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, TextIO

from smartcli import defaults
from smartcli.cli.errors import EXIT_OK, EXIT_USAGE, describe, exit_code
from smartcli.cli.present import AnswerPrinter, stderr, warn

if TYPE_CHECKING:  # imported lazily at run time: argument errors must not pay for numpy
    from smartcli import Index, Scope

# Queries read from a regular file are scored this many at a time, sharing each read of the
# token states. From a pipe or a terminal each query is answered as soon as its line arrives.
QUERY_GROUP = 32
KINDS = ("pdf", "image")
MODES = ("smart", "pooled", "late")
PROMPT = "search> "
HISTORY_LENGTH = 1000
# Set when the prompt ended on Ctrl-D with its history saved: the real process then ends at once
# (``smartcli.cli.app.main``) instead of tearing down the model runtime and the warm token states,
# which took 0.5-1 s with ONNX Runtime and 2-3 s with torch after the user had already left.
ended_at_prompt = False


@dataclass(frozen=True)
class Request:
    """What every query of one run shares: the options of ``Index.search``."""

    top_k: int
    mode: str
    lambda_anchor: float | None
    lambda_late: float | None
    scope: Scope
    min_score: float | None

    @property
    def options(self) -> dict:
        return dict(mode=self.mode, lambda_anchor=self.lambda_anchor, lambda_late=self.lambda_late, scope=self.scope, min_score=self.min_score)

    @property
    def shows_late(self) -> bool:
        return self.mode == "late" or (self.mode == "smart" and self.lambda_late != 0)


def run_search(
    query: str | None,
    queries_file: str | None,
    like: str | None,
    store: Path | None,
    mode: str,
    lambda_anchor: float | None,
    lambda_late: float | None,
    top_k: int,
    json_output: bool,
    files_only: bool,
    explain: bool,
    path_prefixes: list[str],
    globs: list[str],
    kind: str | None,
    min_score: float | None,
    chunk_size: int | None,
    device: str,
    image: Path | None = None,
    shortlist: int | None = None,
    qdrant: tuple[str, str] | None = None,
) -> int:
    interactive = query is None and queries_file is None and like is None and image is None
    _print_engine_warnings()
    problem = usage_problem(query, queries_file, like, image, interactive, json_output, files_only, explain, kind, mode)
    if problem:
        warn(problem)
        return EXIT_USAGE
    try:
        like_target = parse_like(like) if like is not None else None
    except ValueError as exc:
        warn(str(exc))
        return EXIT_USAGE
    request = build_request(mode, lambda_anchor, lambda_late, top_k, path_prefixes, globs, kind, min_score)
    form = "json" if json_output else "files" if files_only else "json" if queries_file else "table"
    printer = AnswerPrinter(form, explain=explain, show_late=request.shows_late, framed=queries_file is not None)
    stream = None
    if queries_file is not None:
        try:
            stream = open_queries(queries_file)  # before the model loads: a wrong name fails at once
        except OSError as exc:
            warn(f"{queries_file}: {exc.strerror.lower() if exc.strerror else exc}")
            return EXIT_USAGE
    if interactive:
        warn("loading the index and the model…")
    from smartcli import Index, SmartError

    try:
        # A process that answers many queries keeps token states in memory between them.
        if qdrant is not None:
            from smartcli import QdrantIndex

            index = QdrantIndex.open(qdrant[0], qdrant[1], device=device, candidates=shortlist)
        else:
            index = Index.open(store, device=device, chunk_size=chunk_size, candidates=shortlist, warm=interactive or stream is not None)
        if like_target is not None:
            source = index.item(*like_target)
            printer.answer(index.like(*like_target, k=request.top_k, **request.options), like=source)
            return EXIT_OK
        if image is not None:
            printer.answer(index.search_image(image, k=request.top_k, **request.options), image=image)
            return EXIT_OK
        if stream is not None:
            with stream:
                return run_queries(index, stream, "stdin" if queries_file == "-" else queries_file, request, printer)
        if interactive:
            return run_prompt(index, request, printer)
        printer.answer(index.search(query, k=request.top_k, **request.options), query=query)
        return EXIT_OK
    except SmartError as exc:
        warn(describe(exc))
        return exit_code(exc)


def usage_problem(query, queries_file, like, image, interactive, json_output, files_only, explain, kind, mode) -> str | None:
    """Why the arguments cannot work together, or None. Checked before anything heavy is loaded."""
    if sum(x is not None for x in (query, queries_file, like, image)) > 1:
        return "give only one of QUERY, --queries FILE, --image PATH and --like PATH[:PAGE]"
    if interactive and not sys.stdin.isatty():
        return "give a QUERY, --queries FILE ('-' for stdin), --image PATH or --like PATH[:PAGE] (with none, a terminal gets a prompt)"
    if query is not None and not query.strip():
        return "the query is empty"
    if query is not None and _SURROGATES.search(query):
        return "the query is not valid UTF-8 text"
    if json_output and files_only:
        return "--json and --files-only exclude each other"
    if explain and files_only:
        return "--explain shows why pages matched; it cannot be combined with --files-only"
    if kind is not None and kind not in KINDS:
        return f"--kind must be one of {', '.join(KINDS)}, not {kind!r}"
    if mode not in MODES:
        return f"unknown mode {mode!r}; choose one of {', '.join(MODES)}"
    return None


def build_request(mode, lambda_anchor, lambda_late, top_k, path_prefixes, globs, kind, min_score) -> Request:
    from smartcli import Scope

    scope = Scope(
        path_prefixes=tuple(absolute_prefix(p) for p in path_prefixes),
        globs=tuple(globs),
        kinds=(kind,) if kind else (),
    )
    return Request(top_k, mode, lambda_anchor, lambda_late, scope, min_score)


def absolute_prefix(prefix: str) -> str:
    """An absolute path prefix; a trailing slash is kept, so that ``docs/`` does not match ``docs2``."""
    absolute = os.path.abspath(os.path.expanduser(prefix))
    return absolute + os.sep if prefix.endswith(os.sep) and not absolute.endswith(os.sep) else absolute


def parse_like(value: str) -> tuple[str, int | None]:
    """``PATH`` or ``PATH:PAGE`` (a path that itself ends in ``:digits`` wins when it exists).
    A relative PATH is passed on as given: the index also takes a base name or path suffix."""
    path, sep, page = value.rpartition(":")
    if sep and page.isdigit() and path and not os.path.exists(value):
        if int(page) < 1:
            raise ValueError(f"--like {value}: pages are numbered from 1")
        return os.path.expanduser(path), int(page)
    return os.path.expanduser(value), None


# -- many queries: a file, or a stream another program keeps open ------------------------


@dataclass
class QueryLine:
    number: int
    qid: object  # any JSON value, echoed as it came
    text: str | None
    error: str | None = None


def read_queries(stream: TextIO, name: str) -> Iterator[QueryLine]:
    """Queries from ``stream`` as their lines arrive: plain text or ``{"qid": ..., "query": ...}``.

    Blank lines are skipped. A line that is not a usable query (not UTF-8, longer than
    ``defaults.MAX_QUERY_LINE_BYTES``, bad JSON) comes back with ``error`` set; the rest are read.
    """
    for number, (line, problem) in enumerate(_lines(stream), 1):
        if problem is not None:
            yield QueryLine(number, None, None, f"{name}:{number}: {problem}")
            continue
        line = line.strip()
        if not line:
            continue
        if not line.startswith("{"):
            yield QueryLine(number, None, line)
            continue
        try:
            obj = json.loads(line)
        except RecursionError:
            yield QueryLine(number, None, None, f"{name}:{number}: JSON nested too deeply")
            continue
        except ValueError:
            obj = None
        # The qid is echoed as it came, with its JSON type (7 stays 7, "7" stays "7"), errors included.
        qid = obj.get("qid") if isinstance(obj, dict) else None
        if not isinstance(obj, dict) or "query" not in obj:
            yield QueryLine(number, qid, None, f"{name}:{number}: not a JSON object with a \"query\" field")
            continue
        text = obj["query"]
        if not isinstance(text, str) or not text.strip():
            yield QueryLine(number, qid, None, f"{name}:{number}: the query is empty or not a string")
            continue
        if _SURROGATES.search(text):
            yield QueryLine(number, qid, None, f"{name}:{number}: the query holds an unpaired surrogate (\\ud800-\\udfff), not Unicode text")
            continue
        yield QueryLine(number, qid, text)


_SURROGATES = re.compile("[\ud800-\udfff]")
# Past this many bytes without a line end the stream is not a query stream (/dev/zero): stop.
_GIVE_UP_BYTES = 64 * defaults.MAX_QUERY_LINE_BYTES


def _lines(stream) -> Iterator[tuple[str | None, str | None]]:
    """``(line, None)`` for each line of ``stream``, ``(None, problem)`` for one that cannot be a query.

    Lines are read as bytes, at most MAX_QUERY_LINE_BYTES at a time, so that neither a bad
    byte nor an endless line can stop the others being answered.
    """
    raw = getattr(stream, "buffer", None)
    if raw is None:  # a text stream without bytes beneath (io.StringIO)
        for line in iter(stream.readline, ""):
            yield line, None
        return
    limit = defaults.MAX_QUERY_LINE_BYTES
    while True:
        line = raw.readline(limit + 1)
        if not line:
            return
        if len(line) > limit and not line.endswith(b"\n"):
            skipped = len(line)
            while skipped < _GIVE_UP_BYTES:
                rest = raw.readline(limit)
                skipped += len(rest)
                if not rest or rest.endswith(b"\n"):
                    break
            else:
                yield None, f"a line longer than {_GIVE_UP_BYTES:,} bytes; stopped reading"
                return
            yield None, f"line longer than {limit:,} bytes"
            continue
        try:
            yield line.decode("utf-8"), None
        except UnicodeDecodeError as exc:
            yield None, f"not UTF-8 text ({exc.reason} at byte {exc.start + 1})"


def _print_engine_warnings() -> None:
    """The engine's SmartWarnings (a query cut to the cap) as one ``smart:`` line each, every time."""
    import warnings

    from smartcli import SmartWarning

    warnings.simplefilter("always", SmartWarning)
    previous = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, SmartWarning):
            warn(str(message))
        else:
            previous(message, category, filename, lineno, file, line)

    warnings.showwarning = show


def open_queries(source: str) -> TextIO:
    return sys.stdin if source == "-" else open(source, encoding="utf-8")


def is_regular_file(stream: TextIO) -> bool:
    try:
        return stat.S_ISREG(os.fstat(stream.fileno()).st_mode)
    except (OSError, ValueError, AttributeError):
        return False


def run_queries(index: Index, stream: TextIO, name: str, request: Request, printer: AnswerPrinter) -> int:
    """Answer every query of ``stream`` in order; a pipe gets each answer before its next line is read."""
    group = QUERY_GROUP if is_regular_file(stream) else 1
    bad_lines = 0
    pending: list[QueryLine] = []
    try:
        for line in read_queries(stream, name):
            if line.error is None:
                pending.append(line)
                if len(pending) >= group:
                    answer_group(index, pending, request, printer)
                    pending = []
                continue
            answer_group(index, pending, request, printer)  # keep answers in input order
            pending = []
            warn(line.error)
            printer.error(line.error, line.qid)
            bad_lines += 1
        answer_group(index, pending, request, printer)
    except UnicodeDecodeError as exc:
        warn(f"{name}: not UTF-8 text ({exc.reason})")
        return EXIT_USAGE
    return EXIT_USAGE if bad_lines else EXIT_OK


def answer_group(index: Index, lines: list[QueryLine], request: Request, printer: AnswerPrinter) -> None:
    if not lines:
        return
    results = index.search_many([line.text for line in lines], request.top_k, **request.options)
    for line, hits in zip(lines, results):
        printer.answer(hits, query=line.text, qid=line.qid)


# -- the interactive prompt -----------------------------------------------------------------


def run_prompt(index: Index, request: Request, printer: AnswerPrinter) -> int:
    """Read queries at a prompt until Ctrl-D, with the model and the index kept loaded."""
    index.load()  # the snapshot and the model, before the first prompt
    history = start_history()
    stderr.print(
        f"{len(index)} pages indexed with {index.model.name}. Type a query; Ctrl-D quits.",
        style="dim",
        highlight=False,
    )
    global ended_at_prompt
    try:
        while True:
            text = read_prompt_line()
            if text is None:
                ended_at_prompt = True
                return EXIT_OK
            if not text:
                continue
            started = time.perf_counter()
            try:
                hits = index.search(text, k=request.top_k, **request.options)
            except KeyboardInterrupt:
                warn("interrupted")
                continue
            printer.answer(hits, query=text)
            elapsed = (time.perf_counter() - started) * 1000
            stderr.print(f"{len(hits)} results in {elapsed:.0f} ms", style="dim", highlight=False)
    finally:
        save_history(history)


def read_prompt_line() -> str | None:
    """The next query typed at the prompt; None at end of input (Ctrl-D). Ctrl-C clears the line."""
    # The prompt belongs to the terminal: when stdout is redirected it goes to stderr instead.
    to_stdout = sys.stdout.isatty()
    while True:
        try:
            if not to_stdout:
                sys.stderr.write(PROMPT)
                sys.stderr.flush()
            return input(PROMPT if to_stdout else "").strip()
        except EOFError:
            sys.stderr.write("\n")
            return None
        except KeyboardInterrupt:
            sys.stderr.write("\n")


def history_path() -> Path:
    state_home = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(state_home) / "smart" / "search_history"


def start_history() -> Path | None:
    """Turn on line editing and the saved history; None where readline is unavailable."""
    try:
        import readline
    except ImportError:
        return None
    path = history_path()
    readline.set_history_length(HISTORY_LENGTH)
    try:
        readline.read_history_file(path)
    except OSError:
        pass  # no history yet
    return path


def save_history(path: Path | None) -> None:
    if path is None:
        return
    import readline

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        readline.write_history_file(path)
    except OSError as exc:
        warn(f"cannot save the query history to {path}: {exc.strerror or exc}")
