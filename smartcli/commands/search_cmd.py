"""`smart search`: one query as a table, or many as JSON lines."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Iterator

from smartcli import cli
from smartcli.output import print_json_line, results_table, stdout, warn

QUERY_GROUP = 32  # queries scored together, sharing each read of the token states


def run_search(
    query: str | None,
    queries_file: str | None,
    store_path: Path,
    mode: str,
    lambda_anchor: float | None,
    lambda_late: float | None,
    top_k: int,
    json_output: bool,
    chunk_size: int | None,
    device: str,
    image: Path | None = None,
) -> int:
    from smartcli.scoring import DEFAULT_LAMBDA_ANCHOR, DEFAULT_LAMBDA_LATE, Weights

    if image is not None and (query is not None or queries_file is not None):
        warn("give one of QUERY, --queries FILE or --image PATH")
        return cli.EXIT_USAGE
    if query is None and queries_file is None and image is None:
        warn("give a QUERY, or --queries FILE ('-' for stdin)")
        return cli.EXIT_USAGE
    if query is not None and not query.strip():
        warn("the query is empty")
        return cli.EXIT_USAGE
    try:
        weights = Weights.for_mode(
            mode,
            DEFAULT_LAMBDA_ANCHOR if lambda_anchor is None else lambda_anchor,
            DEFAULT_LAMBDA_LATE if lambda_late is None else lambda_late,
        )
    except ValueError as exc:
        warn(str(exc))
        return cli.EXIT_USAGE
    if image is not None:
        from smartcli.commands.image_query import check_image_query

        if not check_image_query(image):  # before the model is loaded
            return cli.EXIT_USAGE
    searcher, code = open_searcher(store_path, device, chunk_size)
    if searcher is None:
        return code
    if image is not None:
        from smartcli.commands.image_query import run_image_query

        return run_image_query(searcher, image, weights, top_k, json_output)
    if queries_file is not None:
        return run_batch(searcher, queries_file, weights, top_k)
    hits = searcher.search([query], weights, top_k)[0]
    if json_output:
        print_json_line({"query": query, "qid": None, "results": [h.as_json() for h in hits]})
    elif hits:
        stdout.print(results_table(query, hits, show_late=weights.needs_tokens))
    else:
        warn("no results: the index holds no encoded pages")
    return cli.EXIT_OK


def open_searcher(store_path: Path, device: str, chunk_size: int | None):
    """Open the store and its model; return (searcher, 0) or (None, exit code)."""
    from smartcli.encoders import ModelLoadError, load_encoder
    from smartcli.search import Searcher
    from smartcli.store import Store, StoreError, StoreMissing, check_same_model

    try:
        store = Store.open(store_path)
        info = store.model
        if info is None:
            raise StoreMissing(f"the index at {store_path} is empty (run `smart index PATH` first)")
        encoder = load_encoder(info.spec, device, info.extra)  # pixel models: the store's render settings
        check_same_model(info, encoder.info, store_path)
        return Searcher(store, encoder, device=device, chunk_size=chunk_size), cli.EXIT_OK
    except StoreError as exc:
        warn(str(exc))
        return None, cli._store_error_code(exc)
    except ModelLoadError as exc:
        warn(str(exc))
        return None, cli.EXIT_ERROR


def read_queries(source: str) -> Iterator[tuple[str | None, str]]:
    """(qid, query) pairs from a file or stdin; blank lines are ignored."""
    stream = sys.stdin if source == "-" else open(source, encoding="utf-8")
    with stream:
        for number, line in enumerate(stream, 1):
            line = line.strip()
            if not line:
                continue
            if line.startswith("{"):
                try:
                    obj = json.loads(line)
                    yield (None if obj.get("qid") is None else str(obj["qid"])), str(obj["query"])
                    continue
                except (ValueError, KeyError, TypeError):
                    raise ValueError(f"{source}:{number}: not a JSON object with a \"query\" field") from None
            yield None, line


def run_batch(searcher, source: str, weights, top_k: int) -> int:
    try:
        pending: list[tuple[str | None, str]] = []
        for qid, text in read_queries(source):
            pending.append((qid, text))
            if len(pending) >= QUERY_GROUP:
                _answer(searcher, pending, weights, top_k)
                pending = []
        _answer(searcher, pending, weights, top_k)
    except (OSError, ValueError) as exc:
        warn(str(exc))
        return cli.EXIT_USAGE
    return cli.EXIT_OK


def _answer(searcher, pending, weights, top_k: int) -> None:
    if not pending:
        return
    results = searcher.search([text for _, text in pending], weights, top_k)
    for (qid, text), hits in zip(pending, results):
        print_json_line({"query": text, "qid": qid, "results": [h.as_json() for h in hits]})
