"""The model registry: a checkpoint's ``config.json`` ``model_type`` picks its family.

==============  ===============================  ==========================================
model_type      family                           examples
==============  ===============================  ==========================================
``clip``        :class:`ClipEncoder`             openai/clip-vit-base-patch32
``siglip``      :class:`SiglipEncoder`           google/siglip-base-patch16-224,
                                                 google/siglip2-base-patch16-224
``siglip2``     :class:`Siglip2NaflexEncoder`    google/siglip2-base-patch16-naflex
``qwen3_vl``    :class:`Qwen3VLEmbeddingEncoder` Qwen/Qwen3-VL-Embedding-2B
``qwen2_vl``    :class:`GmeQwen2VLEncoder`       Alibaba-NLP/gme-Qwen2-VL-2B-Instruct
any other       text: ``SentenceTransformerText…``  sentence-transformers/all-MiniLM-L6-v2
==============  ===============================  ==========================================
"""

from __future__ import annotations

import importlib
import json
import logging
from pathlib import Path

from smartcli import defaults
from smartcli.errors import ModelLoadError, OptionError
from smartcli.models.base import (
    AUTO,
    DEFAULT_MODEL,
    DEFAULT_MODEL_NAME,
    FP32,
    INT8,
    PRECISIONS,
    Encoder,
    ModelInfo,
    checkpoint_dir,
    default_model_path,
    not_on_disk,
)

TEXT_FAMILY = ("smartcli.models.text", "SentenceTransformerTextEncoder")
# model_type -> (module, class) of the pixel families; every other model_type is a text model.
PIXEL_FAMILIES = {
    "clip": ("smartcli.models.clip", "ClipEncoder"),
    "siglip": ("smartcli.models.siglip", "SiglipEncoder"),
    "siglip2": ("smartcli.models.siglip", "Siglip2NaflexEncoder"),
    "qwen3_vl": ("smartcli.models.qwen_vl", "Qwen3VLEmbeddingEncoder"),
    "qwen2_vl": ("smartcli.models.qwen_vl", "GmeQwen2VLEncoder"),
}
RENDER_SETTINGS = ("max_pixels", "dpi")  # what pixel families take from a store's settings
_log = logging.getLogger("smartcli")


def model_type_of(model_dir: Path) -> str | None:
    try:
        return json.loads((model_dir / "config.json").read_text()).get("model_type")
    except (OSError, ValueError, AttributeError):
        return None


def family_of(spec: str | None) -> tuple[tuple[str, str], Path | None]:
    """The (module, class) of ``spec``'s family and its local checkpoint folder (None for the text
    family's hub ids, which transformers resolves itself). Reads the config only; loads nothing."""
    if spec in (None, DEFAULT_MODEL):
        return TEXT_FAMILY, default_model_path()
    model_dir = checkpoint_dir(spec)
    family = PIXEL_FAMILIES.get(model_type_of(model_dir)) if model_dir else None
    return (family, model_dir) if family else (TEXT_FAMILY, model_dir)


def reads_pixels(spec: str | None) -> bool:
    """Whether ``spec`` names a model of a pixel family (reads its config only)."""
    return family_of(spec)[0] is not TEXT_FAMILY


# Models are frozen: a process loads each (spec, device, render settings) once, however many
# indexes it opens (a server, a test session).
_LOADED: dict[tuple, Encoder] = {}


def load_encoder(spec: str | None = None, device: str = "auto", options: dict | None = None) -> Encoder:
    """Load a frozen encoder from a Hugging Face id, a local folder, or ``default`` (the packaged MiniLM).

    Pixel families take the render settings of ``options`` (``max_pixels``, ``dpi``). A text
    model with ``options["precision"] == "int8"`` is the ONNX Runtime encoder of its int8 export
    (on the CPU, whatever ``device``; made once and cached like the query encoder's); with
    ``"auto"`` it is that encoder when the model runs on the CPU and the export can be had (else
    one line says why, and torch encodes in fp32). ``encoder.info.extra`` says which it is.
    """
    spec = spec or DEFAULT_MODEL
    settings = {k: v for k, v in (options or {}).items() if k in RENDER_SETTINGS}
    precision = (options or {}).get("precision") or FP32
    key = (spec, device, tuple(sorted(settings.items())), precision)
    if key not in _LOADED:
        if precision == INT8:
            _LOADED[key] = _load_int8(spec)
        elif precision == AUTO:
            _LOADED[key] = _load_int8_where_it_runs(spec, device, settings)
        else:
            _LOADED[key] = _load(spec, device, settings)
    return _LOADED[key]


def document_precision(stored: ModelInfo | None, spec: str | None, given: str | None) -> str:
    """The precision a store's pages are encoded in (``smart index --precision``): the store's own
    once it has a model (asking for another is refused: all its pages are encoded alike), else
    ``given``, else the default; pixel models are float32 only."""
    if given is not None and given not in (AUTO, *PRECISIONS):
        raise OptionError(f"must be one of {', '.join((AUTO, *PRECISIONS))}, not {given!r}", option="precision")
    if stored is not None:
        saved = stored.extra.get("precision", FP32)
        if given not in (None, AUTO) and given != saved:
            raise OptionError(
                f"this store's pages were encoded in {saved}; a store keeps its first run's precision",
                option="precision",
                stored=saved,
            )
        return saved
    choice = given or defaults.PRECISION
    if reads_pixels(spec):
        if choice == INT8:
            raise OptionError(f"int8 is for text models; {spec} reads pixels", option="precision", reason="pixel_model")
        return FP32
    return choice


def _load_int8_where_it_runs(spec: str, device: str, settings: dict) -> Encoder:
    """``precision="auto"``: the int8 encoder for a text model on the CPU, else (CUDA, a pixel
    model, an export that cannot be had: one line says why) the fp32 one."""
    (module, name), model_dir = family_of(spec)
    if (module, name) == TEXT_FAMILY and model_dir is not None and _cpu(device):
        try:
            return _load_int8(spec)
        except ModelLoadError as exc:
            _log.warning("smart: pages are encoded in fp32 by torch: %s", exc)
    return _load(spec, device, settings)


def _load_int8(spec: str) -> Encoder:
    from smartcli.models.onnx_text import document_threads, load_onnx_encoder

    (module, name), model_dir = family_of(spec)
    if (module, name) != TEXT_FAMILY:
        raise OptionError(f"int8 is for text models; {spec} reads pixels", option="precision", reason="pixel_model")
    if model_dir is None:
        raise not_on_disk(spec)
    shown = DEFAULT_MODEL_NAME if spec == DEFAULT_MODEL else spec
    encoder, reason = load_onnx_encoder(Path(model_dir), spec, shown, INT8, document_threads(), _say_export(shown))
    if encoder is None:
        raise ModelLoadError(f"the int8 export of {shown} cannot be used: {reason}", option="precision")
    return encoder


def _say_export(shown: str):
    """The one line said when an export of ``shown`` is made, or made again because it was damaged."""

    def say(target: Path, damage: str | None) -> None:
        if damage is not None:
            _log.warning("smart: the cached ONNX export %s failed its check (%s): exporting %s again", target, damage, shown)
        elif target.stem.endswith(f"-{INT8}"):
            _log.warning("smart: making the int8 export of %s for indexing (once) at %s", shown, target)
        else:
            _log.warning("smart: exporting %s for torch-free queries (once) to %s", shown, target)

    return say


def _load(spec: str, device: str, settings: dict) -> Encoder:
    (module, name), model_dir = family_of(spec)
    encoder_class = getattr(importlib.import_module(module), name)
    if model_dir is None:
        raise not_on_disk(spec)  # before anything reaches for the network
    if (module, name) == TEXT_FAMILY:
        if spec == DEFAULT_MODEL:
            return encoder_class(model_dir, spec=DEFAULT_MODEL, name=DEFAULT_MODEL_NAME, device=device)
        return encoder_class(model_dir, spec=spec, name=spec, device=device)
    return encoder_class(spec, model_dir, spec=spec, name=spec, device=device, **settings)


# Why the torch encoder answers queries for a model whose ONNX encoder could not be had
# (spec -> reason), so that the one line saying so is written once per process.
ONNX_FALLBACKS: dict[str, str] = {}


def load_query_encoder(spec: str | None = None, device: str = "auto", options: dict | None = None) -> Encoder:
    """The encoder for queries: for a text model on the CPU, tokenizers + ONNX Runtime (no torch,
    no transformers; the export is made once and cached, see onnx_text.py); otherwise, or when
    the export is impossible (one warning line, naming the model and why), :func:`load_encoder`."""
    spec = spec or DEFAULT_MODEL
    key = ("onnx-query", spec, device)
    if key in _LOADED:
        return _LOADED[key]
    (module, name), model_dir = family_of(spec)
    if (module, name) == TEXT_FAMILY and device in ("cpu", "auto") and _cpu(device) and spec not in ONNX_FALLBACKS:
        from smartcli.models.onnx_text import load_onnx_query_encoder

        model_dir = model_dir or checkpoint_dir(spec)
        if model_dir is not None:
            shown = DEFAULT_MODEL_NAME if spec == DEFAULT_MODEL else spec
            encoder, reason = load_onnx_query_encoder(Path(model_dir), spec, shown, on_export=_say_export(shown))
            if encoder is not None:
                _LOADED[key] = encoder
                return encoder
            ONNX_FALLBACKS[spec] = reason
            _log.warning("smart: queries of %s use the torch encoder: %s", shown, reason)
    # Queries are float32 whatever the store's pages are (measured: benchmarks/index_throughput.py).
    return load_encoder(spec, device, {k: v for k, v in (options or {}).items() if k != "precision"})


def _cpu(device: str) -> bool:
    from smartcli.models.base import resolve_device

    return resolve_device(device) == "cpu"
