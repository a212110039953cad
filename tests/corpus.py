"""Real files for tests: small PDFs, images, and every kind of hostile file `smart index` must survive."""

from __future__ import annotations

import ctypes
import os
import random
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pymupdf
from PIL import Image

WORDS = (
    "anchor basket candle desert engine forest glacier harbor island jungle kettle ladder meadow "
    "needle orchard pepper quarry rocket saddle timber umbrella valley wagon yacht zipper bridge "
    "castle dragon feather garden hammer lantern marble nectar oyster pillow river silver tunnel"
).split()


def make_pdf(path, pages) -> Path:
    """A PDF with one page per entry of ``pages`` (a string of text, or "" for a blank page)."""
    doc = pymupdf.open()
    for text in pages:
        page = doc.new_page()
        if text:
            page.insert_textbox(pymupdf.Rect(72, 72, 540, 770), text)
    with open(path, "wb") as f:  # paths may be bytes that are not valid UTF-8
        f.write(doc.tobytes())
    return Path(os.fsdecode(path))


def random_text(rng: random.Random, words: int = 12) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words))


def make_many_pdfs(root: Path, count: int, seed: int, max_pages: int = 2) -> dict[str, list[str]]:
    """``count`` small PDFs of 1..max_pages pages of random words, in a few folders; returns path -> page texts."""
    rng = random.Random(seed)
    made = {}
    for i in range(count):
        folder = root / f"part-{i % 5}"
        folder.mkdir(parents=True, exist_ok=True)
        pages = [f"document {i} page {p + 1}: {random_text(rng)}" for p in range(rng.randint(1, max_pages))]
        path = folder / f"doc-{i:04d}.pdf"
        make_pdf(path, pages)
        made[str(path)] = pages
    return made


def write_png(path, width: int, height: int, rows: bool = True) -> None:
    """A 1-bit grayscale PNG of zeros. With ``rows`` the pixel data is complete (a
    decompression bomb when large: tens of kilobytes inflating to gigapixels); without,
    only the header claims the size."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    compressor = zlib.compressobj(9)
    parts = []
    if rows:
        row = b"\0" * ((width + 7) // 8 + 1)
        block = row * 256
        for _ in range(height // 256):
            parts.append(compressor.compress(block))
        parts.append(compressor.compress(row * (height % 256)))
    parts.append(compressor.flush())
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", b"".join(parts)) + chunk(b"IEND", b"")
    Path(path).write_bytes(data)


def make_image(path, size=(120, 90)) -> None:
    image = Image.new("RGB", size)
    for x in range(size[0]):
        for y in range(size[1]):
            image.putpixel((x, y), ((x * 7) % 256, (y * 5) % 256, (x * y) % 256))
    image.save(path)


def truncated(path, source: Path, fraction: float) -> None:
    data = source.read_bytes()
    Path(path).write_bytes(data[: int(len(data) * fraction)])


def permissions_can_hide_a_file(scratch: Path) -> bool:
    """Whether a child started with :func:`drop_read_override` is refused a chmod 000 file."""
    probe = scratch / "probe"
    probe.write_text("x")
    probe.chmod(0)
    try:
        result = subprocess.run(
            [sys.executable, "-c", f"open({str(probe)!r}).read()"], preexec_fn=drop_read_override, capture_output=True, text=True
        )
    except (OSError, subprocess.SubprocessError):
        return False
    finally:
        probe.unlink()
    return "PermissionError" in result.stderr


def drop_read_override() -> None:
    """subprocess preexec_fn: as root, give up the capabilities that let root read any file.

    Tests run as root in CI, where chmod 000 does not make a file unreadable; dropping
    CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH from the bounding set makes the child an
    ordinary owner that permission bits apply to.
    """
    if os.geteuid() != 0:
        return
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
        if libc.prctl(24, capability, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


# Good files with hostile names: each must be indexed and found by its query.
GOOD = {
    "plain.pdf": "The lighthouse keeper trims the wick of the great lamp at dusk every evening.",
    "name with  spaces.pdf": "Beekeepers calm the hive with smoke before lifting the honey frames.",
    "line\nbreak.pdf": "A cooper bends oak staves with fire and iron hoops to make a barrel.",
    b"caf\xe9-latin1.pdf": "The glassblower gathers molten glass on the end of a long iron pipe.",
}

# name -> a fragment of the reason it must be skipped with.
BAD = {
    "corrupt.pdf": "not a readable PDF",
    "truncated-early.pdf": "not a readable PDF",
    "encrypted.pdf": "encrypted",
    "empty.pdf": "empty file",
    "empty.png": "empty file",
    "really-text.pdf": "not a readable PDF",
    "truncated.jpg": "damaged image",
    "truncated.png": "damaged image",
    "bomb.png": "decompression bomb",
    "huge.png": "10000x10000",
    "loop-a.pdf": "symbolic link loop",
    "loop-b.pdf": "symbolic link loop",
    "dangling.pdf": "dangling symbolic link",
    "pipe.pdf": "not a regular file (a named pipe)",
    "bad\nname.pdf": "not a readable PDF",
    b"bad-\xff-bytes.pdf": "not a readable PDF",
}

# Added to BAD where permission bits can be made to bite (see permissions_can_hide_a_file).
UNREADABLE = {
    "unreadable.pdf": "permission denied",
    "locked-folder": "directory cannot be listed (permission denied)",
}

# Indexed, but only what could be read: reported once as partly indexed.
DAMAGED = {"truncated-late.pdf": "damaged PDF"}
DAMAGED_FIRST_PAGE = "The clockmaker oils the escapement of the tower clock every spring."


def name_of(name: str | bytes) -> str:
    return os.fsdecode(name)


def build_hostile_corpus(root: Path, unreadable: bool) -> None:
    """Write GOOD, BAD, DAMAGED and, with ``unreadable``, UNREADABLE files (plus a good image and a
    directory symlink loop) under ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    broot = os.fsencode(root)
    for name, text in GOOD.items():
        make_pdf(os.path.join(broot, os.fsencode(name)), [text])
    make_image(root / "photo.png")
    (root / "sub").mkdir()
    make_pdf(root / "sub" / "nested.pdf", ["Shepherds count the flock at the gate of the fold each night."])
    os.symlink("..", root / "sub" / "loop")  # a directory loop: cut, nothing reported, nothing indexed twice

    five_pages = make_pdf(root.parent / "five-pages.pdf", [DAMAGED_FIRST_PAGE] + [random_text(random.Random(p), 40) for p in range(4)])
    truncated(root / "truncated-early.pdf", five_pages, 0.1)
    truncated(root / "truncated-late.pdf", five_pages, 0.6)
    (root / "corrupt.pdf").write_bytes(b"%PDF-1.7\n" + bytes(random.Random(1).randrange(256) for _ in range(3000)))
    doc = pymupdf.open()
    doc.new_page().insert_text((72, 72), "secret text")
    doc.save(root / "encrypted.pdf", encryption=pymupdf.PDF_ENCRYPT_AES_256, user_pw="pw", owner_pw="pw")
    (root / "empty.pdf").write_bytes(b"")
    (root / "empty.png").write_bytes(b"")
    (root / "really-text.pdf").write_text("just some notes, saved with the wrong name\n")
    make_image(root.parent / "full.jpg", (400, 300))
    make_image(root.parent / "full.png", (400, 300))
    truncated(root / "truncated.jpg", root.parent / "full.jpg", 0.5)
    truncated(root / "truncated.png", root.parent / "full.png", 0.5)
    write_png(root / "bomb.png", 20000, 20000)
    write_png(root / "huge.png", 10000, 10000, rows=False)
    os.symlink("loop-b.pdf", root / "loop-a.pdf")
    os.symlink("loop-a.pdf", root / "loop-b.pdf")
    os.symlink("no-such-target.pdf", root / "dangling.pdf")
    os.mkfifo(root / "pipe.pdf")
    if unreadable:
        make_pdf(root / "unreadable.pdf", ["You cannot read me."])
        os.chmod(root / "unreadable.pdf", 0)
        (root / "locked-folder").mkdir()
        make_pdf(root / "locked-folder" / "inside.pdf", ["Hidden behind permissions."])
        os.chmod(root / "locked-folder", 0)
    (root / "bad\nname.pdf").write_bytes(b"%PDF-1.4\nbroken")
    Path(os.fsdecode(os.path.join(broot, b"bad-\xff-bytes.pdf"))).write_text("not a pdf")


def unlock(root: Path) -> None:
    """Make the corpus removable again."""
    for name in ("unreadable.pdf", "locked-folder"):
        if (root / name).exists():
            os.chmod(root / name, 0o755)
