"""The user documentation keeps up with the command line: every command has its page in
docs/commands/, every page names a command that exists and every long option of it, the README
stays an entry point (at most 300 lines), relative links lead to files (and headings) that
exist, and no page points into the development set outside the repository."""

import re
from pathlib import Path

import pytest
import typer

from smartcli.cli.app import app
from tests.conftest import ROOT

README = ROOT / "README.md"
DOCS = ROOT / "docs"
COMMAND_PAGES = DOCS / "commands"
README_MAX_LINES = 300
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$")
FENCE = re.compile(r"^(```|~~~)")


def cli_commands() -> dict:
    """The app's commands by name, as click objects (Typer may vendor its own click: no isinstance)."""
    group = typer.main.get_command(app)
    assert getattr(group, "commands", None), "smartcli.cli.app:app is a Typer app with commands"
    return dict(group.commands)


def long_options(command) -> list[str]:
    return sorted({opt for param in command.params for opt in (*param.opts, *param.secondary_opts) if opt.startswith("--")})


def user_docs() -> list[Path]:
    return [README, *sorted(DOCS.rglob("*.md"))]


def prose_lines(text: str) -> list[str]:
    """The lines outside fenced code blocks: links and headings live there."""
    lines, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line.lstrip()):
            fenced = not fenced
        elif not fenced:
            lines.append(line)
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading keeps its text
    return re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    names: set[str] = set()
    counts: dict[str, int] = {}
    for line in prose_lines(page.read_text()):
        found = HEADING.match(line)
        if found:
            base = slug(found.group(1))
            names.add(base if base not in counts else f"{base}-{counts[base]}")
            counts[base] = counts.get(base, 0) + 1
    return names


def relative_links(page: Path) -> list[str]:
    links = []
    for line in prose_lines(page.read_text()):
        line = re.sub(r"`[^`]*`", "", line)  # code spans are not links
        links += [target for target in LINK.findall(line) if not re.match(r"[a-z][a-z0-9+.-]*:", target)]
    return links


def test_every_command_has_a_page_and_every_page_a_command():
    commands = cli_commands()
    pages = {page.stem for page in COMMAND_PAGES.glob("*.md")}
    assert commands, "the app has commands"
    assert not set(commands) - pages, f"commands without a page in docs/commands/: {sorted(set(commands) - pages)}"
    assert not pages - set(commands), f"pages of commands that do not exist: {sorted(pages - set(commands))}"


@pytest.mark.parametrize("name", sorted(cli_commands()))
def test_a_command_page_names_every_long_option(name):
    text = (COMMAND_PAGES / f"{name}.md").read_text()
    missing = [opt for opt in long_options(cli_commands()[name]) if not re.search(rf"(?<![\w-]){re.escape(opt)}(?![\w-])", text)]
    assert not missing, f"docs/commands/{name}.md does not mention {missing}"


def test_the_readme_is_an_entry_point_of_at_most_300_lines():
    lines = len(README.read_text().splitlines())
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines; move detail to docs/"


def test_the_docs_index_links_every_page():
    index = DOCS / "README.md"
    linked = {(index.parent / target.split("#")[0]).resolve() for target in relative_links(index) if target.split("#")[0]}
    unlinked = [str(page.relative_to(ROOT)) for page in DOCS.rglob("*.md") if page != index and page.resolve() not in linked]
    assert not unlinked, f"docs/README.md does not link {unlinked}"


def test_relative_links_lead_to_files_and_headings_that_exist():
    broken = []
    for page in user_docs():
        for target in relative_links(page):
            path, _, fragment = target.partition("#")
            linked = (page.parent / path).resolve() if path else page
            if not linked.exists():
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such file)")
            elif fragment and linked.suffix == ".md" and fragment not in anchors(linked):
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such heading)")
    assert not broken, "\n".join(broken)


def test_no_page_points_into_the_development_set():
    for page in user_docs():
        text = page.read_text()
        assert "../shared" not in text and "/work/shared" not in text, f"{page.relative_to(ROOT)} names a path outside the repository"


def test_the_service_examples_start_the_smart_the_set_up_makes():
    """A service starts with no venv activated: its command must be the full path of the `smart`
    that scripts/setup installs (the clone's .venv/bin/smart), not a path the set-up never fills
    (the README's unit named %h/.local/bin/smart, the plist /usr/local/bin/smart)."""
    commands = []
    for page in (README, COMMAND_PAGES / "watch.md"):
        text = page.read_text(encoding="utf-8")
        commands += re.findall(r"^ExecStart=(\S+)", text, flags=re.M)
        commands += re.findall(r"<array><string>([^<]+)</string>", text)
    assert len(commands) == 3
    assert all(command.endswith("/.venv/bin/smart") for command in commands), commands
