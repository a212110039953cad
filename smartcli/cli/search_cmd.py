"""`smart search`: one query, many (--queries, streamed from a pipe), a prompt, a picture (--image) or --like."""

from __future__ import annotations

import json
import os
import re
import stat
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import typer

from smartcli import defaults
from smartcli.cli.errors import EXIT_OK, EXIT_USAGE, describe, exit_code
from smartcli.cli.options import CandidatesOption, CollectionOption, DeviceOption, ExhaustiveOption, QdrantOption, StoreOption, complete
from smartcli.cli.present import AnswerPrinter, stderr, warn

if TYPE_CHECKING:  # imported lazily at run time: argument errors must not pay for numpy
    from smartcli import Index, SearchOptions

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


def search(
    query: str | None = typer.Argument(
        None, help="The query text. Leave it out on a terminal for an interactive prompt.", show_default=False
    ),
    queries: str | None = typer.Option(
        None,
        "--queries",
        "-q",
        help='Run many queries from FILE (\'-\' for stdin): one per line, plain text or JSON {"qid", "query"}. '
        "Prints JSON lines; from a pipe each line is answered as soon as it arrives.",
    ),
    like: str | None = typer.Option(
        None,
        "--like",
        metavar="PATH[:PAGE]",
        help="More like this: rank pages by similarity to an indexed page (its stored vectors, no re-encoding).",
    ),
    store: Path | None = StoreOption,
    mode: str = typer.Option(
        "smart",
        "--mode",
        help="smart (anchor + late), pooled (anchor only) or late (MaxSim only, over every page: no anchor shortlist).",
        autocompletion=complete(*MODES),
    ),
    lambda_anchor: float | None = typer.Option(
        None,
        "--lambda-anchor",
        help=f"Weight of the pooled cosine. Default: the store's, if `smart tune` chose one, else {defaults.LAMBDA_ANCHOR}.",
        show_default=False,
    ),
    lambda_late: float | None = typer.Option(
        None,
        "--lambda-late",
        help=f"Weight of the MaxSim term. Default: the store's, if `smart tune` chose one, else {defaults.LAMBDA_LATE}.",
        show_default=False,
    ),
    top_k: int = typer.Option(defaults.TOP_K, "--top-k", "-k", min=1, help="Results per query."),
    json_output: bool = typer.Option(False, "--json", help="One JSON object per query per line on stdout."),
    files_only: bool = typer.Option(False, "--files-only", "-l", help="Only PATH:PAGE (PATH for an image) per result, one per line."),
    explain: bool = typer.Option(False, "--explain", help="Show, per query token, the page word it matched and the similarity."),
    path_prefix: list[str] = typer.Option(
        [], "--path-prefix", metavar="PREFIX", help="Only results whose path starts with PREFIX (repeatable).", show_default=False
    ),
    glob: list[str] = typer.Option(
        [],
        "--glob",
        metavar="PATTERN",
        help="Only results matching PATTERN: '*.pdf' matches file names, 'manuals/*' paths (repeatable).",
        show_default=False,
    ),
    kind: str | None = typer.Option(
        None, "--kind", metavar="pdf|image", help="Only results of this kind.", show_default=False, autocompletion=complete(*KINDS)
    ),
    min_score: float | None = typer.Option(
        None, "--min-score", help="Only results scoring at least this (in the --mode's scale).", show_default=False
    ),
    chunk_size: int | None = typer.Option(
        None,
        "--chunk-size",
        min=1,
        help=f"Items scored per chunk. Default: automatic (about {defaults.CHUNK_TOKENS // 1000}k token states per chunk).",
        show_default=False,
    ),
    device: str = DeviceOption,
    image: Path | None = typer.Option(
        None, "--image", help="Search with the picture in PATH instead of text (stores built with an image model).", show_default=False
    ),
    candidates: int = CandidatesOption,
    exhaustive: bool = ExhaustiveOption,
    qdrant: str | None = QdrantOption,
    collection: str = CollectionOption,
) -> None:
    """Search the index with plain-language QUERY, many --queries, a picture (--image) or --like an indexed page.
    With --qdrant, search that Qdrant collection instead of the local store (same scores and results)."""
    interactive = query is None and queries is None and like is None and image is None
    problem = usage_problem(query, queries, like, image, interactive, json_output, files_only, explain, kind, mode)
    if problem:
        warn(problem)
        raise typer.Exit(EXIT_USAGE)
    try:
        like_target = parse_like(like) if like is not None else None
    except ValueError as exc:
        warn(str(exc))
        raise typer.Exit(EXIT_USAGE) from None
    form = "json" if json_output else "files" if files_only else "json" if queries else "table"
    stream = None
    if queries is not None:
        try:
            stream = open_queries(queries)  # before the model loads: a wrong name fails at once
        except OSError as exc:
            warn(f"{queries}: {exc.strerror.lower() if exc.strerror else exc}")
            raise typer.Exit(EXIT_USAGE) from None
    if interactive:
        warn("loading the index and the model…")
    from smartcli import Index, QdrantIndex, Scope, SearchOptions, SmartError

    shortlist = None if exhaustive else candidates
    try:
        options = SearchOptions(
            k=top_k,
            mode=mode,
            lambda_anchor=lambda_anchor,
            lambda_late=lambda_late,
            min_score=min_score,
            scope=Scope(path_prefixes=tuple(absolute_prefix(p) for p in path_prefix), globs=tuple(glob), kinds=(kind,) if kind else ()),
        )
        printer = AnswerPrinter(form, explain=explain, show_late=shows_late(options), framed=queries is not None)
        if qdrant:
            index = QdrantIndex.open(qdrant, collection, device=device, candidates=shortlist)
        else:
            # A process that answers many queries keeps token states in memory between them.
            index = Index.open(store, device=device, chunk_size=chunk_size, candidates=shortlist, warm=interactive or stream is not None)
        if like_target is not None:
            printer.answer(index.like(*like_target, options=options), like=index.item(*like_target))
        elif image is not None:
            printer.answer(index.search_image(image, options=options), image=image)
        elif stream is not None:
            with stream:
                raise typer.Exit(run_queries(index, stream, "stdin" if queries == "-" else queries, options, printer))
        elif interactive:
            raise typer.Exit(run_prompt(index, options, printer))
        else:
            printer.answer(index.search(query, options=options), query=query)
    except SmartError as exc:
        warn(describe(exc))
        raise typer.Exit(exit_code(exc)) from None
    raise typer.Exit(EXIT_OK)


def shows_late(options: SearchOptions) -> bool:
    return options.mode == "late" or (options.mode == "smart" and options.lambda_late != 0)


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
            yield QueryLine(number, qid, None, f'{name}:{number}: not a JSON object with a "query" field')
            continue
        text = obj["query"]
        if not isinstance(text, str) or not text.strip():
            yield QueryLine(number, qid, None, f"{name}:{number}: the query is empty or not a string")
            continue
        if _SURROGATES.search(text):
            yield QueryLine(
                number, qid, None, f"{name}:{number}: the query holds an unpaired surrogate (\\ud800-\\udfff), not Unicode text"
            )
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


def open_queries(source: str) -> TextIO:
    return sys.stdin if source == "-" else open(source, encoding="utf-8")


def is_regular_file(stream: TextIO) -> bool:
    try:
        return stat.S_ISREG(os.fstat(stream.fileno()).st_mode)
    except (OSError, ValueError, AttributeError):
        return False


def run_queries(index: Index, stream: TextIO, name: str, options: SearchOptions, printer: AnswerPrinter) -> int:
    """Answer every query of ``stream`` in order; a pipe gets each answer before its next line is read."""
    group = QUERY_GROUP if is_regular_file(stream) else 1
    bad_lines = 0
    pending: list[QueryLine] = []
    try:
        for line in read_queries(stream, name):
            if line.error is None:
                pending.append(line)
                if len(pending) >= group:
                    bad_lines += answer_group(index, pending, options, printer, name)
                    pending = []
                continue
            bad_lines += answer_group(index, pending, options, printer, name)  # keep answers in input order
            pending = []
            bad_line(printer, line.error, line.qid)
            bad_lines += 1
        bad_lines += answer_group(index, pending, options, printer, name)
    except UnicodeDecodeError as exc:
        warn(f"{name}: not UTF-8 text ({exc.reason})")
        return EXIT_USAGE
    return EXIT_USAGE if bad_lines else EXIT_OK


def answer_group(index: Index, lines: list[QueryLine], options: SearchOptions, printer: AnswerPrinter, name: str) -> int:
    """Answer ``lines`` in order; a query that cannot be searched (no usable characters, no
    word the model knows) gets its error object and the others are answered. Returns how many
    could not be."""
    from smartcli import QueryError

    if not lines:
        return 0
    try:
        results = index.search_many([line.text for line in lines], options=options)
    except QueryError as exc:
        if len(lines) == 1:
            bad_line(printer, f"{name}:{lines[0].number}: {exc}", lines[0].qid)
            return 1
        # Rare: answer the group's queries one by one so that only the bad ones get errors.
        return sum(answer_group(index, [line], options, printer, name) for line in lines)
    for line, hits in zip(lines, results):
        printer.answer(hits, query=line.text, qid=line.qid)
    return 0


def bad_line(printer: AnswerPrinter, message: str, qid) -> None:
    warn(message)
    printer.error(message, qid)


# -- the interactive prompt -----------------------------------------------------------------


def run_prompt(index: Index, options: SearchOptions, printer: AnswerPrinter) -> int:
    """Read queries at a prompt until Ctrl-D, with the model and the index kept loaded (a query
    that cannot be searched gets its one line, and the prompt goes on)."""
    from smartcli import QueryError

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
                hits = index.search(text, options=options)
            except KeyboardInterrupt:
                warn("interrupted")
                continue
            except QueryError as exc:
                warn(describe(exc))
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
