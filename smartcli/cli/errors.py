"""The one place where engine errors become exit codes and the sentences a person reads."""

from __future__ import annotations

import shlex

from smartcli import ErrorKind, SmartError

# Exit codes (documented in the README).
EXIT_OK = 0
EXIT_ERROR = 1  # fatal: damaged store, model cannot load, unexpected failure
EXIT_USAGE = 2  # bad arguments, an unusable input file or an empty query (also Typer's own code for usage errors)
EXIT_SKIPPED = 3  # index finished, but some files were skipped or only partly read (each reported on stderr)
EXIT_NO_INDEX = 4  # no store at the given path yet
EXIT_BUSY = 5  # another `smart index` or `smart compact` holds the store's write lock
EXIT_MODEL_MISMATCH = 6  # the store was built with another model
EXIT_DISK_FULL = 7  # no space left on the store's disk; nothing was committed half, run again once there is
EXIT_READ_ONLY = 8  # the store is on a read-only file system (searching it works)
EXIT_PERMISSION = 9  # this user may not change (or read) the store
EXIT_FOREIGN = 10  # --store names a non-empty directory that is not a smart store
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT, as shells report it); `smart index` keeps the batches it committed
EXIT_BROKEN_PIPE = 141  # the reader of the output went away (`| head -1`): 128 + SIGPIPE, as `grep` and `ls` end

_EXIT_CODES = {
    ErrorKind.STORE_MISSING: EXIT_NO_INDEX,
    ErrorKind.STORE_EMPTY: EXIT_NO_INDEX,
    ErrorKind.STORE_BUSY: EXIT_BUSY,
    ErrorKind.MODEL_MISMATCH: EXIT_MODEL_MISMATCH,
    ErrorKind.DISK_FULL: EXIT_DISK_FULL,
    ErrorKind.STORE_READ_ONLY: EXIT_READ_ONLY,
    ErrorKind.PERMISSION_DENIED: EXIT_PERMISSION,
    ErrorKind.STORE_FOREIGN: EXIT_FOREIGN,
    ErrorKind.BAD_OPTION: EXIT_USAGE,
    ErrorKind.BAD_INPUT: EXIT_USAGE,
    ErrorKind.NOT_FOUND: EXIT_USAGE,
}

# API parameter -> the flag a person types.
FLAGS = {
    "max_pixels": "--max-pixels",
    "dpi": "--dpi",
    "ocr": "--ocr",
    "ocr_lang": "--ocr-lang",
    "token_dtype": "--token-dtype",
    "token_pooling": "--token-pooling",
    "mode": "--mode",
    "device": "--device",
    "qdrant_format": "--qdrant-format",
}


def exit_code(exc: SmartError) -> int:
    return _EXIT_CODES.get(exc.kind, EXIT_ERROR)


def describe(exc: SmartError) -> str:
    """The engine's message with what a person can do about it."""
    message, kind = str(exc), exc.kind
    if kind is ErrorKind.STORE_MISSING and exc.details.get("holds_documents"):
        path = shlex.quote(exc.details["path"])
        return (
            f"{message}: that folder holds documents, not a store; index them with `smart index {path}` "
            "and search the store it fills (the default one, or pass --store a store's folder)"
        )
    if kind in (ErrorKind.STORE_MISSING, ErrorKind.STORE_EMPTY):
        return f"{message} (run `smart index PATH` first)"
    if kind is ErrorKind.STORE_BUSY:
        return f"another `smart index` or `smart compact` is writing to {exc.details.get('path')}; try again when it ends, or pass --wait"
    if kind is ErrorKind.STORE_DAMAGED and exc.details.get("part") == "tuning":
        return f"{message}; {tuning_hint(exc.details)}"
    if kind in (ErrorKind.STORE_DAMAGED, ErrorKind.STORE_SCHEMA):
        return f"{message}; {rebuild_hint(exc.details.get('roots'))}"
    if kind is ErrorKind.MODEL_MISMATCH and "Qdrant" in message:
        return f"{message}; use another --collection"
    if kind is ErrorKind.DISK_FULL:
        return f"{message}; free some space and run the same command again (it resumes where it stopped)"
    if kind is ErrorKind.STORE_READ_ONLY:
        return f"{message}; to change it, make its file system writable or copy it elsewhere and pass --store"
    if kind is ErrorKind.PERMISSION_DENIED:
        return f"{message}; run as the store's owner or pass another --store"
    if kind is ErrorKind.STORE_IO:
        return f"{message}; the store was not changed: check the disk and try again (do not rebuild: it does not help)"
    if kind is ErrorKind.STORE_FOREIGN and exc.details.get("qdrant"):
        return f"{message}; nothing in it was touched: pass --qdrant an empty or new folder, or one `smart sync` filled"
    if kind is ErrorKind.STORE_FOREIGN:
        return f"{message}; pass --store an empty or new directory, or an existing smart store"
    if kind is ErrorKind.MODEL_MISMATCH:
        return f"{message}; use another --store or `smart index --rebuild`"
    if kind is ErrorKind.MISSING_DEPENDENCY:
        return f"{message}; install it into smart's Python environment: `python -m pip install {exc.details.get('package')}`"
    if kind is ErrorKind.BACKEND_UNAVAILABLE:
        return f"{message} (check --qdrant and $SMART_QDRANT_API_KEY; a re-run resumes where this one stopped)"
    if kind is ErrorKind.BAD_INPUT and exc.details.get("reason") == "nothing_indexable":
        return (
            f"{message}; smart indexes PDF, EPUB, XPS, CBZ, FB2, MOBI and SVG files (gzipped too, such as .pdf.gz) "
            "and images (.jpg, .png, .webp, .tif, .bmp, .gif): point it at a folder holding some"
        )
    if kind is ErrorKind.BAD_INPUT and exc.details.get("reason") == "no_paths":
        return f"{message}; name the files or folders to index: `smart index PATH...`"
    if kind is ErrorKind.NOT_FOUND and message.endswith("name one"):
        return f"{message} as {exc.details.get('path')}:PAGE"
    if kind is ErrorKind.MODEL_LOAD and exc.option == "device":
        return "--device cuda was asked for, but no CUDA device is available"
    if kind is ErrorKind.BAD_INPUT and "pairs" in exc.details:
        return f"{message}; give labelled pairs with `smart tune --pairs FILE`"
    if kind is ErrorKind.BAD_OPTION and exc.option == "outline":
        return "--no-outline needs --pairs FILE or --body"
    if kind is ErrorKind.BAD_OPTION and exc.option:
        flag = FLAGS.get(exc.option, "--" + exc.option.replace("_", "-"))
        if "stored" in exc.details:
            return f"this store was indexed with {flag} {exc.details['stored']}; use that, or `smart index --rebuild` to change it"
        if exc.details.get("reason") == "text_model":
            return f"--dpi and --max-pixels apply to image models; {exc.details['model']} reads text"
        return f"{flag}: {message}"
    return message


def rebuild_hint(roots: list[str] | None = None) -> str:
    """How to get out of damage: the rebuild command, with the paths the store indexed when known."""
    paths = " ".join(shlex.quote(r) for r in roots) if roots else "PATH..."
    return f"rebuild it with `smart index --rebuild {paths}`"


def tuning_hint(details: dict) -> str:
    """What to do about a damaged tuning (``details`` of TuningDamaged)."""
    if details.get("reason") == "unreadable":
        return "check the file's permissions, or forget the tuning with `smart tune --reset`"
    return "`smart tune --reset` forgets it (then `smart tune` learns it again)"


def describe_warning(warning) -> str:
    """An engine SmartWarning with what a person can do about it."""
    details = getattr(warning, "details", {})
    if details.get("part") == "tuning":
        return f"{warning}; {tuning_hint(details)}"
    return str(warning)
