"""Build stores of random unit vectors through the real store code (no model needed)."""

import numpy as np

from smartcli.models.base import Encoded, ModelInfo
from smartcli.store.catalog import FileRecord, PageRecord, Store, writes

RANDOM_MODEL = ModelInfo(spec="random", name="random", fingerprint="0" * 16, family="text", dims=0, pooling="mean", max_length=256)


def random_encoded(rng, n_tokens, dims):
    def unit(*shape):
        x = rng.standard_normal(shape).astype(np.float32)
        return x / np.linalg.norm(x, axis=-1, keepdims=True)

    return Encoded(
        pooled=unit(dims),
        tokens=unit(n_tokens, dims),
        token_ids=np.arange(n_tokens, dtype=np.int32),
        spans=np.stack([np.arange(n_tokens) * 2, np.arange(n_tokens) * 2 + 1], axis=1).astype(np.int32),
    )


def build_random_store(root, rng, token_counts, dims, token_dtype="float16", pages_per_segment=4):
    """One PDF-like file whose page i+1 has token_counts[i] tokens; returns (store, encodings)."""
    info = ModelInfo(**{**RANDOM_MODEL.__dict__, "dims": dims})
    store = Store.open_for_writing(root / "store")
    writes.bind_model(store, info, token_dtype)
    docs = [random_encoded(rng, n, dims) for n in token_counts]
    for start in range(0, len(docs), pages_per_segment):
        pages = [
            PageRecord(page=i + 1, text="x " * token_counts[i], encoded=docs[i])
            for i in range(start, min(start + pages_per_segment, len(docs)))
        ]
        record = FileRecord(path=f"/random/doc-{start}.pdf", kind="pdf", size=1, mtime_ns=1, sha256=str(start), pages=pages)
        writes.commit_files(store, [record], writes.write_segment(store, [record]))
    return store, docs


def snapshot(root):
    """Everything a store's last committed state holds, keyed by (path, page), read through the real store code.

    Values: (kind, text, pooled, tokens, vocabulary, spans) with arrays as float32 / int32 (the
    vocabulary: the page's distinct token ids, as the segment's postings keep them); pages without
    vectors have None arrays.
    """
    store = Store.open(root)
    try:
        result = {}
        rows = store.conn.execute(
            """SELECT files.path, items.page, files.kind, items.text, items.segment, items.row, items.n_tokens
               FROM items JOIN files ON files.id = items.file_id"""
        ).fetchall()
        segments = {}
        for path, page, kind, text, segment, row, n_tokens in rows:
            key = (path.decode("utf-8", "surrogateescape"), page)
            assert key not in result, f"duplicate item {key}"
            if segment is None:
                result[key] = (kind, text, None, None, None, None)
                continue
            if segment not in segments:
                segments[segment] = store.open_segment(segment)
            segment_file = segments[segment]
            start, stop = segment_file.token_range(row)
            assert stop - start == n_tokens
            result[key] = (
                kind,
                text,
                segment_file.pooled([row])[0],
                segment_file.tokens(start, stop),
                page_vocabulary(segment_file, row),
                segment_file.spans(start, stop).astype(np.int32),
            )
        for h5 in segments.values():
            h5.close()
        return result
    finally:
        store.close()


def page_vocabulary(segment, row: int) -> np.ndarray:
    """The distinct vocabulary ids of a segment's row, from its postings (Segment.vocabulary)."""
    ids, starts, rows = segment.vocabulary()
    holding = np.repeat(np.asarray(ids), np.diff(np.asarray(starts)))
    return np.sort(holding[np.asarray(rows) == row]).astype(np.int32)


def assert_same_index(actual, expected, pooled_atol=1e-5, token_atol=2e-3):
    """Two snapshots hold the same items with the same text and (up to float noise of batching) the same vectors."""
    assert sorted(actual) == sorted(expected)
    for key, (kind, text, pooled, tokens, ids, spans) in expected.items():
        got = actual[key]
        assert got[0] == kind and got[1] == text, key
        if pooled is None:
            assert got[2] is None, key
            continue
        np.testing.assert_allclose(got[2], pooled, atol=pooled_atol, err_msg=str(key))
        np.testing.assert_allclose(got[3], tokens, atol=token_atol, err_msg=str(key))
        np.testing.assert_array_equal(got[4], ids, err_msg=str(key))
        np.testing.assert_array_equal(got[5], spans, err_msg=str(key))


def empty_random_store(root, dims, token_dtype="float16"):
    store = Store.open_for_writing(root)
    writes.bind_model(store, ModelInfo(**{**RANDOM_MODEL.__dict__, "dims": dims}), token_dtype)
    return store


def add_random_files(store, rng, files, dims):
    """Commit ``{path: [token count of each page]}`` in one new segment; returns {(path, page): Encoded}.

    Each file's sha256 is ``"sha:" + path``.
    """
    records, encodings = [], {}
    for path, counts in files.items():
        pages = []
        for number, n_tokens in enumerate(counts, 1):
            encodings[(path, number)] = random_encoded(rng, n_tokens, dims)
            pages.append(PageRecord(page=number, text=f"{path} page {number}", encoded=encodings[(path, number)]))
        records.append(FileRecord(path=path, kind="pdf", size=1, mtime_ns=1, sha256=f"sha:{path}", pages=pages))
    writes.commit_files(store, records, writes.write_segment(store, records))
    return encodings


def remove_paths(store, paths) -> None:
    """Remove files from the catalog in one transaction, as an index run that found them gone does."""
    from smartcli.store.catalog import CatalogChanges

    writes.apply_changes(store, CatalogChanges(removals=list(paths)))
