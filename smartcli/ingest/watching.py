"""Watching folders: the native watcher's events, held until the files settle, turned into the
few paths an update should look at.

The watcher (watchfiles: Rust notify over inotify, FSEvents or ReadDirectoryChangesW) runs on a
thread of its own and hands over bursts of changed paths (:class:`ChangeFeed`). :class:`Settling`
holds each path until its size and mtime stayed the same for a while, so that a file still being
written is not read half-way. :func:`update_paths` turns settled paths into the paths an update
plans: the nearest existing folder of a path that is gone (so that a move's two ends meet in one
plan), no path under another. Which of them are new, changed, moved, copied or gone is decided
by the update alone (planning.py). Folders on file systems that send no change events (network
mounts) are scanned instead: :func:`without_events` says which, and why.
"""

from __future__ import annotations

import bisect
import logging
import os
import queue
import stat
import sys
import threading
from collections.abc import Iterable

from smartcli import defaults
from smartcli.ingest.discovery import kind_of

# An update planned on more paths than this looks at their folders instead (a burst of 500 new
# files in one folder is one folder to walk, not 500 roots to compare every indexed file with).
MAX_UPDATE_PATHS = 64

# File systems whose changes made elsewhere (on the server, another client) send no events here.
NETWORK_FILE_SYSTEMS = frozenset(
    {
        "nfs",
        "nfs4",
        "cifs",
        "smb3",
        "smbfs",
        "ncpfs",
        "afs",
        "9p",
        "ceph",
        "glusterfs",
        "lustre",
        "gpfs",
        "davfs",
        "fuse.sshfs",
        "fuse.rclone",
        "fuse.s3fs",
        "fuse.glusterfs",
        "fuse.davfs2",
    }
)


def under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def root_of(path: str, roots: Iterable[str]) -> str | None:
    """The deepest of ``roots`` that ``path`` lies in (None: none)."""
    found = [r for r in roots if under(path, r)]
    return max(found, key=len) if found else None


class KnownPaths:
    """The indexed files' paths, sorted, to tell whether a path that is gone held any."""

    def __init__(self, paths: Iterable[str] = ()):
        self._sorted = sorted(paths)

    def holds(self, path: str) -> bool:
        """``path`` is an indexed file or a folder holding one."""
        i = bisect.bisect_left(self._sorted, path)
        if i < len(self._sorted) and self._sorted[i] == path:
            return True
        prefix = path.rstrip(os.sep) + os.sep
        i = bisect.bisect_left(self._sorted, prefix)
        return i < len(self._sorted) and self._sorted[i].startswith(prefix)


def relevant(path: str, roots: list[str], store: str, known: KnownPaths) -> bool:
    """Whether a change at ``path`` can matter to the index: under a root, not in the store, not
    hidden below the root (the walk skips dot names), and an indexable file, a folder, or a
    path that held indexed files."""
    root = root_of(path, roots)
    if root is None or under(path, store):
        return False
    if any(part.startswith(".") for part in os.path.relpath(path, root).split(os.sep) if part != os.curdir):
        return False
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return known.holds(path)  # gone: it matters if it held indexed files
    return stat.S_ISDIR(mode) or kind_of(path) is not None


def _signature(path: str) -> tuple | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_size, st.st_mtime_ns, stat.S_IFMT(st.st_mode))


class Settling:
    """Changed paths, each held until its size and mtime stayed the same ``settle`` seconds.

    Settled paths are let go together once every held path has settled (a move's two ends, an
    unzip's files, in one update); when some file keeps changing for longer than ``hold``
    seconds (a log being written), the settled ones are let go without it.
    """

    def __init__(self, settle: float, hold: float = defaults.WATCH_HOLD_SECONDS):
        self.settle = settle
        self.hold = hold
        self._held: dict[str, list] = {}  # path -> [signature, last change, first seen]

    def note(self, paths: Iterable[str], now: float) -> None:
        for path in paths:
            entry = self._held.get(path)
            if entry is None:
                self._held[path] = [_signature(path), now, now]
            else:
                entry[0], entry[1] = _signature(path), now

    def ready(self, now: float) -> list[str]:
        """The paths to update now (sorted), no longer held; [] while they wait."""
        for path, entry in self._held.items():
            signature = _signature(path)
            if signature != entry[0]:
                entry[0], entry[1] = signature, now
        settled = [p for p, e in self._held.items() if now - e[1] >= self.settle]
        if not settled:
            return []
        if len(settled) < len(self._held) and now - min(self._held[p][2] for p in settled) < self.hold:
            return []
        for path in settled:
            del self._held[path]
        return sorted(settled)

    def __len__(self) -> int:
        return len(self._held)

    def paths(self) -> list[str]:
        return sorted(self._held)


def update_paths(paths: Iterable[str], roots: list[str]) -> list[str]:
    """The paths an update should plan for the changed ``paths``: each that is gone replaced by
    its nearest existing folder under its root (the update then sees what left it, and where
    it went when the other end is there too), none under another, at most MAX_UPDATE_PATHS."""
    found = set()
    for path in paths:
        root = root_of(path, roots)
        if root is None:
            continue
        while path != root and not os.path.lexists(path):
            path = os.path.dirname(path)
        found.add(path)
    chosen = _covering(found)
    while len(chosen) > MAX_UPDATE_PATHS:
        wider = _covering({p if p in roots else os.path.dirname(p) for p in chosen})
        if len(wider) == len(chosen):
            break
        chosen = wider
    return chosen


def _covering(paths: set[str]) -> list[str]:
    """``paths`` without those under another of them, sorted."""
    kept: list[str] = []
    for path in sorted(paths, key=lambda p: (p.count(os.sep), p)):
        if not any(under(path, k) for k in kept):
            kept.append(path)
    return sorted(kept)


def without_events(root: str) -> str | None:
    """Why changes under ``root`` would not be heard (its file system, named), or None.

    Only Linux says which file system a folder is on (/proc/self/mountinfo); elsewhere every
    folder is watched."""
    if not sys.platform.startswith("linux"):
        return None
    kind = file_system(root)
    if kind in NETWORK_FILE_SYSTEMS:
        return f"it is on {kind}, which sends no change events for changes made elsewhere"
    return None


def file_system(path: str) -> str | None:
    """The type of the file system ``path`` is on, from /proc/self/mountinfo (None: unknown)."""
    real = os.path.realpath(path)
    best, kind = "", None
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as mounts:
            for line in mounts:
                fields, _, rest = line.partition(" - ")
                parts = fields.split()
                if len(parts) < 5 or not rest:
                    continue
                point = _unescape(parts[4])
                if under(real, point) and len(point) >= len(best):
                    best, kind = point, rest.split()[0]
    except OSError:
        return None
    return kind


def _unescape(field: str) -> str:
    """mountinfo writes space, tab, newline and backslash in paths as octal escapes."""
    for code in ("\\040", "\\011", "\\012", "\\134"):
        field = field.replace(code, chr(int(code[1:], 8)))
    return field


class ChangeFeed:
    """The native watcher over folders (recursively) and single files, on threads of their own:
    :meth:`get` hands over each burst of changed paths, or the exception a watcher failed with.

    A single file is watched through its folder (an editor's save replaces the file: a watch
    on the file itself would end there); what else changes in that folder is the caller's to
    drop."""

    def __init__(self, folders: list[str], files: list[str]):
        self._queue: queue.Queue = queue.Queue()
        self._stop = threading.Event()
        groups = [(folders, True), (sorted({os.path.dirname(f) for f in files}), False)]
        self._threads = [
            threading.Thread(target=self._watch, args=(paths, recursive), name="smart-watch", daemon=True)
            for paths, recursive in groups
            if paths
        ]

    def __enter__(self) -> ChangeFeed:
        logging.getLogger("watchfiles").setLevel(logging.WARNING)  # its "N changes detected" lines
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)

    def get(self, timeout: float) -> list[str] | BaseException | None:
        try:
            return self._queue.get(timeout=timeout)
        except queue.Empty:
            return None

    def _watch(self, paths: list[str], recursive: bool) -> None:
        import watchfiles

        try:
            for changes in watchfiles.watch(
                *paths,
                watch_filter=None,
                debounce=defaults.WATCH_GROUP_MS,
                step=defaults.WATCH_QUIET_MS,
                stop_event=self._stop,
                rust_timeout=0,  # no time-out: its return clears what came in meanwhile
                raise_interrupt=False,
                recursive=recursive,
                ignore_permission_denied=True,
            ):
                self._queue.put([path for _, path in changes])
        except Exception as exc:  # too many watches, a root gone: the caller scans instead
            self._queue.put(exc)
