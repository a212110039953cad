"""The torch-free MaxSim kernels (kernel.py) against the reference: decode, multiply, max (scoring.maxsim)."""

import numpy as np
import pytest
import torch

from smartcli.search import kernel
from smartcli.search.scoring import Weights, maxsim
from smartcli.search.searcher import Searcher
from smartcli.store.formats import encode_binary, encode_int8
from smartcli.store.segments import StoredTokens, decode_stored
from tests.store_helpers import build_random_store, random_encoded


def unit(rng, *shape):
    x = rng.standard_normal(shape).astype(np.float32)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def stored_as(tokens: np.ndarray, fmt: str) -> StoredTokens:
    if fmt == "binary":
        return StoredTokens(encode_binary(tokens), None, tokens.shape[1])
    if fmt == "int8":
        data, scale = encode_int8(tokens)
        return StoredTokens(data, scale, tokens.shape[1])
    return StoredTokens(tokens.astype(np.float16), None, tokens.shape[1])


@pytest.mark.parametrize("fmt", ["binary", "int8", "float16"])
@pytest.mark.parametrize("dims", [384, 20])  # 20: the last byte of each packed row is half padding
@pytest.mark.parametrize("compiled", [True, False])
def test_page_maxima_equal_decoding_and_multiplying(fmt, dims, compiled):
    rng = np.random.default_rng(1)
    lengths = rng.integers(1, 300, 40)
    stored = stored_as(unit(rng, int(lengths.sum()), dims), fmt)
    stops = np.cumsum(lengths)
    starts = stops - lengths
    q = unit(rng, 9, dims)
    best, arg = kernel.page_maxima(q, stored, starts, stops, compiled=compiled)

    decoded = decode_stored([stored])
    sim = decoded @ q.T
    np.testing.assert_allclose(best, np.stack([sim[a:b].max(0) for a, b in zip(starts, stops)]), atol=1e-5, rtol=0)
    # The arg-max names a token whose similarity is the max (ties may pick either).
    picked = np.stack([sim[a + arg[p], np.arange(q.shape[0])] for p, a in enumerate(starts)])
    np.testing.assert_allclose(picked, best, atol=1e-5, rtol=0)
    # And the per-query mean equals the torch reference scorer.
    reference = maxsim(torch.from_numpy(q), torch.from_numpy(decoded), torch.from_numpy(lengths), torch.tensor([4, 5])).numpy()
    np.testing.assert_allclose(kernel.mean_per_query(best, [4, 5]), reference, atol=1e-5, rtol=0)


def test_the_compiled_kernel_is_there():
    """numba is a dependency: without it warm processes would fall back to the slower numpy path."""
    assert kernel.compiled_kernel() is not None


def test_pages_read_in_place_in_any_order_and_with_gaps():
    rng = np.random.default_rng(2)
    lengths = rng.integers(5, 50, 30)
    stored = stored_as(unit(rng, int(lengths.sum()), 64), "binary")
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    rows = np.array([3, 4, 17, 29, 0])
    q = unit(rng, 5, 64)
    for compiled in (True, False):
        best, _ = kernel.page_maxima(q, stored, offsets[rows], offsets[rows + 1], compiled=compiled)
        sim = decode_stored([stored]) @ q.T
        expected = np.stack([sim[offsets[r] : offsets[r + 1]].max(0) for r in rows])
        np.testing.assert_allclose(best, expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("fmt", ["binary", "int8", "float16"])
@pytest.mark.parametrize("cache_bytes", [0, 1 << 20])
def test_searcher_late_scores_equal_the_torch_path(tmp_path, fmt, cache_bytes):
    rng = np.random.default_rng(3)
    store, _ = build_random_store(tmp_path, rng, [3, 40, 1, 25, 7, 12, 9], dims=48, token_dtype=fmt, pages_per_segment=3)
    searcher = Searcher(store, None, device="cpu", cache_bytes=cache_bytes, shortlist=None)
    queries = [random_encoded(rng, 6, 48), random_encoded(rng, 3, 48)]
    admitted = [0, 2, 3, 5, 6]  # gaps: runs of rows, and a segment left out
    for _ in range(2):  # the second pass reads rows already checked
        got = searcher.late_scores(queries, admitted)
        np.testing.assert_allclose(got, searcher._late_scores_torch(queries, admitted), atol=1e-5, rtol=0)
    assert (searcher._typed is not None) == (cache_bytes > 0)  # a warm process runs the compiled kernels
    hits = searcher.search_encoded(queries, Weights(), k=3)
    assert all(len(h) == 3 for h in hits)


@pytest.mark.parametrize("cache_bytes", [0, 1 << 20])
def test_explanations_from_the_kernel_equal_reading_the_tokens_again(tmp_path, cache_bytes):
    rng = np.random.default_rng(4)
    store, _ = build_random_store(tmp_path, rng, [30, 12, 44, 9, 20], dims=64, token_dtype="binary", pages_per_segment=2)
    searcher = Searcher(store, None, device="cpu", cache_bytes=cache_bytes, shortlist=None)
    queries = [random_encoded(rng, 5, 64), random_encoded(rng, 3, 64)]
    for query, hits in zip(queries, searcher.search_encoded(queries, Weights(), k=4, texts=["a b c d e", "x y z"])):
        assert hits and all(h.matches for h in hits)
        text = "a b c d e" if len(query.tokens) == 5 else "x y z"
        again = searcher.explain(query, text, [h.item for h in hits])  # re-reads and multiplies
        for hit, (snippet, highlights, matches) in zip(hits, again):
            assert [m.doc_token for m in hit.matches] == [m.doc_token for m in matches]
            np.testing.assert_allclose([m.similarity for m in hit.matches], [m.similarity for m in matches], atol=1e-5)
            assert (hit.snippet, hit.highlights) == (snippet, highlights)


@pytest.fixture(scope="module")
def real_pages(sample_store, encoder):
    """Real pages of the sample corpus encoded by the real model, as (path, page, text, Encoded)."""
    from smartcli.store.catalog import Store
    from smartcli.store.catalog.reads import live_items

    with Store.open(sample_store[0]) as store:
        items = [i for i in live_items(store) if i.text][:14]
    encoded = encoder.encode_documents([i.text for i in items])
    return [(i.path, i.page, i.text, e) for i, e in zip(items, encoded)], encoder


def _store_of(root, pages, encoder, fmt):
    """The real pages written into a store of token format ``fmt``, three pages per segment."""
    from smartcli.store.catalog import FileRecord, PageRecord, Store, writes

    store = Store.open_for_writing(root)
    writes.bind_model(store, encoder.info, fmt)
    for start in range(0, len(pages), 3):
        records = [PageRecord(page=n, text=text, encoded=e) for _, n, text, e in pages[start : start + 3]]
        record = FileRecord(f"/real/part-{start}.pdf", "pdf", 1, 1, str(start), records)
        writes.commit_files(store, [record], writes.write_segment(store, [record]))
    return store


@pytest.mark.parametrize("fmt", ["binary", "int8", "float16"])
@pytest.mark.parametrize("warm", [True, False])
def test_the_kernels_on_mapped_segments_equal_the_reference_scorer_on_real_pages(tmp_path, real_pages, fmt, warm):
    """Every page of every segment in one call, read in place from the memory-mapped files, equals
    scoring.maxsim on the decoded states within 1e-5, with the arg-max naming a maximal token."""
    pages, encoder = real_pages
    store = _store_of(tmp_path / fmt, pages, encoder, fmt)
    searcher = Searcher(store, None, device="cpu", cache_bytes=(1 << 20) if warm else 0, shortlist=None)
    queries = encoder.encode_queries(["how do I change the default terminal", "tyre pressure", "watering houseplants in winter"])
    admitted = np.array([i for i in (0, 2, 3, 5, 6, 7, 10, 11) if i < len(searcher)])  # runs, gaps, segments left out
    got = searcher.late_scores(queries, admitted)
    decoded = [searcher.page_tokens(int(i)) for i in admitted]
    lengths = torch.tensor([len(d) for d in decoded])
    q_lengths = torch.tensor([len(q.tokens) for q in queries])
    q_all = torch.from_numpy(np.concatenate([q.tokens for q in queries]))
    reference = maxsim(q_all, torch.from_numpy(np.concatenate(decoded)), lengths, q_lengths).numpy()
    np.testing.assert_allclose(got, reference, atol=1e-5, rtol=0)
    best, arg = searcher.last_match
    for column, page in enumerate(decoded):
        sims = page @ q_all.numpy().T
        np.testing.assert_allclose(sims[arg[column], np.arange(sims.shape[1])], best[column], atol=1e-5, rtol=0)


def test_the_hamming_estimate_is_what_the_query_signs_give_on_real_pages(tmp_path, real_pages):
    """kernel.hamming_late: each query token taken as mean|q| * sign(q) against the stored signs,
    max over the page's tokens, mean over the query's tokens (the numpy reference)."""
    pages, encoder = real_pages
    store = _store_of(tmp_path / "binary", pages, encoder, "binary")
    searcher = Searcher(store, None, device="cpu", cache_bytes=1 << 20)
    (query,) = encoder.encode_queries(["how do I change the default terminal"])
    everything = np.arange(len(searcher))
    got = searcher._estimated_late(query, everything)
    dims = encoder.info.dims
    q_signs = np.where(query.tokens >= 0, 1.0, -1.0) * np.abs(query.tokens).mean(axis=1, keepdims=True)
    for index, value in zip(everything, got):
        signs = np.sign(searcher.page_tokens(int(index)))  # the stored bits as ±1
        expected = (signs @ q_signs.T).max(axis=0).mean() / (np.sqrt(dims) * kernel.BINARY_SHRINK)
        assert value == pytest.approx(expected, abs=1e-5)
    # And it ranks like the exact MaxSim: the estimate's best pages are the exact best ones.
    exact = searcher.late_scores([query], everything)[0]
    assert set(np.argsort(-got)[:3]) & set(np.argsort(-exact)[:3])


def test_a_flipped_token_byte_is_caught_when_its_row_is_first_read(tmp_path, real_pages):
    from smartcli.errors import StoreDamaged

    pages, encoder = real_pages
    store = _store_of(tmp_path / "binary", pages, encoder, "binary")
    searcher = Searcher(store, None, device="cpu", cache_bytes=1 << 20, shortlist=None)
    name = searcher.items[4].segment
    path = store.segment_path(name)
    import h5py

    with h5py.File(path, "r") as h5:
        offset = h5["tokens"].id.get_offset()
        row_start = int(h5["offsets"][searcher.items[4].row])
    with open(path, "r+b") as f:
        f.seek(offset + row_start * 48 + 5)
        byte = f.read(1)
        f.seek(offset + row_start * 48 + 5)
        f.write(bytes([byte[0] ^ 0x10]))
    fresh = Searcher(store, None, device="cpu", cache_bytes=1 << 20, shortlist=None)
    with pytest.raises(StoreDamaged, match="CRC-32"):
        fresh._maxima(encoder.encode_queries(["terminal"])[0].tokens, np.array([4]))


def test_binary_tables_hold_each_byte_values_dot_product_with_each_query_token():
    """Entry (j, v, q) is query token q's dot product with byte position j holding byte value v,
    in the decoded 1-bit scale (dims not a multiple of 8 included)."""
    from smartcli.search.kernel import binary_tables
    from smartcli.store.formats import decode_binary

    rng = np.random.default_rng(9)
    for dims, n_q in ((64, 3), (100, 8), (384, 12)):
        q = rng.standard_normal((n_q, dims)).astype(np.float32)
        tables = binary_tables(q, dims)
        nbytes = (dims + 7) // 8
        assert tables.shape == (nbytes, 256, n_q) and tables.flags.c_contiguous and tables.dtype == np.float32
        for j in (0, nbytes - 1):
            for v in (0, 1, 170, 255):
                packed = np.zeros((1, nbytes), np.uint8)
                packed[0, j] = v
                decoded = decode_binary(packed, dims)[0]
                lo, hi = 8 * j, min(dims, 8 * j + 8)  # the dimensions byte j holds
                expected = q[:, lo:hi] @ decoded[lo:hi]
                np.testing.assert_allclose(tables[j, v], expected, atol=1e-6)
