"""Every default of the engine, defined once. The CLI's help and the Python API read them here."""

from __future__ import annotations

# Scoring: score = lambda_anchor * cos(pooled) + lambda_late * MaxSim. Measured with
# `smart eval --sweep` on the development set and a second collection (README, "Quality"):
# a manual page's pooled vector averages several topics, so the late term must dominate.
LAMBDA_ANCHOR = 1.0
LAMBDA_LATE = 5.0
# Two-stage search: each query's top CANDIDATES pages by anchor cosine are scored with SMART
# (K = 200 keeps every exhaustive top-10 hit on both collections; benchmarks/two_stage.py).
CANDIDATES = 200
TOP_K = 10
# Token states held in memory at once per scored chunk when the chunk size is automatic.
CHUNK_TOKENS = 65536
# A long-lived process (a prompt, --queries, a server) keeps this much of the token states
# in memory, as stored, so that only its first query reads them from disk.
WARM_CACHE_BYTES = 1 << 30

# Queries of text models on the CPU: tokenizers + ONNX Runtime on an export of the model,
# made once (opset ONNX_OPSET) and cached under $SMART_CACHE_DIR (else $XDG_CACHE_HOME/smart,
# else ~/.cache/smart). Small per-query work runs on QUERY_THREADS threads: on a busy 2-core
# machine the default thread pools made query encoding 50x slower, not faster.
ONNX_OPSET = 17
CACHE_DIR_ENV = "SMART_CACHE_DIR"
QUERY_THREADS = 1

# Indexing.
BATCH_PAGES = 128  # pages committed per batch (an interrupted run keeps finished batches)
TEXT_BATCH_SIZE = 32  # text windows per forward pass
PIXEL_BATCH_SIZE = 32  # pictures per forward pass; large vision-language families set their own
TOKEN_DTYPE = "binary"
OCR_MODE = "auto"
OCR_LANGUAGE = "eng"
OCR_WORKERS = 0  # 0: one per CPU
DEVICE = "auto"

# Images with more pixels than this are refused before decoding (Pillow's own warning
# threshold: a real photo is far below it, a decompression bomb far above).
MAX_IMAGE_PIXELS = 89_478_485
