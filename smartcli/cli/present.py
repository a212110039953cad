"""Rendering for people (rich, stderr for chatter) and for machines (JSON lines on stdout)."""

from __future__ import annotations

import errno
import json
import os
import re
import sys

from rich.console import Console
from rich.table import Table
from rich.text import Text

from smartcli import Note


def _raise_broken_pipe(console: Console) -> None:
    console.quiet = True
    raise BrokenPipeError(errno.EPIPE, "the reader of the output went away")


# The reader went away (`smart search ... | head -1`). Rich's answer, in these consoles and in
# Typer's help alike, is to end the process with code 1; raised instead, the error reaches
# `smart`'s main, which ends quietly with 141, as `grep` and `ls` do (cli/app.py).
Console.on_broken_pipe = _raise_broken_pipe


class _TrimmedLines:
    """What `stdout` writes to: the process's standard output as it is now (a test runner swaps
    it), each line without the spaces rich pads table cells with, so that a pipe or a file gets
    no trailing blanks (`COLUMNS=200 smart search ... > file`)."""

    def __init__(self):
        self._partial = ""
        self.trim = True  # False while a line is printed exactly as given (print_line)

    @property
    def _stream(self):
        return sys.stdout

    def write(self, text: str) -> int:
        lines = (self._partial + text).split("\n")
        self._partial = lines.pop()
        if lines:
            self._stream.write("\n".join(line.rstrip(" ") if self.trim else line for line in lines) + "\n")
        return len(text)

    def flush(self) -> None:
        if self._partial:  # a line not ended yet (rich ends what it prints): written as it is
            self._stream.write(self._partial)
            self._partial = ""
        self._stream.flush()

    def isatty(self) -> bool:
        return self._stream.isatty()

    def fileno(self) -> int:
        return self._stream.fileno()

    @property
    def encoding(self) -> str:
        return getattr(self._stream, "encoding", None) or "utf-8"


stdout = Console(file=_TrimmedLines(), soft_wrap=False)
stderr = Console(stderr=True)


# Control characters (a newline in a file name would split a line) and the lone
# surrogates Python uses for bytes of a file name that are not valid UTF-8.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _escape_char(match: re.Match) -> str:
    code = ord(match.group())
    if 0xDC80 <= code <= 0xDCFF:  # an undecodable byte of a file name
        return f"\\x{code - 0xDC00:02x}"
    return {"\n": "\\n", "\t": "\\t", "\r": "\\r"}.get(match.group()) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


def printable(text: str) -> str:
    """``text`` on one line and encodable: control characters and undecodable bytes escaped (``\\n``, ``\\xff``)."""
    return _UNPRINTABLE.sub(_escape_char, text)


# Document text shown on a terminal (snippets, matched words): control characters would let a
# PDF drive the terminal (ESC ] 2 ; ... sets its title, ESC [2J clears it), bidirectional
# overrides would reorder what is shown. Each becomes one visible character, so that the
# highlight spans computed on the text still fit.
_TERMINAL_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def _visible(match: re.Match) -> str:
    code = ord(match.group())
    if code < 0x20:
        return chr(0x2400 + code)  # the Control Pictures block: ␛ for ESC
    if code == 0x7F:
        return "\u2421"  # ␡
    return "\ufffd"


def terminal_safe(text: str) -> str:
    """``text`` with every control character (and bidi override) shown as one harmless character; same length."""
    return _TERMINAL_UNSAFE.sub(_visible, text)


def warn(message: str) -> None:
    """One line on stderr, prefixed so it stands out in logs."""
    stderr.print(Text(f"smart: {printable(message)}"), highlight=False, soft_wrap=True)


def print_engine_warnings() -> None:
    """From now on, the engine's SmartWarnings (a query cut to the cap, a damaged tuning) are one
    ``smart:`` line each, every time, with what a person can do about them."""
    import warnings

    from smartcli import SmartWarning
    from smartcli.cli.errors import describe_warning

    warnings.simplefilter("always", SmartWarning)
    previous = warnings.showwarning
    if getattr(previous, "smart_words", False):
        return  # installed by an earlier command of this process

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, SmartWarning):
            warn(describe_warning(message))
        else:
            previous(message, category, filename, lineno, file, line)

    show.smart_words = True
    warnings.showwarning = show


def print_line(text: str) -> None:
    """One line of results on stdout: printable, never wrapped, no markup, and exact (a file
    name may end with a blank: it is not padding)."""
    stdout.file.trim = False
    try:
        stdout.print(printable(text), highlight=False, markup=False, soft_wrap=True)
    finally:
        stdout.file.trim = True


def print_json_line(obj: dict) -> None:
    # Lone surrogates (file names that are not UTF-8) cannot be written as UTF-8; as
    # \udcXX escapes the line stays valid UTF-8 and json.loads + os.fsencode give the
    # original bytes back.
    text = _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", json.dumps(obj, ensure_ascii=False))
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def display_path(path: str) -> str:
    """A path relative to the working directory when it is below it, printable on one line."""
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return printable(path)
    return printable(path if rel.startswith("..") else rel)


HIGHLIGHT_STYLE = "bold magenta"


def results_table(query: str, hits, show_late: bool = True) -> Table:
    table = Table(title=Text(query, style="bold"), title_justify="left", expand=False, show_lines=False)
    table.add_column("#", justify="right", style="dim")
    table.add_column("score", justify="right", style="bold")
    table.add_column("anchor", justify="right")
    if show_late:
        table.add_column("late", justify="right")
    # Never broken: the table is only chosen where the longest path fits (see print_results).
    table.add_column("file", no_wrap=True, style="cyan")
    table.add_column("page", justify="right")
    table.add_column("snippet", overflow="fold", ratio=1)
    for hit in hits:
        row = [str(hit.rank), f"{hit.score:.3f}", f"{hit.anchor:.3f}"]
        if show_late:
            row.append("" if hit.late is None else f"{hit.late:.3f}")
        row += [path_cell(hit), str(hit.item.page), highlighted(hit.snippet, hit.highlights)]
        table.add_row(*row)
    return table


def path_cell(hit) -> Text:
    """The hit's path, and under it the other paths holding the same page (copies of the file:
    ``+1 copy: backup/guide.pdf``), each escaped like any file name."""
    cell = Text(display_path(hit.item.path))
    copies = copies_line(hit)
    if copies:
        cell.append("\n" + copies, style="dim")
    return cell


def copies_line(hit) -> str:
    """``+1 copy: backup/guide.pdf`` (``+2 copies: a, b``) for a hit shared by copies, else ""."""
    also = list(getattr(hit, "also", None) or [])
    if not also:
        return ""
    label = "+1 copy: " if len(also) == 1 else f"+{len(also)} copies: "
    return label + ", ".join(display_path(path) for path in also)


# -- the results laid out for the width there is ----------------------------------------------
#
# A table whose snippet column gets at least WIDE_SNIPPET_COLUMNS where the longest path fits
# unbroken; otherwise (80 columns, a pipe, a long path) one line per hit with its path whole
# and the snippet on the lines below it, so that a hit takes 3-4 lines, not 10.

WIDE_SNIPPET_COLUMNS = 48
NARROW_SNIPPET_LINES = 3
NARROW_INDENT = 5


def print_results(console: Console, title: str, hits, show_late: bool = True) -> None:
    """Print ``hits`` under ``title`` on ``console``, laid out for its width."""
    if wide_layout_fits(hits, show_late, console.width):
        console.print(results_table(title, hits, show_late=show_late))
        return
    for line in narrow_results(title, hits, show_late, console.width):
        # soft_wrap: the console neither wraps nor crops; a path part longer than the line overflows whole.
        console.print(line, soft_wrap=True, highlight=False)


def _score_cells(hit, show_late: bool) -> list[str]:
    cells = [str(hit.rank), f"{hit.score:.3f}", f"{hit.anchor:.3f}"]
    if show_late:
        cells.append("" if hit.late is None else f"{hit.late:.3f}")
    return cells


def _score_headers(show_late: bool) -> list[str]:
    return ["#", "score", "anchor"] + (["late"] if show_late else [])


def wide_layout_fits(hits, show_late: bool, width: int) -> bool:
    """Whether the table fits ``width`` with every path on one line and room for the snippet."""
    from rich.cells import cell_len  # a wide character (CJK) takes two columns

    headers = _score_headers(show_late) + ["file", "page"]
    columns = [[len(h)] for h in headers]
    for hit in hits:
        cells = _score_cells(hit, show_late) + [max(path_cell(hit).plain.split("\n"), key=cell_len), str(hit.item.page)]
        for column, cell in zip(columns, cells):
            column.append(cell_len(cell))
    count = len(columns) + 1  # and the snippet
    # Each column: its text and one space of padding either side; a border between and around.
    used = sum(max(c) for c in columns) + 2 * count + count + 1
    return width - used >= WIDE_SNIPPET_COLUMNS


def fold_path(path: str, first: int, rest: int) -> list[str]:
    """``path`` cut after a ``/`` into lines of at most ``first`` then ``rest`` characters; never
    inside a name (a name longer than the line stays whole and overflows)."""
    parts = re.findall(r"[^/]*/|[^/]+$", path) or [path]
    lines = [""]
    for part in parts:
        room = first if len(lines) == 1 else rest
        if lines[-1] and len(lines[-1]) + len(part) > room:
            lines.append("")
        lines[-1] += part
    return lines


def narrow_results(title: str, hits, show_late: bool, width: int) -> list[Text]:
    """The results as lines: a header, then per hit one line of scores and ``path:page`` (a path
    folded at ``/`` only where it does not fit) and up to NARROW_SNIPPET_LINES of snippet below."""
    headers = _score_headers(show_late)
    rows = [_score_cells(hit, show_late) for hit in hits]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    pad = " " * 2

    def cells(values) -> str:
        return pad.join(v.rjust(w) for v, w in zip(values, widths)) + pad

    lead = len(cells(headers))
    lines = [Text(title, style="bold"), Text(cells(headers) + "file:page", style="bold")]
    indent = min(NARROW_INDENT, max(width // 4, 1))
    for hit, row in zip(hits, rows):
        shown = display_path(hit.item.path)
        place = "" if hit.item.kind == "image" else f":{hit.item.page}"
        folded = fold_path(shown + place, max(width - lead, 1), max(width - lead, 1))
        first = Text(cells(row), style="dim")
        first.append(folded[0], style="cyan")
        lines.append(first)
        lines.extend(Text(" " * lead + part, style="cyan") for part in folded[1:])
        if copies_line(hit):
            lines.append(Text(" " * lead + copies_line(hit), style="dim"))
        lines.extend(snippet_lines(hit, max(width - indent, 20), indent))
    return lines


def snippet_lines(hit, width: int, indent: int) -> list[Text]:
    """The hit's snippet wrapped at words to ``width``, at most NARROW_SNIPPET_LINES (an ellipsis
    ends a cut one), each indented by ``indent``."""
    if not hit.snippet:
        return []
    text = highlighted(hit.snippet, hit.highlights)
    wrapped = text.wrap(Console(width=width, color_system=None), width)
    lines = [line.copy() for line in wrapped][:NARROW_SNIPPET_LINES]
    if len(wrapped) > NARROW_SNIPPET_LINES:
        last = lines[-1]
        last.rstrip()
        if last.cell_len >= width:
            last.truncate(width - 1)
        last.append("…")
    out = []
    for line in lines:
        line.rstrip()
        out.append(Text(" " * indent).append_text(line))
    return out


def highlighted(text: str, spans) -> Text:
    """``text`` with the character ranges ``spans`` in the highlight style (bold survives NO_COLOR)."""
    rich_text = Text(terminal_safe(text))
    for start, end in spans:
        rich_text.stylize(HIGHLIGHT_STYLE, start, end)
    return rich_text


def explain_table(hit) -> Table:
    """Per telling query token (not a stop word, not punctuation): the word of the page it matched
    (MaxSim arg-max) and the similarity; the others count in the late score too (``untold_line``
    names them). A query of none but those shows them all; ``--json`` always has every token."""
    table = Table(box=None, pad_edge=False, show_header=True)
    table.add_column("query token")
    table.add_column("matched", style=HIGHLIGHT_STYLE)
    table.add_column("similarity", justify="right")
    telling = [m for m in hit.matches if m.telling] or list(hit.matches)
    for index, match in enumerate(hit.matches):
        if match not in telling:
            continue
        token = match.query_token if match.query_token is not None else f"token {index}"
        matched = match.word if match.word is not None else f"token {match.doc_token}"
        table.add_row(Text(terminal_safe(token)), Text(terminal_safe(matched)), f"{match.similarity:.3f}")
    return table


def untold_line(hit) -> Text | None:
    """The query tokens the explain table leaves out, which count in the late score too."""
    if not any(m.telling for m in hit.matches):
        return None
    others = [m.query_token or "" for m in hit.matches if not m.telling]
    if not others:
        return None
    return Text(f"also in the late score: {terminal_safe(' '.join(others))} (stop words and punctuation)", style="dim")


def file_line(hit) -> str:
    """``path:page`` for a page of a document, ``path`` for an item that is a whole file (an image)."""
    return hit.item.path if hit.item.kind == "image" else f"{hit.item.path}:{hit.item.page}"


def format_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


def answer_json(hits, query=None, qid=None, like=None, image=None, explain: bool = False) -> dict:
    """One answer as `smart search --json` prints it (the web view's API returns the same)."""
    data = {"query": query}
    if image is not None:
        data["image"] = str(image.resolve())
    data["qid"] = qid
    if like is not None:
        data["like"] = {"path": like.path, "page": like.page}
    data["results"] = [hit.as_json(explain=explain) for hit in hits]
    return data


class AnswerPrinter:
    """Prints each query's answer in one form: a table for people, JSON lines, or file lines.

    ``framed`` (several answers on one stream) ends each answer in the files form with an
    empty line, so that a program reading the stream knows where one answer stops.
    """

    FORMS = ("table", "json", "files")

    def __init__(self, form: str, explain: bool = False, show_late: bool = True, framed: bool = False):
        assert form in self.FORMS
        self.form = form
        self.explain = explain
        self.show_late = show_late
        self.framed = framed

    def answer(self, hits, query: str | None = None, qid=None, like=None, image=None) -> None:
        """``like`` is the item a "more like this" search started from, ``image`` the path of a
        picture query (with either, ``query`` is None)."""
        if self.form == "json":
            print_json_line(self._json(hits, query, qid, like, image))
        elif self.form == "files":
            for hit in hits:
                print_line(file_line(hit))
            if self.framed:
                print_line("")
        else:
            self._table(hits, query, like, image)

    def error(self, message: str, qid=None) -> None:
        """An answer that could not be given (a bad input line); keeps one answer per query."""
        if self.form == "json":
            print_json_line({"query": None, "qid": qid, "error": message, "results": []})
        elif self.form == "files" and self.framed:
            print_line("")

    def _json(self, hits, query, qid, like, image) -> dict:
        return answer_json(hits, query, qid, like, image, self.explain)

    def _table(self, hits, query, like, image) -> None:
        if not hits:
            warn("no results")
            return
        if like is not None:
            title = f"more like {display_path(like.path)} page {like.page}"
        else:
            title = f"image: {display_path(str(image))}" if image is not None else printable(query)
        print_results(stdout, title, hits, show_late=self.show_late)
        if self.explain:
            for hit in hits:
                stdout.print()
                stdout.print(Text.assemble((f"#{hit.rank} ", "dim"), (display_path(hit.item.path), "cyan"), f" page {hit.item.page}"))
                stdout.print(explain_table(hit))
                if untold_line(hit) is not None:
                    stdout.print(untold_line(hit), soft_wrap=True)


# -- why pages were not encoded ----------------------------------------------------------------

NOTE_WORDS = {
    Note.IMAGE_WITHOUT_TEXT: "image: no text for a text model",
    Note.NO_TEXT_LAYER: "page has no text layer",
    Note.BLANK_PAGE: "page holds no words and no picture",
    Note.OCR_PENDING: "waiting for OCR",
    Note.OCR_MISSING_LANGUAGE: "OCR language data missing",
    Note.OCR_NO_TEXT: "OCR found no text",
    Note.OCR_UNREADABLE: "OCR found no readable text",
    Note.OCR_FAILED: "OCR failed",
    Note.PAGE_UNREADABLE: "page could not be read",
}


def note_words(code: str) -> str:
    try:
        return NOTE_WORDS[Note(code)]
    except ValueError:
        return code


def not_encoded_warnings(not_encoded: dict, ocr: dict | None) -> list[str]:
    """Lines saying which pages of an index run were recorded without vectors, and why."""
    counts = {Note(note): n for note, n in not_encoded.items()}
    lines = []
    if counts.get(Note.IMAGE_WITHOUT_TEXT):
        lines.append(
            f"{counts[Note.IMAGE_WITHOUT_TEXT]} image(s) recorded but not encoded: the text model reads no pixels "
            "(use an image model or --ocr auto)"
        )
    if counts.get(Note.OCR_MISSING_LANGUAGE):
        lines.append(f"{counts[Note.OCR_MISSING_LANGUAGE]} page(s) or image(s) recorded without text: {ocr_install_hint(ocr or {})}")
    if counts.get(Note.OCR_NO_TEXT):
        lines.append(f"{counts[Note.OCR_NO_TEXT]} page(s) or image(s) in which OCR found no text recorded but not encoded")
    if counts.get(Note.OCR_UNREADABLE):
        lines.append(
            f"{counts[Note.OCR_UNREADABLE]} page(s) or image(s) in which OCR found no readable text (not words: "
            "a photo, glyphs drawn as boxes) recorded but not encoded"
        )
    if counts.get(Note.BLANK_PAGE):
        lines.append(f"{counts[Note.BLANK_PAGE]} page(s) holding no words and no picture for OCR recorded but not encoded")
    shown = (Note.IMAGE_WITHOUT_TEXT, Note.OCR_MISSING_LANGUAGE, Note.OCR_NO_TEXT, Note.OCR_UNREADABLE, Note.BLANK_PAGE)
    textless = sum(n for note, n in counts.items() if note not in shown)
    if textless:
        lines.append(f"{textless} page(s) without a usable text layer recorded but not encoded")
    return lines


def ocr_install_hint(ocr: dict) -> str:
    """How to get the OCR language data a run lacked (``ocr``: the run's OCR summary)."""
    missing = ocr.get("missing_languages") or [ocr.get("language", "eng")]
    packages = " ".join(f"tesseract-ocr-{lang.lower().replace('_', '-')}" for lang in missing)
    where = f"not in {ocr['tessdata']}" if ocr.get("tessdata") else "no tessdata folder found"
    return (
        f"OCR language data for {'+'.join(missing)} is missing ({where}): install it "
        f"(Debian/Ubuntu: `sudo apt-get install {packages}`) or set TESSDATA_PREFIX to a folder "
        f"holding {missing[0]}.traineddata, then run `smart index` again to OCR them"
    )
