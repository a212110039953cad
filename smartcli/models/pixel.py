"""What every pixel-reading encoder shares: loading, devices and precision, and packing results."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from smartcli import defaults
from smartcli.errors import ModelLoadError, OptionError, first_line
from smartcli.models.base import PIXELS, Encoded, ModelInfo, fingerprint_model_dir, quiet_transformers, resolve_device

# Token id recorded for a vision-patch token, which has no vocabulary id.
PATCH_TOKEN_ID = -1
# Rendered pages and images are capped at this many times the model's own pixel budget:
# enough headroom for the processor's resize to look good, no more.
PIXEL_CAP_FACTOR = 4


class PixelEncoder:
    """Base of the encoders that read pixels as well as text (CLIP, SigLIP, Qwen-VL families).

    A subclass sets ``family``, loads its parts in ``_load`` and implements ``_encode_texts``
    and ``_encode_images`` for one batch; each returns ``(pooled, tokens, token_ids)`` per
    item as torch tensors on the model's device (pooled ``[D]``, tokens ``[n, D]``).
    """

    family = "pixels"
    half_dtype_name = "float16"  # the precision used on CUDA
    takes_max_pixels = False  # whether the pixel budget is the user's to choose
    default_batch_size = defaults.PIXEL_BATCH_SIZE
    modality = PIXELS

    def __init__(
        self,
        location: str,
        model_dir: Path,
        spec: str,
        name: str,
        device: str = "auto",
        max_pixels: int | None = None,
        dpi: float | None = None,
    ):
        import torch

        quiet_transformers()
        self._torch = torch
        self.device = resolve_device(device)
        self.dtype = getattr(torch, self.half_dtype_name) if self.device.startswith("cuda") else torch.float32
        self.dpi = dpi
        if max_pixels is not None and not self.takes_max_pixels:
            raise OptionError(
                f"{name} reads a fixed-size square; a pixel budget applies to Qwen-VL and SigLIP 2 NaFlex models", option="max_pixels"
            )
        try:
            self._load(location, max_pixels)
        except OptionError:
            raise
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ModelLoadError(f"cannot load model {spec!r}: {first_line(exc)}") from None
        self.model.to(self.device).eval()
        self.info = ModelInfo(
            spec=spec,
            name=name,
            fingerprint=fingerprint_model_dir(model_dir),
            family=self.family,
            dims=self.dims,
            pooling=self.pooling,
            max_length=self.max_item_tokens,
            extra={"max_pixels": max_pixels, "dpi": dpi},  # as asked for; None is the model's default
            consumes_pixels=True,
        )

    # -- what a subclass provides ---------------------------------------------------------------

    pooling = "model"
    dims: int
    max_pixels: int  # the model's own pixel budget for one picture
    max_item_tokens: int  # about the most token states one picture gives (sizes committed batches)

    def _load(self, location: str, max_pixels: int | None) -> None:
        raise NotImplementedError

    def _encode_texts(self, texts: list[str]):
        raise NotImplementedError

    def _encode_images(self, images: list):
        raise NotImplementedError

    # -- the encoder protocol -------------------------------------------------------------------

    @property
    def pixel_cap(self) -> int:
        """Largest picture handed to the model's processor (pages and images are downscaled to it)."""
        return PIXEL_CAP_FACTOR * self.max_pixels

    def encode_queries(self, texts: Sequence[str]) -> list[Encoded]:
        """Encode text queries through the model's text path."""
        return self._batched(list(texts), self._encode_texts, self.default_batch_size)

    def encode_documents(self, images: Sequence, batch_size: int | None = None) -> list[Encoded]:
        """Encode RGB pictures (pages, photos, image queries) through the model's vision path."""
        return self._batched(list(images), self._encode_images, batch_size or self.default_batch_size)

    def _batched(self, inputs: list, encode_batch, batch_size: int) -> list[Encoded]:
        results: list[Encoded] = []
        with self._torch.inference_mode():
            for start in range(0, len(inputs), batch_size):
                for pooled, tokens, token_ids in encode_batch(inputs[start : start + batch_size]):
                    results.append(pack(pooled, tokens, token_ids))
        return results


def pack(pooled, tokens, token_ids) -> Encoded:
    """L2-normalize both views in float32 and move them to numpy.

    An item with no kept token (a query of only punctuation) gets its pooled vector as its
    single token, as the SMART reference does, so that MaxSim stays defined.
    """
    import torch

    pooled = torch.nn.functional.normalize(pooled.float(), dim=-1)
    tokens = torch.nn.functional.normalize(tokens.float(), dim=-1)
    ids = np.asarray(token_ids, dtype=np.int32).reshape(-1)
    if tokens.shape[0] == 0:
        tokens, ids = pooled[None, :], np.asarray([PATCH_TOKEN_ID], dtype=np.int32)
    n = tokens.shape[0]
    return Encoded(
        pooled=pooled.cpu().numpy().astype(np.float32),
        tokens=tokens.cpu().numpy().astype(np.float32),
        token_ids=ids,
        spans=np.zeros((n, 2), dtype=np.int32),  # pictures have no character spans
    )


def kept_ids(input_ids, attention_mask, dropped_ids) -> list:
    """Per row, the positions that are attended to and not one of ``dropped_ids``."""
    import torch

    dropped = torch.tensor(sorted(dropped_ids), device=input_ids.device, dtype=input_ids.dtype)
    keep = attention_mask.bool() & ~torch.isin(input_ids, dropped)
    return [row.nonzero().flatten() for row in keep]
