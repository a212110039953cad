"""The Qdrant mirror on qdrant-client's embedded mode (Qdrant's API re-implemented in Python;
test_qdrant_edge.py runs the contract on Qdrant's own engine): scores equal the local store's,
filters, resumable and scoped sync, the multivector limit."""

import shutil
from dataclasses import replace

import numpy as np
import pytest

pytest.importorskip("qdrant_client")

from smartcli import ErrorKind, Index, QdrantIndex, Scope, SmartError  # noqa: E402
from smartcli.store.catalog import Store, reads  # noqa: E402
from smartcli.store.catalog.qdrant_acks import acked_versions  # noqa: E402
from smartcli.store.qdrant import (  # noqa: E402
    CollectionSettings,
    Target,
    connect,
    ensure_collection,
    point_id,
    reduce_tokens,
    release,
    sync_store,
)
from tests.conftest import SAMPLE_CORPUS  # noqa: E402

QUERIES = ["tyre pressure", "how do I change the default terminal", "wifi keeps disconnecting", "repot a plant", "bread flour and water"]


@pytest.fixture(scope="module")
def float16_store(tmp_path_factory):
    """The sample corpus in a float16 store (two folders, so a removal can be scoped)."""
    corpus = tmp_path_factory.mktemp("qcorpus") / "sample_corpus"
    shutil.copytree(SAMPLE_CORPUS, corpus)
    index = Index.open(tmp_path_factory.mktemp("qstore") / "store", create=True, token_dtype="float16")
    index.update([corpus], ocr="never")
    return index, corpus


@pytest.fixture(scope="module")
def mirrored(float16_store, tmp_path_factory):
    index, corpus = float16_store
    location = str(tmp_path_factory.mktemp("qdrant") / "db")
    summary = index.sync(location, "pages")
    remote = QdrantIndex.open(location, "pages")
    yield index, remote, summary, location, corpus
    remote.close()


def _same(local_hits, remote_hits, tol=1e-3):
    assert [(h.path, h.page) for h in local_hits] == [(h.path, h.page) for h in remote_hits]
    for a, b in zip(local_hits, remote_hits):
        assert abs(a.score - b.score) <= tol and abs(a.anchor - b.anchor) <= tol
        assert (a.late is None) == (b.late is None)
        if a.late is not None:
            assert abs(a.late - b.late) <= tol


def test_sync_sends_every_encoded_page_once_and_then_nothing(mirrored):
    index, remote, summary, location, _ = mirrored
    encoded = index.status().encoded_items
    assert summary.upserted == encoded == summary.points == len(remote)
    again = index.sync(location, "pages")
    assert (again.upserted, again.deleted, again.unchanged) == (0, 0, encoded)


@pytest.mark.parametrize("mode", ["smart", "pooled", "late"])
def test_scores_and_ranks_equal_the_local_store(mirrored, mode):
    index, remote, *_ = mirrored
    for query in QUERIES:
        _same(index.search(query, k=8, mode=mode), remote.search(query, k=8, mode=mode))


def test_two_stage_shortlist_is_the_local_one(mirrored, float16_store):
    index, remote, *_ = mirrored
    small_local = Index.open(index.path, candidates=3)
    small_remote = QdrantIndex.open(remote.target.location, "pages", candidates=3)
    for query in QUERIES:
        _same(small_local.search(query, k=3), small_remote.search(query, k=3))


def test_filters_become_payload_filters_with_the_same_results(mirrored):
    index, remote, _, _, corpus = mirrored
    scopes = [
        Scope(kinds=("image",)),
        Scope(kinds=("pdf",)),
        Scope(path_prefixes=(str(corpus / "hobbies") + "/",)),  # a folder: the dirs payload
        Scope(path_prefixes=(str(corpus / "hobbies" / "bicycle"),)),  # a name prefix: matched on paths
        Scope(globs=("*.pdf",), path_prefixes=(str(corpus) + "/",)),
        Scope(globs=("nothing-matches-*",)),
    ]
    for scope in scopes:
        local = index.search("tyre pressure", k=5, scope=scope)
        _same(local, remote.search("tyre pressure", k=5, scope=scope))
    assert remote.search("tyre pressure", scope=scopes[-1]) == []


def test_snippets_highlights_and_more_like_this(mirrored):
    index, remote, _, _, corpus = mirrored
    local, there = index.search("tyre pressure", k=3), remote.search("tyre pressure", k=3)
    assert [(h.snippet, h.highlights) for h in local] == [(h.snippet, h.highlights) for h in there]
    assert [m.word for m in there[0].matches] == ["tyre", "pressure"]
    page = corpus / "hobbies" / "bicycle-maintenance.pdf"
    _same(index.like(page, 1, k=4), remote.like(page, 1, k=4))


def test_a_sync_cut_by_a_failing_backend_resumes_without_duplicates(float16_store, tmp_path):
    index, _ = float16_store
    target = Target.resolve(str(tmp_path / "db"), retries=0)
    client = connect(target)

    class FailsOnSecondUpsert:
        """The real client, except that the second upsert meets a refused connection."""

        def __init__(self, real):
            self.real, self.upserts = real, 0

        def upsert(self, *args, **kwargs):
            self.upserts += 1
            if self.upserts == 2:
                raise ConnectionRefusedError(111, "Connection refused")
            return self.real.upsert(*args, **kwargs)

        def __getattr__(self, name):
            return getattr(self.real, name)

    with Store.open_for_writing(index.path) as store:
        with pytest.raises(SmartError) as failed:
            sync_store(store, FailsOnSecondUpsert(client), target, "c", batch_points=4)
        assert failed.value.kind is ErrorKind.BACKEND_UNAVAILABLE
        assert len(acked_versions(store, target.location, "c")) == 4 == client.count("c").count
        resumed = sync_store(store, client, target, "c", batch_points=4)
        total = len(reads.live_items(store))
        assert (resumed.upserted, resumed.unchanged) == (total - 4, 4)
        assert client.count("c").count == total == len(acked_versions(store, target.location, "c"))
    release(target)


def test_retries_with_backoff_on_transient_failures(float16_store, tmp_path):
    index, _ = float16_store
    target = Target.resolve(str(tmp_path / "db"), retries=3)
    client = connect(target)
    waits = []

    class Flaky:
        def __init__(self, real):
            self.real, self.calls = real, 0

        def upsert(self, *args, **kwargs):
            self.calls += 1
            if self.calls <= 2:
                raise TimeoutError("timed out")
            return self.real.upsert(*args, **kwargs)

        def __getattr__(self, name):
            return getattr(self.real, name)

    from smartcli.store.qdrant import Retrying

    with Store.open_for_writing(index.path) as store:
        summary = sync_store(store, Flaky(client), target, "c", call=Retrying(target, sleep=waits.append))
        assert summary.retries == 2 and waits == [0.5, 1.0]
        assert client.count("c").count == len(reads.live_items(store))
    release(target)


def test_removal_is_scoped_to_the_store_that_wrote_the_points(tmp_path):
    corpus_a, corpus_b = tmp_path / "a", tmp_path / "b"
    shutil.copytree(SAMPLE_CORPUS / "hobbies", corpus_a)
    shutil.copytree(SAMPLE_CORPUS / "manuals", corpus_b)
    location = str(tmp_path / "db")
    a = Index.open(tmp_path / "store-a", create=True, token_dtype="float16")
    b = Index.open(tmp_path / "store-b", create=True, token_dtype="float16")
    a.update([corpus_a], ocr="never")
    b.update([corpus_b], ocr="never")
    sa, sb = a.sync(location, "shared"), b.sync(location, "shared")
    remote = QdrantIndex.open(location, "shared")
    assert len(remote) == sa.points + sb.points
    gone = next(corpus_a.glob("*.pdf"))
    pages = [item for item in a._session.current().items if item.path == str(gone)]
    gone.unlink()
    a.update([corpus_a], ocr="never")
    again = a.sync(location, "shared")
    assert again.deleted == len(pages) and again.upserted == 0
    assert len(remote) == sa.points + sb.points - len(pages)
    assert b.sync(location, "shared").deleted == 0  # b's points were never a's to remove
    assert {h.path for h in remote.search("terminal", k=20)} >= {str(p) for p in corpus_b.glob("*.pdf")}
    remote.close()


def test_a_collection_of_another_model_is_refused(float16_store, tmp_path):
    index, _ = float16_store
    target = Target.resolve(str(tmp_path / "db"))
    client = connect(target)
    other = replace(index.model, fingerprint="0" * 16, name="another-model")
    from smartcli.store.qdrant import Retrying

    ensure_collection(client, "c", other, CollectionSettings(), Retrying(target), True)
    release(target)
    with pytest.raises(SmartError) as refused:
        index.sync(target.location, "c")
    assert refused.value.kind is ErrorKind.MODEL_MISMATCH


def test_pages_over_the_token_limit_are_pooled_not_cut(float16_store, tmp_path):
    index, _ = float16_store
    location = str(tmp_path / "db")
    summary = index.sync(location, "small", max_tokens=16)
    assert summary.reduced > 0
    target = Target.resolve(location)
    client = connect(target)
    points, _ = client.scroll("small", limit=100, with_vectors=["tokens"], with_payload=True)
    for p in points:
        n, factor = p.payload["n_tokens"], p.payload["pooled_from"]
        assert len(p.vector["tokens"]) <= 16 and len(p.vector["tokens"]) == -(-n // factor)
        assert len(p.payload["spans"]) == 2 * len(p.vector["tokens"])
    # Pooled pages still find the right page first.
    remote = QdrantIndex.open(location, "small")
    assert (remote.search("tyre pressure", k=1)[0].path, 1) == (index.search("tyre pressure", k=1)[0].path, 1)
    remote.close()


def test_reduce_tokens_pools_adjacent_runs_and_joins_their_spans():
    rng = np.random.default_rng(0)
    tokens = rng.normal(size=(10, 8)).astype(np.float32)
    tokens /= np.linalg.norm(tokens, axis=1, keepdims=True)
    spans = np.array([[i * 3, i * 3 + 2] for i in range(10)], np.int32)
    same, same_spans, factor = reduce_tokens(tokens, spans, 10)
    assert factor == 1 and same is tokens
    reduced, joined, factor = reduce_tokens(tokens, spans, 4)
    assert factor == 3 and reduced.shape == (4, 8)
    np.testing.assert_allclose(np.linalg.norm(reduced, axis=1), 1.0, atol=1e-5)
    assert joined.tolist() == [[0, 8], [9, 17], [18, 26], [27, 29]]
    expected = tokens[:3].mean(0) / np.linalg.norm(tokens[:3].mean(0))
    np.testing.assert_allclose(reduced[0], expected, atol=1e-5)


def test_point_ids_are_stable_from_path_and_page():
    assert point_id("/a/b.pdf", 3) == point_id("/a/b.pdf", 3) != point_id("/a/b.pdf", 4)


def test_no_location_is_a_clear_option_error(monkeypatch):
    monkeypatch.delenv("SMART_QDRANT_URL", raising=False)
    with pytest.raises(SmartError) as missing:
        Target.resolve(None)
    assert missing.value.kind is ErrorKind.BAD_OPTION and missing.value.option == "qdrant"
    monkeypatch.setenv("SMART_QDRANT_URL", "http://qdrant.lab:6333")
    monkeypatch.setenv("SMART_QDRANT_API_KEY", "secret-key")
    target = Target.resolve(None)
    assert target.location == "http://qdrant.lab:6333" and target.api_key == "secret-key"
    assert "secret" not in repr(target)


def test_a_collection_deleted_behind_the_stores_back_is_filled_again(float16_store, tmp_path):
    index, _ = float16_store
    location = str(tmp_path / "db")
    first = index.sync(location, "again")
    target = Target.resolve(location)
    client = connect(target)
    client.delete_collection("again")
    release(target)
    second = index.sync(location, "again")
    assert second.upserted == first.upserted == second.points > 0


@pytest.fixture(scope="module")
def mirrored_manual(tmp_path_factory):
    """A manual with a contents page and an index page (tests/unit/test_page_roles.py), mirrored."""
    from tests.unit.test_page_roles import _manual

    root = tmp_path_factory.mktemp("qroles")
    (root / "docs").mkdir()
    _manual(root / "docs" / "apt-manual.pdf")
    index = Index.open(root / "store", create=True, token_dtype="float16")
    index.update([root / "docs"], ocr="never")
    index.sync(str(root / "db"), "pages")
    remote = QdrantIndex.open(str(root / "db"), "pages")
    yield index, remote
    remote.close()


@pytest.mark.parametrize("mode", ["smart", "pooled", "late"])
def test_contents_pages_lose_the_same_penalty_as_locally(mirrored_manual, mode):
    index, remote = mirrored_manual
    for query in ("removing and uninstalling packages", "keeping a greenhouse of orchids", "apt purge"):
        local, theirs = index.search(query, k=3, mode=mode), remote.search(query, k=3, mode=mode)
        _same(local, theirs)
        assert [h.as_json().get("page_role") for h in local] == [h.as_json().get("page_role") for h in theirs]
    roles = {h.page: h.as_json().get("page_role") for h in remote.search("removing and uninstalling packages", k=5)}
    assert roles.get(1) == "contents" and roles.get(5) == "index" and roles.get(3) is None
