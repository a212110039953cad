"""Open untrusted files in worker processes with a deadline and a memory limit.

Parsing a PDF runs MuPDF over content anyone can write: a 7 KB file of Form XObjects that
draw each other twice makes text extraction take forever and eat memory without bound, and a
1.7 KB SVG of nested ``<use>`` elements does the same when it is merely opened. So everything
that opens a user's file while indexing (counting its pages, reading its text layer,
validating an image, rendering a page, OCR) runs in a separate Python process whose address
space is capped (``RLIMIT_AS``) and which gets ``defaults.READ_TIMEOUT_SECONDS`` per request.
A file that runs past either limit, or crashes the worker, is skipped with a reason that says
which; the worker is replaced and the rest of the batch goes on. The catalog remembers the
refusal (with the file's size, mtime and hash), so the next run does not read the file again
until it changes (see planning.py).

A worker starts from the package's own entry point (``python -m smartcli.ingest.worker``),
never through multiprocessing, whose spawn runs the caller's ``__main__`` again (a script
without an ``if __name__ == "__main__":`` guard, a program read from stdin): whatever the
caller is, the worker is the same. A worker that cannot start is :class:`WorkerFailed` (an
engine error that stops the run), never a refusal of the file at hand.

Requests and answers are pickles framed by a length, over two pipes of the worker's own (their
descriptors are on its command line). Its stdout and stderr, where MuPDF, PyMuPDF and Tesseract
print their diagnostics, go to a file the worker reads back after each request: what a library
said while reading a file becomes that file's warnings, and can never be mistaken for an
answer. A worker exits when its request pipe closes (its parent ended, however).
"""

from __future__ import annotations

import os
import pickle
import select
import signal
import struct
import subprocess
import sys
import tempfile
import time

from smartcli import defaults
from smartcli.errors import ErrorKind, SmartError
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


def crash_reason(returncode: int | None, what: str | None = None) -> str:
    if returncode is not None and returncode < 0:
        try:
            how = signal.Signals(-returncode).name
        except ValueError:
            how = f"signal {-returncode}"
    else:
        how = f"exit status {returncode}"
    return f"crashed the reader ({how}{f', {what}' if what else ''})"


class WorkerFailed(SmartError):
    """A worker process could not start: no file is to blame, and none is marked."""

    def __init__(self, message: str, **details):
        super().__init__(ErrorKind.WORKER_FAILED, message, **details)


def python_executable() -> str:
    """The interpreter workers run on: this one. ``sys.executable`` names it, except where Python
    is embedded in another program (then it names that program, or nothing)."""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    candidates = (sys.executable, os.path.join(sys.exec_prefix, "bin", f"python{version}"), os.path.join(sys.exec_prefix, "bin", "python3"))
    for candidate in candidates:
        if candidate and os.path.basename(candidate).startswith("python") and os.access(candidate, os.X_OK):
            return candidate
    return sys.executable or "python3"


def _worker_environment() -> dict:
    """The caller's environment, with an import path that finds what this process imports
    (this package first, then every folder of ``sys.path``; never the current folder)."""
    env = dict(os.environ)
    package_parent = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    folders = [package_parent] + [p for p in sys.path if p and os.path.isabs(p) and os.path.isdir(p)]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(folders))
    return env


class Worker:
    """One worker process, started on the first request and replaced after a refusal.

    ``timeout`` seconds per request and ``memory_bytes`` of address space (0 or None: no limit
    to either). Not thread-safe: one thread asks at a time.
    """

    def __init__(self, timeout: float = defaults.READ_TIMEOUT_SECONDS, memory_bytes: int = defaults.READ_MEMORY_BYTES):
        self.timeout = timeout
        self.memory_bytes = memory_bytes
        self._proc: subprocess.Popen | None = None
        self._requests: int | None = None  # our ends of the two pipes
        self._answers: int | None = None

    def ask(self, message: tuple, what: str):
        """The worker's answer to ``message`` and what libraries printed meanwhile: ``(value, messages)``.

        Raises UnreadableFile: with a refusal reason (:func:`is_refusal`) when the request ran
        past the deadline or the memory limit, or crashed the worker; with the reader's own
        reason when the file cannot be read. ``what`` ("read", "render page 3") words a refusal.
        """
        self._start()
        try:
            send_message(self._requests, message)
        except OSError:  # the worker died while idle (killed from outside): a fresh one
            self.stop()
            self._start()
            send_message(self._requests, message)
        try:
            status, value, messages = receive_message(self._answers, time.monotonic() + self.timeout if self.timeout else None)
        except TimeoutError:
            self.stop()
            raise UnreadableFile(timeout_reason(self.timeout, what)) from None
        except EOFError:
            returncode = self.stop()
            raise UnreadableFile(crash_reason(returncode, None if what == "read" else what)) from None
        if status == "ok":
            return value, messages
        if status == "memory":
            self.stop()  # a worker that ran out of memory may hold it still
            raise UnreadableFile(memory_reason(self.memory_bytes, what))
        raise UnreadableFile(value)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    def _start(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            return
        self.stop()
        their_requests, self._requests = os.pipe()
        self._answers, their_answers = os.pipe()
        command = [
            python_executable(),
            "-m",
            "smartcli.ingest.worker",
            str(their_requests),
            str(their_answers),
            str(int(self.memory_bytes or 0)),
            repr(float(self.timeout or 0)),
        ]
        with tempfile.TemporaryFile() as startup_errors:
            try:
                self._proc = subprocess.Popen(
                    command,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=startup_errors,
                    pass_fds=(their_requests, their_answers),
                    env=_worker_environment(),
                    cwd="/",
                    close_fds=True,
                )
            except OSError as exc:
                self.stop()
                raise WorkerFailed(f"the reader process could not start ({command[0]}: {exc.strerror or exc})") from None
            finally:
                os.close(their_requests)
                os.close(their_answers)
            # The deadline is for reading a file, not for starting Python: wait for the worker's hello.
            try:
                receive_message(self._answers, time.monotonic() + STARTUP_SECONDS)
            except (TimeoutError, EOFError):
                returncode = self.stop()
                startup_errors.seek(0)
                said = [line.strip() for line in startup_errors.read().decode("utf-8", "replace").splitlines() if line.strip()]
                why = said[-1] if said else f"exit status {returncode}" if returncode is not None else "no answer"
                raise WorkerFailed(f"the reader process could not start ({command[0]}: {why})") from None

    def stop(self) -> int | None:
        """End the worker (if any); its exit status."""
        proc, self._proc = self._proc, None
        for fd in (self._requests, self._answers):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._requests = self._answers = None
        if proc is None:
            return None
        if proc.poll() is None:
            proc.kill()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        return proc.returncode

    close = stop


class SandboxedReader:
    """Reads source files (``discovery.read_document``) in a worker process, one file at a time.

    ``timeout`` seconds per file and ``memory_bytes`` of address space for the worker (0 or
    None: no limit). Not thread-safe: one thread calls it at a time.
    """

    def __init__(self, timeout: float = defaults.READ_TIMEOUT_SECONDS, memory_bytes: int = defaults.READ_MEMORY_BYTES):
        self.worker = Worker(timeout, memory_bytes)

    @property
    def timeout(self) -> float:
        return self.worker.timeout

    @property
    def memory_bytes(self) -> int:
        return self.worker.memory_bytes

    def read(self, source):
        """The :class:`~smartcli.ingest.discovery.Document` of ``source``, what libraries printed
        while reading it in its ``warnings``; raises UnreadableFile."""
        document, messages = self.worker.ask(("read", source.path, source.kind), "read")
        document.warnings = messages
        return document

    def count(self, source) -> int:
        """How many pages ``source`` will yield (``discovery.count_pages``); raises UnreadableFile."""
        return self.worker.ask(("count", source.path, source.kind), "read")[0]

    def render(self, path: str, page: int, target_pixels: int, max_pixels: int, dpi: float | None = None):
        """Page ``page`` of the PDF at ``path`` as an RGB ``PIL.Image`` (render.PageRenderer, in
        the worker); raises UnreadableFile, with a refusal reason (:func:`is_refusal`) when the
        page ran past the deadline or the memory limit, or crashed the worker."""
        from PIL import Image

        (mode, size, data), _ = self.worker.ask(("render", path, page, target_pixels, max_pixels, dpi), f"render page {page}")
        return Image.frombytes(mode, size, data)

    def picture(self, path: str, max_pixels: int):
        """The image at ``path`` as an RGB ``PIL.Image`` of at most ``max_pixels`` (render.load_image,
        in the worker); raises UnreadableFile like :meth:`render`."""
        from PIL import Image

        (mode, size, data), _ = self.worker.ask(("picture", path, max_pixels), "decode the image")
        return Image.frombytes(mode, size, data)

    def close(self) -> None:
        self.worker.stop()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def send_message(fd: int, message) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    view = memoryview(_HEADER.pack(len(data)) + data)
    while view:
        view = view[os.write(fd, view) :]


def receive_message(fd: int, deadline: float | None):
    """One framed message from the pipe ``fd``, raising TimeoutError past ``deadline`` (None:
    wait) and EOFError when the writer is gone."""
    header = _read_exactly(fd, _HEADER.size, deadline)
    (length,) = _HEADER.unpack(header)
    return pickle.loads(_read_exactly(fd, length, deadline))


def _read_exactly(fd: int, n: int, deadline: float | None) -> bytes:
    chunks, got = [], 0
    while got < n:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            poller = select.poll()  # not select.select: a descriptor past 1023 (a busy host program) is fine
            poller.register(fd, select.POLLIN)
            if not poller.poll(left * 1000):
                raise TimeoutError
        chunk = os.read(fd, min(n - got, 1 << 20))
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)
