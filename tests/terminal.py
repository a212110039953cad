"""Drive the real `smart` command on a pseudo-terminal (stdlib pty), as a person at a terminal would."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios

from tests.conftest import ROOT

# Only a guard against a hung child; reaching it fails the test. A cold start on a busy
# machine takes tens of seconds, so it is generous.
GUARD_SECONDS = 300


class Terminal:
    """A child process whose stdin, stdout and stderr are one pseudo-terminal."""

    def __init__(self, *args, env: dict | None = None, columns: int = 120, stdout=None):
        """``stdout``: a file the child's standard output goes to instead of the terminal."""
        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
        full_env = dict(os.environ, **(env or {}))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "smartcli", *map(str, args)],
            stdin=slave,
            stdout=slave if stdout is None else stdout,
            stderr=slave,
            env=full_env,
            cwd=ROOT,
            close_fds=True,
            preexec_fn=_take_terminal,
        )
        os.close(slave)
        self.output = ""  # everything read so far
        self._seen = 0  # how much of it expect() has consumed

    def expect(self, pattern: str) -> str:
        """Read until ``pattern`` (a regex) appears in new output; return the output up to its end."""
        regex = re.compile(pattern)
        while True:
            match = regex.search(self.output, self._seen)
            if match:
                chunk = self.output[self._seen : match.end()]
                self._seen = match.end()
                return chunk
            if not self._read_more():
                raise AssertionError(f"{pattern!r} never came; the terminal showed:\n{self.output[self._seen :]}")

    def send(self, text: str) -> None:
        os.write(self.master, text.encode())

    def wait(self) -> int:
        """Read until the child exits; return its exit status."""
        while self._read_more():
            pass
        return self.process.wait(timeout=GUARD_SECONDS)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        os.close(self.master)

    def _read_more(self) -> bool:
        ready, _, _ = select.select([self.master], [], [], GUARD_SECONDS)
        if not ready:
            return False
        try:
            data = os.read(self.master, 65536)
        except OSError:  # EIO: the child closed the terminal
            return False
        if not data:
            return False
        self.output += data.decode("utf-8", errors="replace")
        return True

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _take_terminal() -> None:
    """In the child: a new session whose controlling terminal is the pty (so Ctrl-C sends SIGINT)."""
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


# SGR escape sequences that set a foreground or background colour (not bold or reset).
COLOUR_SGR = re.compile(r"\x1b\[(?:[0-9;]*;)?(?:3[0-7]|4[0-7]|9[0-7]|10[0-7]|38|48)(?:;[0-9;]*)?m")
ANY_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def plain(text: str) -> str:
    """Terminal output without escape sequences and carriage returns."""
    return ANY_ESCAPE.sub("", text).replace("\r", "")
