"""Regenerate the sample corpus (sample_corpus/): small PDFs and images written for this project.

    python scripts/make_sample_corpus.py

It lives outside the corpus, so that `smart index sample_corpus` finds nothing it cannot index.

The texts are our own; the PDFs are written with PyMuPDF and the images with Pillow,
so the corpus is reproducible byte for byte apart from PDF timestamps.
"""

from __future__ import annotations

from pathlib import Path

import pymupdf
from PIL import Image, ImageDraw

HERE = Path(__file__).resolve().parent.parent / "sample_corpus"

DOCUMENTS = {
    "manuals/terminal-guide.pdf": [
        (
            "Choosing your terminal",
            "A desktop can have several terminal emulators installed at once. The system keeps "
            "one of them as the default, the program that opens when you press Ctrl-Alt-T or "
            "when another program asks for a terminal. To change the default terminal emulator "
            "on Debian, run update-alternatives --config x-terminal-emulator as root and type the "
            "number of the program you prefer. GNOME users can also pick the default terminal in "
            "Settings under Default Applications.",
        ),
        (
            "Shell start-up files",
            "An interactive Bash shell reads ~/.bashrc when it starts. Put aliases, the prompt "
            "string PS1 and extra directories for PATH there. A login shell reads ~/.profile "
            "first. To make zsh your login shell, run chsh -s /usr/bin/zsh and log in again.",
        ),
        (
            "Keyboard shortcuts",
            "Copy and paste in a terminal use Shift-Ctrl-C and Shift-Ctrl-V because Ctrl-C "
            "already sends an interrupt to the running program. Ctrl-D closes the shell at an "
            "empty prompt, and Ctrl-R searches the command history backwards.",
        ),
    ],
    "manuals/home-network.pdf": [
        (
            "Setting up the router",
            "Connect the router to the modem with an Ethernet cable and open the administration "
            "page in a browser. Change the administrator password before anything else, then "
            "give the wireless network a name and a WPA3 passphrase of at least twelve characters.",
        ),
        (
            "Wi-Fi channels and interference",
            "When the wireless connection drops often, neighbouring networks may use the same "
            "channel. On 2.4 GHz only channels 1, 6 and 11 do not overlap; choose the least "
            "crowded of them. The 5 GHz band has many more channels and less interference, at "
            "the cost of a shorter range through walls.",
        ),
        (
            "Name resolution",
            "If web pages fail to load while ping to an address works, the DNS server may be the "
            "problem. Set a resolver such as 9.9.9.9 in the router so that every device uses it.",
        ),
    ],
    "hobbies/bicycle-maintenance.pdf": [
        (
            "Tyres",
            "Check the tyre pressure every week: road tyres want six to eight bar, mountain bike "
            "tyres much less. A tyre that loses air overnight has a slow puncture; remove the "
            "inner tube, find the hole in a bowl of water and patch it.",
        ),
        (
            "Chain care",
            "A clean chain shifts smoothly and lasts longer. Wipe it with a rag, apply one drop "
            "of lubricant on each roller, turn the pedals backwards and wipe off the excess oil. "
            "Replace the chain when it has stretched by half a percent.",
        ),
        (
            "Brakes",
            "Squealing rim brakes usually need new pads or a clean rim. Disc brake pads should be "
            "replaced when less than a millimetre of material remains.",
        ),
    ],
    "hobbies/sourdough.pdf": [
        (
            "Feeding the starter",
            "Feed the sourdough starter with equal weights of flour and water once a day. It is "
            "ready to bake with when it doubles in size within six hours of feeding and smells "
            "pleasantly sour.",
        ),
        (
            "Baking the loaf",
            "Mix 500 grams of bread flour, 350 grams of water, 100 grams of active starter and "
            "10 grams of salt. Fold the dough every half hour for two hours, shape it, proof it "
            "overnight in the fridge and bake at 240 degrees in a covered pot for 45 minutes.",
        ),
    ],
    "houseplants.pdf": [
        (
            "Watering",
            "Most houseplants die from too much water rather than too little. Push a finger into "
            "the soil: water only when the top two centimetres are dry, and empty the saucer "
            "after half an hour so the roots do not rot.",
        ),
        (
            "Light and repotting",
            "A plant that grows long pale stems is reaching for light; move it closer to a "
            "window. Repot in spring into a pot one size larger when roots grow out of the "
            "drainage holes.",
        ),
    ],
}


def write_pdf(path: Path, pages: list[tuple[str, str]]) -> None:
    doc = pymupdf.open()
    for title, body in pages:
        page = doc.new_page(width=595, height=842)  # A4 in points
        page.insert_text((72, 90), title, fontsize=18, fontname="helv")
        page.insert_textbox(pymupdf.Rect(72, 120, 523, 770), body, fontsize=11, fontname="helv")
    # An outline (bookmarks), as real manuals have: one entry per page title (`smart tune` learns from them).
    doc.set_toc([[1, title, number] for number, (title, _) in enumerate(pages, 1)])
    doc.set_metadata({"title": path.stem, "creator": "smart sample corpus", "producer": "PyMuPDF"})
    path.parent.mkdir(parents=True, exist_ok=True)
    doc.save(path, garbage=4, deflate=True, no_new_id=True)
    doc.close()


def write_images(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    sunset = Image.new("RGB", (320, 200))
    draw = ImageDraw.Draw(sunset)
    for y in range(200):
        draw.line([(0, y), (320, y)], fill=(255, 120 + y // 4, 60 + y // 2))
    draw.ellipse([120, 110, 200, 190], fill=(255, 220, 90))
    sunset.save(folder / "sunset.png")

    note = Image.new("RGB", (400, 160), "white")
    draw = ImageDraw.Draw(note)
    draw.text((20, 30), "Shopping list: flour, salt, coffee", fill="black")
    draw.text((20, 70), "Call the bike shop about brake pads", fill="black")
    note.save(folder / "note.jpg", quality=90)


def main() -> None:
    for relative, pages in DOCUMENTS.items():
        write_pdf(HERE / relative, pages)
    write_images(HERE / "photos")
    print(f"wrote {len(DOCUMENTS)} PDFs and 2 images under {HERE}")


if __name__ == "__main__":
    main()
