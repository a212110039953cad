"""Damage done to a cached ONNX export, as a disk, a crash or another program might do it (the
tests of onnx_export.py and benchmarks/export_integrity.py)."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import numpy as np

KINDS = ("bit flips", "truncated", "foreign file", "not ONNX", "no manifest")


def weight_spans(path: Path) -> list[tuple[int, int]]:
    """(file offset, bytes) of each float32 weight tensor of 2 or more dimensions stored in ``path``."""
    import onnx

    data = path.read_bytes()
    spans = []
    for tensor in onnx.load(str(path), load_external_data=False).graph.initializer:
        if tensor.data_type == onnx.TensorProto.FLOAT and len(tensor.dims) >= 2 and len(tensor.raw_data) >= 4096:
            offset = data.find(tensor.raw_data[:256])
            if offset >= 0:
                spans.append((offset, len(tensor.raw_data)))
    return spans


def flip_exponents(path: Path, count: int, seed: int) -> None:
    """Flip the top exponent bit of ``count`` float32 weights chosen at random (a weight of 0.02
    becomes about 7e36), as a bad sector or a stray write would."""
    rng = random.Random(seed)
    spans = weight_spans(path)
    sizes = np.array([n for _, n in spans], dtype=np.float64)
    with open(path, "r+b") as f:
        for _ in range(count):
            offset, n = spans[rng.choices(range(len(spans)), weights=sizes)[0]]
            byte = offset + 4 * rng.randrange(n // 4) + 3  # little-endian: sign and top exponent bits
            f.seek(byte)
            value = f.read(1)[0]
            f.seek(byte)
            f.write(bytes([value ^ 0x40]))


def damage(export: Path, kind: str, seed: int = 0, foreign: Path | None = None) -> None:
    """Do ``kind`` of :data:`KINDS` to ``export`` (``foreign``: another ONNX model, for "foreign file")."""
    if kind == "bit flips":
        flip_exponents(export, 2000, seed)
    elif kind == "truncated":
        size = export.stat().st_size
        with open(export, "r+b") as f:
            f.truncate(random.Random(seed).randrange(size // 4, size - 1))
    elif kind == "foreign file":
        shutil.copyfile(foreign, export)
    elif kind == "not ONNX":
        export.write_bytes(b"not an onnx file\n")
    elif kind == "no manifest":
        flip_exponents(export, 2000, seed)
        export.with_suffix(".json").unlink()
    else:
        raise ValueError(kind)
