"""The adapter's PCA initialisation (``tune(init="pca")``, `smart tune --init pca`), the pages encoded
again as the store keeps them, and the hard negatives the adapter trains against."""

import numpy as np
import pytest

from smartcli import ErrorKind, Index, SmartError
from smartcli.search.scoring import Weights
from smartcli.search.tuning import _hard_negatives, _item_tokens, as_stored, pca_init
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


def test_pages_encoded_again_are_scored_as_the_store_keeps_them(sample_store):
    # `--body` scores a page encoded again without its hidden sentence: as_stored must give the
    # token states the store would have kept for it (here: the stored sign bits, page for page).
    store_path, _ = sample_store
    with searching(store_path) as (store, encoder, searcher):
        items = list(range(len(searcher.items)))
        stored = _item_tokens(searcher, items)
        floats = encoder.encode_documents([searcher.items[i].text for i in items])
        assert all(np.array_equal(as_stored(floats[i].tokens, store.token_dtype), stored[i]) for i in items)


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
