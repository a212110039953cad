"""Storage formats for token states, and their decoding for scoring.

Token states dominate a store's size (one vector per kept token), so they can be kept as:

- ``float16``: 2 bytes per dimension.
- ``int8``: 1 byte per dimension plus a float32 scale per token (symmetric, per token).
- ``binary``: 1 bit per dimension, the sign of each coordinate. Scoring is asymmetric: the
  query stays in float and meets ``sign(d) / sqrt(D)``. For a unit vector with Gaussian-like
  coordinates that reconstruction has a cosine of sqrt(2/pi) ~= 0.80 with the original
  (measured on real MiniLM token states: 0.787 and 0.788 on two collections), which would
  shrink every MaxSim score and silently re-weight the fusion; decoding divides it out, so
  the lambdas keep their meaning. The constant needs no fitting, so nothing changes as a
  store grows.

``benchmarks/token_formats.py`` measures size and retrieval quality of each.
"""

from __future__ import annotations

import math

import numpy as np

TOKEN_FORMATS = ("binary", "int8", "float16")
BINARY_SHRINK = math.sqrt(2 / math.pi)


def encode_int8(tokens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric per-token quantization: each row keeps its own dynamic range."""
    scale = np.abs(tokens).max(axis=1) / 127.0
    scale[scale == 0] = 1.0
    return np.round(tokens / scale[:, None]).astype(np.int8), scale.astype(np.float32)


def encode_binary(tokens: np.ndarray) -> np.ndarray:
    """Pack the sign bits of each row: [T, D] float -> [T, ceil(D / 8)] uint8."""
    return np.packbits(tokens >= 0, axis=1)


def decode_binary(packed: np.ndarray, dims: int, shrink: float = BINARY_SHRINK) -> np.ndarray:
    bits = np.unpackbits(packed, axis=1, count=dims).astype(np.float32)
    return (bits * 2.0 - 1.0) / (math.sqrt(dims) * shrink)


def unpack_binary_tokens(packed, dims: int, dtype=None, shrink: float = BINARY_SHRINK):
    """Torch version of :func:`decode_binary`, run on the packed tensor's own device."""
    import torch

    shifts = torch.arange(7, -1, -1, device=packed.device, dtype=torch.uint8)
    bits = (packed.unsqueeze(-1) >> shifts) & 1  # [T, D/8, 8], most significant bit first like np.packbits
    signs = bits.reshape(packed.shape[0], -1)[:, :dims].to(dtype or torch.float32) * 2 - 1
    return signs / (math.sqrt(dims) * shrink)
