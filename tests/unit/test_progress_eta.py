"""The ETA of `smart index`: from the throughput measured on committed pages, never from pages read."""

import pytest

from smartcli.cli.progress import RunCounts, Throughput, clock
from smartcli.ingest.indexer import CommitCounter
from smartcli.store.catalog import FileRecord, PageRecord


def test_the_eta_is_the_remaining_pages_at_the_measured_rate():
    t = Throughput(window=30.0)
    t.start(100.0)
    assert t.rate(101.0) is None and t.eta(101.0, 877) is None  # nothing committed yet: unknown, not 0
    t.update(110.0, 128)  # a first batch of 128 pages after 10 s
    assert t.rate(110.0) == pytest.approx(12.8)
    assert t.eta(110.0, 877) == pytest.approx((877 - 128) / 12.8)
    t.update(120.0, 256)
    assert t.eta(120.0, 877) == pytest.approx((877 - 256) / 12.8)


def test_while_nothing_is_committed_the_rate_falls_and_the_eta_grows():
    t = Throughput(window=30.0)
    t.start(0.0)
    t.update(10.0, 100)
    etas = [t.eta(now, 300) for now in (10.0, 20.0, 40.0, 80.0)]
    assert etas == sorted(etas) and etas[0] < etas[-1]  # never frozen while the work stalls
    assert t.eta(80.0, 300) == pytest.approx(200 / (100 / 80.0))


def test_the_rate_follows_the_recent_window_not_the_slow_start():
    t = Throughput(window=30.0)
    t.start(0.0)
    t.update(60.0, 10)  # the model loaded, a first slow batch
    for second in range(61, 121):
        t.update(float(second), 10 + 20 * (second - 60))  # then 20 pages/s
    assert t.rate(120.0) == pytest.approx(20.0)
    assert t.eta(120.0, 1210 + 200) == pytest.approx(200 / 20.0)


def test_done_work_has_an_eta_of_zero_and_clock_formats_it():
    t = Throughput()
    t.start(0.0)
    t.update(5.0, 40)
    assert t.eta(5.0, 40) == 0.0
    assert clock(54.4) == "0:00:54" and clock(3725) == "1:02:05" and clock(None) == "?"


def test_commit_counter_counts_committed_pages_and_corrects_the_total():
    reported = []
    counter = CommitCounter({"/a.pdf": 3, "/b.pdf": 2, "/c.epub": 1}, lambda *counts: reported.append(counts))
    assert counter.total == 6
    a = FileRecord(
        "/a.pdf",
        "pdf",
        1,
        1,
        "x",
        pages=[PageRecord(1, "t", None, None), PageRecord(2, None, None, "no_text_layer"), PageRecord(3, "t", None, None)],
    )
    a.pages[0].encoded = a.pages[2].encoded = object()
    b = FileRecord("/b.pdf", "pdf", 1, 1, "y", pages=[])
    b.status = "skipped"  # unreadable after all: its pages will never come
    counter([a, b], [a, b])
    assert reported[-1] == (1, 3, 2, 4)  # files, pages done, encoded, total (6 - 2 of b's)
    c = FileRecord("/c.epub", "pdf", 1, 1, "z", pages=[PageRecord(p, "t", None, None) for p in (1, 2, 3, 4)])
    counter([c], [])  # changed on disk while read: left for the next run, not committed
    assert reported[-1] == (1, 3, 2, 3)


def test_pages_written_ahead_of_their_files_commit_count_as_encoded():
    # A long file is encoded in slices; a slice written to a segment ahead of the commit lets its
    # token states go (``encoded`` None, ``stored`` set): those pages are encoded all the same.
    reported = []
    counter = CommitCounter({"/long.pdf": 3}, lambda *counts: reported.append(counts))
    long = FileRecord("/long.pdf", "pdf", 1, 1, "x", pages=[PageRecord(p, "t", None, None) for p in (1, 2, 3)])
    long.pages[0].stored, long.pages[1].stored = ("seg-a", 0, 12), ("seg-a", 1, 9)
    long.pages[2].encoded = object()
    counter([long], [long])
    assert reported[-1] == (1, 3, 3, 3)


def test_the_progress_line_says_done_encoded_rate_and_eta():
    counts = RunCounts(Throughput(window=30.0))
    counts.started(877)
    counts.throughput.start(0.0)
    counts.committed(3, 120, 118, 877)
    counts.throughput.samples[-1] = (10.0, 120)
    line = counts.line()
    assert line.startswith("120/877 pages done (118 encoded), 3 files committed, ")
    assert "pages/s, eta " in line
