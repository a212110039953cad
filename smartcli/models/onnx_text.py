"""A query encoder for sentence-transformers-style text models that needs neither torch nor transformers.

Tokenization is the ``tokenizers`` library on the checkpoint's own ``tokenizer.json`` (padding
off, truncation off: queries are cut into the same windows as the torch encoder cuts them), the
forward pass ONNX Runtime on an ONNX export of the same weights. The export is made once, with
torch (``torch.onnx.export``, opset 17, the TorchScript exporter), and cached in the user's
cache folder under the model's fingerprint; every later process loads it in a fraction of the
time ``import torch, transformers`` takes. Token states and pooled vectors equal the torch
encoder's within float rounding (tests/unit/test_onnx_encoder.py).
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from smartcli import defaults
from smartcli.errors import ModelLoadError, first_line
from smartcli.models.base import TEXT, Encoded, ModelInfo, fingerprint_model_dir, read_json

# Pooling modes this encoder implements (the torch encoder's, less none).
POOLINGS = ("mean", "cls", "max", "lasttoken")


def onnx_cache_dir() -> Path:
    """Where exports are kept: ``$SMART_CACHE_DIR``, else ``$XDG_CACHE_HOME/smart``, else ``~/.cache/smart``."""
    if os.environ.get(defaults.CACHE_DIR_ENV):
        return Path(os.environ[defaults.CACHE_DIR_ENV]).expanduser() / "onnx"
    base = defaults.xdg_dir("XDG_CACHE_HOME", ".cache")
    return Path(base) / "smart" / "onnx"


def exported_model_path(fingerprint: str) -> Path:
    return onnx_cache_dir() / f"{fingerprint}-opset{defaults.ONNX_OPSET}.onnx"


def export_onnx(model_dir: Path, target: Path) -> None:
    """Export the checkpoint's transformer (input ids, attention mask -> last hidden state) to
    ``target``, atomically (written under a temporary name, then renamed). Needs torch and onnx."""
    import torch
    from transformers import AutoModel

    from smartcli.models.base import quiet_transformers

    quiet_transformers()
    model = AutoModel.from_pretrained(str(model_dir)).eval()

    class LastHiddenState(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask):
            return self.inner(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".export-", suffix=".onnx", dir=target.parent)
    os.close(fd)
    try:
        ids = torch.ones((1, 8), dtype=torch.long)
        axes = {0: "batch", 1: "sequence"}
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), torch.inference_mode(False):
            warnings.simplefilter("ignore")
            torch.onnx.export(
                LastHiddenState(model),
                (ids, torch.ones_like(ids)),
                tmp,
                input_names=["input_ids", "attention_mask"],
                output_names=["last_hidden_state"],
                dynamic_axes={"input_ids": axes, "attention_mask": axes, "last_hidden_state": axes},
                opset_version=defaults.ONNX_OPSET,
                dynamo=False,
            )
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


class OnnxTextQueryEncoder:
    """Encodes texts like SentenceTransformerTextEncoder, with tokenizers + ONNX Runtime.

    ``threads``: ONNX Runtime's intra-op threads (one by default: a query is small, and on a
    busy machine more threads make it many times slower, not faster)."""

    modality = TEXT
    default_batch_size = defaults.TEXT_BATCH_SIZE

    def __init__(self, model_dir: Path, onnx_path: Path, spec: str, name: str, threads: int = defaults.QUERY_THREADS):
        import onnxruntime
        from tokenizers import Tokenizer

        from smartcli.models.text import _read_pooling_mode

        config = read_json(model_dir / "config.json") or {}
        tokenizer_config = read_json(model_dir / "tokenizer_config.json") or {}
        self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.tokenizer.no_padding()  # the shipped tokenizer.json pads (and truncates) to 128
        self.tokenizer.no_truncation()  # windows are cut here, like the torch encoder cuts them
        self.pooling = _read_pooling_mode(model_dir)
        if self.pooling not in POOLINGS:
            raise ModelLoadError(f"unsupported pooling mode {self.pooling!r}")
        self.max_length = _max_length(model_dir, tokenizer_config, config)
        self.prefix_ids, self.suffix_ids = _special_affixes(self.tokenizer)
        self.window = self.max_length - len(self.prefix_ids) - len(self.suffix_ids)
        self.special_ids = frozenset(i for i, t in self.tokenizer.get_added_tokens_decoder().items() if t.special)
        pad = tokenizer_config.get("pad_token")
        pad_id = self.tokenizer.token_to_id(pad) if isinstance(pad, str) else None
        self.pad_id = 0 if pad_id is None else pad_id
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self.session = onnxruntime.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
        self.info = ModelInfo(
            spec=spec,
            name=name,
            fingerprint=fingerprint_model_dir(model_dir),
            family="text",
            dims=int(config["hidden_size"]),
            pooling=self.pooling,
            max_length=self.max_length,
        )

    def encode_queries(self, texts: Sequence[str]) -> list[Encoded]:
        """Queries are cut to their first ``defaults.MAX_QUERY_TOKENS`` tokens, as the torch encoder cuts them."""
        from smartcli.models.text import capped_query

        return self.encode_documents([capped_query(t, self.tokenizer.encode(t, add_special_tokens=False).offsets) for t in texts])

    def encode_documents(self, texts: Sequence[str], batch_size: int | None = None) -> list[Encoded]:
        from smartcli.models.text import assemble

        batch_size = batch_size or self.default_batch_size
        if not texts:
            return []
        encodings = self.tokenizer.encode_batch(list(texts), add_special_tokens=False)
        tokenized = {"input_ids": [e.ids for e in encodings], "offset_mapping": [e.offsets for e in encodings]}
        return assemble(self, texts, tokenized, batch_size)

    def _forward(self, batch_ids: list[list[int]]):
        sequences = [self.prefix_ids + ids + self.suffix_ids for ids in batch_ids]
        width = max(len(s) for s in sequences)
        input_ids = np.full((len(sequences), width), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(sequences), width), dtype=np.int64)
        for row, seq in enumerate(sequences):
            input_ids[row, : len(seq)] = seq
            mask[row, : len(seq)] = 1
        (hidden,) = self.session.run(["last_hidden_state"], {"input_ids": input_ids, "attention_mask": mask})
        hidden = hidden.astype(np.float32, copy=False)
        pooled = _unit(_pool(hidden, mask, self.pooling))
        return pooled, _unit(hidden), mask


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def _pool(hidden: np.ndarray, mask: np.ndarray, mode: str) -> np.ndarray:
    m = mask[..., None].astype(hidden.dtype)
    if mode == "mean":
        return (hidden * m).sum(1) / np.maximum(m.sum(1), 1e-9)
    if mode == "cls":
        return hidden[:, 0]
    if mode == "max":
        return np.where(m == 0, -1e9, hidden).max(1)
    last = mask.sum(1) - 1  # lasttoken
    return hidden[np.arange(hidden.shape[0]), last]


def _special_affixes(tokenizer) -> tuple[list[int], list[int]]:
    content = tokenizer.encode("hello", add_special_tokens=False).ids
    full = tokenizer.encode("hello", add_special_tokens=True).ids
    for start in range(len(full) - len(content) + 1):
        if full[start : start + len(content)] == content:
            return list(full[:start]), list(full[start + len(content) :])
    return [], []


def _max_length(model_dir: Path, tokenizer_config: dict, config: dict) -> int:
    st_config = read_json(model_dir / "sentence_bert_config.json") or {}
    if st_config.get("max_seq_length"):
        return int(st_config["max_seq_length"])
    limits = [config.get("max_position_embeddings"), tokenizer_config.get("model_max_length"), 512]
    return int(min(x for x in limits if isinstance(x, int) and x > 0))


def load_onnx_query_encoder(model_dir: Path, spec: str, name: str, on_export=None):
    """The ONNX encoder of a text checkpoint, exporting it first if no export is cached.

    Returns (encoder, None), or (None, reason) when it cannot be had (no tokenizer.json, the
    export failed, ONNX Runtime missing); the caller then uses the torch encoder."""
    if not (model_dir / "tokenizer.json").is_file():
        return None, "the checkpoint has no tokenizer.json"
    try:
        import onnxruntime  # noqa: F401
        import tokenizers  # noqa: F401
    except ImportError as exc:
        return None, f"{exc.name} is not installed"
    target = exported_model_path(fingerprint_model_dir(model_dir))
    try:
        cached = target.is_file()
    except OSError as exc:  # a cache folder this user may not enter
        return None, f"the cached ONNX export cannot be read ({(exc.strerror or str(exc)).lower()})"
    if not cached:
        if on_export is not None:
            on_export(target)
        try:
            export_onnx(model_dir, target)
        except Exception as exc:  # any exporter failure: the torch path still answers
            return None, f"the ONNX export failed ({first_line(exc)})"
    try:
        return OnnxTextQueryEncoder(model_dir, target, spec, name), None
    except Exception as exc:
        return None, f"the ONNX model could not be loaded ({first_line(exc)})"
