"""Every default of the engine, defined once. The CLI's help and the Python API read them here."""

from __future__ import annotations

import os

# Scoring: score = lambda_anchor * cos(pooled) + lambda_late * MaxSim. Measured with
# `smart eval --sweep` on the development set and a second collection (README, "Quality"):
# a manual page's pooled vector averages several topics, so the late term must dominate.
LAMBDA_ANCHOR = 1.0
LAMBDA_LATE = 5.0
# Two-stage search: each query's top CANDIDATES pages by anchor cosine are scored with SMART
# (K = 200 keeps every exhaustive top-10 hit on both collections; benchmarks/two_stage.py).
CANDIDATES = 200
# Above CANDIDATES_GROW_FROM pages the shortlist grows: K * sqrt(pages / CANDIDATES_GROW_FROM), at
# most CANDIDATES_MAX (searcher.shortlist_size). Measured (benchmarks/RESULTS.md, issue 24): on
# 10,628 real pages K=200 kept the exact top 10 on 92.2% of 90 queries, every miss a page outside
# the shortlist (never one the Hamming estimate dropped); K=292 (this rule) 96.7%, K=600 100%.
# On the development store K=200 already keeps all of it and K=300 cost 3 ms more a query. The
# cap: on 100,000 mixed synthetic pages K=300 kept it on 70% of 20 queries at 22 ms CPU, K=1000
# on 90% at 39 ms, past the 25 ms target (and the estimate's cost grows with K: at 1,000,000
# pages it reads the shortlist's token rows from disk).
CANDIDATES_GROW_FROM = 5_000
CANDIDATES_MAX = 300
TOP_K = 10
# Of a shortlist, the pages scored exactly: the best RESCORED (at least twice k) by a SMART score
# whose late term is estimated from popcounts of the query's signs (1-bit stores, warm processes).
RESCORED = 40
# From this many pages on, even a one-query process runs the compiled kernels (their import,
# about 0.4 s, then costs less than the numpy paths it replaces).
COMPILED_FROM_PAGES = 20_000
# Contents and index pages (store/pageroles.py) lose this share of the weights' sum
# (lambda_anchor + lambda_late) from their fused score: they rank below body pages that match
# about as well, and stay first when nothing matches better (measured: README, "Quality").
NAVIGATION_PENALTY = 0.05
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
# How a new store's pages are encoded: "fp32" (torch), "int8" (ONNX Runtime on an 8-bit export of
# a text model, on the CPU), or "auto": int8 for a text model on the CPU, fp32 on CUDA and for
# image models. fp32 is the default: int8 cost 0.0074 nDCG@10 on the development set (the rule for
# a default is at most 0.005) for 1.12x the pages per CPU second (benchmarks/RESULTS.md,
# "Indexing and the ONNX exports").
PRECISION = "fp32"
BATCH_PAGES = 128  # pages committed per batch (an interrupted run keeps finished batches)
TEXT_BATCH_SIZE = 32  # text windows per forward pass
PIXEL_BATCH_SIZE = 32  # pictures per forward pass; large vision-language families set their own
TOKEN_DTYPE = "binary"
OCR_MODE = "auto"
OCR_LANGUAGE = "eng"
OCR_WORKERS = 0  # 0: one per CPU
# --ocr auto: a PDF page whose text layer has fewer letters and digits than this is OCR'd when it
# shows a picture (a scan with a page number on it), as the text pass sees it.
OCR_SHORT_TEXT_CHARS = 50
DEVICE = "auto"

# Images with more pixels than this are refused before decoding (Pillow's own warning
# threshold: a real photo is far below it, a decompression bomb far above).
MAX_IMAGE_PIXELS = 89_478_485
# A gzipped document (Debian's manuals are .pdf.gz) is decompressed in memory, at most this
# much of it: a file that decompresses to more is refused (the same guard against
# decompression bombs as MAX_IMAGE_PIXELS). The reader's worker holds the decompressed bytes
# and MuPDF's copy within its READ_MEMORY_BYTES.
MAX_DECOMPRESSED_BYTES = 512 << 20
# When stderr is not a terminal, `smart index` prints a plain progress line this often (seconds).
PROGRESS_SECONDS = 5.0

# The web view (`smart serve`).
SERVE_HOST = "127.0.0.1"
SERVE_PORT = 8765
THUMBNAIL_WIDTH = 320  # pixels: result cards
PAGE_VIEW_WIDTH = 1200  # pixels: a page opened large
THUMBNAIL_CACHE_BYTES = 256 << 20  # rendered pictures kept in the user's cache folder
VIEW_WORD_CACHE_PAGES = 256  # pages whose word boxes a server keeps in memory
SERVE_MAX_QUERY_CHARS = 1000
SERVE_MAX_K = 100
SERVE_THREADS = 4  # threads that answer requests (the index's work runs on one more, in turn)
SERVE_MAX_CONNECTIONS = 256  # open at once; more wait in the listen backlog
SERVE_BACKLOG = 1024
SERVE_REQUEST_TIMEOUT = 10.0  # seconds for a whole request head, from connecting or the last answer
SERVE_WRITE_TIMEOUT = 30.0  # seconds a client may take to read each part of an answer

# The watcher (`smart watch`, `smart mcp --watch`).
WATCH_SETTLE_SECONDS = 1.0  # a changed file is read once its size and mtime stayed the same this long
WATCH_HOLD_SECONDS = 30.0  # settled changes wait at most this long for files still being written
WATCH_SCAN_SECONDS = 60.0  # folders on file systems without change events are scanned this often
WATCH_RETRY_SECONDS = 10.0  # an update that failed on the disk (full, I/O) is tried again after this
WATCH_GROUP_MS = 1600  # the native watcher groups a burst of events for at most this long
WATCH_QUIET_MS = 50  # ... and hands it over once no event came for this long

# The Model Context Protocol server (`smart mcp`).
MCP_HOST = "127.0.0.1"
MCP_PORT = 8766
MCP_PAGE_CHARS = 4000  # get_page returns at most this many characters of a page's text
MCP_MAX_K = 50


# Tuning (`smart tune`): pairs mined from the collection's PDF outlines, or given by the user.
TUNE_SECTION_PAGES = 4  # an outline entry's relevant pages: its target and up to this many in all
TUNE_HELD_BACK = 0.25  # share of the pairs held back to choose the weights, stop training and judge
TUNE_MIN_PAIRS = 8  # fewer usable pairs than this: nothing to learn from
TUNE_LAMBDA_LATE = (0.5, 1.0, 2.0, 3.0, 5.0, 8.0, 16.0)  # with lambda_anchor 1; late-only is tried too
TUNE_HARD_NEGATIVES = 8  # per pair, the top-ranked pages of the untuned search that are not its own
TUNE_MINING_PAGES = 256  # pages decoded at a time to mine them (float32: about 0.6 MB a page for MiniLM)
TUNE_BATCH = 16  # pairs per training step
TUNE_EPOCHS = 10  # at most; training stops when the held-back pairs stop improving
TUNE_PATIENCE = 1  # epochs without improvement before stopping (no measured run improved after one that did not; README, tune)
TUNE_LEARNING_RATE = 2e-4  # 2e-3 overfits the headings within one epoch (README, tune)
TUNE_TEMPERATURE = 0.05  # of the contrastive loss over MaxSim scores
TUNE_WEIGHT_DECAY = 1e-4  # pulls the adapter's linear map back to zero (the identity adapter)
TUNE_SEED = 1729
TUNE_INIT = "identity"  # the adapter's Linear starts at zero; "pca": all-but-the-top (README, tune)
TUNE_PCA_COMPONENTS = 4  # init "pca": principal directions of the query token states taken out at the start
TUNE_BODY_PER_PAGE = 1  # pseudo-queries cut from each page's own text (inverse cloze; README, tune)
TUNE_BODY_MIN_WORDS = 6  # a sentence shorter than this is not a query's source
TUNE_BODY_MAX_SENTENCE = 40  # nor one longer (a run-on list, a table read as text)
TUNE_BODY_QUERY_WORDS = 8  # a pseudo-query is at most this many consecutive words of its sentence
TUNE_BODY_MAX_PAIRS = 600  # at most (a stable sample); held-back ones are encoded again without their sentence
# Tune keeps a change only if it beats the untuned search on the held-back pairs by this many
# standard errors of the paired per-pair nDCG@10 differences (a one-sided test at about 2.5%).
TUNE_MIN_Z = 2.0


# Qdrant (a mirror of local stores; README, "Beyond one machine").
QDRANT_COLLECTION = "smart"
QDRANT_TOKEN_FORMAT = "float16"  # tokens multivector: float16, float32, scalar (int8) or binary quantization
QDRANT_BATCH_POINTS = 64  # points per upsert (a text page with its tokens is ~0.5 MB of JSON)
QDRANT_TIMEOUT = 30.0  # seconds per request
QDRANT_RETRIES = 5  # retries of a transient failure (connection refused, timeout, 5xx), with backoff
QDRANT_BACKOFF = 0.5  # first wait, doubled each retry
QDRANT_BACKOFF_MAX = 8.0


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
# The largest fusion weight (either sign) a search takes: scores stay finite in float32.
MAX_LAMBDA = 1e6
MAX_QUERY_LINE_BYTES = 1 << 20
# Folders deeper than this below an indexed path are skipped with a reason.
MAX_DIRECTORY_DEPTH = 256
# Decided by stat() before a file is opened (or hashed): a file larger than this for its kind is
# skipped, and so is a sparse file (at least SPARSE_MIN_BYTES long, less than 1/SPARSE_RATIO of it
# on disk: holes, not a document; a symlink to a 20 GB sparse file cost 117 s a run to hash).
MAX_FILE_BYTES = {"pdf": 4 << 30, "image": 1 << 30}
MAX_OTHER_FILE_BYTES = 4 << 30  # kinds not named above
SPARSE_MIN_BYTES = 16 << 20
SPARSE_RATIO = 8


def xdg_dir(variable: str, *under_home: str) -> str:
    """An XDG base directory: ``$variable`` when it is an absolute path, else ``~/under_home``.
    The XDG specification makes a relative value invalid, to be ignored: taken as given, it would
    move the store and the caches with the working directory."""
    value = os.environ.get(variable, "")
    return value if os.path.isabs(value) else os.path.join(os.path.expanduser("~"), *under_home)
