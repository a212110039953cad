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
    for _ in range(2):  # warm: the second pass reads the resident segments
        got = searcher.late_scores(queries, admitted)
        np.testing.assert_allclose(got, searcher._late_scores_torch(queries, admitted), atol=1e-5, rtol=0)
    assert (searcher._cached_bytes > 0) == (cache_bytes > 0)
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
