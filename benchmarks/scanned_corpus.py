"""Make a "scanned" copy of a folder of PDFs: every page becomes a noisy, slightly rotated picture.

    python benchmarks/scanned_corpus.py dev_corpus scanned_corpus            # image-only PDFs
    python benchmarks/scanned_corpus.py dev_corpus scanned_png --format png  # one PNG per page
    python benchmarks/scanned_corpus.py --smoke OUT                          # sample_corpus/, 2 pages a PDF

Each page is rendered in grey at ``--dpi``, rotated by a random angle within
``--max-rotation`` degrees, given Gaussian noise and a slight blur, and JPEG-compressed
like a cheap office scanner's output. PDFs keep their base names and page numbers, so
the development set's judgments (file base name + page) apply to the scanned copy
unchanged. PNGs go to ``OUT/<pdf stem>/page-0001.png`` (for timing image OCR).
Deterministic for a given ``--seed``. It makes the input of the OCR quality figures (`smart
index` of the copy, `smart eval` on it, benchmarks/ocr_word_recall.py) and prints the seconds
(wall and CPU) it took per page.
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import numpy as np
import pymupdf
from _stores import SAMPLE_CORPUS, clock
from PIL import Image, ImageFilter


def scan_page(page: pymupdf.Page, dpi: int, max_rotation: float, noise: float, rng: np.random.Generator) -> Image.Image:
    pix = page.get_pixmap(dpi=dpi, colorspace=pymupdf.csGRAY, alpha=False)
    image = Image.frombytes("L", (pix.width, pix.height), pix.samples)
    angle = rng.uniform(-max_rotation, max_rotation)
    image = image.rotate(angle, resample=Image.BICUBIC, expand=False, fillcolor=255)
    pixels = np.asarray(image, dtype=np.float32) + rng.normal(0.0, noise, (image.height, image.width))
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    return image.filter(ImageFilter.GaussianBlur(0.6))


def jpeg_bytes(image: Image.Image, quality: int) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def scan_pdf(source: Path, out_dir: Path, args, rng: np.random.Generator) -> int:
    with pymupdf.open(source) as doc:
        if args.pages:
            doc.select(range(min(args.pages, doc.page_count)))
        if args.format == "pdf":
            scanned = pymupdf.open()
            for page in doc:
                image = scan_page(page, args.dpi, args.max_rotation, args.noise, rng)
                new = scanned.new_page(width=page.rect.width, height=page.rect.height)
                new.insert_image(new.rect, stream=jpeg_bytes(image, args.quality))
            scanned.save(out_dir / source.name, garbage=4, deflate=True)
        else:
            folder = out_dir / source.stem
            folder.mkdir(parents=True, exist_ok=True)
            for page in doc:
                scan_page(page, args.dpi, args.max_rotation, args.noise, rng).save(folder / f"page-{page.number + 1:04d}.png")
        return doc.page_count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", type=Path, nargs="?", help="folder of born-digital PDFs (--smoke: sample_corpus/)")
    parser.add_argument("out", type=Path, nargs="?", help="folder for the scanned copies")
    parser.add_argument("--format", choices=("pdf", "png"), default="pdf")
    parser.add_argument("--dpi", type=int, default=200, help="scan resolution (default 200)")
    parser.add_argument("--max-rotation", type=float, default=1.0, help="largest skew in degrees (default 1.0)")
    parser.add_argument("--noise", type=float, default=10.0, help="std. dev. of the grey-level noise (default 10)")
    parser.add_argument("--quality", type=int, default=75, help="JPEG quality inside the PDFs (default 75)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pages", type=int, default=None, help="scan only the first N pages of each PDF")
    parser.add_argument("--smoke", action="store_true", help="SOURCE defaults to sample_corpus/, 2 pages a PDF; give OUT alone")
    args = parser.parse_args(argv)
    if args.smoke:
        if args.out is None:  # one folder given: it is where the copies go
            args.source, args.out = SAMPLE_CORPUS, args.source
        args.pages = args.pages or 2
    if args.source is None or args.out is None:
        parser.error("SOURCE and OUT are required (with --smoke: OUT)")

    sources = sorted(args.source.rglob("*.pdf") if args.smoke else args.source.glob("*.pdf"))
    if not sources:
        print(f"no PDFs in {args.source}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    with clock() as timing:
        pages = sum(scan_pdf(source, args.out, args, rng) for source in sources)
    print(
        f"{pages} pages of {len(sources)} PDFs scanned into {args.out} in {timing.wall:.1f} s, {timing.cpu:.1f} CPU s "
        f"({timing.wall / max(pages, 1):.2f} s, {timing.cpu / max(pages, 1):.2f} CPU s a page; "
        f"{args.format}, {args.dpi} dpi, rotation up to {args.max_rotation} deg, noise {args.noise})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
