"""`scripts/setup`, the README's set-up line: as root (no sudo needed) and as a user, OCR data optional."""

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.conftest import ROOT

SETUP = ROOT / "scripts" / "setup"
PIP = "python3 -m pip install --disable-pip-version-check torch==2.13.0 -e .[test]"
APT_INSTALL = "env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends tesseract-ocr-eng"


def setup(*args, env=None, user=None, script=SETUP):
    command = ["bash", str(script), *args]
    if user is not None:
        command = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", *command]
    return subprocess.run(command, capture_output=True, text=True, env=dict(os.environ, **(env or {})), timeout=60)


def plan(stdout: str) -> list[str]:
    """The commands a dry run says it would run."""
    return [line[2:] for line in stdout.splitlines() if line.startswith("+ ")]


def apt_knows(package: str) -> bool:
    return (
        shutil.which("apt-cache") is not None
        and subprocess.run(["apt-cache", "show", "--no-all-versions", package], capture_output=True).returncode == 0
    )


@pytest.fixture
def no_ocr_data(tmp_path):
    """A TESSDATA_PREFIX without eng.traineddata: the set-up must offer to install the language data."""
    empty = tmp_path / "tessdata"
    empty.mkdir()
    return {"TESSDATA_PREFIX": str(empty)}


def test_dry_run_as_root_installs_with_apt_without_sudo_then_the_python_side(no_ocr_data):
    if os.geteuid() != 0:
        pytest.skip("the tests run as a user, not root")
    if shutil.which("apt-get") is None:
        pytest.skip("no apt-get on this machine")
    ran = setup("--dry-run", "--test", env=no_ocr_data)
    assert ran.returncode == 0, ran.stderr
    commands = plan(ran.stdout)
    assert APT_INSTALL in commands and PIP in commands
    assert not any(c.startswith("sudo") for c in commands)  # root needs no sudo (a container may have none)
    # apt-get update only when apt does not know the package (no lists yet).
    update = "env DEBIAN_FRONTEND=noninteractive apt-get update -qq"
    assert (update in commands) == (not apt_knows("tesseract-ocr-eng"))
    assert commands[-1] == PIP and "nothing was run" in ran.stdout


def test_dry_run_as_a_user_uses_sudo_only_where_there_is_one_and_always_installs_the_python_side():
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("becoming another user needs root and setpriv")
    # A copy anyone may read (the checkout may sit under root's home).
    where = Path(tempfile.mkdtemp(prefix="smart-setup-"))
    try:
        (where / "scripts").mkdir()
        (where / "tessdata").mkdir()  # no eng.traineddata in it
        shutil.copy(SETUP, where / "scripts" / "setup")
        shutil.copy(ROOT / "pyproject.toml", where / "pyproject.toml")
        for path in (where, where / "scripts", where / "tessdata", where / "scripts" / "setup", where / "pyproject.toml"):
            path.chmod(0o755)
        env = {"TESSDATA_PREFIX": str(where / "tessdata"), "PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/nonexistent"}
        ran = setup("--dry-run", env=env, user=65534, script=where / "scripts" / "setup")
    finally:
        shutil.rmtree(where)
    assert ran.returncode == 0, ran.stderr
    commands = plan(ran.stdout)
    assert commands[-1] == "python3 -m pip install --disable-pip-version-check torch==2.13.0 -e ."
    if shutil.which("sudo", path=env["PATH"]):
        assert f"sudo {APT_INSTALL}" in commands
    else:  # no sudo: apt is skipped, and said so; the Python side still runs
        assert not any("apt-get" in c for c in commands)
        assert "skipped tesseract-ocr-eng: not root and no sudo" in ran.stderr and "smart works without them" in ran.stderr


def test_no_apt_and_bad_options():
    ran = setup("--dry-run", "--no-apt")
    assert ran.returncode == 0 and plan(ran.stdout) == ["python3 -m pip install --disable-pip-version-check torch==2.13.0 -e ."]
    assert "skipped system packages: --no-apt" in ran.stderr
    bad = setup("--dry-rnu")
    assert bad.returncode == 2 and "unknown option --dry-rnu" in bad.stderr and not plan(bad.stdout)


def test_the_readme_and_ci_set_up_through_the_script():
    readme = (ROOT / "README.md").read_text()
    assert "scripts/setup --test" in readme.split("## Use")[0]
    assert "scripts/setup --test" in (ROOT / ".ci" / "run").read_text()
    assert os.access(SETUP, os.X_OK)
