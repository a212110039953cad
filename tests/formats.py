"""Real documents of the types beside PDF that smart indexes, written by hand in the test.

Each writer makes a file of the real format (the containers and headers the specifications
give), which PyMuPDF opens as it would a file from elsewhere: an EPUB 3 (zip with mimetype,
container.xml, an OPF package and XHTML chapters), an XPS (Open XML package: fixed document
sequence, fixed pages of Glyphs with an embedded TrueType font), a CBZ (zip of PNG pages), an
FB2 (FictionBook 2 XML), a MOBI (Palm database, PalmDOC record 0 with a MOBI header, text
records uncompressed) and an SVG; and a gzipped PDF (as Debian ships its manuals).
"""

from __future__ import annotations

import glob
import gzip
import struct
import zipfile
from html import escape
from pathlib import Path


def write_epub(path: Path, chapters: list[str]) -> Path:
    container = (
        '<?xml version="1.0"?><container version="1.0" xmlns="urn:oasis:names:tc:opendocument:xmlns:container">'
        '<rootfiles><rootfile full-path="OEBPS/content.opf" media-type="application/oebps-package+xml"/></rootfiles></container>'
    )
    manifest = "".join(f'<item id="c{i}" href="c{i}.xhtml" media-type="application/xhtml+xml"/>' for i in range(len(chapters)))
    spine = "".join(f'<itemref idref="c{i}"/>' for i in range(len(chapters)))
    opf = (
        '<?xml version="1.0" encoding="utf-8"?><package xmlns="http://www.idpf.org/2007/opf" version="3.0" unique-identifier="id">'
        '<metadata xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:identifier id="id">smart-test</dc:identifier>'
        f"<dc:title>Test book</dc:title><dc:language>en</dc:language></metadata><manifest>{manifest}</manifest>"
        f"<spine>{spine}</spine></package>"
    )
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(zipfile.ZipInfo("mimetype"), "application/epub+zip")  # first and stored, as EPUB requires
        z.writestr("META-INF/container.xml", container)
        z.writestr("OEBPS/content.opf", opf)
        for i, text in enumerate(chapters):
            z.writestr(
                f"OEBPS/c{i}.xhtml",
                '<?xml version="1.0" encoding="utf-8"?><html xmlns="http://www.w3.org/1999/xhtml"><head><title>c</title></head>'
                f"<body><h1>Chapter {i + 1}</h1><p>{escape(text)}</p></body></html>",
            )
    return path


def _truetype_font() -> bytes:
    for pattern in ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", "/usr/share/fonts/**/*.ttf"):
        found = sorted(glob.glob(pattern, recursive=True))
        if found:
            return Path(found[0]).read_bytes()
    import pymupdf

    return pymupdf.Font("notos").buffer  # a TrueType font PyMuPDF carries


def write_xps(path: Path, pages: list[str]) -> Path:
    ns = "http://schemas.microsoft.com/xps/2005/06"
    types = (
        '<?xml version="1.0" encoding="utf-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="fdseq" ContentType="application/vnd.ms-package.xps-fixeddocumentsequence+xml"/>'
        '<Default Extension="fdoc" ContentType="application/vnd.ms-package.xps-fixeddocument+xml"/>'
        '<Default Extension="fpage" ContentType="application/vnd.ms-package.xps-fixedpage+xml"/>'
        '<Default Extension="ttf" ContentType="application/vnd.ms-opentype"/></Types>'
    )
    rels = (
        '<?xml version="1.0" encoding="utf-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Type="http://schemas.microsoft.com/xps/2005/06/fixedrepresentation" Target="/FixedDocSeq.fdseq" Id="R0"/>'
        "</Relationships>"
    )
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", types)
        z.writestr("_rels/.rels", rels)
        z.writestr(
            "FixedDocSeq.fdseq",
            f'<FixedDocumentSequence xmlns="{ns}"><DocumentReference Source="/Documents/1/FixedDoc.fdoc"/></FixedDocumentSequence>',
        )
        contents = "".join(f'<PageContent Source="/Documents/1/Pages/{i + 1}.fpage"/>' for i in range(len(pages)))
        z.writestr("Documents/1/FixedDoc.fdoc", f'<FixedDocument xmlns="{ns}">{contents}</FixedDocument>')
        for i, text in enumerate(pages):
            z.writestr(
                f"Documents/1/Pages/{i + 1}.fpage",
                f'<FixedPage xmlns="{ns}" Width="816" Height="1056" xml:lang="en-US"><Glyphs FontUri="/Resources/font.ttf" '
                f'FontRenderingEmSize="14" OriginX="48" OriginY="96" Fill="#FF000000" UnicodeString="{escape(text)}"/></FixedPage>',
            )
        z.writestr("Resources/font.ttf", _truetype_font())
    return path


def write_cbz(path: Path, pages: int, size: tuple[int, int] = (400, 600)) -> Path:
    """A comic book archive of ``pages`` plain PNG pages (no text layer: OCR reads such pages)."""
    import pymupdf

    with zipfile.ZipFile(path, "w") as z:
        for i in range(pages):
            pixmap = pymupdf.Pixmap(pymupdf.csRGB, pymupdf.IRect(0, 0, *size), False)
            pixmap.clear_with(255 - 10 * i)
            z.writestr(f"page-{i + 1:03d}.png", pixmap.tobytes("png"))
    return path


def write_fb2(path: Path, sections: list[str]) -> Path:
    body = "".join(f"<section><title><p>Part {i + 1}</p></title><p>{escape(text)}</p></section>" for i, text in enumerate(sections))
    path.write_text(
        '<?xml version="1.0" encoding="utf-8"?><FictionBook xmlns="http://www.gribuser.ru/xml/fictionbook/2.0">'
        "<description><title-info><book-title>Test</book-title><lang>en</lang></title-info></description>"
        f"<body>{body}</body></FictionBook>",
        encoding="utf-8",
    )
    return path


def write_mobi(path: Path, paragraphs: list[str]) -> Path:
    """A MOBI book: a Palm database of type BOOKMOBI whose record 0 is a PalmDOC header (no
    compression) with a MOBI header (UTF-8), followed by text records of at most 4,096 bytes."""
    html = ("<html><body>" + "".join(f"<p>{escape(p)}</p>" for p in paragraphs) + "</body></html>").encode("utf-8")
    text_records = [html[i : i + 4096] for i in range(0, len(html), 4096)]
    mobi = bytearray(232)
    mobi[0:4] = b"MOBI"
    struct.pack_into(">IIIII", mobi, 4, len(mobi), 2, 65001, 0x5EA7, 6)  # length, book, UTF-8, unique id, version
    for offset in range(24, 64, 4):
        struct.pack_into(">I", mobi, offset, 0xFFFFFFFF)  # no index records
    struct.pack_into(">I", mobi, 64, len(text_records) + 1)  # first record after the text
    record0 = struct.pack(">HHIHHHH", 1, 0, len(html), len(text_records), 4096, 0, 0) + bytes(mobi)
    records = [record0, *text_records]
    header = bytearray(78)
    header[0:9] = b"smart-test"[:9]
    header[60:68] = b"BOOKMOBI"
    struct.pack_into(">H", header, 76, len(records))
    offset = len(header) + 8 * len(records) + 2
    table = b""
    for i, record in enumerate(records):
        table += struct.pack(">I", offset) + bytes([0]) + i.to_bytes(3, "big")
        offset += len(record)
    path.write_bytes(bytes(header) + table + b"\0\0" + b"".join(records))
    return path


def write_svg(path: Path, text: str) -> Path:
    path.write_text(
        f'<svg xmlns="http://www.w3.org/2000/svg" width="600" height="200"><text x="10" y="50" font-size="18">{escape(text)}</text></svg>',
        encoding="utf-8",
    )
    return path


def write_pdf_gz(path: Path, pages: list[str]) -> Path:
    import pymupdf

    doc = pymupdf.open()
    for text in pages:
        doc.new_page().insert_textbox(pymupdf.Rect(72, 72, 520, 770), text, fontsize=11)
    data = doc.tobytes()
    doc.close()
    path.write_bytes(gzip.compress(data))
    return path


def write_gzip_bomb(path: Path, decompressed_bytes: int) -> Path:
    """A .pdf.gz that decompresses to ``decompressed_bytes`` of zeros (a few hundred KB on disk)."""
    with gzip.open(path, "wb", compresslevel=9) as f:
        block = bytes(1 << 20)
        for _ in range(decompressed_bytes >> 20):
            f.write(block)
    return path
