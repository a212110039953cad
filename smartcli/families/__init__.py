"""Encoders for models that read pixels, chosen by the checkpoint's ``config.json`` ``model_type``.

==============  ===============================  ==========================================
model_type      family                           examples
==============  ===============================  ==========================================
``clip``        :class:`ClipEncoder`             openai/clip-vit-base-patch32
``siglip``      :class:`SiglipEncoder`           google/siglip-base-patch16-224,
                                                 google/siglip2-base-patch16-224
``siglip2``     :class:`Siglip2NaflexEncoder`    google/siglip2-base-patch16-naflex
``qwen3_vl``    :class:`Qwen3VLEmbeddingEncoder` Qwen/Qwen3-VL-Embedding-2B
``qwen2_vl``    :class:`GmeQwen2VLEncoder`       Alibaba-NLP/gme-Qwen2-VL-2B-Instruct
==============  ===============================  ==========================================
"""

from __future__ import annotations

import json
import os
from pathlib import Path

MODEL_TYPES = {
    "clip": ("smartcli.families.clip", "ClipEncoder"),
    "siglip": ("smartcli.families.siglip", "SiglipEncoder"),
    "siglip2": ("smartcli.families.siglip", "Siglip2NaflexEncoder"),
    "qwen3_vl": ("smartcli.families.qwen_vl", "Qwen3VLEmbeddingEncoder"),
    "qwen2_vl": ("smartcli.families.qwen_vl", "GmeQwen2VLEncoder"),
}


def checkpoint_dir(location: str) -> Path | None:
    """The local folder holding the checkpoint's config (downloading it for a hub id); None if unreachable."""
    if os.path.isdir(location):
        return Path(location)
    try:
        from transformers.utils import cached_file

        return Path(cached_file(location, "config.json")).parent
    except Exception:  # offline, unknown id, gated: the text path reports the load error
        return None


def model_type_of(model_dir: Path) -> str | None:
    try:
        return json.loads((model_dir / "config.json").read_text()).get("model_type")
    except (OSError, ValueError, AttributeError):
        return None


def pixel_encoder_class(location: str):
    """(encoder class, checkpoint folder) when ``location`` holds a model of a pixel family, else None."""
    import importlib

    model_dir = checkpoint_dir(location)
    family = MODEL_TYPES.get(model_type_of(model_dir)) if model_dir else None
    if family is None:
        return None
    module, name = family
    return getattr(importlib.import_module(module), name), model_dir
