"""The adapter's PCA initialisation (``tune(init="pca")``, `smart tune --init pca`) and the hooks of
variant (b), the adapter on both sides, which benchmarks/tune_both_sides.py measures offline."""


import numpy as np
import pytest

from smartcli import ErrorKind, Index, SmartError
from smartcli.search.scoring import Weights
from smartcli.search.tuning import Pair, _hard_negatives, _item_tokens, adapted_pages, as_stored, late_against, measure, pca_init, tune
from smartcli.store.catalog import Store
from smartcli.store.tuning import Adapter, load_adapter, read_tuning
from tests.conftest import copy_store, run_smart, searching


def test_pca_init_takes_the_top_principal_direction_out_of_the_query_tokens():
    rng = np.random.default_rng(0)
    direction = np.zeros(384, np.float32)
    direction[:3] = 1 / np.sqrt(3)
    x = rng.normal(size=(300, 384)).astype(np.float32) / np.sqrt(384) + 0.5 * rng.normal(size=(300, 1)).astype(np.float32) * direction
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    weight = pca_init(x, components=2)
    assert weight.shape == (384, 384) and weight.dtype == np.float32 and np.allclose(weight, weight.T, atol=1e-6)
    adapter = Adapter.identity(384)
    adapter.weight = weight
    y = adapter.apply(x)
    assert np.allclose(np.linalg.norm(y, axis=1), 1, atol=1e-5)
    before, after = np.abs(x @ direction).mean(), np.abs(y @ direction).mean()
    assert after < 0.3 * before  # the shared direction is mostly gone
    assert np.median((x * y).sum(1)) > 0.8  # the rest of each state stays


@pytest.fixture
def store_copy(sample_store, tmp_path):
    store, _ = sample_store
    return copy_store(store, tmp_path / "store")


def test_tune_with_pca_init_stores_an_adapter_that_search_uses(store_copy):
    query = "how do I keep the bread dough from sticking"
    with Index.open(store_copy) as index:
        untuned = {(h.path, h.page): round(h.late, 6) for h in index.search(query, k=20, mode="late")}
        summary = index.tune(adapter=True, guard=False, init="pca")
    assert summary.kept == "adapter" and summary.epochs >= 1
    with Store.open(store_copy) as store:
        record = read_tuning(store)
        assert record["variant"] == "query" and record["init"] == "pca"
        adapter = load_adapter(store, record)
    assert np.abs(adapter.weight).max() > 0 and np.isfinite(adapter.weight).all()
    with Index.open(store_copy) as index:
        tuned = {(h.path, h.page): round(h.late, 6) for h in index.search(query, k=20, mode="late")}
    assert tuned.keys() == untuned.keys() and tuned != untuned


def test_an_unknown_init_is_refused_before_anything_is_read(store_copy):
    with Index.open(store_copy) as index, pytest.raises(SmartError) as caught:
        index.tune(adapter=True, init="random")
    assert caught.value.kind is ErrorKind.BAD_OPTION and "random" in str(caught.value)
    ran = run_smart("tune", "--store", store_copy, "--adapter", "--init", "random")
    assert ran.returncode == 2 and "--init" in ran.stderr and "Traceback" not in ran.stderr


def test_both_sides_scores_the_re_encoded_pages_as_the_store_does_and_trains(sample_store):
    store_path, _ = sample_store
    with searching(store_path) as (store, encoder, searcher):
        items = list(range(len(searcher.items)))
        stored = _item_tokens(searcher, items)
        floats = {i: e.tokens for i, e in zip(items, encoder.encode_documents([searcher.items[i].text for i in items]))}
        # The pages encoded again give back the stored sign bits, and scoring them in memory is the store's MaxSim.
        assert all(np.array_equal(as_stored(floats[i], store.token_dtype), stored[i]) for i in items)
        queries = ["bread dough sticking", "router password", "repot a plant", "terminal copy files"]
        encoded = encoder.encode_queries(queries)
        late = searcher.score(encoded, Weights(0.0, 1.0))
        np.testing.assert_allclose(late_against(encoded, [stored[i] for i in late.columns]), late.late, atol=1e-4)
        # The identity adapter on both sides changes nothing.
        same = adapted_pages(floats, Adapter.identity(encoded[0].tokens.shape[1]), store.token_dtype)
        pairs = [Pair(q, {(searcher.items[0].path, searcher.items[0].page)}) for q in queries]
        grid = [Weights(1.0, 5.0), Weights(0.0, 1.0)]
        assert [m.key() for m in measure(searcher, encoded, pairs, grid, docs=same)] == [m.key() for m in measure(searcher, encoded, pairs, grid)]
        # Variant (b) trains on the float pages through the same adapter.
        page_pairs = [Pair(item.text.split(".")[0][:60], {(item.path, item.page)}) for item in searcher.items if item.text.strip()]
        result = tune(searcher, page_pairs, True, guard=False, epochs=2, both_sides=floats)
        assert result.adapter is not None and result.epochs >= 1 and np.isfinite(result.adapter.weight).all()


@pytest.mark.parametrize("shortlist", [None, 4])
def test_hard_negatives_are_the_pages_the_untuned_search_ranks_highest(sample_store, shortlist):
    store_path, _ = sample_store
    with searching(store_path, shortlist) as (store, encoder, searcher):
        encoded = encoder.encode_queries(["bread dough sticking", "router password", "repot a plant", "terminal copy files"])
        own = [[0], [], [1, 2], [3]]
        mined = _hard_negatives(searcher, encoded, own, n=3)
        weights = Weights(1.0, 5.0)
        scored = searcher.score(encoded, weights)  # the search path: 1-bit kernel, two-stage eligibility
        for row, negatives in enumerate(mined):
            fused = np.where(scored.eligible[row], scored.anchor[row] + 5.0 * scored.late[row], -np.inf)
            ranked = [scored.columns[j] for j in np.argsort(-fused, kind="stable") if np.isfinite(fused[j])]
            assert negatives == [i for i in ranked if i not in own[row]][:3]
            assert shortlist is None or len(set(ranked)) == shortlist
