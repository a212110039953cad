"""A worker process of the sandbox (sandbox.py): ``python -m smartcli.ingest.worker REQUESTS ANSWERS MEMORY TIMEOUT``.

It reads framed requests from the pipe ``REQUESTS`` and writes framed answers to ``ANSWERS``
(file descriptors it was given), under an address-space limit of ``MEMORY`` bytes; each request
runs under a backstop alarm past ``TIMEOUT`` seconds, should its parent (which kills it at the
deadline) be gone. Its stdout and stderr go to an unlinked file read back after each request:
what the libraries printed while reading a file comes back as that file's warnings. It exits
when ``REQUESTS`` closes.

Requests: ``("read", path, kind)`` (discovery.read_document), ``("count", path, kind)``
(discovery.count_pages), ``("render", path, page, target_pixels, max_pixels, dpi)``
(render.PageRenderer), ``("picture", path, max_pixels)`` (render.load_image) and ``("ocr", job)``
(ocr.recognize). Answers: ``(status, value,
messages)``, status "ok", "unreadable" (value: the reason) or "memory".
"""

from __future__ import annotations

import os
import resource
import signal
import sys
import tempfile

import pymupdf

# Everything a request needs is imported before the hello: a worker that cannot import it failed
# to start (sandbox.WorkerFailed), which no file is to blame for.
from smartcli.errors import first_line
from smartcli.ingest.discovery import SourceFile, count_pages, read_document
from smartcli.ingest.files import UnreadableFile, _quiet_pymupdf
from smartcli.ingest.ocr import recognize
from smartcli.ingest.render import PageRenderer, load_image
from smartcli.ingest.sandbox import receive_message, send_message

# What a library may print about one file (the rest is dropped), and the warnings kept of it.
MESSAGE_BYTES = 64 * 1024
MESSAGE_LINES = 5
# A worker's own backstop past the parent's deadline: it ends itself should the parent be gone.
BACKSTOP_SECONDS = 30


class _Output:
    """The worker's stdout and stderr (file descriptors 1 and 2, and Python's streams over them),
    sent to an unlinked file that is read back and emptied after each request."""

    def __init__(self):
        self.file = tempfile.TemporaryFile()
        for fd in (1, 2):
            os.dup2(self.file.fileno(), fd)
        sys.stdout = sys.stderr = self
        pymupdf.set_messages(stream=self)  # PyMuPDF kept the stdout it found at its import

    def write(self, text: str) -> int:
        try:
            os.write(self.file.fileno(), text.encode("utf-8", "replace"))
        except OSError:  # past the size cap (RLIMIT_FSIZE): the rest is dropped
            pass
        return len(text)

    def flush(self) -> None:
        pass

    def take(self) -> list[str]:
        """The lines printed since the last call, each once, at most MESSAGE_LINES of them."""
        fd = self.file.fileno()
        data = os.pread(fd, MESSAGE_BYTES, 0)
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)  # the offset descriptors 1 and 2 share
        lines = (line.strip() for line in data.decode("utf-8", "replace").splitlines())
        return list(dict.fromkeys(line[:300] for line in lines if line))[:MESSAGE_LINES]


def _serve(requests_fd: int, answers_fd: int, memory_bytes: int, timeout: float) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # past the output cap, a write fails instead
    _quiet_pymupdf()
    output = _Output()
    if memory_bytes:
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    # What libraries print is kept in a file: bounded, however much a hostile file makes them say.
    resource.setrlimit(resource.RLIMIT_FSIZE, (16 * MESSAGE_BYTES, 16 * MESSAGE_BYTES))
    send_message(answers_fd, ("ready", None, []))
    state: dict = {}
    while True:
        try:
            request = receive_message(requests_fd, None)
        except EOFError:
            return  # the parent is gone or done
        if timeout:
            # The parent kills a worker past its deadline; should the parent be gone, SIGALRM's
            # default action ends the worker even inside MuPDF or Tesseract.
            signal.setitimer(signal.ITIMER_REAL, timeout + BACKSTOP_SECONDS)
        answer = _answer(request, state)
        signal.setitimer(signal.ITIMER_REAL, 0)
        # MuPDF holds back a message repeated from the last file: each file's own are said again.
        pymupdf.mupdf.fz_flush_warnings()
        messages = [m for m in output.take() if not m.startswith("... repeated")]
        pymupdf.TOOLS.reset_mupdf_warnings()  # PyMuPDF keeps every warning otherwise
        try:
            send_message(answers_fd, (*answer, messages if request[0] == "read" else []))
        except MemoryError:
            send_message(answers_fd, ("memory", None, []))


def _answer(request: tuple, state: dict) -> tuple[str, object]:
    operation, *arguments = request
    try:
        return "ok", _OPERATIONS[operation](state, *arguments)
    except UnreadableFile as exc:
        return "unreadable", str(exc)
    except MemoryError:
        return "memory", None
    except Exception as exc:  # anything else a parser raises: the file is unreadable
        return "unreadable", f"cannot be read ({first_line(exc)})"


def _read(state, path: str, kind: str):
    return read_document(SourceFile(path, kind, 0, 0))


def _count(state, path: str, kind: str) -> int:
    return count_pages(SourceFile(path, kind, 0, 0))


def _render(state, path: str, page: int, target_pixels: int, max_pixels: int, dpi):
    renderer = state["renderer"] = _renderer(state.get("renderer"), target_pixels, max_pixels, dpi)  # keeps its document open
    image = renderer.render(path, page)
    return image.mode, image.size, image.tobytes()


def _picture(state, path: str, max_pixels: int):
    image = load_image(path, max_pixels)
    return image.mode, image.size, image.tobytes()


def _ocr(state, job):
    return recognize(job)


_OPERATIONS = {"read": _read, "count": _count, "render": _render, "picture": _picture, "ocr": _ocr}


def _renderer(current, target_pixels: int, max_pixels: int, dpi):
    if current is not None and (current.target_pixels, current.max_pixels, current.dpi) == (target_pixels, max_pixels, dpi):
        return current
    if current is not None:
        current.close()
    return PageRenderer(target_pixels, max_pixels, dpi)


def main(argv: list[str]) -> None:
    requests_fd, answers_fd, memory_bytes = (int(a) for a in argv[:3])
    _serve(requests_fd, answers_fd, memory_bytes, float(argv[3]) if len(argv) > 3 else 0.0)


if __name__ == "__main__":
    main(sys.argv[1:])
