"""Build stores of random unit vectors through the real store code (no model needed)."""

import numpy as np

from smartcli.encoders import Encoded, ModelInfo
from smartcli.store import FileRecord, PageRecord, Store

RANDOM_MODEL = ModelInfo(
    spec="random", name="random", fingerprint="0" * 16, family="text", dims=0, pooling="mean", max_length=256
)


def random_encoded(rng, n_tokens, dims):
    def unit(*shape):
        x = rng.standard_normal(shape).astype(np.float32)
        return x / np.linalg.norm(x, axis=-1, keepdims=True)

    return Encoded(
        pooled=unit(dims),
        tokens=unit(n_tokens, dims),
        token_ids=np.arange(n_tokens, dtype=np.int32),
        spans=np.stack([np.arange(n_tokens) * 2, np.arange(n_tokens) * 2 + 1], axis=1).astype(np.int32),
    )


def build_random_store(root, rng, token_counts, dims, token_dtype="float16", pages_per_segment=4):
    """One PDF-like file whose page i+1 has token_counts[i] tokens; returns (store, encodings)."""
    info = ModelInfo(**{**RANDOM_MODEL.__dict__, "dims": dims})
    store = Store.open_for_writing(root / "store")
    store.bind_model(info, token_dtype)
    docs = [random_encoded(rng, n, dims) for n in token_counts]
    for start in range(0, len(docs), pages_per_segment):
        pages = [
            PageRecord(page=i + 1, text="x " * token_counts[i], encoded=docs[i])
            for i in range(start, min(start + pages_per_segment, len(docs)))
        ]
        record = FileRecord(path=f"/random/doc-{start}.pdf", kind="pdf", size=1, mtime_ns=1, sha256=str(start), pages=pages)
        store.commit_files([record], store.write_segment([record]))
    return store, docs
