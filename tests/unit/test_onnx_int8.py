"""The int8 export for indexing (``--precision int8``) against the torch encoder, and the batching
of windows by length."""

import numpy as np
import pytest

from smartcli.models import registry
from smartcli.models.base import INT8
from smartcli.models.onnx_export import INT8_BLOCK, quantize_blocks
from smartcli.models.onnx_text import OnnxTextEncoder
from tests.conftest import ROOT, SAMPLE_CORPUS

# Measured on the 317 development pages (benchmarks/index_throughput.py): token cosine to the
# torch states mean 0.9996, lowest 0.997; pooled cosine lowest 0.9995.
TOKEN_COSINE_MEAN, TOKEN_COSINE_LOWEST, POOLED_COSINE_LOWEST = 0.999, 0.99, 0.999


def real_pages(count: int = 10, chars: int = 3000) -> list[str]:
    """Page-sized stretches of the project's own documentation: real prose, several windows each."""
    text = " ".join(" ".join(path.read_text(encoding="utf-8").split()) for path in sorted((ROOT / "docs").glob("*.md")))
    pages = [text[i * chars : (i + 1) * chars] for i in range(count)]
    assert all(len(page) == chars for page in pages)
    return pages


@pytest.fixture(scope="module")
def int8_encoder():
    encoder = registry.load_encoder("default", "cpu", {"precision": INT8})
    assert isinstance(encoder, OnnxTextEncoder) and encoder.precision == INT8
    return encoder


def test_int8_states_equal_the_torch_states_within_the_measured_tolerance_on_real_pages(int8_encoder, encoder):
    pages = real_pages()
    cosines, pooled = [], []
    for fast, slow in zip(int8_encoder.encode_documents(pages), encoder.encode_documents(pages)):
        np.testing.assert_array_equal(fast.token_ids, slow.token_ids)
        np.testing.assert_array_equal(fast.spans, slow.spans)
        np.testing.assert_allclose(np.linalg.norm(fast.tokens, axis=1), 1.0, atol=1e-5)
        cosines.append(np.sum(fast.tokens * slow.tokens, axis=1))
        pooled.append(float(fast.pooled @ slow.pooled))
    cosines = np.concatenate(cosines)
    assert len(cosines) > 5000  # real pages: several windows each
    assert cosines.mean() >= TOKEN_COSINE_MEAN and cosines.min() >= TOKEN_COSINE_LOWEST
    assert min(pooled) >= POOLED_COSINE_LOWEST


def test_int8_encoder_records_its_precision_and_keeps_the_fingerprint(int8_encoder, encoder):
    assert int8_encoder.info.extra == {"precision": INT8}
    assert int8_encoder.info.fingerprint == encoder.info.fingerprint
    assert registry.load_query_encoder("default", "cpu", {"precision": INT8}).info.extra == {}  # queries stay float32


@pytest.mark.parametrize("which", ["torch", "int8"])
def test_length_sorted_batches_give_the_vectors_of_unsorted_ones(which, encoder, int8_encoder):
    """Windows are batched longest first to pad little; a window's vectors do not depend on the
    windows batched with it (the int8 export quantizes each row of activations on its own)."""
    chosen = encoder if which == "torch" else int8_encoder
    pages = real_pages(6, 1500) + ["wifi", "a short line about tyre pressure"]
    sorted_batches = chosen.encode_documents(pages, batch_size=4)
    text_order = chosen.encode_documents(pages, batch_size=4, sort_by_length=False)
    alone = [chosen.encode_documents([page])[0] for page in pages]
    for a, b, c in zip(sorted_batches, text_order, alone):
        assert np.abs(a.tokens - b.tokens).max() < 1e-5 and np.abs(a.tokens - c.tokens).max() < 1e-5
        assert np.abs(a.pooled - b.pooled).max() < 1e-5 and np.abs(a.pooled - c.pooled).max() < 1e-5


def test_blocks_are_quantized_as_onnx_runtime_quantizes_them():
    """The int8 export's weights are those ONNX Runtime's own block quantizer computes."""
    try:
        from onnxruntime.capi._pybind_state import quantize_matmul_8bits
    except ImportError:
        pytest.skip("this ONNX Runtime has no 8-bit block quantizer to compare with")
    rng = np.random.default_rng(5)
    weight = (rng.standard_normal((96, 7)) * 0.05).astype(np.float32)
    weight[:32, 2] = 0.0  # an all-zero block
    packed, scales = quantize_blocks(weight, INT8_BLOCK)
    theirs = np.zeros_like(packed)
    their_scales = np.zeros_like(scales)
    quantize_matmul_8bits(theirs, weight, their_scales, np.zeros((7, 3), np.uint8), INT8_BLOCK, 7, 96, True)
    np.testing.assert_array_equal(packed, theirs)
    np.testing.assert_array_equal(scales, their_scales)


def test_a_store_indexed_in_int8_records_it_keeps_it_and_searches(tmp_path):
    import shutil

    from smartcli import Index
    from smartcli.errors import OptionError

    corpus = tmp_path / "corpus"
    shutil.copytree(SAMPLE_CORPUS, corpus)
    with Index.open(tmp_path / "store", create=True) as index:
        index.update([corpus], ocr="never", precision=INT8)
        assert index.model.extra == {"precision": INT8}
        assert index.status().precision == INT8
        hits = index.search("which channel avoids wifi interference", k=3)
        assert hits and hits[0].path.endswith("home-network.pdf")
        with pytest.raises(OptionError, match="encoded in int8"):
            index.update([corpus], ocr="never", precision="fp32")
        (corpus / "more.pdf").write_bytes((corpus / "houseplants.pdf").read_bytes() + b"\n%changed\n")
        (corpus / "houseplants.pdf").unlink()
        index.update([corpus], ocr="never")  # no precision given: the store's
        assert index.model.extra == {"precision": INT8}
