"""Indexing with a model that reads pixels: picturing pages and encoding them in bounded batches.

Pictures are made just before they are encoded, ``batch_size`` at a time, so a batch never
holds more than a few rendered pages. The token states of a committed batch are bounded by
:func:`pages_per_batch` (a batch is still at least one whole file), and are kept in the
store's own precision while they wait to be written.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from smartcli.errors import OptionError
from smartcli.ingest.files import UnreadableFile
from smartcli.ingest.render import PageRenderer, load_image
from smartcli.models.registry import RENDER_SETTINGS
from smartcli.models.registry import reads_pixels as spec_reads_pixels
from smartcli.store.notes import Note

# Token states held in memory for one committed batch.
TOKEN_RAM_BUDGET = 256 * 2**20
# PDF pages are rendered at about this many times the model's pixel budget, so that the
# model's own resize works from a sharper picture than it keeps.
RENDER_FACTOR = 2


def reads_pixels(encoder) -> bool:
    return encoder is not None and getattr(encoder.info, "consumes_pixels", False)


def pages_per_batch(encoder, batch_pages: int, token_dtype: str = "float16") -> int:
    """``batch_pages``, lowered for big vision-language models so a batch's token states fit the budget."""
    if not reads_pixels(encoder):
        return batch_pages
    per_page = max(1, encoder.info.max_length) * encoder.info.dims * held_dtype(token_dtype).itemsize
    return max(1, min(batch_pages, TOKEN_RAM_BUDGET // per_page))


def held_dtype(token_dtype: str) -> np.dtype:
    """How page token states wait in memory: float16 when the store keeps float16 anyway (no loss)."""
    return np.dtype(np.float16 if token_dtype == "float16" else np.float32)


def encode_pictures(
    encoder,
    pages: Sequence[tuple[str, str, object]],
    batch_size: int,
    report: Callable[[str], None],
    token_dtype: str = "float16",
    sandbox=None,
) -> dict[str, str]:
    """Picture each ``(path, kind, PageRecord)`` and set its ``encoded`` (or ``note``, when it cannot be pictured).

    ``sandbox``: a sandbox.SandboxedReader that renders PDF pages and decodes images in its worker
    process, under its deadline and memory limit (None: in this process). Returns the files refused
    that way (path -> reason): their other pages are not rendered, and the caller skips them.
    """
    from smartcli.ingest.sandbox import is_refusal

    renderer = PageRenderer(RENDER_FACTOR * encoder.max_pixels, encoder.pixel_cap, encoder.dpi)
    refused: dict[str, str] = {}
    with renderer:
        for start in range(0, len(pages), batch_size):
            pictures, pictured = [], []
            for path, kind, page in pages[start : start + batch_size]:
                if path in refused:
                    continue
                try:
                    if kind == "image":
                        loaded = sandbox.picture(path, encoder.pixel_cap) if sandbox is not None else load_image(path, encoder.pixel_cap)
                        pictures.append(loaded)
                    elif sandbox is not None:
                        pictures.append(sandbox.render(path, page.page, renderer.target_pixels, renderer.max_pixels, renderer.dpi))
                    else:
                        pictures.append(renderer.render(path, page.page))
                    pictured.append(page)
                except UnreadableFile as exc:
                    if is_refusal(str(exc)):
                        refused[path] = str(exc)
                        continue
                    page.note, page.detail = Note.PAGE_UNREADABLE, str(exc)
                    report(f"page {page.page} of {path} not encoded: {exc}")
            for page, encoded in zip(pictured, encoder.encode_documents(pictures, batch_size)):
                encoded.tokens = encoded.tokens.astype(held_dtype(token_dtype), copy=False)
                page.encoded = encoded
    return refused


def render_options(stored, spec: str | None, **given) -> dict:
    """The render settings (``max_pixels``, ``dpi``) to load ``spec`` with for a store.

    A store keeps the settings of its first run, so that all its pages are pictured alike:
    a later run uses them, and asking for different ones is refused (OptionError).
    """
    asked = [key for key in RENDER_SETTINGS if given.get(key) is not None]
    if asked and (spec in (None, "default") or not spec_reads_pixels(spec)):
        model = spec or "the default model"
        raise OptionError(f"render settings apply to image models; {model} reads text", option=asked[0], reason="text_model", model=model)
    same_model = stored is not None and (spec is None or spec == stored.spec)
    saved = stored.extra if same_model else {}
    options = {}
    for key in RENDER_SETTINGS:
        value = given.get(key)
        if same_model and value is not None and value != saved.get(key):
            before = saved.get(key) if saved.get(key) is not None else "the model's default"
            raise OptionError(
                f"this store was indexed with {key} {before}; a store keeps its first run's render settings", option=key, stored=before
            )
        options[key] = value if value is not None else saved.get(key)
    return options
