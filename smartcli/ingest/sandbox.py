"""Read untrusted files in a worker process with a deadline and a memory limit.

Parsing a PDF runs MuPDF over content anyone can write: a 7 KB file of Form XObjects that
draw each other twice makes text extraction take forever and eat memory without bound. So
every file's text layer (and every image's validation) is read by a separate Python process
whose address space is capped (``RLIMIT_AS``) and which gets ``defaults.READ_TIMEOUT_SECONDS``
per file. A file that runs past either limit, or crashes the worker, is skipped with a reason
that says which; the worker is replaced and the rest of the batch goes on. The catalog
remembers the refusal (with the file's size, mtime and hash), so the next run does not read
the file again until it changes (see planning.py).

The worker is started with ``python -m smartcli.ingest.sandbox`` (not multiprocessing, whose
spawn would import the program's ``__main__`` again); requests and answers are pickles
framed by a length, over its stdin and stdout. It exits when its stdin closes.
"""

from __future__ import annotations

import os
import pickle
import select
import signal
import struct
import subprocess
import sys
import time

from smartcli import defaults
from smartcli.ingest.files import UnreadableFile

_HEADER = struct.Struct("!Q")
_MB = 1 << 20
STARTUP_SECONDS = 300  # a worker's imports, on a loaded machine

# Reasons a file was refused by the worker. The first words identify them in the catalog
# (planning.py does not read such a file again until it changes).
REFUSAL_PREFIXES = ("took longer than", "needs more than", "crashed the reader")


def is_refusal(reason: str | None) -> bool:
    return bool(reason) and reason.startswith(REFUSAL_PREFIXES)


def timeout_reason(seconds: float, what: str = "read") -> str:
    return f"took longer than {seconds:g} s to {what}"


def memory_reason(limit_bytes: int, what: str = "read") -> str:
    return f"needs more than {limit_bytes // _MB} MB of memory to {what}"


def crash_reason(returncode: int | None) -> str:
    if returncode is not None and returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"crashed the reader ({name})"
    return f"crashed the reader (exit status {returncode})"


class SandboxedReader:
    """Reads source files (``discovery.read_document``) in a worker process, one file at a time.

    ``timeout`` seconds per file and ``memory_bytes`` of address space for the worker (0 or
    None: no limit). Not thread-safe: one thread calls :meth:`read`.
    """

    def __init__(self, timeout: float = defaults.READ_TIMEOUT_SECONDS, memory_bytes: int = defaults.READ_MEMORY_BYTES):
        self.timeout = timeout
        self.memory_bytes = memory_bytes
        self._proc: subprocess.Popen | None = None

    def read(self, source):
        """The :class:`~smartcli.ingest.discovery.Document` of ``source``; raises UnreadableFile."""
        return self._ask((source.path, source.kind), "read")

    def render(self, path: str, page: int, target_pixels: int, max_pixels: int, dpi: float | None = None):
        """Page ``page`` of the PDF at ``path`` as an RGB ``PIL.Image`` (render.PageRenderer, in
        the worker); raises UnreadableFile, with a refusal reason (:func:`is_refusal`) when the
        page ran past the deadline or the memory limit, or crashed the worker."""
        from PIL import Image

        mode, size, data = self._ask(("render", path, page, target_pixels, max_pixels, dpi), f"render page {page}")
        return Image.frombytes(mode, size, data)

    def _ask(self, message, what: str):
        proc = self._worker()
        try:
            _send(proc.stdin, message)
        except (BrokenPipeError, OSError):
            self._stop()
            proc = self._worker()
            _send(proc.stdin, message)
        try:
            status, value = _receive(proc.stdout, time.monotonic() + self.timeout)
        except TimeoutError:
            self._stop()
            raise UnreadableFile(timeout_reason(self.timeout, what)) from None
        except EOFError:
            returncode = self._stop()
            raise UnreadableFile(crash_reason(returncode)) from None
        if status == "ok":
            return value
        if status == "memory":
            self._stop()  # a worker that ran out of memory may hold it still
            raise UnreadableFile(memory_reason(self.memory_bytes, what))
        raise UnreadableFile(value)

    def _worker(self) -> subprocess.Popen:
        if self._proc is None or self._proc.poll() is not None:
            env = dict(os.environ)
            # The package must be importable by the worker exactly as by this process.
            package_parent = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
            env["PYTHONPATH"] = os.pathsep.join(p for p in (package_parent, env.get("PYTHONPATH")) if p)
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "smartcli.ingest.sandbox", str(int(self.memory_bytes or 0))],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                env=env,
                close_fds=True,
            )
            # The deadline is for reading a file, not for starting Python: wait for the worker's hello.
            try:
                _receive(self._proc.stdout, time.monotonic() + STARTUP_SECONDS)
            except (TimeoutError, EOFError):
                self._stop()
                raise UnreadableFile("the reader process could not start") from None
        return self._proc

    def _stop(self) -> int | None:
        proc, self._proc = self._proc, None
        if proc is None:
            return None
        if proc.poll() is None:
            proc.kill()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        for stream in (proc.stdin, proc.stdout):
            try:
                stream.close()
            except OSError:
                pass
        return proc.returncode

    def close(self) -> None:
        self._stop()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _send(stream, message) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(data)) + data)
    stream.flush()


def _receive(stream, deadline: float):
    """One framed message from ``stream`` (a pipe), raising TimeoutError past ``deadline`` and
    EOFError when the writer is gone."""
    fd = stream.fileno()
    header = _read_exactly(fd, _HEADER.size, deadline)
    (length,) = _HEADER.unpack(header)
    return pickle.loads(_read_exactly(fd, length, deadline))


def _read_exactly(fd: int, n: int, deadline: float) -> bytes:
    chunks, got = [], 0
    while got < n:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            raise TimeoutError
        chunk = os.read(fd, min(n - got, 1 << 20))
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


# -- the worker ------------------------------------------------------------------------------


def _serve(memory_bytes: int) -> None:
    import resource

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    from smartcli.ingest.discovery import SourceFile, read_document
    from smartcli.ingest.files import _quiet_pymupdf

    if memory_bytes:
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    _quiet_pymupdf()
    _send(stdout, ("ready", None))
    renderer = None  # render.PageRenderer of the last render request (keeps its document open)
    while True:
        header = stdin.read(_HEADER.size)
        if len(header) < _HEADER.size:
            return  # the parent is gone or done
        request = pickle.loads(stdin.read(_HEADER.unpack(header)[0]))
        try:
            if request[0] == "render":
                renderer = _renderer(renderer, *request[3:])
                image = renderer.render(request[1], request[2])
                answer = ("ok", (image.mode, image.size, image.tobytes()))
                del image
            else:
                path, kind = request
                answer = ("ok", read_document(SourceFile(path, kind, 0, 0)))
        except UnreadableFile as exc:
            answer = ("unreadable", str(exc))
        except MemoryError:
            answer = ("memory", None)
        except Exception as exc:  # anything else a parser raises: the file is unreadable
            from smartcli.errors import first_line

            answer = ("unreadable", f"cannot be read ({first_line(exc)})")
        try:
            _send(stdout, answer)
        except MemoryError:
            _send(stdout, ("memory", None))


def _renderer(current, target_pixels: int, max_pixels: int, dpi):
    from smartcli.ingest.render import PageRenderer

    if current is not None and (current.target_pixels, current.max_pixels, current.dpi) == (target_pixels, max_pixels, dpi):
        return current
    if current is not None:
        current.close()
    return PageRenderer(target_pixels, max_pixels, dpi)


if __name__ == "__main__":
    _serve(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
