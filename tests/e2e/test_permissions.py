"""Exit 9: a store of another user. Real processes that permission bits apply to, although the
tests run as root: an unprivileged user (``setpriv`` to uid 65534) where that user can run this
Python and read the repository, else root without the capabilities that override permission
bits, on a store owned by uid 65534 (the same kernel check either way)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_smart
from tests.corpus import drop_read_override, make_pdf, permissions_can_hide_a_file

NOBODY = 65534
SETPRIV = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
HINT = "; run as the store's owner or pass another --store"


def _setpriv_works() -> bool:
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        return False
    probe = subprocess.run([*SETPRIV, sys.executable, "-c", "import smartcli, typer, torch"], cwd=ROOT, capture_output=True)
    return probe.returncode == 0


@pytest.fixture(scope="module")
def other_user():
    """How to run `smart` as someone who does not own the store: (command prefix, preexec_fn, chown)."""
    if _setpriv_works():
        return SETPRIV, None, False
    scratch = Path(tempfile.mkdtemp())
    try:
        can_drop = os.geteuid() == 0 and permissions_can_hide_a_file(scratch)
    finally:
        shutil.rmtree(scratch)
    if can_drop:  # e.g. this Python lives under /root, which uid 65534 cannot enter
        return [], drop_read_override, True
    pytest.skip("neither setpriv to uid 65534 (with this Python readable) nor dropping CAP_DAC_OVERRIDE works here")


@pytest.fixture
def foreign_store(other_user):
    """A store indexed by root, in a folder everyone may enter; chowned to 65534 where the run
    that must be refused is root without its override capabilities."""
    top = Path(tempfile.mkdtemp(prefix="smart-perm-"))
    top.chmod(0o755)
    docs = top / "docs"
    docs.mkdir()
    make_pdf(docs / "sourdough.pdf", ["feed the sourdough starter with flour and water every morning"])
    store = top / "store"
    run_smart("index", docs, "--store", store, "--ocr", "never", check=True)
    for path in [store, *store.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
        if other_user[2]:
            os.chown(path, NOBODY, NOBODY)
    yield docs, store
    shutil.rmtree(top)


def smart_as_other_user(other_user, *args):
    prefix, preexec, _ = other_user
    env = dict(os.environ, HOME=tempfile.gettempdir(), PYTHONDONTWRITEBYTECODE="1")
    return subprocess.run(
        [*prefix, sys.executable, "-m", "smartcli", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        preexec_fn=preexec,
    )


def _one_error_line(result) -> str:
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("smart: no permission")]
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_a_store_readable_by_others_is_searched_and_not_changed(other_user, foreign_store):
    docs, store = foreign_store
    before = (store / "catalog.sqlite").read_bytes()
    found = smart_as_other_user(other_user, "search", "sourdough starter", "--store", store, "-k", "1", "--json")
    assert found.returncode == 0, found.stderr
    assert "sourdough.pdf" in found.stdout

    refused = smart_as_other_user(other_user, "index", docs, "--store", store)
    assert refused.returncode == 9, refused.stderr
    line = _one_error_line(refused)
    assert line.startswith(f"smart: no permission to change the store at {store} (") and line.endswith(HINT), line
    assert refused.stdout == ""
    assert (store / "catalog.sqlite").read_bytes() == before


def test_a_store_others_may_not_enter_is_refused_with_exit_9(other_user, foreign_store):
    docs, store = foreign_store
    store.chmod(0o700)
    expected = f"smart: no permission to read the store at {store} (permission denied){HINT}"
    for args in (("search", "sourdough", "--store", store), ("index", docs, "--store", store)):
        result = smart_as_other_user(other_user, *args)
        assert result.returncode == 9, (args, result.stderr)
        assert _one_error_line(result) == expected


def test_a_segment_this_user_may_not_read_is_a_permission_problem_never_damage(other_user, foreign_store):
    """Issue 26, item 12: a segment unreadable to this user was "damaged", and `--verify` advised
    a rebuild; it is exit 9 with the permission hint, for search and --verify alike."""
    _, store = foreign_store
    (segment,) = (store / "segments").glob("*.h5")
    segment.chmod(0)
    expected = f"smart: no permission to read segment {segment.name} of the store at {store} (permission denied){HINT}"
    for args in (("search", "sourdough", "--store", store), ("status", "--verify", "--store", store)):
        result = smart_as_other_user(other_user, *args)
        assert result.returncode == 9, (args, result.stderr)
        assert _one_error_line(result) == expected
        assert "damaged" not in result.stderr and "rebuild" not in result.stderr
