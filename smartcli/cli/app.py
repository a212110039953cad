"""The `smart` command line: Typer parses, a command module calls the front door (``smartcli.Index``)
and presents what it returns. Heavy imports (numpy, torch, transformers) happen inside commands."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from smartcli import __version__, defaults
from smartcli.cli.errors import EXIT_ERROR
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

StoreOption = typer.Option(
    None,
    "--store",
    envvar="SMART_STORE",
    help="Store directory. Default: $SMART_STORE, else $XDG_DATA_HOME/smart/store (~/.local/share/smart/store).",
    show_default=False,
    readable=False,  # a store this user may not read is the engine's to say (exit 9), not a usage error
)
DeviceOption = typer.Option("auto", "--device", help="auto (CUDA when available), cpu or cuda.")
QdrantOption = typer.Option(
    None, "--qdrant", envvar="SMART_QDRANT_URL", metavar="URL|PATH",
    help="A Qdrant server or cluster (http(s)://host:6333), or a folder for Qdrant's embedded mode. Default: $SMART_QDRANT_URL. "
    "The API key comes from $SMART_QDRANT_API_KEY.", show_default=False,
)
CollectionOption = typer.Option(defaults.QDRANT_COLLECTION, "--collection", help="The Qdrant collection.")
QdrantFormatOption = typer.Option(
    defaults.QDRANT_TOKEN_FORMAT, "--qdrant-format", help="A new collection's token states: float16, float32, scalar (int8 quantization) or binary (quantization)."
)
ShardsOption = typer.Option(None, "--shards", min=1, help="A new collection's shard count. Default: Qdrant's (one per node).", show_default=False)
ReplicasOption = typer.Option(None, "--replicas", min=1, help="A new collection's replication factor. Default: Qdrant's (1).", show_default=False)
OnDiskOption = typer.Option(False, "--on-disk", help="A new collection keeps its vectors on disk (memory-mapped), for collections larger than RAM.")


def _version_callback(value: bool) -> None:
    if value:
        print(f"smart {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version_callback, is_eager=True, help="Print the version and exit."),
) -> None:
    pass


@app.command()
def index(
    paths: Optional[list[Path]] = typer.Argument(
        None, help="Files or folders to index (folders are walked recursively). Default: the paths the store already covers.", show_default=False
    ),
    store: Optional[Path] = StoreOption,
    model: Optional[str] = typer.Option(
        None, "--model", help="Hugging Face id or local folder of the embedding model. Default: the store's model, else the packaged all-MiniLM-L6-v2."
    ),
    device: str = DeviceOption,
    batch_pages: int = typer.Option(defaults.BATCH_PAGES, "--batch-pages", min=1, help="Pages committed to the store per batch (an interrupted run keeps finished batches)."),
    batch_size: Optional[int] = typer.Option(
        None, "--batch-size", min=1, help=f"Text windows or pictures per forward pass. Default: {defaults.TEXT_BATCH_SIZE}; 8 for Qwen-VL-based models.", show_default=False
    ),
    dpi: Optional[float] = typer.Option(
        None, "--dpi", min=1, help="Image models: resolution PDF pages are rendered at. Default: what fills the model's pixel budget.", show_default=False
    ),
    max_pixels: Optional[int] = typer.Option(
        None, "--max-pixels", min=1, help="Qwen-VL and SigLIP 2 NaFlex models: pixel budget per page or image (sets token count and size). Default: the model's.", show_default=False
    ),
    token_dtype: str = typer.Option(defaults.TOKEN_DTYPE, "--token-dtype", help="Storage of token states for a new store: binary (1 bit per dimension, ~31 KB per text page with the default model), int8 (per-token scale) or float16."),
    rebuild: bool = typer.Option(False, "--rebuild", help="Index from scratch into a new catalog built beside the old one and swapped in at the end (also the way out of a damaged store)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print what would be added, updated, moved and removed, and change nothing."),
    json_output: bool = typer.Option(False, "--json", help="Print the end-of-run summary as one JSON object."),
    wait: bool = typer.Option(False, "--wait", help="If another `smart index` is writing to the store, wait for it instead of exiting with code 5."),
    ocr: str = typer.Option(
        defaults.OCR_MODE, "--ocr", help="OCR for text models: auto (images, and pages whose text layer is empty or nearly so), always (every page) or never."
    ),
    ocr_lang: str = typer.Option(defaults.OCR_LANGUAGE, "--ocr-lang", help="Tesseract language(s) of the OCR, joined by '+': eng, deu, eng+fra."),
    ocr_workers: int = typer.Option(defaults.OCR_WORKERS, "--ocr-workers", min=0, help="OCR worker processes. Default: one per CPU.", show_default=False),
    qdrant: Optional[str] = QdrantOption,
    collection: str = CollectionOption,
    qdrant_format: str = QdrantFormatOption,
    shards: Optional[int] = ShardsOption,
    replicas: Optional[int] = ReplicasOption,
    on_disk: bool = OnDiskOption,
    read_timeout: float = typer.Option(
        defaults.READ_TIMEOUT_SECONDS, "--read-timeout", min=0.1, help="Seconds one file's text may take to read; a file past it is skipped, and not read again until it changes."
    ),
) -> None:
    """Index PDFs and images under PATHS (new and changed files encoded, moved and copied ones recognized, gone ones removed).
    With --qdrant, the store is then mirrored into the collection (only the difference is sent)."""
    from smartcli.cli.index_cmd import run_index
    from smartcli.cli.sync_cmd import sync_options

    raise typer.Exit(
        run_index(
            paths=paths,
            store_path=store,
            model=model,
            device=device,
            batch_pages=batch_pages,
            batch_size=batch_size,
            token_dtype=token_dtype,
            dpi=dpi,
            max_pixels=max_pixels,
            rebuild=rebuild,
            dry_run=dry_run,
            json_output=json_output,
            wait=wait,
            ocr=ocr,
            ocr_lang=ocr_lang,
            ocr_workers=ocr_workers,
            qdrant=sync_options(qdrant, collection, token_format=qdrant_format, shards=shards, replicas=replicas, on_disk=on_disk) if qdrant else None,
            read_timeout=read_timeout,
        )
    )


def _complete(*choices: str):
    """A shell-completion function offering ``choices``."""
    return lambda incomplete: [choice for choice in choices if choice.startswith(incomplete)]


@app.command()
def search(
    query: Optional[str] = typer.Argument(None, help="The query text. Leave it out on a terminal for an interactive prompt.", show_default=False),
    queries: Optional[str] = typer.Option(
        None,
        "--queries",
        "-q",
        help="Run many queries from FILE ('-' for stdin): one per line, plain text or JSON {\"qid\", \"query\"}. "
        "Prints JSON lines; from a pipe each line is answered as soon as it arrives.",
    ),
    like: Optional[str] = typer.Option(
        None, "--like", metavar="PATH[:PAGE]", help="More like this: rank pages by similarity to an indexed page (its stored vectors, no re-encoding)."
    ),
    store: Optional[Path] = StoreOption,
    mode: str = typer.Option(
        "smart", "--mode", help="smart (anchor + late), pooled (anchor only) or late (MaxSim only, over every page: no anchor shortlist).", autocompletion=_complete("smart", "pooled", "late")
    ),
    lambda_anchor: Optional[float] = typer.Option(None, "--lambda-anchor", help=f"Weight of the pooled cosine. Default: the store's, if `smart tune` chose one, else {defaults.LAMBDA_ANCHOR}.", show_default=False),
    lambda_late: Optional[float] = typer.Option(None, "--lambda-late", help=f"Weight of the MaxSim term. Default: the store's, if `smart tune` chose one, else {defaults.LAMBDA_LATE}.", show_default=False),
    top_k: int = typer.Option(defaults.TOP_K, "--top-k", "-k", min=1, help="Results per query."),
    json_output: bool = typer.Option(False, "--json", help="One JSON object per query per line on stdout."),
    files_only: bool = typer.Option(False, "--files-only", "-l", help="Only PATH:PAGE (PATH for an image) per result, one per line."),
    explain: bool = typer.Option(False, "--explain", help="Show, per query token, the page word it matched and the similarity."),
    path_prefix: list[str] = typer.Option([], "--path-prefix", metavar="PREFIX", help="Only results whose path starts with PREFIX (repeatable).", show_default=False),
    glob: list[str] = typer.Option([], "--glob", metavar="PATTERN", help="Only results matching PATTERN: '*.pdf' matches file names, 'manuals/*' paths (repeatable).", show_default=False),
    kind: Optional[str] = typer.Option(
        None, "--kind", metavar="pdf|image", help="Only results of this kind.", show_default=False, autocompletion=_complete("pdf", "image")
    ),
    min_score: Optional[float] = typer.Option(None, "--min-score", help="Only results scoring at least this (in the --mode's scale).", show_default=False),
    chunk_size: Optional[int] = typer.Option(None, "--chunk-size", min=1, help=f"Items scored per chunk. Default: automatic (about {defaults.CHUNK_TOKENS // 1000}k token states per chunk).", show_default=False),
    device: str = DeviceOption,
    image: Optional[Path] = typer.Option(
        None, "--image", help="Search with the picture in PATH instead of text (stores built with an image model).", show_default=False
    ),
    candidates: int = typer.Option(
        defaults.CANDIDATES, "--candidates", min=1, help="Two-stage search: rank every page by its pooled vector, then score the top K with SMART (only their token states are read)."
    ),
    exhaustive: bool = typer.Option(False, "--exhaustive", help="Score every page with SMART (no first stage)."),
    qdrant: Optional[str] = QdrantOption,
    collection: str = CollectionOption,
) -> None:
    """Search the index with plain-language QUERY, many --queries, a picture (--image) or --like an indexed page.
    With --qdrant, search that Qdrant collection instead of the local store (same scores and results)."""
    from smartcli.cli.search_cmd import run_search

    raise typer.Exit(
        run_search(
            query=query,
            queries_file=queries,
            like=like,
            store=store,
            mode=mode,
            lambda_anchor=lambda_anchor,
            lambda_late=lambda_late,
            top_k=top_k,
            json_output=json_output,
            files_only=files_only,
            explain=explain,
            path_prefixes=path_prefix,
            globs=glob,
            kind=kind,
            min_score=min_score,
            chunk_size=chunk_size,
            device=device,
            image=image,
            shortlist=None if exhaustive else candidates,
            qdrant=(qdrant, collection) if qdrant else None,
        )
    )


@app.command()
def status(
    store: Optional[Path] = StoreOption,
    json_output: bool = typer.Option(False, "--json", help="Print the status as one JSON object."),
    unencoded: bool = typer.Option(False, "--unencoded", help="List the pages and images recorded without vectors, and why, instead."),
    verify: bool = typer.Option(False, "--verify", help="Also read every segment and page text and check them (identity, offsets, checksums); name what is damaged."),
) -> None:
    """Show what the store holds and how many indexed files changed on disk since."""
    from smartcli.cli.status_cmd import run_status, run_unencoded

    raise typer.Exit(run_unencoded(store, json_output) if unencoded else run_status(store, json_output, verify))


@app.command("eval")
def evaluate(
    queries: Path = typer.Option(..., "--queries", "-q", help="Judged queries, JSON lines: {\"qid\", \"query\", \"relevant\": [{\"file\", \"page\"}], \"kind\"?}. Files match by base name or by path.", show_default=False),
    store: Optional[Path] = StoreOption,
    lambda_anchor: Optional[float] = typer.Option(None, "--lambda-anchor", help=f"Weight of the pooled cosine for the smart row. Default: the store's (`smart tune`), else {defaults.LAMBDA_ANCHOR}.", show_default=False),
    lambda_late: Optional[float] = typer.Option(None, "--lambda-late", help=f"Weight of the MaxSim term for the smart row. Default: the store's (`smart tune`), else {defaults.LAMBDA_LATE}.", show_default=False),
    sweep: bool = typer.Option(False, "--sweep", help="Also score a grid of lambda_late values (lambda_anchor 1) and mark the best row."),
    per_query: bool = typer.Option(False, "--per-query", help="Also show each query's first relevant rank and scores (smart row)."),
    top_k: int = typer.Option(defaults.TOP_K, "--k", "-k", min=1, help="Cut-off rank of the metrics."),
    json_output: bool = typer.Option(False, "--json", help="Print the figures as one JSON object."),
    device: str = DeviceOption,
    candidates: int = typer.Option(
        defaults.CANDIDATES, "--candidates", min=1, help="Measure two-stage search with this shortlist, as `smart search` runs it."
    ),
    exhaustive: bool = typer.Option(False, "--exhaustive", help="Measure exhaustive search (every page scored with SMART)."),
) -> None:
    """Measure MRR@k, Recall@k and nDCG@k of pooled, late and smart search on judged queries (on the path `smart search` takes)."""
    from smartcli.cli.eval_cmd import run_eval

    raise typer.Exit(
        run_eval(queries, store, lambda_anchor, lambda_late, sweep, per_query, top_k, json_output, device, None if exhaustive else candidates)
    )


@app.command()
def compact(
    store: Optional[Path] = StoreOption,
    wait: bool = typer.Option(False, "--wait", help="If another writer holds the store, wait for it instead of exiting with code 5."),
    json_output: bool = typer.Option(False, "--json", help="Print the result as one JSON object."),
) -> None:
    """Reclaim the space of removed and replaced files by rewriting segments (`smart index` also does this past 25% dead rows)."""
    from smartcli.cli.compact_cmd import run_compact

    raise typer.Exit(run_compact(store, wait, json_output))


@app.command()
def serve(
    store: Optional[Path] = StoreOption,
    host: str = typer.Option(defaults.SERVE_HOST, "--host", help="Address to listen on. Anything but loopback needs a token (one is made up when --token is not given)."),
    port: int = typer.Option(defaults.SERVE_PORT, "--port", min=0, max=65535, help="Port to listen on (0: any free one)."),
    token: Optional[str] = typer.Option(None, "--token", envvar="SMART_SERVE_TOKEN", help="Secret every request must carry (?token=, or the cookie the page sets).", show_default=False),
    no_open: bool = typer.Option(False, "--no-open", help="Do not open the page in a browser."),
    device: str = DeviceOption,
) -> None:
    """A local web view: search, page thumbnails with the matched words boxed, each page large with its token matches."""
    from smartcli.cli.serve_cmd import run_serve

    raise typer.Exit(run_serve(store, host, port, token, not no_open, device))


@app.command()
def tune(
    store: Optional[Path] = StoreOption,
    pairs: Optional[Path] = typer.Option(
        None, "--pairs", help="Labelled pairs, JSON lines: {\"query\", \"file\", \"page\"} (files match by base name or by path, as in `smart eval`).", show_default=False
    ),
    no_outline: bool = typer.Option(False, "--no-outline", help="Learn from --pairs only, not from the PDFs' outlines."),
    heading_path: bool = typer.Option(False, "--heading-path", help="Mined queries carry their parent headings (\"Installing R > Linux\")."),
    body: bool = typer.Option(False, "--body", help="Also learn from pseudo-queries cut from the pages' own text (inverse cloze; see README)."),
    adapter: bool = typer.Option(False, "--adapter", help="Also train the query-side adapter (measured: it helps held-back outline headings, but cost the development set's written queries 0.035 nDCG@10; see README)."),
    init: str = typer.Option(defaults.TUNE_INIT, "--init", help="How the adapter's Linear starts: identity (zero) or pca (takes out the query token states' top principal directions; see README)."),
    keep: bool = typer.Option(False, "--keep", help="Keep what was learned even if the held-back pairs do not improve (collections too small to judge)."),
    reset: bool = typer.Option(False, "--reset", help="Back to the frozen model and the default weights."),
    wait: bool = typer.Option(False, "--wait", help="If another writer holds the store, wait for it instead of exiting with code 5."),
    json_output: bool = typer.Option(False, "--json", help="Print the summary as one JSON object."),
    device: str = DeviceOption,
) -> None:
    """Learn this store's fusion weights (and, with --adapter, a query-side adapter) from its PDFs' outlines or --pairs; kept only if held-back pairs improve."""
    from smartcli.cli.tune_cmd import run_tune

    raise typer.Exit(run_tune(store, pairs, not no_outline, heading_path, adapter, keep, reset, wait, json_output, device, body, init))


@app.command()
def sync(
    store: Optional[Path] = StoreOption,
    qdrant: Optional[str] = QdrantOption,
    collection: str = CollectionOption,
    qdrant_format: str = QdrantFormatOption,
    shards: Optional[int] = ShardsOption,
    replicas: Optional[int] = ReplicasOption,
    on_disk: bool = OnDiskOption,
    batch_points: int = typer.Option(defaults.QDRANT_BATCH_POINTS, "--batch-points", min=1, help="Points per upsert (each batch is recorded once Qdrant acknowledges it)."),
    max_tokens: Optional[int] = typer.Option(None, "--max-tokens", min=1, help="Token states per page in Qdrant; pages over it are pooled. Default: Qdrant's multivector limit.", show_default=False),
    timeout: Optional[float] = typer.Option(None, "--timeout", min=0.1, help=f"Seconds per request. Default: {defaults.QDRANT_TIMEOUT:g}.", show_default=False),
    wait: bool = typer.Option(False, "--wait", help="If another writer holds the store, wait for it instead of exiting with code 5."),
    json_output: bool = typer.Option(False, "--json", help="Print the result as one JSON object."),
) -> None:
    """Push an existing store to a Qdrant collection: upsert new and changed pages, delete this store's removed ones (resumable)."""
    from smartcli.cli.sync_cmd import run_sync, sync_options

    if not qdrant:
        from smartcli.cli.present import warn
        from smartcli.cli.errors import EXIT_USAGE

        warn("smart sync needs --qdrant URL|PATH (or $SMART_QDRANT_URL)")
        raise typer.Exit(EXIT_USAGE)
    options = sync_options(qdrant, collection, token_format=qdrant_format, shards=shards, replicas=replicas, on_disk=on_disk,
                           batch_points=batch_points, max_tokens=max_tokens, timeout=timeout)
    raise typer.Exit(run_sync(store, options, json_output, wait))


def _end_at_once_after_the_prompt(code) -> None:
    """After Ctrl-D at the search prompt nothing is left to write (the history is saved, the store
    was only read): end the process now rather than wait for the interpreter to tear down the
    model runtime and the warm token states."""
    import os

    search_cmd = sys.modules.get("smartcli.cli.search_cmd")
    if search_cmd is None or not search_cmd.ended_at_prompt:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code if isinstance(code, int) else 0)


def main() -> None:
    import os

    try:
        app()
    except SystemExit as exc:
        _end_at_once_after_the_prompt(exc.code)
        raise
    except KeyboardInterrupt:
        sys.stderr.write("smart: interrupted\n")
        sys.exit(130)
    except Exception as exc:  # the last line of defence: one line, never a traceback
        if os.environ.get("SMART_DEBUG"):
            raise
        from smartcli.cli.present import warn

        warn(f"unexpected error: {type(exc).__name__}: {exc} (set SMART_DEBUG=1 to see where)")
        sys.exit(EXIT_ERROR)
