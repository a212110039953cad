"""Segment format 4 (spans packed per row) on real pages; a format-3 store still opens and
searches as before, and compaction rewrites it in format 4 with the same results."""

import shutil
import sqlite3
from pathlib import Path

import numpy as np

from smartcli import Index
from smartcli.store.catalog import Store
from smartcli.store.catalog.reads import live_items
from smartcli.store.formats import encode_binary
from smartcli.store.segments import SEGMENT_FORMAT, pack_spans, unpack_spans
from tests.integrity import flip_in_dataset
from tests.unit.test_kernel import _store_of, real_pages  # noqa: F401  (real_pages: a fixture)

DATA = Path(__file__).resolve().parents[1] / "data"
FIXTURE_ROOT = "/tmp/fx3/corpus"  # where the format-3 fixture's corpus was when it was indexed
QUERIES = ("watering houseplants", "light and soil", "blank page", "leaves turning yellow")


def format3_copy(tmp_path) -> Path:
    """The format-3 fixture store (tests/data/format3) over a copy of its corpus, paths pointed at the copy."""
    store, corpus = tmp_path / "store", tmp_path / "corpus"
    shutil.copytree(DATA / "format3" / "store", store)
    shutil.copytree(DATA / "schema1" / "corpus", corpus)
    with sqlite3.connect(store / "catalog.sqlite") as conn:
        for file_id, path in conn.execute("SELECT id, path FROM files").fetchall():
            conn.execute(
                "UPDATE files SET path = ? WHERE id = ?", (bytes(path).replace(FIXTURE_ROOT.encode(), str(corpus).encode()), file_id)
            )
        conn.execute("UPDATE meta SET value = ? WHERE key = 'roots'", (f'["{corpus}"]',))
    return store


def segment_formats(root: Path) -> list[int]:
    """The format of each segment the catalog names (retired ones wait out a grace time beside them)."""
    import h5py

    with sqlite3.connect(root / "catalog.sqlite") as conn:
        names = sorted(name for (name,) in conn.execute("SELECT name FROM segments"))
    formats = []
    for name in names:
        with h5py.File(root / "segments" / f"{name}.h5", "r") as h5:
            formats.append(int(h5.attrs["segment_format"]))
    return formats


def stored_pages(root: Path) -> dict:
    """(file name, page) -> (text, token bits, spans, vocabulary ids) as the store reads them."""
    found = {}
    with Store.open(root) as store:
        for item in live_items(store):
            with store.open_segment(item.segment) as segment:
                a, b = segment.token_range(item.row)
                ids, starts, rows = segment.vocabulary()
                holding = np.repeat(np.asarray(ids), np.diff(np.asarray(starts)))
                vocabulary = np.sort(holding[np.asarray(rows) == item.row])
                found[(Path(item.path).name, item.page)] = (item.text, segment.stored_tokens(a, b).data, segment.spans(a, b), vocabulary)
    return found


def answers(root: Path) -> list:
    with Index.open(root) as index:
        return [[(Path(h.path).name, h.page, round(h.score, 6), h.snippet, h.highlights) for h in index.search(q, 5)] for q in QUERIES]


def test_packed_spans_unpack_to_what_was_packed_row_by_row():
    spans = np.array([[0, 0], [0, 4], [5, 9], [3, 7], [7, 7], [60000, 70000], [0, 0], [2, 3]], np.int32)
    offsets = np.array([0, 6, 6, 8])  # overlapping windows (a start before the last end), an empty row
    data, span_offsets = pack_spans(spans, offsets)
    for row in range(3):
        blob = data[span_offsets[row] : span_offsets[row + 1]].tobytes()
        np.testing.assert_array_equal(unpack_spans(blob, int(offsets[row + 1] - offsets[row])), spans[offsets[row] : offsets[row + 1]])


def test_format_4_keeps_real_pages_token_bits_spans_and_postings_and_packs_spans_small(tmp_path, real_pages):  # noqa: F811
    pages, encoder = real_pages
    store = _store_of(tmp_path / "s", pages, encoder, "binary")
    written = {text: e for _, _, text, e in pages}
    span_bytes = 0
    for item in live_items(store):
        expected = written[item.text]
        with store.open_segment(item.segment) as segment:
            assert segment._h5.attrs["segment_format"] == SEGMENT_FORMAT == 4 and "spans" not in segment._h5
            a, b = segment.token_range(item.row)
            np.testing.assert_array_equal(segment.stored_tokens(a, b).data, encode_binary(expected.tokens))
            np.testing.assert_array_equal(segment.spans(a, b), expected.spans)
            np.testing.assert_array_equal(segment.mapped_tokens().spans(item.row), expected.spans)  # what snippets read
            np.testing.assert_array_equal(segment.spans(a + 1, b + 1 if b < segment.offsets()[-1] else b)[: b - a - 1], expected.spans[1:])
            ids, starts, rows = segment.vocabulary()
            holding = np.repeat(np.asarray(ids), np.diff(np.asarray(starts)))
            np.testing.assert_array_equal(np.sort(holding[np.asarray(rows) == item.row]), np.unique(expected.token_ids))
    for path in (store.root / "segments").glob("*.h5"):
        import h5py

        with h5py.File(path, "r") as h5:
            span_bytes += h5["span_bytes"].size
    tokens = sum(len(e.tokens) for _, _, _, e in pages)
    assert span_bytes < tokens * 4 / 2  # half of format 3's uint16 pairs, at most, on these short pages
    store.close()


def test_a_format_3_store_searches_as_before_and_compaction_rewrites_it_in_format_4_with_equal_pages_and_results(tmp_path):
    root = format3_copy(tmp_path)
    assert segment_formats(root) == [3, 3, 3]
    before, pages_before = answers(root), stored_pages(root)
    assert any(before) and all(len(spans) for _, _, spans, _ in pages_before.values())

    with Index.open(root) as index:
        result = index.compact()
    assert result.segments_rewritten == 3
    assert segment_formats(root) == [4]
    pages_after = stored_pages(root)
    assert pages_after.keys() == pages_before.keys()
    for key, (text, bits, spans, vocabulary) in pages_before.items():
        text_after, bits_after, spans_after, vocabulary_after = pages_after[key]
        assert text_after == text
        np.testing.assert_array_equal(bits_after, bits)
        np.testing.assert_array_equal(spans_after, spans)
        np.testing.assert_array_equal(vocabulary_after, vocabulary)
    assert answers(root) == before
    with Index.open(root) as index:
        assert index.verify().healthy


def test_a_flipped_bit_in_packed_spans_is_found_by_verify_and_named(tmp_path):
    root = format3_copy(tmp_path)
    with Index.open(root) as index:
        index.compact()
    with sqlite3.connect(root / "catalog.sqlite") as conn:
        (name,) = conn.execute("SELECT name FROM segments").fetchone()
    segment = root / "segments" / f"{name}.h5"
    flip_in_dataset(segment, "span_bytes", element=3, byte=0, bit=1)
    with Index.open(root) as index:
        report = index.verify()
    assert [(d["segment"], d["dataset"]) for d in report.damaged] == [(segment.stem, "span_bytes")]
    assert "row 0 differs from what was written (CRC-32)" in report.damaged[0]["problem"]
