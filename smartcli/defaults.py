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

# Hostile files (README, "Reliability"). Each file's text layer is read in a worker process
# with this deadline and this much address space; a file past either is skipped, and not
# read again until it changes.
READ_TIMEOUT_SECONDS = 60
READ_MEMORY_BYTES = 4 << 30
# What one page may contribute: its text is cut to this many characters, its token states to
# this many (a warning names the page). A dense printed page holds 3,000-6,000 characters.
MAX_PAGE_CHARS = 20_000
MAX_PAGE_TOKENS = 8192
# A query is cut to this many tokens (a warning says so); a --queries line longer than
# MAX_QUERY_LINE_BYTES is answered with an error object.
MAX_QUERY_TOKENS = 512
MAX_QUERY_LINE_BYTES = 1 << 20
# Folders deeper than this below an indexed path are skipped with a reason.
MAX_DIRECTORY_DEPTH = 256
