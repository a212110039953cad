import numpy as np
import pymupdf
import pytest
from PIL import Image

from smartcli.ingest import render
from smartcli.ingest.discovery import UnreadableFile
from smartcli.ingest.render import PageRenderer, auto_dpi, load_image, validate_image
from smartcli.models.qwen_vl import pad_to_aspect
from tests.conftest import SAMPLE_CORPUS
from tests.odd_images import BLUE, GREEN, RED, write_odd_images


@pytest.fixture(scope="module")
def odd(tmp_path_factory):
    return write_odd_images(tmp_path_factory.mktemp("odd"))


def pixels(path, cap=10**6):
    image = load_image(str(path), cap)
    assert image.mode == "RGB"
    return np.asarray(image).astype(int)


def close(a, b, tol=12):
    return np.abs(np.asarray(a) - np.asarray(b)).max() <= tol


def test_transparency_is_composited_on_white(odd):
    rgba = pixels(odd["rgba"])
    assert close(rgba[10, 5], (255, 255, 255)) and close(rgba[10, 50], BLUE)
    palette = pixels(odd["palette"])  # index 0 (red) is the transparent one
    assert close(palette[5, 5], GREEN, 0) and close(palette[5, 35], (255, 255, 255), 0)


def test_cmyk_becomes_rgb(odd):
    assert close(pixels(odd["cmyk"])[15, 25], (255, 0, 0), 8)


def test_sixteen_bit_and_float_greys_are_scaled_not_clipped(odd):
    ramp = pixels(odd["gray16"])[0, :, 0]
    assert ramp[0] == 0 and ramp[-1] == 255 and 100 < ramp[32] < 160
    assert (np.diff(ramp) >= 0).all()
    assert close(pixels(odd["float"])[5, 5], (128, 128, 128), 1)


def test_exif_orientation_is_applied(odd):
    image = pixels(odd["exif"])
    assert image.shape[:2] == (60, 30)  # stored 60x30 landscape, shown as portrait
    assert close(image[2, 15], RED, 30) and close(image[40, 15], GREEN, 30)


def test_animation_uses_its_first_frame(odd):
    assert close(pixels(odd["animated"])[15, 15], RED, 4)


def test_huge_images_are_downscaled_keeping_their_aspect(tmp_path):
    path = tmp_path / "big.png"
    Image.new("RGB", (1200, 600), BLUE).save(path)
    image = load_image(str(path), 20_000)
    assert image.width * image.height <= 20_000
    assert image.width / image.height == pytest.approx(2.0, rel=0.02)


def test_decompression_bombs_are_refused_with_a_clear_reason(tmp_path, monkeypatch):
    path = tmp_path / "bomb.png"
    Image.new("L", (400, 300)).save(path)
    monkeypatch.setattr(render, "MAX_DECODE_PIXELS", 100_000)
    with pytest.raises(UnreadableFile, match=r"400x300 .*safety limit against decompression bombs"):
        load_image(str(path), 10**6)
    # Pillow's own guard (it fires at open time) is reported the same way.
    monkeypatch.setattr(render, "MAX_DECODE_PIXELS", 10**9)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 50_000)
    with pytest.raises(UnreadableFile, match="safety limit"):
        load_image(str(path), 10**6)


@pytest.mark.parametrize(
    "content, reason",
    [
        (b"", "empty file"),
        (b"not an image at all", "not a readable image"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not a readable image|damaged image"),
    ],
)
def test_broken_files_raise_unreadable(tmp_path, content, reason):
    """One image guard for every path: indexing, OCR and picture queries give the same reasons."""
    path = tmp_path / "broken.png"
    path.write_bytes(content)
    with pytest.raises(UnreadableFile, match=reason):
        load_image(str(path), 10**6)
    with pytest.raises(UnreadableFile, match=reason):
        validate_image(str(path))


def test_pdf_page_is_rendered_to_the_pixel_target():
    with PageRenderer(target_pixels=200_000, max_pixels=800_000) as renderer:
        page = renderer.render(str(SAMPLE_CORPUS / "manuals" / "terminal-guide.pdf"), 1)
        second = renderer.render(str(SAMPLE_CORPUS / "manuals" / "terminal-guide.pdf"), 2)
    assert page.mode == "RGB" and second.size == page.size
    assert 150_000 < page.width * page.height <= 230_000
    with pymupdf.open(SAMPLE_CORPUS / "manuals" / "terminal-guide.pdf") as doc:
        rect = doc[0].rect
    assert page.width / page.height == pytest.approx(rect.width / rect.height, rel=0.02)
    assert np.asarray(page).min() < 100  # there is dark text on the white page


def test_explicit_dpi_is_used_but_capped():
    path = str(SAMPLE_CORPUS / "hobbies" / "sourdough.pdf")
    with PageRenderer(target_pixels=10_000, max_pixels=10**7, dpi=72) as renderer:
        at_72 = renderer.render(path, 1)
    with PageRenderer(target_pixels=10_000, max_pixels=300_000, dpi=600) as renderer:
        capped = renderer.render(path, 1)
    with pymupdf.open(path) as doc:
        rect = doc[0].rect
    assert at_72.size == (round(rect.width), round(rect.height))
    assert capped.width * capped.height <= 300_000


def test_auto_dpi_and_aspect_padding():
    assert auto_dpi(612, 792, 612 * 792) == pytest.approx(72.0)
    assert auto_dpi(612, 792, 4 * 612 * 792) == pytest.approx(144.0)
    tall = pad_to_aspect(Image.new("RGB", (2, 1000), RED), 200)
    assert tall.size == (5, 1000) and np.asarray(tall)[500, 0].tolist() == [255, 255, 255]
    square = Image.new("RGB", (10, 10))
    assert pad_to_aspect(square, 200) is square
