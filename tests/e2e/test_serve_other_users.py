"""Other users of the computer and a `smart serve` on loopback: as uid 65534 (``setpriv``, with
the system's curl and cat, which that user may run), nothing is served without the token and the
picture cache cannot be read."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import urllib.request
from pathlib import Path

import pytest

from tests.serving import Served, status_of

NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("setpriv") or not shutil.which("curl"),
    reason="needs root, setpriv and curl to act as another user",
)


def as_nobody(*command) -> subprocess.CompletedProcess:
    return subprocess.run([*NOBODY, *map(str, command)], capture_output=True, text=True, timeout=60)


def status_as_nobody(url: str) -> int:
    done = as_nobody("curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "30", url)
    return int(done.stdout or 0)


@pytest.fixture
def open_folder():
    """A folder every user may enter (as /home/someone and its .cache often are)."""
    top = Path(tempfile.mkdtemp(prefix="smart-serve-users-"))
    top.chmod(0o755)
    yield top
    shutil.rmtree(top)


def test_other_users_get_no_pages_from_a_loopback_server(sample_store, open_folder):
    store, _ = sample_store
    cache = open_folder / "cache"
    cache.mkdir(mode=0o755)
    served = Served("--store", store, env={"XDG_CACHE_HOME": str(cache)})
    try:
        bearer = {"Authorization": f"Bearer {served.token}"}
        request = urllib.request.Request(served.base + "/api/search?q=wifi&k=1", headers=bearer)
        with urllib.request.urlopen(request) as response:
            result = json.loads(response.read())["results"][0]
        targets = ["/api/search?q=wifi", result["thumbnail"], result["picture"], result["file_url"].split("#")[0]]
        for target in targets:
            assert status_of(served.base + target, bearer) == 200, target  # the owner, with the token
        for target in targets:
            assert status_as_nobody(served.base + target) == 403, target
        pictures = cache / "smart" / "pictures"
        made = sorted(pictures.glob("*.png"))
        assert made
        listed = as_nobody("ls", pictures)
        read = as_nobody("cat", made[0])
        assert listed.returncode != 0 and "Permission denied" in listed.stderr, listed
        assert read.returncode != 0 and "Permission denied" in read.stderr, read
    finally:
        assert served.stop() == 0
