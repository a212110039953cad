"""Pictures for models that read pixels: PDF pages rendered with PyMuPDF, image files loaded with Pillow.

Everything returned here is an 8-bit RGB ``PIL.Image`` no larger than the pixel cap the
caller gives, whatever the file held: EXIF orientation applied, palette / alpha / CMYK /
16-bit / float modes converted (transparency composited on white, as on paper), the first
frame of an animation, and a clear error for files too large to decode safely.
"""

from __future__ import annotations

import contextlib
import math
import warnings

from smartcli import defaults
from smartcli.errors import first_line
from smartcli.ingest.files import UnreadableFile, open_content, open_pdf

# The one decompression-bomb limit of every path that decodes an image (indexing, OCR,
# image queries); large JPEGs are decoded at reduced size (draft mode).
MAX_DECODE_PIXELS = defaults.MAX_IMAGE_PIXELS
MIN_DPI, MAX_DPI = 18, 600
PAPER_WHITE = (255, 255, 255)


def load_image(path: str, max_pixels: int):
    """The picture in ``path`` as RGB, downscaled (aspect kept) to at most ``max_pixels``.

    Raises :class:`UnreadableFile` with a short reason for anything Pillow cannot decode
    and for images over the decompression-bomb limit.
    """
    from PIL import ImageOps

    with _opened_image(path) as image:
        if image.format == "JPEG":
            # Let the decoder skip detail we would throw away anyway.
            image.draft("RGB", _scaled_size(image.size, max_pixels))
        image.seek(0)  # animations: the first frame
        image.load()
        upright = ImageOps.exif_transpose(image)
        return fit_within(to_rgb(upright), max_pixels)


def probe_image(path: str) -> tuple[int, int]:
    """Width and height from the header only; raises :class:`UnreadableFile` like :func:`load_image`."""
    with _opened_image(path) as image:
        return image.size


def validate_image(path: str) -> None:
    """Cheaply check that an image file decodes (the text-model path, which keeps no pixels).

    The header and pixel count are checked before any pixel is decoded; PNG's checksums are
    verified; JPEGs are decoded at reduced scale (draft mode), other formats fully.
    """
    with _opened_image(path) as image:
        image_format = image.format
        image.verify()
    if image_format == "PNG":
        return  # verify() already checked every chunk's CRC and the end of data
    with _opened_image(path) as image:
        if image_format == "JPEG":
            image.draft(image.mode, (image.width // 8 or 1, image.height // 8 or 1))
        image.load()


@contextlib.contextmanager
def _opened_image(path: str):
    """Pillow's image at ``path`` (through the checked descriptor of discovery.open_content),
    size-checked, with Pillow's many failure types made one: :class:`UnreadableFile`."""
    from PIL import Image

    try:
        with open_content(path) as f, warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(f) as image:
                check_decodable_size(image.size)
                yield image
    except UnreadableFile:
        raise
    except Image.DecompressionBombError:
        raise UnreadableFile(
            f"image larger than the {MAX_DECODE_PIXELS // 1_000_000} megapixel safety limit against decompression bombs"
        ) from None
    except Image.UnidentifiedImageError:
        raise UnreadableFile("not a readable image (unknown or damaged format)") from None
    except OSError as exc:
        if exc.errno is not None:
            raise UnreadableFile(exc.strerror.lower() if exc.strerror else str(exc)) from None
        raise UnreadableFile(f"damaged image ({first_line(exc)})") from None
    except Exception as exc:  # Pillow's decoders raise ValueError, SyntaxError, EOFError, struct.error, ...
        raise UnreadableFile(f"damaged image ({first_line(exc)})") from None


def check_decodable_size(size: tuple[int, int]) -> None:
    width, height = size
    if width * height > MAX_DECODE_PIXELS:
        raise UnreadableFile(
            f"image is {width}x{height} ({width * height / 1e6:.0f} megapixels), over the "
            f"{MAX_DECODE_PIXELS // 1_000_000} megapixel safety limit against decompression bombs"
        )


def to_rgb(image):
    """8-bit RGB from any Pillow mode; transparent parts become paper white."""
    from PIL import Image

    if image.mode == "RGB":
        return image
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        image = _deep_to_8bit(image)
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, PAPER_WHITE)
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image.convert("RGB")  # L, 1, CMYK, YCbCr, LAB, HSV


def _deep_to_8bit(image):
    """16-bit, 32-bit and float greyscale scaled to 0..255 (a plain convert would clip to white)."""
    import numpy as np
    from PIL import Image

    values = np.nan_to_num(np.asarray(image, dtype=np.float64))
    low, high = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
    if image.mode.startswith("I;16") or (image.mode == "I" and low >= 0 and 255 < high <= 65535):
        low, span = 0.0, 65535.0  # 16-bit samples (Pillow opens some 16-bit PNGs as "I")
    elif low >= 0 and high <= (1.0 if image.mode == "F" else 255.0):
        low, span = 0.0, (1.0 if image.mode == "F" else 255.0)  # already in a standard range
    else:
        span = high - low  # anything else: stretch what is there
    scaled = np.clip((values - low) * (255.0 / max(span, 1e-12)), 0, 255)
    return Image.fromarray(np.round(scaled).astype(np.uint8), mode="L")


def fit_within(image, max_pixels: int):
    """Downscale (aspect kept) so that width * height <= max_pixels; smaller images are returned as is."""
    from PIL import Image

    width, height = image.size
    if width * height <= max_pixels:
        return image
    new_size = _scaled_size(image.size, max_pixels)
    return image.resize(new_size, Image.Resampling.LANCZOS, reducing_gap=3.0)


def _scaled_size(size: tuple[int, int], max_pixels: int) -> tuple[int, int]:
    width, height = size
    if width * height <= max_pixels:
        return width, height
    scale = math.sqrt(max_pixels / (width * height))
    return max(1, math.floor(width * scale)), max(1, math.floor(height * scale))


def auto_dpi(width_pt: float, height_pt: float, target_pixels: int) -> float:
    """The resolution at which a page of this size (in points) covers about ``target_pixels``."""
    area_in2 = max(width_pt * height_pt, 1.0) / (72.0 * 72.0)
    return min(MAX_DPI, max(MIN_DPI, math.sqrt(target_pixels / area_in2)))


class PageRenderer:
    """Renders pages of PDFs, keeping the last document open for consecutive pages."""

    def __init__(self, target_pixels: int, max_pixels: int, dpi: float | None = None):
        self.target_pixels = target_pixels
        self.max_pixels = max_pixels
        self.dpi = dpi
        self._path: str | None = None
        self._doc = None

    def render(self, path: str, page: int):
        """Page ``page`` (1-based) of the PDF at ``path`` as RGB; raises :class:`UnreadableFile`."""
        import pymupdf

        doc = self._open(path)
        try:
            pdf_page = doc[page - 1]
            rect = pdf_page.rect
            dpi = self.dpi or auto_dpi(rect.width, rect.height, self.target_pixels)
            # An explicit --dpi still may not blow past the cap (posters, huge scans).
            dpi = min(dpi, auto_dpi(rect.width, rect.height, self.max_pixels))
            pixmap = pdf_page.get_pixmap(dpi=max(1, round(dpi)), alpha=False, colorspace=pymupdf.csRGB)
        except Exception as exc:  # PyMuPDF raises several types for broken pages
            raise UnreadableFile(f"cannot render page {page}: {first_line(exc)}") from None
        from PIL import Image

        image = Image.frombytes("RGB", (pixmap.width, pixmap.height), pixmap.samples)
        return fit_within(image, self.max_pixels)

    def _open(self, path: str):
        if path != self._path:
            self.close()
            try:
                self._doc = open_pdf(path)
            except OSError as exc:
                raise UnreadableFile(exc.strerror.lower() if exc.strerror else str(exc)) from None
            self._path = path
        return self._doc

    def close(self) -> None:
        if self._doc is not None:
            self._doc.close()
        self._doc, self._path = None, None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
