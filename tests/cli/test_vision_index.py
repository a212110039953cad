"""Indexing and searching with pixel models: in process for every family, end to end for CLIP and Qwen3-VL."""

import json
import shutil

import pymupdf
import pytest
from PIL import Image

from smartcli.defaults import TOKEN_DTYPE as DEFAULT_TOKEN_DTYPE
from smartcli.errors import ModelMismatch
from smartcli.ingest import pictures as pixel_indexing
from smartcli.ingest.indexer import Indexer
from smartcli.ingest.planning import plan_changes
from smartcli.ingest.render import load_image
from smartcli.models.base import ModelInfo
from smartcli.models.registry import load_encoder
from smartcli.search.scoring import Weights
from smartcli.search.searcher import Searcher
from smartcli.store.catalog import Store, reads, writes
from tests.conftest import SAMPLE_CORPUS, run_smart
from tests.odd_images import write_odd_images

OPTIONS = {"qwen3_vl": {"max_pixels": 16 * 32 * 32}, "gme": {"max_pixels": 256 * 28 * 28}}


@pytest.fixture(scope="module")
def mixed_corpus(tmp_path_factory):
    """A two-page PDF, a PDF page with no text layer, and an image of each awkward mode."""
    root = tmp_path_factory.mktemp("mixed")
    shutil.copy(SAMPLE_CORPUS / "hobbies" / "sourdough.pdf", root / "sourdough.pdf")
    with pymupdf.open() as doc:
        doc.new_page().draw_rect(pymupdf.Rect(100, 100, 300, 300), color=(0, 0, 1), fill=(0, 0, 1))
        doc.save(root / "drawing-only.pdf")
    odd = write_odd_images(root / "odd")
    return root, odd


def index(store_root, encoder, paths):
    store = Store.open_for_writing(store_root)
    writes.bind_model(store, encoder.info)
    plan, hashes = plan_changes(store, [str(p) for p in paths])
    messages = []
    summary = Indexer(store, encoder, encode_batch_size=3, report=messages.append).run(plan, hashes)
    return store, summary, messages


@pytest.mark.parametrize("name", ["clip", "siglip", "siglip2", "qwen3_vl", "gme"])
def test_every_family_indexes_pages_and_odd_images_and_answers_an_image_query(tiny_checkpoints, mixed_corpus, tmp_path, name):
    root, odd = mixed_corpus
    encoder = load_encoder(str(tiny_checkpoints[name]), "cpu", OPTIONS.get(name))
    store, summary, messages = index(tmp_path / "store", encoder, [root])
    with pymupdf.open(root / "sourdough.pdf") as doc:
        expected = doc.page_count + 1 + len(odd)  # every page, the text-less one included, and every image
    assert summary.pages_encoded == expected and not summary.skipped and not summary.not_encoded, messages
    searcher = Searcher(store, encoder, device="cpu")
    (hits,) = searcher.search(["feeding the starter"], Weights(), k=3)
    assert len(hits) == 3
    query = encoder.encode_documents([load_image(str(odd["exif"]), encoder.pixel_cap)])
    (hits,) = searcher.search_encoded(query, Weights(), k=1)
    assert hits[0].item.path == str(odd["exif"])  # the same picture is its own best match
    assert hits[0].anchor == pytest.approx(1.0, abs=1e-4)
    store.close()


def test_a_broken_image_is_skipped_with_its_reason(tiny_checkpoints, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    Image.new("RGB", (40, 40), (9, 9, 9)).save(folder / "good.png")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    encoder = load_encoder(str(tiny_checkpoints["clip"]), "cpu")
    store, summary, messages = index(tmp_path / "store", encoder, [folder])
    assert summary.pages_encoded == 1
    assert [(s.path.rsplit("/", 1)[1], s.reason.split(" (")[0]) for s in summary.skipped] == [("broken.jpg", "damaged image")]
    store.close()


def test_large_vision_language_batches_are_split_to_bound_token_memory(tiny_checkpoints, mixed_corpus, tmp_path, monkeypatch):
    real = ModelInfo(
        spec="Qwen/Qwen3-VL-Embedding-2B",
        name="q",
        fingerprint="0",
        family="qwen3_vl",
        dims=2048,
        pooling="lasttoken",
        max_length=1830,
        consumes_pixels=True,
    )
    real_encoder = type("Loaded", (), {"info": real})()
    assert pixel_indexing.pages_per_batch(real_encoder, 128, "float16") == 35  # 256 MB of float16 states
    assert pixel_indexing.pages_per_batch(real_encoder, 128, "int8") == 17  # held as float32 until quantized
    _, odd = mixed_corpus
    encoder = load_encoder(str(tiny_checkpoints["qwen3_vl"]), "cpu", OPTIONS["qwen3_vl"])
    per_page = encoder.info.max_length * encoder.info.dims * pixel_indexing.held_dtype(DEFAULT_TOKEN_DTYPE).itemsize
    monkeypatch.setattr(pixel_indexing, "TOKEN_RAM_BUDGET", 2 * per_page)
    store, summary, _ = index(tmp_path / "store", encoder, [odd["rgba"].parent])
    assert summary.pages_encoded == 7
    assert reads.stats(store)["segments"] == 4  # two single-picture files per committed batch
    store.close()


# -- end to end through the command line --------------------------------------------------------


@pytest.fixture(scope="module")
def clip_store(tiny_checkpoints, mixed_corpus, tmp_path_factory):
    root, odd = mixed_corpus
    corpus = tmp_path_factory.mktemp("clip-corpus")
    shutil.copytree(SAMPLE_CORPUS, corpus / "sample_corpus")
    shutil.copytree(odd["rgba"].parent, corpus / "odd")
    store = tmp_path_factory.mktemp("clip") / "store"
    result = run_smart("index", corpus, "--store", store, "--model", tiny_checkpoints["clip"], "--json", check=True)
    return store, corpus, json.loads(result.stdout)


def test_cli_indexes_pdfs_and_images_with_clip_and_reports_bytes_per_page(clip_store):
    _, _, summary = clip_store
    assert summary["pages_encoded"] == 15 + 7 and summary["not_encoded"] == {} and summary["skipped"] == []
    # 16 patch tokens of 16 dims as float16 per picture, plus the pooled vector and bookkeeping.
    assert summary["tokens_encoded"] == 22 * 16
    assert 16 * 16 * 2 < summary["bytes_per_page"] < 16 * 1024


def test_cli_image_query(clip_store):
    store, corpus, _ = clip_store
    sunset = corpus / "sample_corpus" / "photos" / "sunset.png"
    result = run_smart("search", "--image", sunset, "--store", store, "--json", "-k", "3", check=True)
    answer = json.loads(result.stdout)
    assert answer["query"] is None and answer["image"] == str(sunset)
    assert answer["results"][0]["path"] == str(sunset) and answer["results"][0]["anchor"] == pytest.approx(1.0, abs=1e-4)


def test_cli_refuses_bad_image_queries(clip_store, sample_store, tmp_path):
    store, _, _ = clip_store
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"nope")
    result = run_smart("search", "--image", bad, "--store", store)
    assert result.returncode == 2 and "bad.png: not a readable image" in result.stderr
    both = run_smart("search", "words", "--image", bad, "--store", store)
    assert both.returncode == 2
    text_store, corpus = sample_store
    result = run_smart("search", "--image", corpus / "photos" / "sunset.png", "--store", text_store)
    assert result.returncode == 2 and "reads text" in result.stderr


def test_cli_qwen3_vl_index_search_and_settings_kept_by_the_store(tiny_checkpoints, tmp_path):
    store = tmp_path / "store"
    corpus = tmp_path / "corpus"
    shutil.copytree(SAMPLE_CORPUS / "manuals", corpus / "manuals")
    shutil.copytree(SAMPLE_CORPUS / "photos", corpus / "photos")
    model = tiny_checkpoints["qwen3_vl"]
    result = run_smart("index", corpus, "--store", store, "--model", model, "--max-pixels", 16 * 32 * 32, "--json", check=True)
    assert json.loads(result.stdout)["pages_encoded"] == 6 + 2
    text = json.loads(run_smart("search", "router password", "--store", store, "--json", check=True).stdout)
    assert len(text["results"]) == 8
    # A later run keeps the store's budget; asking for another one is refused.
    Image.new("RGB", (640, 640), (1, 2, 3)).save(corpus / "photos" / "new.png")
    again = run_smart("index", corpus, "--store", store, "--json", check=True)
    assert json.loads(again.stdout)["added"] == 1
    with Store.open(store) as opened:
        new_item = next(item for item in reads.live_items(opened) if item.path.endswith("new.png"))
        assert opened.model.extra["max_pixels"] == 16 * 32 * 32
        assert new_item.n_tokens <= opened.model.max_length  # 16 image tokens, not the default 400
    conflict = run_smart("index", corpus, "--store", store, "--max-pixels", 65536)
    assert conflict.returncode == 2 and "--max-pixels 16384" in conflict.stderr
    text_model = run_smart("index", corpus, "--store", tmp_path / "text", "--max-pixels", 5000)
    assert text_model.returncode == 2 and "reads text" in text_model.stderr


def test_a_store_refuses_another_image_model(tiny_checkpoints, tmp_path):
    qwen = load_encoder(str(tiny_checkpoints["qwen3_vl"]), "cpu", OPTIONS["qwen3_vl"])
    clip = load_encoder(str(tiny_checkpoints["clip"]), "cpu")
    with Store.open_for_writing(tmp_path / "store") as store:
        writes.bind_model(store, qwen.info)
        with pytest.raises(ModelMismatch, match="was built with model"):
            writes.bind_model(store, clip.info)
        writes.bind_model(store, load_encoder(str(tiny_checkpoints["qwen3_vl"]), "cpu", OPTIONS["qwen3_vl"]).info)


def test_rendering_a_page_for_an_image_model_is_bounded_and_the_file_skipped_and_remembered(tiny_checkpoints, tmp_path):
    """Issue 13 item 1: pages pictured for a pixel model are rendered in a worker under the
    reader's deadline and memory limit. 2^13 Form XObject draws of a square filling a 3,000 pt
    page: the text pass walks them quickly, rendering paints every one (measured with 2^15 draws:
    2.9 s to extract the text, 148 s to render at 18 dpi)."""
    from smartcli.ingest.sandbox import SandboxedReader
    from tests.attacks import text_page, xobject_bomb

    docs = tmp_path / "docs"
    docs.mkdir()
    xobject_bomb(docs / "a-squares.pdf", depth=14, leaf=b"0 0 3000 3000 re f", size=3000)
    text_page(docs / "b-good.pdf", "sourdough starter")
    encoder = load_encoder(str(tiny_checkpoints["clip"]), "cpu")
    store = Store.open_for_writing(tmp_path / "store")
    writes.bind_model(store, encoder.info)
    plan, hashes = plan_changes(store, [str(docs)])
    indexer = Indexer(store, encoder, encode_batch_size=3, read_timeout=300)
    indexer.render_sandbox = SandboxedReader(2, indexer.render_sandbox.memory_bytes)
    summary = indexer.run(plan, hashes)
    assert summary.added == 1 and summary.pages_encoded == 1
    assert [(s.path.rsplit("/", 1)[1], s.reason) for s in summary.skipped] == [("a-squares.pdf", "took longer than 2 s to render page 1")]
    # Remembered: the next run does not render it again until it changes.
    again, _ = plan_changes(store, [str(docs)])
    assert [s.reason for s in again.skipped] == [
        "took longer than 2 s to render page 1 (on an earlier run; not read again until the file changes)"
    ]
    store.close()
