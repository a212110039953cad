"""One query session for every backend: the same queries through the local store and through a
Qdrant collection the store was synced into are prepared, checked, weighted, folded and scored
alike. Run on qdrant-client's embedded mode (the API re-implemented in Python) and on Qdrant Edge
(Qdrant's own engine in process, tests/qdrant_edge.py)."""

import shutil
import warnings

import pytest

pytest.importorskip("qdrant_client")

from smartcli import ErrorKind, Index, QdrantIndex, Scope, SmartError, SmartWarning  # noqa: E402
from smartcli.store.qdrant import CollectionSettings  # noqa: E402
from tests.conftest import SAMPLE_CORPUS  # noqa: E402

# The store keeps 1-bit tokens; float32 sends their decoded states to Qdrant unrounded, so that
# Qdrant's MaxSim runs on the very values the local search scores with.
TOKEN_FORMAT = "float32"
TOLERANCE = 1e-4
QUERIES = ["tyre pressure", "how do I change the default terminal", "wifi keeps disconnecting", "repot a plant"]
# Each pair: a query as typed, and what it means once normalised as page text is.
TYPED_AS = [
    ("\ufb01le system", "file system"),
    ("ty\u200bre pres\u00adsure", "tyre pressure"),
    ("\uff54\uff59\uff52\uff45 pressure", "tyre pressure"),
]
COPIED = "hobbies/bicycle-maintenance.pdf"


def _qdrant_client_local(store, root):
    index = Index.open(store)
    index.sync(str(root), "pages", token_format=TOKEN_FORMAT)
    return QdrantIndex.open(str(root), "pages", device="cpu"), lambda: None


def _qdrant_edge(store, root):
    pytest.importorskip("qdrant_edge")
    from tests.qdrant_edge import mirror, remote_index

    client, target, _ = mirror(store, root, "pages", CollectionSettings(token_format=TOKEN_FORMAT))
    return remote_index(client, target, "pages"), client.close


@pytest.fixture(scope="module")
def corpus_with_a_copy(tmp_path_factory):
    top = tmp_path_factory.mktemp("parity")
    corpus = top / "corpus"
    shutil.copytree(SAMPLE_CORPUS, corpus, ignore=shutil.ignore_patterns("*.py"))
    (corpus / "copies").mkdir()
    shutil.copy(corpus / COPIED, corpus / "copies" / "bicycle-maintenance (copy).pdf")
    store = top / "store"
    Index.open(store, create=True, device="cpu").update([corpus], ocr="never")
    return corpus, store


@pytest.fixture(scope="module", params=[_qdrant_client_local, _qdrant_edge], ids=["qdrant-client-local", "qdrant-edge"])
def backends(request, corpus_with_a_copy, tmp_path_factory):
    corpus, built = corpus_with_a_copy
    store = tmp_path_factory.mktemp("store") / "store"
    shutil.copytree(built, store)  # a sync records in the store's catalog what Qdrant acknowledged
    remote, close = request.param(store, tmp_path_factory.mktemp("qdrant") / "db")
    local = Index.open(store, device="cpu", tuned=False)  # untuned: a collection holds no tuning
    yield local, remote, corpus
    remote.close()
    close()


def same_hits(a, b):
    assert [(h.path, h.page, h.also) for h in a] == [(h.path, h.page, h.also) for h in b]
    for x, y in zip(a, b):
        assert x.score == pytest.approx(y.score, abs=TOLERANCE) and x.anchor == pytest.approx(y.anchor, abs=TOLERANCE)
        assert (x.late is None) == (y.late is None)
        if x.late is not None:
            assert x.late == pytest.approx(y.late, abs=TOLERANCE)


@pytest.mark.parametrize("mode", ["smart", "pooled", "late"])
def test_the_same_queries_get_the_same_hits_and_scores(backends, mode):
    local, remote, _ = backends
    for query in QUERIES:
        same_hits(local.search(query, k=6, mode=mode), remote.search(query, k=6, mode=mode))


def test_a_query_is_normalised_as_page_text_is_on_both(backends):
    """Ligatures, zero-width and soft-hyphen invisibles, full-width letters: the typed query
    scores exactly as its plain spelling does, through either backend."""
    local, remote, _ = backends
    for typed, plain in TYPED_AS:
        for index in (local, remote):
            same_hits(index.search(typed, k=5), index.search(plain, k=5))
        same_hits(local.search(typed, k=5), remote.search(typed, k=5))


def test_a_scope_and_more_like_this_agree(backends):
    local, remote, corpus = backends
    for scope in (Scope(kinds=("pdf",)), Scope(path_prefixes=(str(corpus / "hobbies") + "/",)), Scope(globs=("*.pdf",))):
        same_hits(local.search("bread flour and water", k=4, scope=scope), remote.search("bread flour and water", k=4, scope=scope))
    page = str(corpus / "hobbies" / "sourdough.pdf")
    same_hits(local.like(page, 1, k=4), remote.like(page, 1, k=4))


def test_copies_of_a_file_fold_into_one_hit_on_both(backends):
    local, remote, corpus = backends
    hits = {name: index.search("tyre pressure", k=3) for name, index in (("local", local), ("remote", remote))}
    for found in hits.values():
        top = found[0]
        assert (top.path, top.also) == (str(corpus / "copies" / "bicycle-maintenance (copy).pdf"), [str(corpus / COPIED)])
        assert len({(h.path, h.page) for h in found}) == len(found) == 3
    same_hits(hits["local"], hits["remote"])


@pytest.mark.parametrize(
    "bad, option",
    [
        ({"lambda_anchor": float("nan")}, "lambda_anchor"),
        ({"lambda_late": float("inf")}, "lambda_late"),
        ({"min_score": float("nan")}, "min_score"),
        ({"mode": "fuzzy"}, "mode"),
        ({"k": 0}, "k"),
    ],
)
def test_the_same_options_are_refused_the_same_way(backends, bad, option):
    local, remote, _ = backends
    refusals = []
    for index in (local, remote):
        with pytest.raises(SmartError) as refused:
            index.search("tyre pressure", **bad)
        refusals.append((refused.value.kind, refused.value.option, str(refused.value)))
    assert refusals[0] == refusals[1] and refusals[0][:2] == (ErrorKind.BAD_OPTION, option)


def test_an_overlong_query_is_cut_alike_with_one_warning_each(backends):
    local, remote, _ = backends
    query = "tyre pressure " + "pump valve " * 2000
    answers = []
    for index in (local, remote):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            answers.append(index.search(query, k=5))
        assert [str(w.message) for w in caught if issubclass(w.category, SmartWarning)] == [
            "query cut to its first 512 tokens (the length cap of a query)"
        ]
    same_hits(*answers)
