"""Image files in the awkward modes real collections hold, written with Pillow."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

RED, GREEN, BLUE = (220, 20, 20), (20, 200, 20), (20, 20, 220)


def write_odd_images(folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}

    rgba = Image.new("RGBA", (64, 48), (*BLUE, 255))
    rgba.paste((0, 0, 0, 0), (0, 0, 32, 48))  # left half fully transparent
    paths["rgba"] = _save(rgba, folder / "transparent.png")

    palette = Image.new("P", (40, 40), 0)
    palette.putpalette([*RED, *GREEN] + [0] * (256 - 2) * 3)
    palette.paste(1, (0, 0, 20, 40))
    palette.info["transparency"] = 0
    paths["palette"] = _save(palette, folder / "palette.png", transparency=0)

    paths["cmyk"] = _save(Image.new("CMYK", (50, 30), (0, 255, 255, 0)), folder / "print.jpg", quality=95)

    ramp = np.tile(np.linspace(0, 65535, 64, dtype=np.uint16), (32, 1))
    paths["gray16"] = _save(Image.fromarray(ramp), folder / "scan16.png")

    paths["float"] = _save(Image.fromarray(np.full((20, 30), 0.5, dtype=np.float32)), folder / "float.tif")

    # 60 wide, 30 high on disk; EXIF orientation 6 says "rotate 90 degrees clockwise to view".
    rotated = Image.new("RGB", (60, 30), GREEN)
    rotated.paste(RED, (0, 0, 10, 30))
    exif = Image.Exif()
    exif[0x0112] = 6
    paths["exif"] = _save(rotated, folder / "phone.jpg", exif=exif.tobytes(), quality=95)

    frames = [Image.new("RGB", (30, 30), color) for color in (RED, GREEN, BLUE)]
    paths["animated"] = folder / "animated.gif"
    frames[0].save(paths["animated"], save_all=True, append_images=frames[1:], duration=100, loop=0)
    return paths


def _save(image, path: Path, **options) -> Path:
    image.save(path, **options)
    return path
