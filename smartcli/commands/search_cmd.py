"""`smart search`: one query, many (--queries, streamed from a pipe), a prompt, a picture (--image) or --like."""

from __future__ import annotations

import json
import os
import stat
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, TextIO

from smartcli import cli
from smartcli.output import AnswerPrinter, stderr, warn

if TYPE_CHECKING:  # imported lazily at run time: argument errors must not pay for numpy
    from smartcli.scoring import Weights
    from smartcli.search import Scope

# Queries read from a regular file are scored this many at a time, sharing each read of the
# token states. From a pipe or a terminal each query is answered as soon as its line arrives.
QUERY_GROUP = 32
KINDS = ("pdf", "image")
PROMPT = "search> "
HISTORY_LENGTH = 1000
# A process that answers many queries (a prompt, --queries) keeps up to this much of the token
# states in memory (as stored), so that only the first query reads them from disk.
WARM_CACHE_BYTES = 1 << 30


@dataclass(frozen=True)
class Request:
    """What every query of one run shares."""

    weights: Weights
    top_k: int
    scope: Scope
    min_score: float | None


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
) -> int:
    interactive = query is None and queries_file is None and like is None and image is None
    problem = usage_problem(query, queries_file, like, image, interactive, json_output, files_only, explain, kind)
    if problem:
        warn(problem)
        return cli.EXIT_USAGE
    try:
        request = build_request(mode, lambda_anchor, lambda_late, top_k, path_prefixes, globs, kind, min_score)
        like_target = parse_like(like) if like is not None else None
    except ValueError as exc:
        warn(str(exc))
        return cli.EXIT_USAGE
    form = "json" if json_output else "files" if files_only else "json" if queries_file else "table"
    printer = AnswerPrinter(form, explain=explain, show_late=request.weights.needs_tokens, framed=queries_file is not None)
    if image is not None:
        from smartcli.commands.image_query import check_image_query

        if not check_image_query(image):  # before the model is loaded
            return cli.EXIT_USAGE
    stream = None
    if queries_file is not None:
        try:
            stream = open_queries(queries_file)  # before the model loads: a wrong name fails at once
        except OSError as exc:
            warn(f"{queries_file}: {exc.strerror.lower() if exc.strerror else exc}")
            return cli.EXIT_USAGE
    if interactive:
        warn("loading the index and the model…")
    # A process that answers many queries keeps token states in memory between them.
    cache_bytes = WARM_CACHE_BYTES if interactive or stream is not None else 0
    # "More like this" starts from stored vectors: no model to load.
    searcher, code = open_searcher(
        cli._store_path(store), device, chunk_size, with_encoder=like is None, cache_bytes=cache_bytes, shortlist=shortlist
    )
    if searcher is None:
        return code
    from smartcli.store import StoreError

    try:
        if like_target is not None:
            return answer_like(searcher, like_target, request, printer)
        if image is not None:
            return answer_image(searcher, image, request, printer)
        if stream is not None:
            with stream:
                return run_queries(searcher, stream, "stdin" if queries_file == "-" else queries_file, request, printer)
        if interactive:
            return run_prompt(searcher, request, printer)
        hits = searcher.search([query], request.weights, request.top_k, request.scope, request.min_score)[0]
        printer.answer(hits, query=query)
        return cli.EXIT_OK
    except StoreError as exc:  # a segment that became unreadable while searching
        warn(str(exc))
        return cli._store_error_code(exc)


def usage_problem(query, queries_file, like, image, interactive, json_output, files_only, explain, kind) -> str | None:
    """Why the arguments cannot work together, or None. Checked before anything heavy is loaded."""
    if sum(x is not None for x in (query, queries_file, like, image)) > 1:
        return "give only one of QUERY, --queries FILE, --image PATH and --like PATH[:PAGE]"
    if interactive and not sys.stdin.isatty():
        return "give a QUERY, --queries FILE ('-' for stdin), --image PATH or --like PATH[:PAGE] (with none, a terminal gets a prompt)"
    if query is not None and not query.strip():
        return "the query is empty"
    if json_output and files_only:
        return "--json and --files-only exclude each other"
    if explain and files_only:
        return "--explain shows why pages matched; it cannot be combined with --files-only"
    if kind is not None and kind not in KINDS:
        return f"--kind must be one of {', '.join(KINDS)}, not {kind!r}"
    return None


def build_request(mode, lambda_anchor, lambda_late, top_k, path_prefixes, globs, kind, min_score) -> Request:
    from smartcli.scoring import DEFAULT_LAMBDA_ANCHOR, DEFAULT_LAMBDA_LATE, Weights
    from smartcli.search import Scope

    weights = Weights.for_mode(
        mode,
        DEFAULT_LAMBDA_ANCHOR if lambda_anchor is None else lambda_anchor,
        DEFAULT_LAMBDA_LATE if lambda_late is None else lambda_late,
    )
    scope = Scope(
        path_prefixes=tuple(absolute_prefix(p) for p in path_prefixes),
        globs=tuple(globs),
        kinds=(kind,) if kind else (),
    )
    return Request(weights, top_k, scope, min_score)


def absolute_prefix(prefix: str) -> str:
    """An absolute path prefix; a trailing slash is kept, so that ``docs/`` does not match ``docs2``."""
    absolute = os.path.abspath(os.path.expanduser(prefix))
    return absolute + os.sep if prefix.endswith(os.sep) and not absolute.endswith(os.sep) else absolute


def parse_like(value: str) -> tuple[str, int | None]:
    """``PATH`` or ``PATH:PAGE`` (a path that itself ends in ``:digits`` wins when it exists)."""
    path, sep, page = value.rpartition(":")
    if sep and page.isdigit() and path and not os.path.exists(value):
        if int(page) < 1:
            raise ValueError(f"--like {value}: pages are numbered from 1")
        return os.path.abspath(os.path.expanduser(path)), int(page)
    return os.path.abspath(os.path.expanduser(value)), None


def open_searcher(
    store_path: Path, device: str, chunk_size: int | None, with_encoder: bool = True, cache_bytes: int = 0, shortlist: int | None = None
):
    """Open the store (and its model); return (searcher, 0) or (None, exit code)."""
    from smartcli.encoders import ModelLoadError, load_encoder
    from smartcli.search import Searcher
    from smartcli.store import Store, StoreError, StoreMissing, check_same_model

    try:
        store = Store.open(store_path)
        info = store.model
        if info is None:
            raise StoreMissing(f"the index at {store_path} is empty (run `smart index PATH` first)")
        encoder = None
        if with_encoder:
            encoder = load_encoder(info.spec, device, info.extra)  # pixel models: the store's render settings
            check_same_model(info, encoder.info, store_path)
        searcher = Searcher(store, encoder, device=device, chunk_size=chunk_size, cache_bytes=cache_bytes, shortlist=shortlist)
        return searcher, cli.EXIT_OK
    except StoreError as exc:
        warn(str(exc))
        return None, cli._store_error_code(exc)
    except ModelLoadError as exc:
        warn(str(exc))
        return None, cli.EXIT_ERROR


def answer_like(searcher, target: tuple[str, int | None], request: Request, printer: AnswerPrinter) -> int:
    try:
        encoded, source = searcher.stored_query(*target)
    except LookupError as exc:
        warn(str(exc))
        return cli.EXIT_USAGE
    scope = replace(request.scope, exclude=request.scope.exclude | {(source.path, source.page)})
    hits = searcher.search_encoded([encoded], request.weights, request.top_k, texts=[source.text], scope=scope, min_score=request.min_score)[0]
    printer.answer(hits, like=source)
    return cli.EXIT_OK


def answer_image(searcher, image: Path, request: Request, printer: AnswerPrinter) -> int:
    from smartcli.commands.image_query import encode_image_query

    encoded = encode_image_query(searcher, image)
    if encoded is None:
        return cli.EXIT_USAGE
    hits = searcher.search_encoded([encoded], request.weights, request.top_k, scope=request.scope, min_score=request.min_score)[0]
    printer.answer(hits, image=image)
    return cli.EXIT_OK


# -- many queries: a file, or a stream another program keeps open ------------------------


@dataclass
class QueryLine:
    number: int
    qid: str | None
    text: str | None
    error: str | None = None


def read_queries(stream: TextIO, name: str) -> Iterator[QueryLine]:
    """Queries from ``stream`` as their lines arrive: plain text or ``{"qid": ..., "query": ...}``.

    Blank lines are skipped. A line that is not a usable query comes back with ``error`` set.
    """
    for number, line in enumerate(iter(stream.readline, ""), 1):
        line = line.strip()
        if not line:
            continue
        if not line.startswith("{"):
            yield QueryLine(number, None, line)
            continue
        try:
            obj = json.loads(line)
            qid = None if obj.get("qid") is None else str(obj["qid"])
            text = obj["query"]
        except (ValueError, KeyError, TypeError, AttributeError):
            yield QueryLine(number, None, None, f"{name}:{number}: not a JSON object with a \"query\" field")
            continue
        if not isinstance(text, str) or not text.strip():
            yield QueryLine(number, qid, None, f"{name}:{number}: the query is empty or not a string")
            continue
        yield QueryLine(number, qid, text)


def open_queries(source: str) -> TextIO:
    return sys.stdin if source == "-" else open(source, encoding="utf-8")


def is_regular_file(stream: TextIO) -> bool:
    try:
        return stat.S_ISREG(os.fstat(stream.fileno()).st_mode)
    except (OSError, ValueError, AttributeError):
        return False


def run_queries(searcher, stream: TextIO, name: str, request: Request, printer: AnswerPrinter) -> int:
    """Answer every query of ``stream`` in order; a pipe gets each answer before its next line is read."""
    from smartcli.store import StoreError

    group = QUERY_GROUP if is_regular_file(stream) else 1
    bad_lines = 0
    pending: list[QueryLine] = []
    try:
        for line in read_queries(stream, name):
            if line.error is None:
                pending.append(line)
                if len(pending) >= group:
                    answer_group(searcher, pending, request, printer)
                    pending = []
                continue
            answer_group(searcher, pending, request, printer)  # keep answers in input order
            pending = []
            warn(line.error)
            printer.error(line.error, line.qid)
            bad_lines += 1
        answer_group(searcher, pending, request, printer)
    except UnicodeDecodeError as exc:
        warn(f"{name}: not UTF-8 text ({exc.reason})")
        return cli.EXIT_USAGE
    except StoreError as exc:
        warn(str(exc))
        return cli._store_error_code(exc)
    return cli.EXIT_USAGE if bad_lines else cli.EXIT_OK


def answer_group(searcher, lines: list[QueryLine], request: Request, printer: AnswerPrinter) -> None:
    if not lines:
        return
    results = search_current(searcher, [line.text for line in lines], request)
    for line, hits in zip(lines, results):
        printer.answer(hits, query=line.text, qid=line.qid)


def search_current(searcher, texts: list[str], request: Request):
    """Search the index as it is now: a long-lived process follows `smart index` runs, and when
    a compaction has deleted segments its snapshot still read, it takes a new one and retries."""
    from smartcli.store import StoreError

    refresh(searcher)
    try:
        return searcher.search(texts, request.weights, request.top_k, request.scope, request.min_score)
    except StoreError:
        refresh(searcher, force=True)
        return searcher.search(texts, request.weights, request.top_k, request.scope, request.min_score)


def refresh(searcher, force: bool = False) -> None:
    from smartcli.store import check_same_model

    if searcher.refresh(force) and searcher.encoder is not None:
        check_same_model(searcher.store.model, searcher.encoder.info, searcher.store.root)


# -- the interactive prompt -----------------------------------------------------------------


def run_prompt(searcher, request: Request, printer: AnswerPrinter) -> int:
    """Read queries at a prompt until Ctrl-D, with the model and the index kept loaded."""
    from smartcli.store import StoreError

    history = start_history()
    stderr.print(
        f"{len(searcher)} pages indexed with {searcher.store.model.name}. Type a query; Ctrl-D quits.",
        style="dim",
        highlight=False,
    )
    try:
        while True:
            text = read_prompt_line()
            if text is None:
                return cli.EXIT_OK
            if not text:
                continue
            started = time.perf_counter()
            try:
                hits = search_current(searcher, [text], request)[0]
            except KeyboardInterrupt:
                warn("interrupted")
                continue
            except StoreError as exc:
                warn(str(exc))
                return cli._store_error_code(exc)
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
