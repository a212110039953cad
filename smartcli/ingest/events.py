"""What a long operation (update, sync, tune) tells its caller while it works."""

from __future__ import annotations


class UpdateEvents:
    """What an :meth:`Index.update` run tells its caller while it works (all optional).

    Subclass and override: ``message`` gets one-line reports (a skipped file, a page OCR
    could not read); with ``wants_progress`` set, ``started(total_pages)`` comes once the
    run is planned, then ``pages_done(n)`` (pages read), ``encoded(n)`` (pages encoded, before
    their files are committed: a long file's slices are encoded and written ahead of its commit)
    and ``committed(...)`` (what is kept);
    OCR work is announced by ``ocr_queued(n)`` (negative for queued pages that turned out to
    need no OCR) and ``ocr_done(n)`` (pages OCR read: the summary's ``attempted``);
    ``waiting()`` when another writer holds the store and ``wait`` is set; ``planned(plan)``
    once the run knows what it will add, update, move, copy and remove (a
    :class:`~smartcli.ingest.planning.Plan`), before it changes anything.
    """

    wants_progress = False

    def message(self, text: str) -> None:
        pass

    def started(self, total_pages: int) -> None:
        pass

    def pages_done(self, n: int) -> None:
        pass

    def encoded(self, n: int) -> None:
        pass

    def ocr_queued(self, n: int) -> None:
        pass

    def ocr_done(self, n: int) -> None:
        pass

    def waiting(self) -> None:
        pass

    def planned(self, plan) -> None:
        pass

    def committed(self, files: int, pages: int, encoded: int, total_pages: int) -> None:
        """After each committed batch (with ``wants_progress``), the run's counts so far: files
        committed, pages finished (encoded, or recorded as not encodable), pages encoded, and
        ``total_pages`` the run will finish in all (the estimate of ``started``, corrected as
        files are read). Unlike ``pages_done`` (pages read), these count only what is kept."""
        pass
