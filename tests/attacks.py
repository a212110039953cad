"""Hostile files for the reliability tests (issue 13), written as raw PDF syntax."""

from __future__ import annotations

import zlib
from pathlib import Path


def raw_pdf(path: Path, page: bytes, content: bytes, extra: list[bytes] = (), compress: bool = False) -> Path:
    """A one-page PDF: object 3 is ``page`` (a page dictionary), 4 the content stream, 5 a
    Helvetica font, 6... the ``extra`` objects."""
    stream = zlib.compress(content, 9) if compress else content
    flate = b" /Filter /FlateDecode" if compress else b""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        page,
        b"<< /Length %d%s >>\nstream\n" % (len(stream), flate) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        *extra,
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    path.write_bytes(bytes(out))
    return path


def xobject_bomb(path: Path, depth: int = 32, leaf: bytes | None = None, size: int = 200) -> Path:
    """32 Form XObjects, each drawing the next twice; the last shows a word: 2^32 words to extract.
    With ``leaf`` (content such as ``b"0 0 200 200 re f"``), the last draws that instead, on a
    page (and forms) of ``size`` points square."""
    first = 6
    page = b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %d %d] /Contents 4 0 R /Resources << /XObject << /X 6 0 R >> >> >>" % (size, size)
    forms = []
    for level in range(depth):
        if level < depth - 1:
            body, resources = b"/X Do /X Do", b"<< /XObject << /X %d 0 R >> >>" % (first + level + 1)
        elif leaf is not None:
            body, resources = leaf, b"<< >>"
        else:
            body, resources = b"BT /F 12 Tf 10 10 Td (lol) Tj ET", b"<< /Font << /F 5 0 R >> >>"
        forms.append(
            b"<< /Type /XObject /Subtype /Form /BBox [0 0 %d %d] /Resources " % (size, size)
            + resources
            + b" /Length %d >>\nstream\n" % len(body)
            + body
            + b"\nendstream"
        )
    return raw_pdf(path, page, b"/X Do /X Do", forms)


def text_bomb(path: Path, word: bytes = b"harbor ", repeat: int = 675_000) -> Path:
    """A 0.5 pt page whose text layer holds ``word`` ``repeat`` times (4.7 MB of text in ~8 KB)."""
    page = b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 0.5 0.5] /Contents 4 0 R /Resources << /Font << /F 5 0 R >> >> >>"
    return raw_pdf(path, page, b"BT /F 0.01 Tf 0.0001 Tz 0 0.2 Td (" + word * repeat + b") Tj ET", compress=True)


def text_page(path: Path, text: str) -> Path:
    """An ordinary one-page PDF with ``text`` (made by PyMuPDF)."""
    import pymupdf

    doc = pymupdf.open()
    doc.new_page().insert_text((72, 72), text)
    doc.save(path)
    doc.close()
    return path


def escape_sequences_pdf(path: Path) -> Path:
    """A page whose text layer holds terminal escape sequences: set the title, clear the screen."""
    page = b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 400 200] /Contents 4 0 R /Resources << /Font << /F 5 0 R >> >> >>"
    return raw_pdf(path, page, b"BT /F 12 Tf 10 100 Td (harbor tides \\033]2;PWNED-TITLE\\033\\\\ ferry \\033[2J timetable) Tj ET")


def svg_use_bomb(path: Path, levels: int = 15, fan_out: int = 4) -> Path:
    """A ~1.4 KB SVG of ``levels`` groups, each drawing the one before it ``fan_out`` times
    with ``<use>``: 4^15 (about a billion) copies of one word to lay out."""
    defs = ['<g id="l0"><text y="10">lol</text></g>']
    for level in range(1, levels):
        uses = "".join(f'<use href="#l{level - 1}" y="{i}"/>' for i in range(fan_out))
        defs.append(f'<g id="l{level}">{uses}</g>')
    path.write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" width="100" height="100"><defs>'
        + "".join(defs)
        + f'</defs><use href="#l{levels - 1}"/></svg>',
        encoding="utf-8",
    )
    return path


def svg_linking_an_image(path: Path, text: str = "harbor tides and ferry timetable", target: str = "file:///etc/hostname") -> Path:
    """An SVG with a line of text and an ``<image>`` that links a file outside it (MuPDF ignores
    it, with a message printed on its own)."""
    path.write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="400" height="200">'
        f'<text x="10" y="30" font-size="18">{text}</text>'
        f'<image x="0" y="40" width="100" height="100" xlink:href="{target}"/></svg>',
        encoding="utf-8",
    )
    return path
