"""Issue 13, item 9: what segments hold is checked. Each test damages a real store (a copy of
one built by real `smart index` runs) the way a disk or a careless hand would, and failed
before the fix: swapped segments were mis-attributed, a flipped offsets bit was "unexpected
error" (and a 2 PiB MemoryError in compact), a flipped pooled float scored 3.9e36, a flipped
byte in a page's text failed every search, and nothing said so."""

from __future__ import annotations

import shutil
import sqlite3
import warnings
from pathlib import Path

import pytest

from smartcli import Index, SmartWarning
from smartcli.errors import StoreDamaged
from smartcli.store.catalog import Store, integrity
from smartcli.store.catalog.schema import SCHEMA_VERSION
from smartcli.store.segments import Damage
from tests.conftest import copy_store
from tests.integrity import (
    flip_in_dataset,
    flip_text_byte,
    segment_files,
    swap_files,
    three_segments,  # noqa: F401 (a fixture)
    unique_text,
)

SCHEMA1 = Path(__file__).resolve().parents[1] / "data" / "schema1"


def searched(index: Index, query: str = "ferry timetable harbor", k: int = 10):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        hits = index.search(query, k=k)
    said = [str(w.message) for w in caught if issubclass(w.category, SmartWarning)]
    return hits, said


def names(hits) -> list[str]:
    return sorted(Path(h.path).name for h in hits)


def damaged_of(store: Path) -> list[dict]:
    with Index.open(store) as index:
        report = index.verify()
    return report.damaged


def test_each_new_segment_has_an_identity_in_the_file_and_the_catalog_and_checksums(three_segments):
    import h5py

    conn = sqlite3.connect(three_segments / "catalog.sqlite")
    recorded = dict(conn.execute("SELECT name, uid FROM segments").fetchall())
    conn.close()
    assert len(recorded) == 3 and len(set(recorded.values())) == 3
    for path in segment_files(three_segments):
        with h5py.File(path, "r") as h5:
            assert h5.attrs["segment_id"] == recorded[path.stem] and h5.attrs["segment_name"] == path.stem
            # Read whole: Fletcher-32 chunks; read in small runs: contiguous, with a CRC-32 per row.
            assert all(h5[key].fletcher32 for key in ("pooled", "offsets", "item_page", "crc_tokens", "span_offsets", "crc_span_bytes"))
            assert all(h5[key].chunks is None and h5[f"crc_{key}"].shape == h5["item_page"].shape for key in ("tokens", "span_bytes"))
            # Format 3: the page vocabularies as postings, read in place; the token states mapped
            # at an offset aligned for 64-bit reads. Format 4: the spans packed per row.
            assert h5.attrs["segment_format"] == 4 and "token_ids" not in h5 and "spans" not in h5
            assert all(h5[key].chunks is None for key in ("vocab_ids", "vocab_starts", "vocab_rows"))
            assert h5["tokens"].id.get_offset() % 64 == 0
    with Index.open(three_segments) as index:
        report = index.verify()
    assert report.healthy and report.segments == report.checksummed == 3 and report.texts == 3


def test_two_equal_size_segments_swapped_are_detected_never_misattributed(three_segments, tmp_path):
    store = copy_store(three_segments, tmp_path / "store")
    a, b, c = segment_files(store)
    assert a.stat().st_size == b.stat().st_size  # what the size check of `status` cannot tell apart
    swap_files(a, b)
    with Store.open(store) as opened:
        assert integrity.check(opened).damage == []  # the cheap check still sees nothing

    with Index.open(store) as index:
        hits, said = searched(index)
        assert names(hits) == ["c.pdf"]  # a's row is never answered with b's vectors
        assert len(said) == 2 and all("another segment's file" in line for line in said), said
        assert {f"{a.stem}.h5", f"{b.stem}.h5"} == {line.split()[1] for line in said}
        again, said_again = searched(index, "harbor route")
        assert names(again) == ["c.pdf"] and said_again == []  # one warning per process, not per query

    damaged = damaged_of(store)
    assert {d["segment"] for d in damaged} == {a.stem, b.stem}
    assert all("another segment's file" in d["problem"] for d in damaged)


def test_a_flipped_bit_in_offsets_fails_its_checksum_search_answers_from_the_rest(three_segments, tmp_path):
    store = copy_store(three_segments, tmp_path / "store")
    c = segment_files(store)[2]
    flip_in_dataset(c, "offsets", element=1, byte=6, bit=3)  # row 0 would end 2^51 tokens on

    with Index.open(store) as index:
        for query in ("ferry timetable", "harbor route", "timetable"):
            hits, said = searched(index, query)
            assert names(hits) == ["a.pdf", "b.pdf"]
            if query == "ferry timetable":
                assert said == [
                    f"segment {c.stem}.h5 is damaged: offsets fails its checksum (Fletcher-32); its 1 page(s) are left out of the results (the rest of the store answers)"
                ]
            else:
                assert said == []
        # Compaction (all three are small: merged) reads the damaged one first and leaves it out.
        result = index.compact()
    assert [(d.segment, d.dataset, d.problem) for d in result.damaged] == [(c.stem, "offsets", "fails its checksum (Fletcher-32)")]
    assert result.segments_rewritten == 2 and result.rows_kept == 2
    assert c.exists()
    assert [(d["segment"], d["dataset"]) for d in damaged_of(store)] == [(c.stem, "offsets")]
    with Index.open(store) as index:
        assert names(searched(index)[0]) == ["a.pdf", "b.pdf"]


def test_a_flipped_pooled_float_is_caught_no_huge_score(three_segments, tmp_path):
    store = copy_store(three_segments, tmp_path / "store")
    b = segment_files(store)[1]
    flip_in_dataset(b, "pooled", element=0, byte=3, bit=6)  # the exponent's top bit: about 1e38 times
    with Index.open(store) as index:
        hits, said = searched(index)
    assert names(hits) == ["a.pdf", "c.pdf"] and all(abs(h.anchor) <= 1.0 + 1e-5 and h.score < 100 for h in hits)
    assert len(said) == 1 and "pooled fails its checksum" in said[0]
    assert [(d["segment"], d["dataset"]) for d in damaged_of(store)] == [(b.stem, "pooled")]


@pytest.mark.parametrize("replacement", [0xFF, ord("#")], ids=["not-utf8", "still-utf8"])
def test_a_flipped_byte_in_a_pages_text_is_named_and_search_still_answers(sample_store, tmp_path, replacement):
    store = copy_store(sample_store[0], tmp_path / "store")
    piece, path, page = unique_text(store)
    flip_text_byte(store, piece, replacement)
    with Index.open(store) as index:
        hits, said = searched(index, "houseplants watering", k=20)
        assert hits  # before: every search failed ("Could not decode to UTF-8")
        assert len(said) == 1 and said[0].startswith(f"page {page} of {path}: its text"), said
        assert searched(index, "sourdough")[1] == []
    (damage,) = damaged_of(store)
    assert damage["segment"] is None and damage["dataset"] == f"page {page} of {path}"
    expected = "its text is not UTF-8 any more" if replacement == 0xFF else "its text differs from what was committed (CRC-32)"
    assert damage["problem"] in (expected, "its text differs from what was committed (CRC-32)")


# -- segments written before schema 3 (no identity, no checksums) --------------------------------


@pytest.fixture
def schema1_store(tmp_path):
    store = tmp_path / "store"
    shutil.copytree(SCHEMA1 / "store", store)
    return store


def test_an_old_store_is_migrated_in_place_and_its_segments_still_checked_for_shapes(schema1_store):
    with Index.open(schema1_store) as index:
        report = index.verify()
        assert report.healthy and report.segments >= 1 and report.checksummed == 0
        assert index.search("houseplants", k=3)
    conn = sqlite3.connect(schema1_store / "catalog.sqlite")
    assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == (str(SCHEMA_VERSION),)
    assert conn.execute("SELECT COUNT(*) FROM segments WHERE uid IS NULL").fetchone()[0] == report.segments
    conn.close()


@pytest.mark.parametrize(
    "dataset, element, byte, bit, problem",
    [
        ("offsets", 1, 6, 3, "are not increasing from 0 to the token count"),
        ("pooled", 0, 3, 6, "holds values an anchor (a unit vector) cannot have"),
    ],
)
def test_without_checksums_a_flipped_offset_or_anchor_is_still_caught(schema1_store, dataset, element, byte, bit, problem):
    (segment,) = segment_files(schema1_store)
    flip_in_dataset(segment, dataset, element, byte, bit)
    with Index.open(schema1_store) as index:
        hits, said = searched(index, "houseplants")
    assert hits == [] and len(said) == 1 and f"{dataset} {problem}" in said[0], said
    (damage,) = damaged_of(schema1_store)
    assert damage["dataset"] == dataset and damage["problem"].startswith(problem)


def test_compaction_rewrites_old_segments_as_checked_ones(schema1_store):
    with Index.open(schema1_store) as index:
        before = index.search("houseplants", k=5)
        result = index.compact()
        assert result.segments_rewritten >= 1 and result.damaged == []
        report = index.verify()
    assert report.healthy and report.checksummed == report.segments
    with Index.open(schema1_store) as index:
        after = index.search("houseplants", k=5)
    assert [(h.path, h.page, round(h.score, 5)) for h in after] == [(h.path, h.page, round(h.score, 5)) for h in before]


def test_the_cheap_and_the_thorough_check_agree_on_what_both_can_see(three_segments, tmp_path):
    """Issue 22: `smart status` and `smart status --verify` run one check. A missing segment, one
    cut short, and pages pointing at a segment the catalog does not list are found alike by
    both; the thorough check adds only what reading finds (the cut one cannot be read)."""
    store = copy_store(three_segments, tmp_path / "store")
    a, b, c = segment_files(store)
    a.unlink()
    size = b.stat().st_size
    with open(b, "r+b") as f:
        f.truncate(size // 2)
    conn = sqlite3.connect(store / "catalog.sqlite")
    with conn:
        conn.execute("DELETE FROM segments WHERE name = ?", (c.stem,))
    conn.close()

    with Store.open(store, verify=False) as opened:
        cheap = integrity.check(opened)
        thorough = integrity.check(opened, thorough=True)
    both = [
        Damage(None, None, f"pages point at segment {c.stem}.h5, which the catalog does not list"),
        Damage(a.stem, None, "is missing"),
        Damage(b.stem, None, f"is {size // 2} bytes on disk, {size} committed"),
    ]
    assert sorted(cheap.damage, key=str) == sorted(both, key=str)
    assert set(both) <= set(thorough.damage)
    assert {d.segment for d in thorough.damage if d not in both} == {b.stem}
    assert thorough.counts["segments"] == 2 and thorough.counts["bytes"] == 0  # neither could be read

    with Index.open(store) as index:
        assert index.status().store_problems == cheap.sentences()
        assert index.verify().damaged == [dict(d._asdict(), part=integrity.part_of(d)) for d in thorough.damage]
    assert f"segment {a.stem}.h5 is missing" in cheap.sentences()
    with pytest.raises(StoreDamaged, match=r"and 2 more problem\(s\)"):
        Store.open(store)
