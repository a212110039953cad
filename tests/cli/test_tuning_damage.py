"""Issue 26, item 6 (and 13, `tune --reset`): the tuning adapter is part of the store, checksummed
in the tuning record; a damaged one is named by `smart status --verify`, and searches go on untuned
with one warning naming `smart tune --reset`. A reset deletes only tune's own files."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from smartcli.store.catalog import Store
from smartcli.store.catalog.writes import write_tuning_record
from smartcli.store.tuning import Adapter, read_tuning, write_tuning
from tests.conftest import copy_store, run_smart

QUERIES = "terminal\nwatering the plants\nbread\n"


def truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def flip_a_bit(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x10
    path.write_bytes(bytes(data))


def empty(path):
    path.write_bytes(b"")


def rewritten(change):
    def damage(path):
        with np.load(path) as arrays:
            values = {key: change(key, arrays[key].copy()) for key in arrays.files}
        with open(path, "wb") as f:
            np.savez(f, **values)

    return damage


def with_nan(key, values):
    if key == "weight":
        values[0, 0] = np.nan
    return values


DAMAGE = {
    "truncated": truncate,
    "bit flip": flip_a_bit,
    "0 bytes": empty,
    "NaN weights": rewritten(with_nan),
    "x1e30": rewritten(lambda key, values: values * np.float32(1e30)),
    "deleted": lambda path: path.unlink(),
}


@pytest.fixture(scope="module")
def untuned_answers(sample_store):
    store, _ = sample_store
    result = run_smart("search", "--queries", "-", "--store", store, "-k", "5", input=QUERIES)
    assert result.returncode == 0, result.stderr
    return result.stdout


def tuned_copy(sample_store, target, checksummed: bool = True):
    """A copy of the sample store tuned with a (random, small) adapter and weights 1/2; without
    ``checksummed`` its record is as versions before the checksum wrote it."""
    store_dir = copy_store(sample_store[0], target)
    rng = np.random.default_rng(3)
    with Store.open_for_writing(store_dir) as store:
        adapter = Adapter.identity(store.model.dims)
        adapter.weight = (rng.normal(size=adapter.weight.shape) * 0.05).astype(np.float32)
        record = write_tuning(store, {"lambda_anchor": 1.0, "lambda_late": 2.0}, adapter)
        if not checksummed:
            write_tuning_record(store, {k: v for k, v in record.items() if k not in ("adapter_sha256", "adapter_bytes")})
    return store_dir, store_dir / record["adapter"]


@pytest.mark.parametrize("checksummed", [True, False], ids=["record with checksum", "record of an earlier version"])
@pytest.mark.parametrize("kind", list(DAMAGE))
def test_a_damaged_adapter_is_named_and_searches_go_on_untuned_with_one_warning(sample_store, tmp_path, untuned_answers, kind, checksummed):
    store, adapter = tuned_copy(sample_store, tmp_path / "store", checksummed)
    DAMAGE[kind](adapter)

    result = run_smart("search", "--queries", "-", "--store", store, "-k", "5", input=QUERIES)
    assert result.returncode == 0, result.stderr
    assert result.stdout == untuned_answers.replace(str(sample_store[0]), str(store))  # the untuned ranking, scores and all
    warnings = result.stderr.splitlines()
    assert len(warnings) == 1, result.stderr  # one warning for three queries
    assert warnings[0].startswith(f"smart: the store's query adapter {adapter.relative_to(store)} ")
    assert warnings[0].endswith("searching untuned; `smart tune --reset` forgets it (then `smart tune` learns it again)")

    verified = run_smart("status", "--verify", "--store", store, "--json")
    assert verified.returncode == 1
    (damage,) = json.loads(verified.stdout)["verify"]["damaged"]
    assert damage["part"] == "tuning" and damage["dataset"] == str(adapter.relative_to(store))
    shown = run_smart("status", "--verify", "--store", store)
    assert shown.returncode == 1 and "rebuild" not in shown.stderr
    assert shown.stderr.count("smart tune --reset") == 1


def test_an_intact_adapter_is_used_and_verified(sample_store, tmp_path, untuned_answers):
    store, _ = tuned_copy(sample_store, tmp_path / "store")
    result = run_smart("search", "--queries", "-", "--store", store, "-k", "5", input=QUERIES)
    assert result.returncode == 0 and result.stderr == ""
    assert result.stdout != untuned_answers.replace(str(sample_store[0]), str(store))
    verified = run_smart("status", "--verify", "--store", store, "--json")
    assert verified.returncode == 0 and json.loads(verified.stdout)["tuning"]["damage"] is None


@pytest.mark.parametrize("weights", [{"lambda_late": float("nan")}, {"lambda_anchor": 1e300}, {"lambda_late": "5"}])
def test_a_tuning_record_whose_weights_no_search_can_use_is_damage_too(sample_store, tmp_path, weights):
    store_dir, _ = tuned_copy(sample_store, tmp_path / "store")
    with Store.open_for_writing(store_dir) as store:
        write_tuning_record(store, dict(read_tuning(store), **weights))
    result = run_smart("search", "terminal", "--store", store_dir, "--json", "-k", "3")
    assert result.returncode == 0 and "NaN" not in result.stdout and "Infinity" not in result.stdout
    assert "the store's tuning record holds a lambda_" in result.stderr and "searching untuned" in result.stderr
    assert run_smart("status", "--store", store_dir).returncode == 1


def test_tune_reset_deletes_only_its_own_files(sample_store, tmp_path):
    store, adapter = tuned_copy(sample_store, tmp_path / "store")
    folder = adapter.parent
    mine = [folder / "notes.txt", folder / "adapter-backup.npz", folder / "adapter-0123456789ab.npz.bak"]
    for path in mine:
        path.write_text("a user's own file")
    for path in folder.iterdir():  # past the grace time of a search that read the old record
        os.utime(path, (path.stat().st_atime - 86400, path.stat().st_mtime - 86400))
    result = run_smart("tune", "--reset", "--store", store)
    assert result.returncode == 0, result.stderr
    assert sorted(folder.iterdir()) == sorted(mine)
