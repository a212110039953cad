"""The Qdrant backend contract on Qdrant's own engine: the sample corpus's store synced into a Qdrant
Edge shard (qdrant-edge-py runs Qdrant's Rust engine in process; qdrant-client's embedded mode
re-implements it in Python) with smart's collection layout, named anchor vector and MaxSim
multivector, payload indexes, and searched through smartcli's Qdrant code: the same pages in the
same order with the same scores as the local store. The adapter (tests/qdrant_edge.py) only
translates qdrant-client's request and response models."""

import json
import shutil

import pytest

pytest.importorskip("qdrant_client")
pytest.importorskip("qdrant_edge")

from qdrant_client import models  # noqa: E402

from smartcli import Index, Scope  # noqa: E402
from smartcli.store.catalog import Store  # noqa: E402
from smartcli.store.qdrant import LAYOUT_VERSION, CollectionSettings, Retrying, Target, ensure_collection, sync_store  # noqa: E402
from tests.conftest import SAMPLE_CORPUS  # noqa: E402
from tests.qdrant_edge import EdgeClient, mirror, remote_index  # noqa: E402

QUERIES = ["tyre pressure", "how do I change the default terminal", "wifi keeps disconnecting", "repot a plant", "bread flour and water"]
# The sample store keeps 1-bit tokens; float32 sends their decoded states to Qdrant unrounded, so
# Qdrant's MaxSim is computed on the very values the local search scores with.
SETTINGS = CollectionSettings(token_format="float32")
TOLERANCE = 1e-4
INDEXED_FIELDS = {"path": "keyword", "dirs": "keyword", "kind": "keyword", "origin": "keyword", "page": "integer"}


@pytest.fixture(scope="module")
def edge(sample_store, tmp_path_factory):
    store_path, corpus = sample_store
    # A copy: the sync records what Qdrant acknowledged in the store's catalog.
    local_path = tmp_path_factory.mktemp("edge-store") / "store"
    shutil.copytree(store_path, local_path)
    root = tmp_path_factory.mktemp("edge") / "db"
    client, target, summary = mirror(local_path, root, "pages", SETTINGS)
    index = Index.open(local_path, device="cpu", tuned=False)  # the engine's default weights, as a collection has
    yield index, remote_index(client, target, "pages"), client, summary, root, corpus
    client.close()


def _same(local_hits, remote_hits):
    assert [(h.path, h.page) for h in local_hits] == [(h.path, h.page) for h in remote_hits]
    for a, b in zip(local_hits, remote_hits):
        assert a.score == pytest.approx(b.score, abs=TOLERANCE) and a.anchor == pytest.approx(b.anchor, abs=TOLERANCE)
        assert (a.late is None) == (b.late is None)
        if a.late is not None:
            assert a.late == pytest.approx(b.late, abs=TOLERANCE)


def test_the_shard_holds_smarts_collection_layout(edge):
    index, remote, client, _, root, _ = edge
    config = json.loads((root / "pages" / "edge_config.json").read_text())["vectors"]
    dims = index.model.dims
    anchor = config["anchor"]
    assert (anchor["size"], anchor["distance"], anchor.get("multivector_config")) == (dims, "Cosine", None)
    tokens = config["tokens"]
    assert (tokens["size"], tokens["distance"], tokens["multivector_config"], tokens["datatype"]) == (
        dims,
        "Dot",
        {"comparator": "max_sim"},
        "float32",
    )
    assert tokens["hnsw_config"]["m"] == 0  # only rescores: no graph
    info = client.get_collection("pages")
    assert {name: schema.data_type.value for name, schema in info.payload_schema.items()} == INDEXED_FIELDS
    assert all(schema.points == len(remote) for schema in info.payload_schema.values())
    meta = info.config.metadata["smart"]
    assert (meta["layout"], meta["token_format"], meta["model"]["fingerprint"]) == (LAYOUT_VERSION, "float32", index.model.fingerprint)


@pytest.mark.parametrize(
    "token_format, datatype, quantization",
    [
        ("float16", "float16", None),
        ("float32", "float32", None),
        ("scalar", "float16", {"scalar": {"type": "int8", "always_ram": True}}),
        ("binary", "float16", {"binary": {"always_ram": True}}),
    ],
)
def test_every_token_format_makes_its_multivector(edge, tmp_path, token_format, datatype, quantization):
    index, *_ = edge
    target, client = Target.resolve(str(tmp_path)), EdgeClient(tmp_path)
    ensure_collection(client, "c", index.model, CollectionSettings(token_format=token_format), Retrying(target), local=False)
    client.close()
    tokens = json.loads((tmp_path / "c" / "edge_config.json").read_text())["vectors"]["tokens"]
    assert (tokens["multivector_config"], tokens["datatype"], tokens.get("quantization_config")) == (
        {"comparator": "max_sim"},
        datatype,
        quantization,
    )


def test_sync_sends_every_encoded_page_once_and_then_nothing(edge):
    index, remote, client, summary, root, _ = edge
    encoded = index.status().encoded_items
    assert summary.upserted == encoded == summary.points == len(remote) > 0
    with Store.open_for_writing(index.path) as store:
        again = sync_store(store, client, Target.resolve(str(root)), "pages", SETTINGS)
    assert (again.upserted, again.deleted, again.unchanged) == (0, 0, encoded)


@pytest.mark.parametrize("mode", ["smart", "pooled", "late"])
def test_scores_and_ranks_equal_the_local_store(edge, mode):
    index, remote, *_ = edge
    for query in QUERIES:
        _same(index.search(query, k=8, mode=mode), remote.search(query, k=8, mode=mode))


def test_the_two_stage_shortlist_is_the_local_one(edge):
    """With a shortlist shorter than the collection, the MaxSim request rescores the anchor
    top-3 that Qdrant prefetches: the local two-stage search's candidates."""
    index, remote, client, *_ = edge
    small_local = Index.open(index.path, device="cpu", tuned=False, candidates=3)
    small_remote = remote_index(client, remote.target, "pages", shortlist=3)
    for query in QUERIES:
        _same(small_local.search(query, k=3), small_remote.search(query, k=3))


def test_snippets_and_highlights_come_from_the_stored_tokens_and_spans(edge):
    index, remote, *_ = edge
    local, there = index.search("tyre pressure", k=3), remote.search("tyre pressure", k=3)
    assert [(h.snippet, h.highlights) for h in local] == [(h.snippet, h.highlights) for h in there]
    assert [m.word for m in there[0].matches] == ["tyre", "pressure"]


@pytest.mark.parametrize("mode", ["smart", "late"])
def test_scopes_become_payload_filters_with_the_same_results(edge, mode):
    index, remote, *_, corpus = edge
    scopes = [
        Scope(kinds=("pdf",)),
        Scope(path_prefixes=(str(corpus / "hobbies") + "/",)),  # a folder: the indexed dirs payload
        Scope(path_prefixes=(str(corpus / "hobbies" / "bicycle"),)),  # a name prefix: an id condition
        Scope(kinds=("pdf",), path_prefixes=(str(corpus / "manuals") + "/",)),
        Scope(globs=("*.pdf",), path_prefixes=(str(corpus) + "/",)),
    ]
    for scope in scopes:
        local = index.search("tyre pressure", k=5, mode=mode, scope=scope)
        assert local, scope
        _same(local, remote.search("tyre pressure", k=5, mode=mode, scope=scope))
    # No image has vectors without OCR, and no path matches the glob: nothing on either side.
    for scope in (Scope(kinds=("image",)), Scope(globs=("nothing-matches-*",))):
        assert index.search("tyre pressure", mode=mode, scope=scope) == [] == remote.search("tyre pressure", mode=mode, scope=scope)


def test_more_like_this_reads_the_page_from_the_collection(edge):
    index, remote, *_, corpus = edge
    page = corpus / "hobbies" / "bicycle-maintenance.pdf"
    for mode in ("smart", "late"):
        hits = remote.like(page, 1, k=4, mode=mode)
        assert (str(page), 1) not in {(h.path, h.page) for h in hits}
        _same(index.like(page, 1, k=4, mode=mode), hits)
    scope = Scope(kinds=("pdf",))
    _same(index.like(page, 1, k=4, scope=scope), remote.like(page, 1, k=4, scope=scope))


def test_removed_pages_leave_the_shard_and_a_reopened_shard_answers_the_same(tmp_path):
    corpus = tmp_path / "hobbies"
    shutil.copytree(SAMPLE_CORPUS / "hobbies", corpus)
    index = Index.open(tmp_path / "store", create=True, device="cpu", tuned=False)
    index.update([corpus], ocr="never")
    client, target, first = mirror(index.path, tmp_path / "db", "c", SETTINGS)
    client.close()  # everything below reads the shard from disk
    client = EdgeClient(tmp_path / "db")
    remote = remote_index(client, target, "c")
    assert len(remote) == first.points
    _same(index.search("tyre pressure", k=5), remote.search("tyre pressure", k=5))
    gone = corpus / "sourdough.pdf"
    of_gone = models.Filter(must=[models.FieldCondition(key="path", match=models.MatchValue(value=str(gone)))])
    pages = client.count("c", count_filter=of_gone).count
    gone.unlink()
    index.update([corpus], ocr="never")
    with Store.open_for_writing(index.path) as store:
        again = sync_store(store, client, target, "c", SETTINGS)
    assert (again.deleted, again.upserted) == (pages, 0) and pages > 0
    assert len(remote) == first.points - pages == client.get_collection("c").points_count
    assert client.count("c", count_filter=of_gone).count == 0
    assert str(gone) not in {h.path for h in remote.search("bread flour", k=first.points)}
    _same(index.search("bread flour", k=5), remote.search("bread flour", k=5))
    client.close()
