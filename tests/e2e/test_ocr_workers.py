"""OCR worker processes end with `smart index`: Ctrl-C and kill -9 of the parent."""

import os
import signal
import subprocess
import sys
import time

import pytest

from tests.cli.test_ocr import SCANNED, needs_language_data, write_image_only_pdf
from tests.conftest import ROOT


def wait_for(condition, limit=120.0):
    """Poll ``condition`` until it holds; False if it never did (a hang guard, not a timing)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False


def running(pid):
    """True while ``pid`` runs (a zombie waiting for its new parent to reap it does not)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def ocr_workers_of(pid):
    """Live worker processes (OCR, the reader) whose parent is ``pid`` (from /proc)."""
    workers = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/stat") as f:
                parent = int(f.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                spawned = b"smartcli.ingest.worker" in f.read()
        except (OSError, ValueError, IndexError):
            continue
        if parent == pid and spawned:
            workers.append(int(entry))
    return workers


@needs_language_data
@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs /proc to find the worker processes")
@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "kill-9"])
def test_stopping_smart_index_stops_its_ocr_workers(tmp_path, stop):
    write_image_only_pdf(tmp_path / "long-scan.pdf", [(SCANNED + " ") * 40] * 12, size=(595, 842))
    with open(tmp_path / "err", "w") as err:  # not a pipe: a surviving worker would hold it open
        smart = subprocess.Popen(
            [sys.executable, "-m", "smartcli", "index", str(tmp_path / "long-scan.pdf"), "--store", str(tmp_path / "store")],
            stdout=subprocess.DEVNULL,
            stderr=err,
            cwd=ROOT,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # as in a terminal
        )
        try:
            assert wait_for(lambda: ocr_workers_of(smart.pid) or smart.poll() is not None)
            workers = ocr_workers_of(smart.pid)
            assert workers, "the OCR workers never started"
            smart.send_signal(stop)
            smart.wait(timeout=120)
        finally:
            smart.kill()
    assert smart.returncode == (130 if stop == signal.SIGINT else -signal.SIGKILL)
    assert wait_for(lambda: not any(running(pid) for pid in workers), limit=60)
    assert "Traceback" not in (tmp_path / "err").read_text()


def test_a_page_that_hangs_ocr_skips_its_file_and_the_other_pages_are_read(tmp_path):
    """Issue 13 item 1: OCR of a PDF page runs under the reader's deadline and memory limit.
    The XObject PDF is handed to OCR directly (the text pass would have refused it first)."""
    from smartcli.ingest.ocr import OcrRunner, resolve_settings
    from smartcli.store.catalog import FileRecord, PageRecord
    from smartcli.store.notes import Note
    from tests.attacks import xobject_bomb

    settings = resolve_settings("auto", "eng", 2)
    if settings.missing_languages:
        pytest.skip("Tesseract's eng.traineddata is not installed")
    bomb = xobject_bomb(tmp_path / "bomb.pdf")
    scan = tmp_path / "scan.pdf"
    write_image_only_pdf(scan, [SCANNED])
    records = [
        FileRecord(str(path), "pdf", 1, 1, None, [PageRecord(1, None, None, Note.NO_TEXT_LAYER, pictured=True)]) for path in (bomb, scan)
    ]
    with OcrRunner(settings, timeout=5) as runner:
        for record in records:
            runner.claim(record)
        runner.fill()
    assert (records[0].status, records[0].reason) == ("skipped", "took longer than 5 s to OCR page 1")
    assert records[1].status == "indexed" and "lighthouse" in (records[1].pages[0].text or "").lower(), records[1]
