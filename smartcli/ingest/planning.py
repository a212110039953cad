"""Plan a run: compare the files under some paths with the catalog.

A file's identity is its path; its content's identity is its SHA-256. Size and mtime
decide cheaply that a file is unchanged; only files that differ are hashed. Content
already in the index (a moved, renamed or copied file) is never encoded again.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from smartcli.ingest.discovery import Skipped, SourceFile, discover
from smartcli.ingest.files import UnreadableFile, file_sha256, os_reason
from smartcli.ingest.sandbox import is_refusal
from smartcli.store.catalog import Store, reads


@dataclass
class Plan:
    new: list[SourceFile] = field(default_factory=list)
    changed: list[SourceFile] = field(default_factory=list)
    moved: list[tuple[str, SourceFile]] = field(default_factory=list)  # (old path, new file)
    copied: list[SourceFile] = field(default_factory=list)  # content already indexed under another path
    touched: list[SourceFile] = field(default_factory=list)  # same content, new mtime
    unchanged: list[SourceFile] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    # Files to encode whose content another file to encode has: encoded once, then copied.
    duplicates: list[SourceFile] = field(default_factory=list)
    previously_indexed: set[str] = field(default_factory=set)  # paths whose new version is an update
    mounts: dict[str, int] = field(default_factory=dict)  # mount points under the roots -> device (to record)
    not_indexable: Counter = field(default_factory=Counter)  # suffix -> files under the roots of no indexable type

    @property
    def to_encode(self) -> list[SourceFile]:
        return self.new + self.changed

    def as_json(self) -> dict:
        return {
            "add": [s.path for s in self.new],
            "update": [s.path for s in self.changed],
            "move": [{"from": old, "to": s.path} for old, s in self.moved],
            "copy": [s.path for s in self.copied + self.duplicates],
            "remove": self.removed,
            "skip": [s.as_json() for s in self.skipped],
            "unchanged": len(self.unchanged) + len(self.touched),
            "not_indexable": dict(self.not_indexable.most_common()),
        }


# A file that hung or exhausted the reader is not read again until its content changes.
REMEMBERED = " (on an earlier run; not read again until the file changes)"


UNMOUNTED = "was a mounted file system when indexed and that file system is not mounted there now; its files stay in the index"


def _under(path: str, roots: Iterable[str]) -> bool:
    return any(path == root or path.startswith(root.rstrip(os.sep) + os.sep) for root in roots)


def plan_changes(store: Store, roots: list[str], reread: set[str] = frozenset()) -> tuple[Plan, dict[str, str]]:
    """Compare the files under ``roots`` with the catalog. Returns the plan and the hashes it computed.

    Files in ``reread`` are read again even when unchanged (pages OCR can read now).
    """
    mounts: dict[str, int] = {}
    not_indexable: Counter = Counter()
    sources, skipped = discover(roots, mounts, not_indexable)
    plan = Plan(skipped=list(skipped), not_indexable=not_indexable)
    known = {f["path"]: f for f in reads.files(store)}
    present = {s.path for s in sources}
    abs_roots = [os.path.abspath(r) for r in roots]
    # A folder that was a mount point when indexed and is not one now (unmounted, or another
    # disk there) is "not there now": its files are kept, not removed.
    for path, device in (store.meta.get("mounts") or {}).items():
        if _under(path, abs_roots) and mounts.get(path) != device:
            plan.skipped.append(Skipped(path, UNMOUNTED, unlisted=True))
    plan.mounts = mounts
    # Files under a directory that could not be listed are not known to be gone.
    unlisted = [s.path for s in plan.skipped if s.unlisted]
    gone = {p: f for p, f in known.items() if _under(p, abs_roots) and p not in present and not _under(p, unlisted)}
    gone_by_hash = {f["sha256"]: p for p, f in gone.items() if f["sha256"] and f["status"] == "indexed"}
    # Content whose indexed file is read again is not there to share: a copy waits for the new version.
    indexed_hashes = {f["sha256"] for p, f in known.items() if f["sha256"] and f["status"] == "indexed" and p not in reread}
    to_encode_hashes: set[str] = set()
    hashes: dict[str, str] = {}
    for source in sources:
        old = known.get(source.path)
        was_indexed = old is not None and old["status"] == "indexed"
        read_again = source.path in reread
        refused = old is not None and old["status"] == "skipped" and is_refusal(old["reason"])
        if refused and (old["size"], old["mtime_ns"]) == (source.size, source.mtime_ns):
            plan.skipped.append(Skipped(source.path, old["reason"] + REMEMBERED))
            continue
        if was_indexed and (old["size"], old["mtime_ns"]) == (source.size, source.mtime_ns) and not read_again:
            plan.unchanged.append(source)
            continue
        try:
            digest = file_sha256(source.path)
        except OSError as exc:
            plan.skipped.append(Skipped(source.path, os_reason(exc)))
            continue
        except UnreadableFile as exc:
            plan.skipped.append(Skipped(source.path, str(exc)))
            continue
        if refused and old["sha256"] == digest:
            plan.skipped.append(Skipped(source.path, old["reason"] + REMEMBERED))
            continue
        hashes[source.path] = digest
        if was_indexed:
            plan.previously_indexed.add(source.path)
        if was_indexed and old["sha256"] == digest and not read_again:
            plan.touched.append(source)
        elif old is None and digest in gone_by_hash:
            plan.moved.append((gone_by_hash.pop(digest), source))
        elif digest in indexed_hashes and not read_again:
            plan.copied.append(source)
        elif digest in to_encode_hashes:
            plan.duplicates.append(source)
        else:
            to_encode_hashes.add(digest)
            (plan.changed if was_indexed else plan.new).append(source)
    moved_from = {old for old, _ in plan.moved}
    plan.removed = sorted(p for p in gone if p not in moved_from)
    return plan, hashes
