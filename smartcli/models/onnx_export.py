"""The cached ONNX exports of a text model, made once and checked before each use.

Two exports per model fingerprint, in the cache folder's ``onnx/``:

- ``FINGERPRINT-opset17.onnx``: the checkpoint's transformer as it is (float32), exported with
  torch (``torch.onnx.export``, the TorchScript exporter): what queries are encoded with;
- ``FINGERPRINT-opset17-int8.onnx``: the same graph with each weight matrix stored in 8 bits,
  one scale per block of ``INT8_BLOCK`` weights of a column (ONNX Runtime's ``MatMulNBits``,
  which also quantizes each row of activations block by block: a window's vectors do not
  depend on the windows batched with it). Made from the float32 export, without torch.

Each export has a manifest beside it (``.json``), written after the export is in place: its
size and SHA-256, and the ``os.stat`` identity of the file when it was last checked. An
export is used only once it matches its manifest: when the file's identity is the recorded one
(nothing wrote to it since), at the cost of one ``stat``; otherwise by its digest, 62 ms of CPU
for the 90 MB float32 export (benchmarks/export_integrity.py). A file that does not match —
truncated, bits flipped, another file put in its place, no manifest — is made again, once, under
a lock, atomically (temporary name, then renamed), with one line saying why.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from smartcli import defaults
from smartcli.models.base import FP32

MANIFEST_FORMAT = 1
# How exports are made; an export recorded with another recipe is made again. 2: eager attention
# (the default attention exported an IsNaN/Where pass over every attention matrix: 12-17% of the
# CPU of a forward pass), int8 as MatMulNBits blocks of INT8_BLOCK.
EXPORT_RECIPE = 2
# Weights per scale in the int8 export. Measured on the development pages: token cosine to the
# float32 states 0.9996 at 32, 0.9991 at 128, at 5-7% more CPU for 32 (benchmarks/RESULTS.md).
INT8_BLOCK = 32
# MatMulNBits' accuracy_level 4: activations quantized to int8 too (per row, per block), so the
# products run on int8 instructions; lower levels dequantize the weights and run in float32.
INT8_ACCURACY_LEVEL = 4


class ExportUnavailable(Exception):
    """The export cannot be had; ``str(exc)`` says why in one line."""


def onnxruntime_module():
    """``import onnxruntime``, with ONNX Runtime's telemetry off unless the user turned it on.

    Since 1.2x its Linux builds start a telemetry client at import, which creates
    ``$XDG_CACHE_HOME/Microsoft/DeveloperTools/.onnxruntime`` (a device id and an event queue);
    ``ORT_DISABLE_TELEMETRY=1`` keeps it from starting (it is read at import)."""
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
    import onnxruntime

    return onnxruntime


def onnx_cache_dir() -> Path:
    """Where exports are kept: ``$SMART_CACHE_DIR``, else ``$XDG_CACHE_HOME/smart``, else ``~/.cache/smart``."""
    if os.environ.get(defaults.CACHE_DIR_ENV):
        return Path(os.environ[defaults.CACHE_DIR_ENV]).expanduser() / "onnx"
    base = defaults.xdg_dir("XDG_CACHE_HOME", ".cache")
    return Path(base) / "smart" / "onnx"


def exported_model_path(fingerprint: str, precision: str = FP32) -> Path:
    suffix = "" if precision == FP32 else f"-{precision}"
    return onnx_cache_dir() / f"{fingerprint}-opset{defaults.ONNX_OPSET}{suffix}.onnx"


def manifest_path(export: Path) -> Path:
    return export.with_suffix(".json")


# -- checking ------------------------------------------------------------------------------------


@dataclass
class Check:
    """What :func:`check_export` found: ``damage`` (None when the export is whole) and whether
    its digest was computed to decide (False: its file identity matched the manifest's)."""

    damage: str | None
    hashed: bool = False
    unloadable: str | None = None  # why ONNX Runtime refused this very file before


def check_export(export: Path) -> Check:
    """Whether ``export`` is the file its manifest describes. Raises OSError when it cannot be
    read (a permission problem is not damage: it is not replaced)."""
    manifest = read_manifest(export)
    if manifest is None:
        if not export.exists():
            return Check("missing")
        return Check("no digest was recorded for it")
    if manifest.get("recipe") != EXPORT_RECIPE:
        return Check("made by an earlier version of smart")
    try:
        stat = export.stat()
    except FileNotFoundError:
        return Check("missing")
    unloadable = _unloadable_here(manifest)
    if manifest.get("file") == _identity(stat):
        return Check(None, unloadable=unloadable)
    if stat.st_size != manifest.get("bytes"):
        return Check(f"{stat.st_size:,} bytes where {manifest.get('bytes', 0):,} were written")
    if file_digest(export) != manifest.get("sha256"):
        return Check("its SHA-256 differs from the one recorded when it was made", hashed=True)
    with contextlib.suppress(OSError):  # copied or restored whole: remembered where the folder may be written
        _write_manifest(export, dict(manifest, file=_identity(export.stat())))
    return Check(None, hashed=True, unloadable=unloadable)


def file_digest(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def read_manifest(export: Path) -> dict | None:
    try:
        manifest = json.loads(manifest_path(export).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return None
    ok = isinstance(manifest, dict) and manifest.get("format") == MANIFEST_FORMAT and isinstance(manifest.get("sha256"), str)
    return manifest if ok else None


def record_unloadable(export: Path, reason: str) -> None:
    """Remember that this ONNX Runtime refused this (whole, freshly made) export, so that later
    runs go to torch at once instead of making it again on every start."""
    manifest = read_manifest(export)
    if manifest is not None:
        with contextlib.suppress(OSError):
            _write_manifest(export, dict(manifest, unloadable={"onnxruntime": _onnxruntime_version(), "reason": reason}))


def _unloadable_here(manifest: dict) -> str | None:
    refused = manifest.get("unloadable")
    if isinstance(refused, dict) and refused.get("onnxruntime") == _onnxruntime_version():
        return str(refused.get("reason"))
    return None


def _onnxruntime_version() -> str:
    return onnxruntime_module().__version__


def _identity(stat: os.stat_result) -> list[int]:
    """What changes whenever anything writes to, replaces or truncates the file (ctime cannot be
    set back by its owner)."""
    return [stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns]


# -- making ----------------------------------------------------------------------------------------


@contextlib.contextmanager
def export_lock(folder: Path):
    """One process makes an export at a time (others wait, then find it made)."""
    import fcntl

    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def write_export(target: Path, make, precision: str, fingerprint: str) -> None:
    """Make an export with ``make(temporary_path)`` and put it and its manifest in place: the
    export is renamed over ``target`` first, then the manifest that describes it; a process
    killed in between leaves an export with no matching manifest, which is made again."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".export-", suffix=".onnx", dir=target.parent)
    os.close(fd)
    try:
        make(Path(tmp))
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        digest, size = file_digest(Path(tmp)), os.path.getsize(tmp)
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    manifest = {
        "format": MANIFEST_FORMAT,
        "model_fingerprint": fingerprint,
        "precision": precision,
        "opset": defaults.ONNX_OPSET,
        "recipe": EXPORT_RECIPE,
        "bytes": size,
        "sha256": digest,
        "file": _identity(target.stat()),
    }
    _write_manifest(target, manifest)


def _write_manifest(export: Path, manifest: dict) -> None:
    target = manifest_path(export)
    fd, tmp = tempfile.mkstemp(prefix=".manifest-", suffix=".json", dir=target.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(manifest, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def export_fp32(model_dir: Path, target: Path) -> None:
    """Export the checkpoint's transformer (input ids, attention mask -> last hidden state) to
    ``target``. Needs torch and onnx."""
    import torch
    from transformers import AutoModel

    from smartcli.models.base import quiet_transformers

    quiet_transformers()
    model = AutoModel.from_pretrained(str(model_dir), attn_implementation="eager").eval()

    class LastHiddenState(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask):
            return self.inner(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    ids = torch.ones((1, 8), dtype=torch.long)
    axes = {0: "batch", 1: "sequence"}
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), torch.inference_mode(False):
        warnings.simplefilter("ignore")
        torch.onnx.export(
            LastHiddenState(model),
            (ids, torch.ones_like(ids)),
            str(target),
            input_names=["input_ids", "attention_mask"],
            output_names=["last_hidden_state"],
            dynamic_axes={"input_ids": axes, "attention_mask": axes, "last_hidden_state": axes},
            opset_version=defaults.ONNX_OPSET,
            dynamo=False,
        )


def export_int8(source: Path, target: Path) -> None:
    """``source`` (a float32 export) with every MatMul by a 2-D weight replaced by ONNX Runtime's
    ``MatMulNBits`` on that weight in 8 bits: blocks of :data:`INT8_BLOCK` weights down a
    column, one scale each, symmetric (the weight of largest magnitude maps to -128). Needs onnx."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(source))
    graph = model.graph
    weights = {t.name: t for t in graph.initializer}
    nodes = []
    for node in graph.node:
        weight = weights.get(node.input[1]) if node.op_type == "MatMul" and len(node.input) == 2 else None
        if weight is None or len(weight.dims) != 2:
            nodes.append(node)
            continue
        packed, scales = quantize_blocks(numpy_helper.to_array(weight).astype(np.float32), INT8_BLOCK)
        k, n = weight.dims
        q, s = numpy_helper.from_array(packed, weight.name + "_q8"), numpy_helper.from_array(scales, weight.name + "_scales")
        graph.initializer.extend([q, s])
        nodes.append(
            helper.make_node(
                "MatMulNBits",
                [node.input[0], q.name, s.name],
                list(node.output),
                name=(node.name or weight.name) + "_q8",
                domain="com.microsoft",
                K=k,
                N=n,
                bits=8,
                block_size=INT8_BLOCK,
                accuracy_level=INT8_ACCURACY_LEVEL,
            )
        )
    del graph.node[:]
    graph.node.extend(nodes)
    used = {name for node in graph.node for name in node.input}
    kept = [t for t in graph.initializer if t.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    if not any(o.domain == "com.microsoft" for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    onnx.save(model, str(target))


def quantize_blocks(weight: np.ndarray, block: int) -> tuple[np.ndarray, np.ndarray]:
    """A [K, N] float weight as MatMulNBits holds it in 8 bits, symmetric: ``packed`` [N, K/block,
    block] uint8 (value + 128) and ``scales`` [N, K/block] float32, each block's scale its
    largest-magnitude weight over -128 (what ONNX Runtime's own quantizer computes)."""
    k, n = weight.shape
    blocks = -(-k // block)
    padded = np.zeros((blocks * block, n), dtype=np.float32)
    padded[:k] = weight
    columns = padded.T.reshape(n, blocks, block)
    largest = np.take_along_axis(columns, np.abs(columns).argmax(-1)[..., None], -1)[..., 0]
    scales = (largest / -128.0).astype(np.float32)
    safe = np.where(scales == 0, 1.0, scales)[..., None]
    packed = np.clip(np.rint(columns / safe) + 128, 0, 255).astype(np.uint8)
    return packed, scales
