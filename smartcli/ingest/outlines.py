"""Training pairs a collection already carries: its PDFs' outlines (bookmarks: heading -> page).

Each outline entry gives a query (the heading) and the pages it covers: its target page and
the pages up to the next entry at the same or a higher level (capped, so a long chapter does not
make 80 pages "relevant" to its title). Entries that say nothing about their pages are dropped:
headings of numbers only, the front and back matter ("Contents", "Index", ...), and headings that
occur more than once in the collection ("Examples", "Description": which page would they name?).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from smartcli import defaults

# Headings that name no content of their own (compared lower-cased, numbering stripped).
UNINFORMATIVE = frozenset(
    {
        "contents",
        "table of contents",
        "index",
        "general index",
        "concept index",
        "title page",
        "cover",
        "copyright",
        "front matter",
        "back matter",
        "list of figures",
        "list of tables",
        "preface",
        "foreword",
        "bibliography",
        "references",
        "appendix",
        "appendices",
        "glossary",
        "about this document",
        "colophon",
    }
)
# "1.2.3 ", "A.1 ", "Chapter 4: ", "IV. " in front of a heading.
_NUMBERING = re.compile(
    r"^\s*(?:(?i:chapter|section|part|appendix)\s+)?(?:[0-9]+(?:\.[0-9]+)*\.?|[A-Z](?:\.[0-9]+)+\.?|[A-Z]\.|[IVXLC]+\.)[:)]?\s+"
)
_LETTERS = re.compile(r"[^\W\d_]", re.UNICODE)


@dataclass
class OutlinePair:
    """One mined (query, pages) pair: ``pages`` are 1-based physical pages of ``path``."""

    query: str
    path: str
    pages: list[int]
    level: int = 1


@dataclass
class MiningReport:
    """How many pairs the outlines gave, and why the other entries were dropped."""

    files: int = 0  # PDFs read
    copies: int = 0  # PDFs not read again: copies of one read (the same pages), counted once
    with_outline: int = 0  # of which had an outline
    entries: int = 0
    pairs: int = 0
    dropped: dict[str, int] = field(default_factory=dict)  # reason code -> entries
    unreadable: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)

    def drop(self, reason: str, n: int = 1) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + n

    def as_json(self) -> dict:
        return {
            "files": self.files,
            "copies": self.copies,
            "with_outline": self.with_outline,
            "entries": self.entries,
            "pairs": self.pairs,
            "dropped": dict(sorted(self.dropped.items())),
            "unreadable": [{"path": p, "reason": r} for p, r in self.unreadable],
        }


def clean_heading(title: str) -> str:
    """The heading's words: whitespace collapsed, leading section numbering removed."""
    text = " ".join(title.split())
    stripped = _NUMBERING.sub("", text, count=1)
    return stripped if _LETTERS.search(stripped) else text


def read_outline(path: str) -> list[tuple[int, str, int]]:
    """``(level, title, page)`` of each outline entry of the PDF at ``path`` (PyMuPDF's get_toc)."""
    import pymupdf

    with pymupdf.open(path) as doc:
        pages = doc.page_count
        return [(int(level), str(title), int(page)) for level, title, page, *_ in doc.get_toc(simple=True) if 1 <= int(page) <= pages]


def outline_pairs(
    entries: list[tuple[int, str, int]],
    path: str,
    heading_path: bool = False,
    max_pages: int = defaults.TUNE_SECTION_PAGES,
) -> list[OutlinePair]:
    """Every entry of one outline as a pair (nothing dropped yet): the heading (with its parents'
    headings joined by " > " when ``heading_path``) and the pages up to the next entry at the same
    or a higher level, at most ``max_pages``."""
    pairs = []
    parents: list[str] = []
    for i, (level, title, page) in enumerate(entries):
        end = None
        for later_level, _, later_page in entries[i + 1 :]:
            if later_level <= level:
                end = later_page
                break
        # The last section runs to the end of the document (an appendix, an index): its first page.
        last = page if end is None or end <= page else end - 1
        last = min(last, page + max_pages - 1)
        heading = clean_heading(title)
        del parents[level - 1 :]
        parents.extend([""] * (level - 1 - len(parents)))
        parents.append(heading)
        query = " > ".join(p for p in parents if p) if heading_path else heading
        pairs.append(OutlinePair(query, path, list(range(page, last + 1)), level))
    return pairs


def mine_outlines(
    paths: list[str], heading_path: bool = False, report: MiningReport | None = None
) -> tuple[list[OutlinePair], MiningReport]:
    """The informative pairs of the outlines of the PDFs at ``paths``, and a report of counts."""
    report = report or MiningReport()
    candidates: list[OutlinePair] = []
    for path in paths:
        report.files += 1
        try:
            entries = read_outline(path)
        except Exception as exc:  # a file gone or damaged since it was indexed: say so, go on
            report.unreadable.append((path, str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__))
            continue
        if entries:
            report.with_outline += 1
        report.entries += len(entries)
        candidates += outline_pairs(entries, path, heading_path)
    counts = Counter(clean_heading(p.query.rsplit(" > ", 1)[-1]).lower() for p in candidates)
    kept = []
    seen: set[tuple[str, str]] = set()
    for pair in candidates:
        own = pair.query.rsplit(" > ", 1)[-1].lower()
        letters = len(_LETTERS.findall(own))
        if letters == 0:
            report.drop("no_words")
        elif own in UNINFORMATIVE or own.endswith(" index"):
            report.drop("front_or_back_matter")
        elif letters < 3:
            report.drop("too_short")
        elif counts[own] > 1 and not heading_path:
            report.drop("duplicated_heading")
        elif (pair.query.lower(), pair.path) in seen:
            report.drop("duplicated_heading")
        else:
            seen.add((pair.query.lower(), pair.path))
            kept.append(pair)
    report.pairs = len(kept)
    return kept, report


def mine_indexed(items, heading_path: bool = False) -> tuple[list[tuple[str, set[tuple[str, int]]]], MiningReport]:
    """The outline pairs of the indexed PDFs among ``items`` (each with ``path``, ``page``,
    ``kind``, ``segment``, ``row``) as (query, its indexed (path, page)s); an entry none of whose
    pages is indexed is counted as ``not_indexed``. Copies of a PDF (files whose pages share
    their stored rows) are one PDF: its outline is read once, and its pages are those of every
    copy (a search folds copies into one hit, under any of their paths)."""
    indexed = {(item.path, item.page) for item in items}
    copies = copies_of([item for item in items if item.kind == "pdf"])
    report = MiningReport(copies=sum(len(paths) - 1 for paths in copies.values()))
    mined, report = mine_outlines(sorted(copies), heading_path, report)
    found = []
    for pair in mined:
        pages = {(path, page) for path in copies[pair.path] for page in pair.pages if (path, page) in indexed}
        if pages:
            found.append((pair.query, pages))
        else:
            report.drop("not_indexed")
    report.pairs = len(found)
    return found, report


def copies_of(items) -> dict[str, list[str]]:
    """Indexed files grouped by content: the first path of each group -> every path of it. Copies
    share their pages' stored rows (planning recognises them); different files never do."""
    rows: dict[str, set] = {}
    for item in items:
        rows.setdefault(item.path, set()).add((item.segment, item.row))
    groups: dict[frozenset, list[str]] = {}
    for path in sorted(rows):
        groups.setdefault(frozenset(rows[path]), []).append(path)
    return {paths[0]: paths for paths in groups.values()}


# -- pseudo-queries from the page body (inverse cloze) -------------------------------------------

_SENTENCE = re.compile(r"[^.!?;:\n]+(?:[.!?;:](?=\s|$)|\n\s*\n|$)", re.DOTALL)
_WORD = re.compile(r"\S+")
_CODE = re.compile(r"[{}()\[\]<>=$#|\\/_@*&%^~`]")


@dataclass
class BodyPair:
    """A pseudo-query cut from a page's own text: ``query`` is a run of words of the sentence at
    characters ``hidden`` of the page's text, which is hidden from the page when it is scored for
    this query (inverse cloze: the page must be found by what surrounds the sentence)."""

    query: str
    path: str
    page: int
    hidden: tuple[int, int]


def _stable(*parts) -> int:
    import hashlib

    return int.from_bytes(hashlib.sha256("\0".join(map(str, parts)).encode()).digest()[:8], "big")


def body_candidates(text: str) -> list[tuple[int, int, list[str]]]:
    """Sentences of ``text`` that read like prose: (start, end, words); at least
    ``TUNE_BODY_MIN_WORDS`` words, mostly words of letters, few code symbols."""
    out = []
    for match in _SENTENCE.finditer(text):
        start, end = match.span()
        words = _WORD.findall(match.group())
        if not defaults.TUNE_BODY_MIN_WORDS <= len(words) <= defaults.TUNE_BODY_MAX_SENTENCE:
            continue
        wordy = sum(1 for w in words if len(_LETTERS.findall(w)) >= max(2, len(w) * 0.7))
        symbols = len(_CODE.findall(match.group()))
        if wordy < 0.75 * len(words) or symbols > len(words) // 4:
            continue
        out.append((start, end, words))
    return out


def body_pairs(pages: list[tuple[str, int, str]], per_page: int = defaults.TUNE_BODY_PER_PAGE) -> list[BodyPair]:
    """Up to ``per_page`` pseudo-queries from each page ``(path, page, text)``: from sentences
    chosen by a stable hash, a run of at most ``TUNE_BODY_QUERY_WORDS`` of their words (the query),
    and the whole sentence's characters (hidden from the page when it is scored for the query)."""
    pairs = []
    for path, page, text in pages:
        text = text or ""
        # A page must keep words of its own once the sentence is hidden.
        candidates = [
            c for c in body_candidates(text) if len(_WORD.findall(text[: c[0]] + text[c[1] :])) >= 3 * defaults.TUNE_BODY_MIN_WORDS
        ]
        if not candidates:
            continue
        order = sorted(range(len(candidates)), key=lambda i: _stable(path, page, i))
        for i in order[:per_page]:
            start, end, words = candidates[i]
            n = min(len(words), defaults.TUNE_BODY_QUERY_WORDS)
            first = _stable(path, page, i, "start") % (len(words) - n + 1)
            query = " ".join(words[first : first + n]).strip(".,;:!?")
            pairs.append(BodyPair(query, path, page, (start, end)))
    if len(pairs) > defaults.TUNE_BODY_MAX_PAIRS:  # a stable sample: each held-back one is encoded again
        pairs = sorted(pairs, key=lambda p: _stable(p.path, p.page, p.hidden))[: defaults.TUNE_BODY_MAX_PAIRS]
    return pairs
