"""The tuning record and the adapter file: the identity adapter, round trips, another model's record."""

import numpy as np

from smartcli.store.catalog import Store
from smartcli.store.catalog.writes import write_tuning_record
from smartcli.store.tuning import Adapter, clear_tuning, load_adapter, read_tuning, write_tuning
from tests.conftest import copy_store


def test_the_zero_initialised_adapter_is_the_identity_on_unit_rows():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, 16)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    np.testing.assert_allclose(Adapter.identity(16).apply(x), x, atol=1e-6)
    changed = Adapter.identity(16)
    changed.weight = rng.normal(size=(16, 16)).astype(np.float32) * 0.1
    y = changed.apply(x)
    assert not np.allclose(y, x) and np.allclose(np.linalg.norm(y, axis=1), 1.0, atol=1e-5)


def test_record_and_adapter_round_trip_and_clear(sample_store, tmp_path):
    store_dir = copy_store(sample_store[0], tmp_path / "store")
    rng = np.random.default_rng(1)
    with Store.open_for_writing(store_dir) as store:
        dims = store.model.dims
        adapter = Adapter(*(rng.normal(size=s).astype(np.float32) for s in ((dims,), (dims,), (dims, dims), (dims,))))
        write_tuning(store, {"lambda_anchor": 0.0, "lambda_late": 1.0}, adapter)
    with Store.open(store_dir) as store:
        record = read_tuning(store)
        assert record["lambda_late"] == 1.0 and record["model_fingerprint"] == store.model.fingerprint
        assert (store_dir / record["adapter"]).is_file()
        loaded = load_adapter(store, record)
        np.testing.assert_array_equal(loaded.weight, adapter.weight)
        # A record made for another model is not used.
        write_tuning_record(store, dict(record, model_fingerprint="other"))
        assert read_tuning(store) is None
    with Store.open_for_writing(store_dir) as store:
        assert clear_tuning(store) is True
        assert read_tuning(store) is None and clear_tuning(store) is False
