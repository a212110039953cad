import numpy as np
import pytest
import torch

from smartcli.errors import OptionError
from smartcli.models.base import Encoded
from smartcli.search.scoring import Weights, maxsim, top_k


def unit(rng, *shape):
    x = rng.standard_normal(shape).astype(np.float32)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def reference_maxsim(query_tokens: np.ndarray, docs: list[np.ndarray]) -> np.ndarray:
    """Brute-force numpy MaxSim of one query against each document."""
    return np.array([float((query_tokens @ d.T).max(axis=1).mean()) for d in docs])


def test_maxsim_matches_numpy_reference_with_single_token_items_and_queries():
    rng = np.random.default_rng(0)
    lengths = [1, 5, 1, 17, 3, 1, 40]
    docs = [unit(rng, n, 16) for n in lengths]
    for query_len in (1, 2, 9):
        query = unit(rng, query_len, 16)
        got = maxsim(torch.from_numpy(query), torch.from_numpy(np.concatenate(docs)), torch.tensor(lengths))
        np.testing.assert_allclose(got.numpy()[0], reference_maxsim(query, docs), rtol=1e-5, atol=1e-6)


def test_maxsim_scores_several_queries_at_once_like_one_by_one():
    rng = np.random.default_rng(1)
    lengths = [3, 1, 8]
    docs = np.concatenate([unit(rng, n, 8) for n in lengths])
    queries = [unit(rng, n, 8) for n in (1, 4, 2)]
    together = maxsim(
        torch.from_numpy(np.concatenate(queries)), torch.from_numpy(docs), torch.tensor(lengths), torch.tensor([1, 4, 2])
    ).numpy()
    for i, q in enumerate(queries):
        alone = maxsim(torch.from_numpy(q), torch.from_numpy(docs), torch.tensor(lengths)).numpy()[0]
        np.testing.assert_allclose(together[i], alone, rtol=1e-6)


def test_weights_per_mode():
    assert Weights.for_mode("pooled", 3, 4) == Weights(1.0, 0.0)
    assert Weights.for_mode("late", 3, 4) == Weights(0.0, 1.0)
    assert Weights.for_mode("smart", 3, 4) == Weights(3, 4)
    assert not Weights.for_mode("pooled", 1, 1).needs_tokens
    with pytest.raises(OptionError, match="unknown mode") as raised:
        Weights.for_mode("bogus", 1, 1)
    assert raised.value.option == "mode"


def test_top_k_orders_best_first_and_breaks_ties_by_index():
    scores = np.array([0.1, 0.9, 0.5, 0.9, 0.2])
    assert top_k(scores, 3).tolist() == [1, 3, 2]
    assert top_k(scores, 10).tolist() == [1, 3, 2, 4, 0]
    assert top_k(scores, 0).tolist() == []


def fake_encoded(rng, n_tokens, dims):
    tokens = unit(rng, n_tokens, dims)
    return Encoded(
        pooled=unit(rng, dims),
        tokens=tokens,
        token_ids=np.arange(n_tokens, dtype=np.int32),
        spans=np.stack([np.arange(n_tokens), np.arange(n_tokens) + 1], axis=1).astype(np.int32),
    )


@pytest.mark.parametrize("chunk_size", [None, 1, 3])
def test_chunked_store_search_equals_brute_force(tmp_path, chunk_size):
    """Random unit vectors written through the real store; every chunking gives the reference ranking."""
    from tests.store_helpers import build_random_store

    rng = np.random.default_rng(2)
    store, docs = build_random_store(tmp_path, rng, token_counts=[1, 4, 2, 30, 1, 7, 12, 3, 1, 9], dims=12)
    from smartcli.search.searcher import Searcher

    query = fake_encoded(rng, 1, 12)
    searcher = Searcher(store, encoder=None, device="cpu", chunk_size=chunk_size)
    weights = Weights(1.0, 2.0)
    hits = searcher.search_encoded([query], weights, k=len(docs))[0]
    late_ref = reference_maxsim(query.tokens, [d.tokens.astype(np.float16).astype(np.float32) for d in docs])
    anchor_ref = np.array([d.pooled @ query.pooled for d in docs])
    fused_ref = anchor_ref + 2.0 * late_ref
    assert [h.item.page for h in hits] == [int(i) + 1 for i in np.argsort(-fused_ref, kind="stable")]
    for hit in hits:
        i = hit.item.page - 1
        assert hit.late == pytest.approx(late_ref[i], abs=1e-5)
        assert hit.anchor == pytest.approx(anchor_ref[i], abs=1e-5)
        assert hit.score == pytest.approx(fused_ref[i], abs=1e-4)
