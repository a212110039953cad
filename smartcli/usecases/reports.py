"""What a store holds and how good its search is: ``smart status`` (also ``--unencoded`` and
``--verify``) and ``smart eval``."""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from smartcli.errors import ErrorKind, SmartError
from smartcli.search.session import QuerySession, SearchOptions
from smartcli.store.catalog import Store, integrity, reads
from smartcli.usecases.store_access import reading_snapshot


@dataclass
class Status:
    """What a store holds and how the files behind it changed (``smart status``)."""

    store: str
    model: str | None
    model_spec: str | None
    model_fingerprint: str | None
    dims: int | None
    token_dtype: str
    roots: list[str]
    files: dict[str, int]
    skipped_files: int
    items: int
    encoded_items: int
    not_encoded: dict[str, int]  # note code -> pages
    ocr: dict
    tokens: int
    shared_items: int
    segments: int
    garbage_rows: int
    retired_segments: int
    bytes: int
    bytes_per_item: int | None
    updated: float | None
    changed_on_disk: dict[str, int]  # modified, missing, new, touched (a new date, the same content)
    # {"path", "code" (store/skips.py), "detail", "reason" (the code and detail in words)}
    skipped: list[dict] = field(default_factory=list)
    partly_indexed: list[dict] = field(default_factory=list)
    store_problems: list[str] = field(default_factory=list)
    tuning: dict | None = None  # what tune learned: weights, adapter, held-back figures (None: untuned)
    precision: str | None = None  # how the model encoded the pages: "fp32" or "int8" (None: no model yet)
    token_pooling: float = 0.0  # the Ward distance pages' token states are pooled at (0: none; store/pooling.py)

    @property
    def healthy(self) -> bool:
        return not self.store_problems

    def as_json(self) -> dict:
        return asdict(self)


@dataclass
class Unencoded:
    """A page (or image) recorded without vectors, and why: ``note`` is a :class:`~smartcli.store.notes.Note`
    code (``""`` where none was recorded), ``detail`` a library's own message where there is one."""

    path: str
    page: int
    kind: str
    note: str
    detail: str | None = None

    def as_json(self) -> dict:
        return asdict(self)


@dataclass
class VerifyReport:
    """What :meth:`Index.verify` read and found (``smart status --verify``).

    ``damaged``: one entry per problem, ``{"segment": name or None (the catalog), "dataset":
    the dataset, or "page P of F" for a page's text, or the tuning's adapter file, or None,
    "problem": what is wrong, "part": "segment", "text", "catalog" or "tuning"}``.
    """

    store: str
    segments: int  # segments read
    checksummed: int  # of them, written with checksums (digests or Fletcher-32)
    datasets: int
    bytes: int  # bytes of segment files read
    texts: int  # page texts checked
    seconds: float
    damaged: list[dict] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return not self.damaged

    def as_json(self) -> dict:
        return asdict(self)


def status(root: Path) -> Status:
    """What the store holds; a damaged store is still described (its problems in ``store_problems``)."""
    with reading_snapshot(root) as store:
        return _status_of(store)


def unencoded(root: Path) -> list[Unencoded]:
    """The pages and images recorded without vectors, with the code of why, by path and page."""
    with reading_snapshot(root) as store:
        return [Unencoded(**row) for row in reads.unencoded_items(store)]


def verify(root: Path, on_segment=None) -> VerifyReport:
    """Read every segment and page text and check them; nothing is changed."""
    started = time.monotonic()
    from smartcli.store.tuning import tuning_problem

    with reading_snapshot(root) as store:
        found, counts = integrity.check(store, thorough=True, on_segment=on_segment)
        tuning = tuning_problem(store)
    damaged = [{"segment": d.segment, "dataset": d.dataset, "problem": d.problem, "part": integrity.part_of(d)} for d in found]
    if tuning is not None:
        damaged.append(
            {
                "segment": None,
                "dataset": tuning.details["adapter"],
                "problem": str(tuning),
                "part": "tuning",
                "reason": tuning.details["reason"],
            }
        )
    return VerifyReport(store=str(root), seconds=round(time.monotonic() - started, 3), damaged=damaged, **counts)


def evaluate(session: QuerySession, queries, k: int, lambda_anchor: float | None, lambda_late: float | None, sweep: bool):
    """MRR@k, Recall@k and nDCG@k of pooled, late and smart search on judged ``queries`` (a
    JSON-lines file or a list of JudgedQuery), on the path the session's searches take."""
    from smartcli.search.evaluate import configs_to_run, load_judgments
    from smartcli.search.evaluate import evaluate as measure

    judged = queries if isinstance(queries, list) else _judgments(load_judgments, os.fspath(queries))
    searcher = session.current(with_encoder=True)
    weights = session.weights(SearchOptions(lambda_anchor=lambda_anchor, lambda_late=lambda_late))  # the store's tuned weights unless given
    configs = configs_to_run(weights.lambda_anchor, weights.lambda_late, sweep)
    return measure(searcher, judged, configs, k, encoder=session.encoder)


def _judgments(load, path: str):
    try:
        return load(path)
    except OSError as exc:
        raise SmartError(ErrorKind.BAD_INPUT, f"{path}: {(exc.strerror or str(exc)).lower()}", path=path) from None


def _status_of(store: Store) -> Status:
    stats = reads.stats(store)
    model = store.model
    files = reads.files(store)
    encoded = stats["encoded_items"]
    roots = store.meta.get("roots", [])
    return Status(
        store=str(store.root),
        model=model.name if model else None,
        model_spec=model.spec if model else None,
        model_fingerprint=model.fingerprint if model else None,
        dims=model.dims if model else None,
        token_dtype=store.token_dtype,
        roots=roots,
        files=stats["files"],
        skipped_files=stats["skipped_files"],
        items=stats["items"],
        encoded_items=encoded,
        not_encoded=stats["not_encoded"],
        ocr=_ocr_counts(store, stats["not_encoded"]),
        tokens=stats["tokens"],
        shared_items=stats["shared_items"],
        segments=stats["segments"],
        garbage_rows=stats["garbage_rows"],
        retired_segments=stats["retired_segments"],
        bytes=stats["bytes"],
        bytes_per_item=round(stats["live_bytes"] / encoded) if encoded else None,
        updated=store.meta.get("updated"),
        changed_on_disk=_changed_on_disk(files, roots),
        skipped=[_file_problem(f) for f in files if f["status"] == "skipped"],
        partly_indexed=[_file_problem(f) for f in files if f["status"] == "indexed" and f["reason"]],
        store_problems=integrity.check(store).sentences(),
        tuning=_tuning_status(store),
        precision=model.extra.get("precision", "fp32") if model else None,
        token_pooling=store.token_pooling,
    )


def _changed_on_disk(files: list[dict], roots: list[str]) -> dict[str, int]:
    """Indexed files modified or missing since, and files under the roots not indexed yet."""
    from smartcli.ingest.discovery import discover

    modified = missing = touched = 0
    for f in files:
        try:
            st = os.stat(f["path"])
        except OSError:
            missing += 1
            continue
        if (st.st_size, st.st_mtime_ns) == (f["size"], f["mtime_ns"]):
            continue
        # A new date on the same size: read it, as `smart index` would, before calling it modified.
        if st.st_size == f["size"] and f["sha256"] and _sha256_or_none(f["path"]) == f["sha256"]:
            touched += 1
        else:
            modified += 1
    known = {f["path"] for f in files}
    sources, _ = discover(roots) if roots else ([], [])
    return {"modified": modified, "missing": missing, "new": sum(1 for s in sources if s.path not in known), "touched": touched}


def _sha256_or_none(path: str) -> str | None:
    from smartcli.ingest.files import UnreadableFile, file_sha256

    try:
        return file_sha256(path)
    except (OSError, UnreadableFile):  # unreadable now: not known to be the same
        return None


def _ocr_counts(store: Store, not_encoded: dict[str, int]) -> dict:
    from smartcli.store.notes import Note

    by_language = reads.ocr_counts(store)
    counts = {
        "pages": sum(by_language.values()),  # text from OCR
        "by_language": by_language,
        "missing_language_data": not_encoded.get(Note.OCR_MISSING_LANGUAGE.value, 0),
        "nothing_found": not_encoded.get(Note.OCR_NO_TEXT.value, 0),
        "unreadable": not_encoded.get(Note.OCR_UNREADABLE.value, 0),
    }
    # Pages OCR read, as `smart index` counts them ("N pages through OCR, text from M").
    counts["attempted"] = counts["pages"] + counts["nothing_found"] + counts["unreadable"]
    return counts


def _file_problem(f: dict) -> dict:
    return {"path": f["path"], "code": f["code"], "detail": f["detail"], "reason": f["reason"]}


def _tuning_status(store: Store) -> dict | None:
    """What tune kept, and ``damage``: why it cannot be used, ``{"problem", "reason"}`` (None: it is used)."""
    from smartcli.store.tuning import read_tuning, tuning_problem

    record = read_tuning(store)
    if record is None:
        return None
    keys = ("lambda_anchor", "lambda_late", "variant", "adapter", "trained", "pairs", "held_back_pairs", "held_back")
    problem = tuning_problem(store)
    damage = {"problem": str(problem), "reason": problem.details["reason"]} if problem else None
    return {**{key: record.get(key) for key in keys}, "damage": damage}
