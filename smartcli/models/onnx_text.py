"""Text models without torch: the ``tokenizers`` library and ONNX Runtime on a cached export.

Tokenization is the ``tokenizers`` library on the checkpoint's own ``tokenizer.json`` (padding
off, truncation off: texts are cut into the same windows as the torch encoder cuts them), the
forward pass ONNX Runtime on an ONNX export of the same weights (onnx_export.py: made once,
cached under the model's fingerprint, checked against its manifest before each use).

- Queries, in float32: token states and pooled vectors equal the torch encoder's within float
  rounding (tests/unit/test_onnx_encoder.py), and a search imports neither torch nor
  transformers.
- Pages of a store indexed with ``--precision int8``: the int8 export, 1.4x torch's pages per
  CPU second here, token cosine 0.9996 to the float32 states (benchmarks/index_throughput.py).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from smartcli import defaults
from smartcli.errors import ModelLoadError, first_line
from smartcli.models.base import FP32, INT8, TEXT, Encoded, ModelInfo, fingerprint_model_dir, read_json
from smartcli.models.onnx_export import (
    ExportUnavailable,
    check_export,
    export_fp32,
    export_int8,
    export_lock,
    exported_model_path,
    onnx_cache_dir,
    onnxruntime_module,
    record_unloadable,
    write_export,
)

__all__ = ["OnnxTextEncoder", "OnnxTextQueryEncoder", "load_onnx_encoder", "load_onnx_query_encoder", "onnx_cache_dir"]

# Pooling modes this encoder implements (the torch encoder's, less none).
POOLINGS = ("mean", "cls", "max", "lasttoken")


class OnnxTextEncoder:
    """Encodes texts like SentenceTransformerTextEncoder, with tokenizers + ONNX Runtime.

    ``threads``: ONNX Runtime's intra-op threads (one by default: a query is small, and on a
    busy machine more threads make it many times slower, not faster; 0: ONNX Runtime's own
    choice, one per physical core). ``precision``: which export ``onnx_path`` is; an int8
    encoder's ``info`` says so (``extra["precision"]``), so that a store records it."""

    modality = TEXT
    default_batch_size = defaults.TEXT_BATCH_SIZE

    def __init__(
        self,
        model_dir: Path,
        onnx_path: Path,
        spec: str,
        name: str,
        threads: int = defaults.QUERY_THREADS,
        precision: str = FP32,
    ):
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
        self.session = _session(onnx_path, threads)
        self.precision = precision
        self.info = ModelInfo(
            spec=spec,
            name=name,
            fingerprint=fingerprint_model_dir(model_dir),
            family="text",
            dims=int(config["hidden_size"]),
            pooling=self.pooling,
            max_length=self.max_length,
            extra={} if precision == FP32 else {"precision": precision},
        )

    def encode_queries(self, texts: Sequence[str]) -> list[Encoded]:
        """Queries are cut to their first ``defaults.MAX_QUERY_TOKENS`` tokens, as the torch encoder cuts them."""
        from smartcli.models.text import capped_query

        return self.encode_documents([capped_query(t, self.tokenizer.encode(t, add_special_tokens=False).offsets) for t in texts])

    def encode_documents(self, texts: Sequence[str], batch_size: int | None = None, sort_by_length: bool = True) -> list[Encoded]:
        from smartcli.models.text import assemble

        batch_size = batch_size or self.default_batch_size
        if not texts:
            return []
        encodings = self.tokenizer.encode_batch(list(texts), add_special_tokens=False)
        tokenized = {"input_ids": [e.ids for e in encodings], "offset_mapping": [e.offsets for e in encodings]}
        return assemble(self, texts, tokenized, batch_size, sort_by_length)

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


OnExport = Callable[[Path, "str | None"], None]  # (export, damage or None) -> says it is being made


def load_onnx_encoder(
    model_dir: Path,
    spec: str,
    name: str,
    precision: str = FP32,
    threads: int = defaults.QUERY_THREADS,
    on_export: OnExport | None = None,
):
    """The ONNX encoder of a text checkpoint, from its cached export in ``precision``; an export
    that is missing or does not match its manifest is made (again) first, once.

    Returns (encoder, None), or (None, reason) when it cannot be had (no tokenizer.json, the
    export failed, ONNX Runtime missing or refusing it); the caller then uses the torch encoder
    or says why it cannot."""
    if not (model_dir / "tokenizer.json").is_file():
        return None, "the checkpoint has no tokenizer.json"
    try:
        onnxruntime_module()
        import tokenizers  # noqa: F401
    except ImportError as exc:
        return None, f"{exc.name} is not installed"
    fingerprint = fingerprint_model_dir(model_dir)
    try:
        target, fresh = ensure_export(model_dir, fingerprint, precision, on_export)
    except ExportUnavailable as exc:
        return None, str(exc)
    try:
        return OnnxTextEncoder(model_dir, target, spec, name, threads, precision), None
    except Exception as exc:
        refused = f"the ONNX model could not be loaded ({first_line(exc)})"
    if fresh:  # made just now and whole: this ONNX Runtime cannot run it, and will not next time
        record_unloadable(target, refused)
        return None, refused
    try:  # whole by its manifest, yet refused: made again once
        target, _ = ensure_export(model_dir, fingerprint, precision, on_export, remake=refused)
        return OnnxTextEncoder(model_dir, target, spec, name, threads, precision), None
    except ExportUnavailable as exc:
        return None, str(exc)
    except Exception as exc:
        refused = f"the ONNX model could not be loaded ({first_line(exc)})"
        record_unloadable(target, refused)
        return None, refused


def load_onnx_query_encoder(model_dir: Path, spec: str, name: str, on_export: OnExport | None = None):
    """The float32 encoder for queries (see :func:`load_onnx_encoder`)."""
    return load_onnx_encoder(model_dir, spec, name, FP32, defaults.QUERY_THREADS, on_export)


def ensure_export(
    model_dir: Path, fingerprint: str, precision: str, on_export: OnExport | None = None, remake: str | None = None
) -> tuple[Path, bool]:
    """The path of a whole export of ``model_dir`` in ``precision``, and whether it was made by this
    call. ``remake``: why an export that matches its manifest must be made again all the same.
    Raises ExportUnavailable."""
    target = exported_model_path(fingerprint, precision)
    damage = remake or _damage(target)
    if damage is None:
        return target, False
    source = ensure_export(model_dir, fingerprint, FP32, on_export)[0] if precision == INT8 else None
    try:
        with export_lock(target.parent):
            damage = remake or _damage(target)  # another process may have made it meanwhile
            if damage is None:
                return target, False
            if on_export is not None:
                on_export(target, None if damage == "missing" else damage)
            write_export(target, _maker(model_dir, precision, source), precision, fingerprint)
    except ExportUnavailable:
        raise
    except OSError as exc:
        raise ExportUnavailable(f"the ONNX export cannot be written ({(exc.strerror or str(exc)).lower()})") from None
    except Exception as exc:  # any exporter failure
        raise ExportUnavailable(f"the ONNX export failed ({first_line(exc)})") from None
    return target, True


def _damage(target: Path) -> str | None:
    """What is wrong with the export at ``target`` (None: nothing; "missing"), or ExportUnavailable
    when it cannot be read, or ONNX Runtime refused this very file before."""
    try:
        check = check_export(target)
    except OSError as exc:  # a cache folder or file this user may not read: not damage, left alone
        raise ExportUnavailable(f"the cached ONNX export cannot be read ({(exc.strerror or str(exc)).lower()})") from None
    if check.damage is None and check.unloadable:
        raise ExportUnavailable(check.unloadable)
    return check.damage


def _maker(model_dir: Path, precision: str, source: Path | None):
    """How the export in ``precision`` is made: float32 by torch from the checkpoint, int8 from
    the float32 export ``source``."""
    if precision == FP32:
        return lambda tmp: export_fp32(model_dir, tmp)
    if precision == INT8:
        return lambda tmp: export_int8(source, tmp)
    raise ExportUnavailable(f"no {precision!r} export is made")


def _session(onnx_path: Path, threads: int):
    onnxruntime = onnxruntime_module()
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return onnxruntime.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])


def document_threads() -> int:
    """ONNX Runtime threads for indexing: ``$OMP_NUM_THREADS`` when set (as torch reads it), else
    ONNX Runtime's own choice (0: one per physical core)."""
    try:
        return max(0, int(os.environ.get("OMP_NUM_THREADS", "0")))
    except ValueError:
        return 0


# Kept for callers of the earlier name: the encoder serves queries and documents alike.
OnnxTextQueryEncoder = OnnxTextEncoder
