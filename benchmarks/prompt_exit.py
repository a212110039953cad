"""Seconds from Ctrl-D at the `smart search` prompt to the process's exit, side by side:

  entry point   `python -m smartcli` (smartcli.cli.app.main: ends at once after the prompt)
  teardown      the same command through Typer's app() alone, so that the interpreter tears down
                the model runtime and the warm token states as it did before

Each run: start the prompt on a pseudo-terminal, answer one query, press Ctrl-D, time the exit.

    python benchmarks/prompt_exit.py --store /tmp/dev --runs 5
"""

from __future__ import annotations

import argparse
import fcntl
import os
import pty
import re
import select
import statistics
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROMPT = re.compile(r"search> ")
COMMANDS = {
    "entry point": [sys.executable, "-m", "smartcli"],
    "teardown": [sys.executable, "-c", "import sys; from smartcli.cli.app import app; sys.argv[0] = 'smart'; app()"],
}


def _take_terminal() -> None:
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def _read_until(master: int, pattern, output: bytearray, limit: float = 300) -> bool:
    end = time.monotonic() + limit
    start = len(output)
    while time.monotonic() < end:
        ready, _, _ = select.select([master], [], [], 1)
        if not ready:
            continue
        try:
            data = os.read(master, 65536)
        except OSError:
            return False
        if not data:
            return False
        output += data
        if pattern is not None and pattern.search(output[start:].decode("utf-8", "replace")):
            return True
    return False


def exit_seconds(command: list[str], store: str, query: str, state: str) -> float:
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 200, 0, 0))
    env = dict(os.environ, TERM="xterm", XDG_STATE_HOME=state, PYTHONPATH=str(ROOT))
    process = subprocess.Popen([*command, "search", "--store", store], stdin=slave, stdout=slave, stderr=slave,
                               env=env, cwd=ROOT, close_fds=True, preexec_fn=_take_terminal)
    os.close(slave)
    output = bytearray()
    try:
        if not _read_until(master, PROMPT, output):
            raise SystemExit(f"no prompt came:\n{output.decode('utf-8', 'replace')[-2000:]}")
        os.write(master, (query + "\n").encode())
        if not _read_until(master, PROMPT, output):
            raise SystemExit(f"no answer came:\n{output.decode('utf-8', 'replace')[-2000:]}")
        started = time.perf_counter()
        os.write(master, b"\x04")
        _read_until(master, None, output)  # until the terminal closes
        process.wait(timeout=300)
        return time.perf_counter() - started
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(master)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", required=True)
    parser.add_argument("--query", default="how do I change the default terminal")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    state = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"smart-prompt-exit-{os.getpid()}")
    figures = {name: [] for name in COMMANDS}
    for _ in range(args.runs):  # interleaved, so that the machine's load falls on both alike
        for name, command in COMMANDS.items():
            figures[name].append(exit_seconds(command, args.store, args.query, state))
    print(f"store {args.store}, {args.runs} run(s) each, load {os.getloadavg()[0]:.1f}")
    for name, seconds in figures.items():
        print(f"{name:12s} Ctrl-D to exit: median {statistics.median(seconds):.3f} s (runs: {', '.join(f'{s:.3f}' for s in seconds)})")
    fast, slow = statistics.median(figures["entry point"]), statistics.median(figures["teardown"])
    print(f"teardown / entry point: {slow / max(fast, 1e-6):.1f}x")


if __name__ == "__main__":
    main()
