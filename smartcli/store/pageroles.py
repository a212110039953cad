"""What a page is for: body text, or a page that points to others (contents, index).

The catalog stores a code per page (``items.page_role``): ``body``, ``contents`` (a table of
contents, a list of figures or tables) or ``index`` (a back-of-book index). Contents and index
pages hold the words of every heading they list, so they match many queries about as well as the
body pages they point to; search ranks them a little lower (``defaults.NAVIGATION_PENALTY``).

A page is judged from its outline entry when the PDF has one (an entry named ``Contents``,
``Index``, ``Function Index``, ... covers its pages) and otherwise from its text: the share of
dot leaders (``Installation . . . . . 12``) among its entries, or, for contents without
leaders, headings each followed by a page number in rising order. The text is the catalog's
(whitespace collapsed), so pages of a store indexed before roles were kept are judged from it
without reading their files again.
"""

from __future__ import annotations

import re

BODY = "body"
CONTENTS = "contents"
INDEX = "index"
NAVIGATION = frozenset({CONTENTS, INDEX})

# A dot leader: four or more dots (spaced or not), or a run of ellipses or middle dots.
_LEADER = re.compile(r"(?:\.[ \u00a0]?){4,}|(?:…[ \u00a0]?){2,}|(?:·[ \u00a0]?){4,}")
_WORD = re.compile(r"\S+")
_PAGE_NUMBER = re.compile(r"[0-9]{1,4}[,;]?")
_LETTERS = re.compile(r"[^\W\d_]{2,}")

# A page is contents or index when at least this many leaders make at least this share of its
# words. Checked by listing the pages these rules mark in the development set, the second
# collection and four Debian manuals (asymptote, glpk, gri, live-manual): their contents, list
# of tables and index pages, and no body page (a body page with a few "...." stays under 0.02).
MIN_LEADERS = 3
MIN_LEADER_SHARE = 0.05
# Contents without leaders ("Overview of tools 17 Managing a configuration 19"): at least this
# many headings followed by a page number, this share of the words, the numbers rising.
MIN_ENTRIES = 6
MIN_ENTRY_SHARE = 0.12
MIN_RISING = 0.85

# Outline headings that name contents or index pages (compared lower-cased, numbering stripped).
_CONTENTS_TITLES = re.compile(r"^(?:(?:short |table of |detailed )?contents|list of (?:figures|tables|listings|examples|illustrations))$")
_INDEX_TITLES = re.compile(r"^(?:[\w-]+ )?index(?:es)?(?:, [\w -]+| of [\w -]+)?$")
_NUMBERING = re.compile(r"^\s*(?:[0-9]+(?:\.[0-9]+)*\.?|[A-Z]\.|[IVXLC]+\.?)\s+")
# Only entries this high in the outline name front or back matter.
MAX_OUTLINE_LEVEL = 2


def outline_role(title: str) -> str | None:
    """``contents`` or ``index`` for an outline entry that names such pages, else None."""
    title = _NUMBERING.sub("", title.strip()).strip().lower()
    if _CONTENTS_TITLES.match(title):
        return CONTENTS
    if _INDEX_TITLES.match(title):
        return INDEX
    return None


def outline_roles(toc: list, page_count: int) -> dict[int, str]:
    """Pages (1-based) that an outline's contents and index entries cover: from the entry's page
    up to the next entry's page at the same or a higher level (the end of the document for the
    last). ``toc``: PyMuPDF's ``get_toc(simple=True)`` rows ``[level, title, page]``."""
    roles: dict[int, str] = {}
    entries = [(int(e[0]), str(e[1]), int(e[2])) for e in toc if len(e) >= 3]
    for i, (level, title, page) in enumerate(entries):
        role = outline_role(title)
        # Deeper entries named "Index" are topics (gnuplot's "plot ... index" command).
        if role is None or level > MAX_OUTLINE_LEVEL or not 1 <= page <= page_count:
            continue
        end = page_count + 1
        for next_level, _, next_page in entries[i + 1 :]:
            if next_level <= level:
                end = next_page if next_page > page else page + 1
                break
        for p in range(page, min(end, page_count + 1)):
            roles.setdefault(p, role)
    return roles


def text_role(text: str | None) -> str:
    """The role a page's (whitespace-collapsed) text says: ``contents`` when dot leaders or
    numbered headings make up its entries, else ``body``. (Which of contents and index a page of
    leaders is, only the outline or the words ``Index``/``Contents`` at its top say.)"""
    if not text:
        return BODY
    leaders = len(_LEADER.findall(text))
    words = [w for w in _WORD.findall(_LEADER.sub(" ", text)) if any(c.isalnum() for c in w)]
    if not words:
        return BODY
    if leaders >= MIN_LEADERS and leaders / len(words) >= MIN_LEADER_SHARE:
        return INDEX if _names_index(text) else CONTENTS
    # Headings each followed by a page number, the numbers rising.
    numbers = [int(w.rstrip(",;")) for prev, w in zip(words, words[1:]) if _PAGE_NUMBER.fullmatch(w) and _LETTERS.search(prev)]
    if len(numbers) >= MIN_ENTRIES and len(numbers) / len(words) >= MIN_ENTRY_SHARE:
        rising = sum(1 for a, b in zip(numbers, numbers[1:]) if b >= a) / (len(numbers) - 1)
        if rising >= MIN_RISING:
            return CONTENTS
    return BODY


def _names_index(text: str) -> bool:
    head = text[:120].lower()
    return "index" in head and "contents" not in head


def page_role(text: str | None, outline: str | None = None) -> str:
    """A page's role: the outline's when it names one, else the text's."""
    return outline if outline in NAVIGATION else text_role(text)


def is_navigation(role: str | None) -> bool:
    return role in NAVIGATION
