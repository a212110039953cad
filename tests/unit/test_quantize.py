import math

import numpy as np
import torch

from smartcli.store.formats import BINARY_SHRINK, decode_binary, encode_binary, encode_int8, unpack_binary_tokens


def binary_shrink(tokens: np.ndarray) -> float:
    """Mean cosine between unit token states and their 1-bit reconstructions."""
    if len(tokens) == 0:
        return math.sqrt(2 / math.pi)
    dims = tokens.shape[1]
    signs = np.where(tokens >= 0, 1.0, -1.0) / math.sqrt(dims)
    return float(np.mean(np.sum(tokens * signs, axis=1)))


def test_binary_shrink_constant_matches_real_token_states(encoder):
    texts = [
        "Feed the sourdough starter with equal weights of flour and water once a day.",
        "To change the default terminal emulator on Debian, run update-alternatives as root.",
    ]
    tokens = np.concatenate([e.tokens for e in encoder.encode_documents(texts)])
    assert abs(binary_shrink(tokens) - BINARY_SHRINK) < 0.03  # sqrt(2/pi); measured 0.787 on whole manuals


def test_binary_round_trip_keeps_signs_and_unit_scale():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((50, 40)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    packed = encode_binary(x)
    assert packed.shape == (50, 5) and packed.dtype == np.uint8
    decoded = decode_binary(packed, 40)
    assert (np.sign(decoded) == np.sign(x)).all()
    np.testing.assert_allclose(np.linalg.norm(decoded, axis=1), 1 / BINARY_SHRINK, rtol=1e-6)
    np.testing.assert_allclose(unpack_binary_tokens(torch.from_numpy(packed), 40).numpy(), decoded, rtol=1e-6)
    # the shrink divided out: a token's decoded self-similarity averages about 1
    assert abs(float(np.mean(np.sum(x * decoded, axis=1))) - 1.0) < 0.1


def test_int8_round_trip_error_is_below_half_a_step():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((20, 32)).astype(np.float32)
    q, scale = encode_int8(x)
    assert np.abs(q.astype(np.float32) * scale[:, None] - x).max() <= scale.max() / 2 + 1e-6
    assert math.isclose(float(np.abs(q).max()), 127)
