"""OCR: a text channel for scanned PDF pages and pictures of text.

MuPDF, inside PyMuPDF, links Tesseract; it needs only Tesseract's trained language
files (``eng.traineddata`` ...), found through ``TESSDATA_PREFIX`` or the usual
install folders. A page is rendered to a pixmap, MuPDF writes it as a one-page PDF
with Tesseract's text layer, and that text layer is read back.

OCR is slow (seconds per page), so it runs in worker processes: the sandbox's workers
(sandbox.py: started from this package's own entry point whatever the caller is, each page
under the reader's deadline and memory limit). PyMuPDF objects cannot be pickled: a job
carries a file path and a page number and the worker opens the file itself. The indexer hands each freshly read file to :meth:`OcrRunner.claim`,
which marks the pages that want OCR and queues them at once; :meth:`OcrRunner.fill`
waits for a batch's pages before the batch is encoded and committed.
"""

from __future__ import annotations

import glob
import os
import queue
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import CancelledError, Future, as_completed
from dataclasses import dataclass

from smartcli import defaults
from smartcli.errors import OptionError, first_line
from smartcli.ingest.files import UnreadableFile
from smartcli.ingest.sandbox import Worker
from smartcli.store.notes import Note

OCR_MODES = ("auto", "always", "never")
DEFAULT_LANGUAGE = defaults.OCR_LANGUAGE
# Tesseract reads best at about 300 dpi (its documented sweet spot; 200 dpi lost words
# on the development scans).
OCR_DPI = 300
# In auto mode a PDF page is OCR'd when its text layer is empty, or has fewer letters and
# digits than this (a page number, a scanner's stamp such as "Scanned by ...") and shows a
# picture: a short text layer alone, such as a chapter title page, is all there is to read.
AUTO_MIN_CHARS = defaults.OCR_SHORT_TEXT_CHARS
# Small images are enlarged (at most 2x) until their longer side reaches this many
# pixels, so that screenshot-sized text is tall enough for Tesseract; huge ones are
# reduced to MAX_PIXELS.
SMALL_IMAGE_SIDE = 2000
MAX_PIXELS = 40_000_000

# OCR text is used only when at least this share of the letters of its words of 3+ letters
# belong to words of the word list (the packaged tokenizer's vocabulary), and there are at
# least READABLE_MIN_WORDS such words. Tesseract reads marks on a photo or glyphs drawn as
# boxes as "/ | wh Le (c) WZ Vy tie J" or "Pd PO Pd PC". Measured with
# benchmarks/ocr_garbage.py (docs/experiments.md) on 30 scanned development pages and 30 photos:
# scans score 0.34-0.94 (the lowest are pages of C++ identifiers), photos with 2+ known words
# 0.06-0.28, except the one photo that shows a line of real text.
READABLE_SHARE = 0.3
READABLE_MIN_WORDS = 2
# ... and the letters of those known words must make at least this share of the text's visible
# characters: garbage is mostly marks and one- or two-letter scraps, among which a few short
# words turn up by chance ("am 5 eS soe St 0see-e : : A ws eee 's*ae i. . eo. — 2 "Soo", read
# from a GNOME wallpaper, has 2 known words of 4 3+ letter ones). Measured (docs/experiments.md,
# "OCR garbage that looks like words"): 30 scanned development pages 0.22-0.84, 58 Debian
# wallpapers 0.00-0.16 (0.11 at most among those the share above lets through), the one
# wallpaper that shows a line of text 1.00.
READABLE_COVERAGE = 0.15
_LETTERS = re.compile(r"[^\W\d_]+")

_LANGUAGE = re.compile(r"^[A-Za-z0-9_]+(\+[A-Za-z0-9_]+)*$")
# Where distributions put the language files when TESSDATA_PREFIX is unset.
_TESSDATA_GLOBS = (
    "/usr/share/tesseract-ocr/*/tessdata",  # Debian, Ubuntu
    "/usr/share/tessdata",  # Fedora, Arch
    "/usr/local/share/tessdata",  # source builds, Homebrew on Intel
    "/opt/homebrew/share/tessdata",  # Homebrew on Apple silicon
    "/opt/local/share/tessdata",  # MacPorts
    "/usr/local/share/tesseract-ocr/*/tessdata",
)


# -- settings ----------------------------------------------------------------------------


@dataclass(frozen=True)
class OcrSettings:
    mode: str = defaults.OCR_MODE
    language: str = DEFAULT_LANGUAGE  # Tesseract syntax: "eng", "eng+deu"
    tessdata: str | None = None  # folder holding <language>.traineddata; None: none found
    workers: int = 1

    @property
    def languages(self) -> list[str]:
        return self.language.split("+")

    @property
    def missing_languages(self) -> list[str]:
        return [lang for lang in self.languages if not _has_language(self.tessdata, lang)]

    @property
    def enabled(self) -> bool:
        return self.mode != "never"

    @property
    def available(self) -> bool:
        return self.enabled and not self.missing_languages


def check_ocr_options(mode: str, language: str) -> None:
    """Raise :class:`OptionError` for an OCR mode or a language string that cannot work."""
    if mode not in OCR_MODES:
        raise OptionError(f"must be one of {', '.join(OCR_MODES)}, not {mode!r}", option="ocr")
    if not _LANGUAGE.match(language):
        raise OptionError(f"takes Tesseract language codes joined by '+' (eng, eng+deu), not {language!r}", option="ocr_lang")


def resolve_settings(mode: str, language: str, workers: int = 0) -> OcrSettings:
    """Settings with the language data folder found and ``workers`` (0: one per CPU) fixed.

    Raises :class:`OptionError` for a mode or language that cannot work.
    """
    check_ocr_options(mode, language)
    tessdata = find_tessdata(language.split("+")) if mode != "never" else None
    return OcrSettings(mode=mode, language=language, tessdata=tessdata, workers=workers or _cpu_count())


def find_tessdata(languages: list[str]) -> str | None:
    """``$TESSDATA_PREFIX`` when set, else the first install folder holding all ``languages``.

    With none holding them all, the first existing folder is returned (so the message
    about missing data can name where it looked), else None.
    """
    if os.environ.get("TESSDATA_PREFIX"):
        return os.environ["TESSDATA_PREFIX"]
    folders = [path for pattern in _TESSDATA_GLOBS for path in sorted(glob.glob(pattern), reverse=True) if os.path.isdir(path)]

    def holds_all(folder: str) -> bool:
        return all(_has_language(folder, lang) for lang in languages)

    found = next(filter(holds_all, folders), None) or next(filter(holds_all, _tesseract_reported_folder(folders)), None)
    return found or (folders[0] if folders else None)


def _tesseract_reported_folder(known: list[str]) -> list[str]:
    """The folder an installed ``tesseract`` program reports (PyMuPDF's own lookup, which runs it)."""
    import pymupdf

    try:
        folder = pymupdf.get_tessdata()
    except Exception:  # no tesseract program: PyMuPDF raises RuntimeError
        return []
    return [folder] if folder not in known and os.path.isdir(folder) else []


def _has_language(tessdata: str | None, language: str) -> bool:
    return bool(tessdata) and os.path.isfile(os.path.join(tessdata, f"{language}.traineddata"))


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


# -- one page (runs in a worker process) -------------------------------------------------


@dataclass(frozen=True)
class OcrJob:
    path: str
    kind: str  # "pdf" or "image"
    page: int  # 1-based
    language: str
    tessdata: str
    only_if_pictured: bool = False  # read a PDF page only when it shows an image
    timeout: float = 0  # seconds the worker may spend on the page (0: no limit); past it, it is killed


@dataclass(frozen=True)
class OcrResult:
    text: str
    error: str | None = None
    cpu_seconds: float = 0.0  # the worker's CPU time for this page
    ran: bool = True  # False: an only_if_pictured page without images, left alone
    refused: bool = False  # the page ran past the worker's limits or crashed it: its file is skipped


def recognize(job: OcrJob) -> OcrResult:
    """The normalized OCR text of one PDF page or image, read in this process; never raises but
    MemoryError. Runs in a sandbox worker (``sandbox.Worker``), which bounds its time and memory."""
    from smartcli.ingest.discovery import UnreadableFile, normalize_text

    start = time.process_time()
    try:
        pixmap = _pdf_page_pixmap(job) if job.kind == "pdf" else _image_pixmap(job.path)
        if pixmap is None:
            return OcrResult("", None, time.process_time() - start, ran=False)
    except UnreadableFile as exc:
        return OcrResult("", str(exc), time.process_time() - start)
    except MemoryError:
        raise
    except Exception as exc:
        what = "cannot render the page" if job.kind == "pdf" else "not a readable image"
        return OcrResult("", f"{what} ({_short(exc, job.path)})", time.process_time() - start)
    try:
        text = _tesseract_text(pixmap, job.language, job.tessdata)
    except MemoryError:
        raise
    except Exception as exc:
        return OcrResult("", f"OCR failed: {_short(exc, job.path)}", time.process_time() - start)
    return OcrResult(normalize_text(text), None, time.process_time() - start)


def _pdf_page_pixmap(job: OcrJob):
    """The page rendered for OCR, or None for an only_if_pictured page that shows no image."""
    import pymupdf

    from smartcli.ingest.files import open_pdf

    with open_pdf(job.path) as doc:
        page = doc[job.page - 1]
        if job.only_if_pictured and not page.get_image_info():  # get_image_info also sees inline images
            return None
        return page.get_pixmap(dpi=OCR_DPI, colorspace=pymupdf.csRGB, alpha=False)


def _image_pixmap(path: str):
    """An image file as an RGB pixmap: first frame, upright, transparency on white, OCR-sized."""
    import pymupdf

    from smartcli.ingest.render import load_image

    image = _enlarged(load_image(path, MAX_PIXELS))
    return pymupdf.Pixmap(pymupdf.csRGB, image.width, image.height, image.tobytes(), 0)


def _enlarged(image):
    from PIL import Image

    longer = max(image.size)
    if longer >= SMALL_IMAGE_SIDE:
        return image
    scale = min(2.0, SMALL_IMAGE_SIDE / longer)
    size = (round(image.width * scale), round(image.height * scale))
    return image.resize(size, Image.Resampling.LANCZOS)


def _tesseract_text(pixmap, language: str, tessdata: str) -> str:
    import pymupdf

    # MuPDF's OCR writer returns an empty text layer for grey pixmaps: it must be RGB.
    data = pixmap.pdfocr_tobytes(compress=False, language=language, tessdata=tessdata)
    with pymupdf.open("pdf", data) as doc:
        return doc[0].get_text("text")


def _short(exc: Exception, path: str) -> str:
    message = first_line(exc, limit=10_000)
    message = message.replace(f"'{path}'", "").replace(path, "").replace("  ", " ").strip(" :")
    return message[:200] or type(exc).__name__


# -- the indexer's side ------------------------------------------------------------------


def usable_chars(text: str | None) -> int:
    """Letters and digits, the measure of a usable text layer."""
    return sum(ch.isalnum() for ch in text or "")


_word_list: frozenset | None = None


def word_list() -> frozenset:
    """Whole words of the packaged MiniLM tokenizer's vocabulary (about 21,000, lower case)."""
    global _word_list
    if _word_list is None:
        from smartcli.models.base import default_model_path

        with open(default_model_path() / "vocab.txt", encoding="utf-8") as f:
            _word_list = frozenset(w for w in f.read().split() if w.isalpha())
    return _word_list


def readability(text: str) -> tuple[float, int]:
    """The share of the letters of ``text``'s 3+ letter words that are in :func:`word_list`, and how many such words."""
    words = [w for w in _LETTERS.findall(text.lower()) if len(w) >= 3]
    if not words:
        return 0.0, 0
    vocabulary = word_list()
    known = [w for w in words if w in vocabulary]
    return sum(map(len, known)) / sum(map(len, words)), len(known)


def coverage(text: str) -> float:
    """The share of ``text``'s visible characters that are letters of known 3+ letter words (:func:`word_list`)."""
    visible = sum(1 for ch in text if not ch.isspace())
    if not visible:
        return 0.0
    vocabulary = word_list()
    return sum(len(w) for w in _LETTERS.findall(text.lower()) if len(w) >= 3 and w in vocabulary) / visible


def is_readable(text: str) -> bool:
    """OCR text worth indexing: enough real words (READABLE_SHARE, READABLE_MIN_WORDS), and
    words, not marks, for the most part (READABLE_COVERAGE)."""
    share, known = readability(text)
    return share >= READABLE_SHARE and known >= READABLE_MIN_WORDS and coverage(text) >= READABLE_COVERAGE


@dataclass
class OcrStats:
    pages: int = 0  # pages whose text now comes from OCR
    attempted: int = 0  # pages OCR read
    nothing_found: int = 0
    unreadable: int = 0  # OCR found marks, not words (below READABLE_SHARE)
    failed: int = 0
    missing_data: int = 0  # pages left text-less for lack of language data
    cpu_seconds: float = 0.0  # summed over workers
    wall_seconds: float = 0.0  # while OCR was running

    def as_json(self, settings: OcrSettings) -> dict:
        return {
            "mode": settings.mode,
            "language": settings.language,
            "missing_languages": settings.missing_languages if settings.enabled else [],
            "tessdata": settings.tessdata,
            "workers": settings.workers,
            "pages": self.pages,
            "attempted": self.attempted,
            "nothing_found": self.nothing_found,
            "unreadable": self.unreadable,
            "failed": self.failed,
            "missing_language_data": self.missing_data,
            "seconds": round(self.wall_seconds, 2),
            "pages_per_second": round(self.attempted / self.wall_seconds, 3) if self.wall_seconds else None,
            "cpu_seconds_per_page": round(self.cpu_seconds / self.attempted, 3) if self.attempted else None,
        }


@dataclass
class _Waiting:
    record: object  # store.FileRecord
    page: object  # store.PageRecord
    future: Future
    job: OcrJob | None = None


class OcrRunner:
    """Decides which pages want OCR and runs it in a pool of worker processes.

    ``on_queued(n)`` and ``on_done(n)`` let a progress display follow the work;
    ``report`` gets one-line messages about single pages.
    """

    def __init__(
        self,
        settings: OcrSettings,
        report: Callable[[str], None] = lambda message: None,
        on_queued: Callable[[int], None] = lambda n: None,
        on_done: Callable[[int], None] = lambda n: None,
        timeout: float = defaults.READ_TIMEOUT_SECONDS,
        memory_bytes: int = defaults.READ_MEMORY_BYTES,
    ):
        self.settings = settings
        # Each page is OCR'd under the reader's limits: a page past them skips its file (remembered).
        self.timeout = timeout
        self.memory_bytes = memory_bytes
        self.report = report
        self.on_queued = on_queued
        self.on_done = on_done
        self.stats = OcrStats()
        self._pool: _Pool | None = None
        self._waiting: list[_Waiting] = []
        self._started: float | None = None

    def claim(self, record) -> int:
        """Mark and queue the pages of a freshly read file that OCR should read; returns how many."""
        if not self.settings.enabled or record.status != "indexed":
            return 0
        queued = 0
        for page in record.pages:
            textless = page.note in (Note.IMAGE_WITHOUT_TEXT, Note.NO_TEXT_LAYER)
            short = page.note is None and usable_chars(page.text) < AUTO_MIN_CHARS
            # auto: a short text layer is replaced only by OCR of a page that shows a picture, and
            # the text pass already said whether it does (pictured False: not rendered at all).
            wanted = (
                textless
                or (page.note is None and self.settings.mode == "always")
                or (short and getattr(page, "pictured", None) is not False)
            )
            if not wanted:
                continue
            if not self.settings.available:
                if textless:
                    page.note = Note.OCR_MISSING_LANGUAGE
                    self.stats.missing_data += 1
                continue
            page.note = Note.OCR_PENDING
            # A page the text pass looked at is known to show a picture; others are probed by the worker.
            only_if_pictured = self.settings.mode == "auto" and usable_chars(page.text) > 0 and getattr(page, "pictured", None) is None
            job = OcrJob(
                record.path,
                record.kind,
                page.page,
                self.settings.language,
                self.settings.tessdata,
                only_if_pictured,
                timeout=self.timeout or 0,
            )
            self._waiting.append(_Waiting(record, page, self._submit(job), job))
            queued += 1
        if queued:
            self.on_queued(queued)
        return queued

    def fill(self, page_done: Callable[[int], None] = lambda n: None) -> None:
        """Wait for the pages queued so far and put their OCR text in place (before their batch is encoded).

        Raises sandbox.WorkerFailed when a worker could not start (no page is marked for it)."""
        waiting, self._waiting = self._waiting, []
        if not waiting:
            return
        by_future = {w.future: w for w in waiting}
        for future in as_completed(by_future):
            result = future.result()
            self._apply(by_future[future], result)
            page_done(1)
            if result.ran:
                self.on_done(1)
            else:
                self.on_queued(-1)  # a page with no picture was not read after all: not OCR work
        self.stats.wall_seconds += time.perf_counter() - (self._started or time.perf_counter())
        self._started = None

    def close(self, abort: bool = False) -> None:
        """Shut the workers down; ``abort`` (an interrupt, an error) also stops the pages being read."""
        pool, self._pool = self._pool, None
        self._waiting = []
        if pool is not None:
            pool.close(abort)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *exc):
        self.close(abort=exc_type is not None)

    def _submit(self, job: OcrJob) -> Future:
        if self._pool is None:
            self._pool = _Pool(self.settings.workers, self.timeout, self.memory_bytes)
        if self._started is None:
            self._started = time.perf_counter()
        return self._pool.submit(job)

    def _apply(self, waiting: _Waiting, result: OcrResult) -> None:
        record, page = waiting.record, waiting.page
        if not result.ran:
            page.note = None  # its short text layer is all it has
            return
        self.stats.attempted += 1
        self.stats.cpu_seconds += result.cpu_seconds
        layer = page.text or ""
        if result.refused:  # like a file the reader refused: skipped, and not read again until it changes
            self.stats.failed += 1
            record.status, record.reason, record.pages = "skipped", result.error, []
            return
        if result.error:
            self.stats.failed += 1
            if record.kind == "image":
                record.status, record.reason, record.pages = "skipped", result.error, []
                return  # the indexer reports skipped files
            self.report(f"page {page.page} of {record.path}: {result.error}")
            if usable_chars(layer):
                page.note = None
            else:
                page.note, page.detail = Note.OCR_FAILED, result.error
            return
        readable = bool(result.text) and is_readable(result.text)
        if self.settings.mode == "always":
            better = readable
        else:
            better = readable and usable_chars(result.text) > usable_chars(layer)
        if better:
            page.text, page.ocr, page.note = result.text, self.settings.language, None
            self.stats.pages += 1
        elif usable_chars(layer):
            page.note = None  # its short text layer is all it has
        elif result.text:
            page.note = Note.OCR_UNREADABLE
            self.stats.unreadable += 1
        else:
            page.note = Note.OCR_NO_TEXT
            self.stats.nothing_found += 1


class _Pool:
    """OCR worker processes: ``size`` sandbox workers (sandbox.Worker, the reader's entry point,
    deadline and memory limit), each fed pages by a thread of its own, one page at a time. A page
    that runs past the limits or crashes its worker is the one refused; the worker is replaced."""

    def __init__(self, size: int, timeout: float, memory_bytes: int):
        self.size = max(1, size)
        self.timeout, self.memory_bytes = timeout, memory_bytes
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._workers: list[Worker] = []
        self._aborted = False

    def submit(self, job: OcrJob) -> Future:
        future: Future = Future()
        self._queue.put((job, future))
        if len(self._threads) < self.size:
            thread = threading.Thread(target=self._serve, name=f"smart-ocr-{len(self._threads)}", daemon=True)
            self._threads.append(thread)
            thread.start()
        return future

    def _serve(self) -> None:
        worker = Worker(self.timeout or 0, self.memory_bytes or 0)
        self._workers.append(worker)
        try:
            while True:
                item = self._queue.get()
                if item is None:
                    return
                job, future = item
                if not future.set_running_or_notify_cancel():
                    continue
                try:
                    future.set_result(self._read(worker, job))
                except BaseException as exc:  # WorkerFailed, or the run aborted under it
                    future.set_exception(exc)
        finally:
            worker.stop()

    def _read(self, worker: Worker, job: OcrJob) -> OcrResult:
        try:
            return worker.ask(("ocr", job), f"OCR page {job.page}")[0]
        except UnreadableFile as exc:
            if self._aborted:
                raise CancelledError from None
            return OcrResult("", str(exc), refused=True)

    def close(self, abort: bool) -> None:
        """Stop the workers once they are idle; ``abort``: cancel the pages queued and kill the
        workers now (pages half-read included)."""
        self._aborted = abort
        if abort:
            while True:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is not None:
                    item[1].cancel()
            for worker in list(self._workers):
                worker.stop()
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join(timeout=None if not abort else 30)
