"""A real `smart serve` process for the tests that need sockets, browsers or other users."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

from tests.conftest import ROOT


class Served:
    """A `smart serve` process; ``url`` is the address it printed (with its token, if any), and
    ``lines`` everything it wrote on stderr so far."""

    def __init__(self, *args, env=None, no_open=True, prefix=(), preexec_fn=None):
        command = [*prefix, sys.executable, "-m", "smartcli", "serve", "--port", "0", *(["--no-open"] if no_open else []), *map(str, args)]
        self.process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env=dict(os.environ, **(env or {})),
            preexec_fn=preexec_fn,
        )
        self.lines = []
        self.url = None
        deadline = time.monotonic() + 300  # the model loads first, on a busy machine
        while time.monotonic() < deadline:
            line = self.process.stderr.readline()
            if not line:
                break
            self.lines.append(line)
            found = re.search(r"at (http://\S+) \(Ctrl-C stops\)", line)
            if found:
                self.url = found.group(1)
                break
        assert self.url, "".join(self.lines)
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        for line in self.process.stderr:
            self.lines.append(line)

    @property
    def base(self) -> str:
        return self.url.split("?")[0].rstrip("/")

    @property
    def token(self) -> str | None:
        found = re.search(r"\?token=([\w-]+)", self.url)
        return found.group(1) if found else None

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(30)
        finally:
            if self.process.poll() is None:
                self.process.kill()


def status_of(url: str, headers=None) -> int:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=60) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
