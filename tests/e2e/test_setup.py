"""`scripts/setup`, the README's set-up line: a virtual environment `.venv/` in the clone (so that it
works on Debian's and Ubuntu's own python3, which refuses pip installs: PEP 668), as root (no sudo
needed) and as a user, OCR data optional.

A full install takes minutes (docs/setup.md), and `.ci/run` does one on Debian's python3; here the
plans are read from `--dry-run`, and the real runs make the venv for real, then point pip at an
empty index so that the install itself stops at once (having shown that pip ran in the venv)."""

import os
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.conftest import ROOT

SETUP = ROOT / "scripts" / "setup"
DEBIAN_PYTHON = Path("/usr/bin/python3")
VENV_PIP = ".venv/bin/python -m pip install --disable-pip-version-check torch==2.13.0 -e ."
APT = "env DEBIAN_FRONTEND=noninteractive apt-get"
APT_INSTALL = f"{APT} install -y -qq --no-install-recommends"
NOBODY = 65534
USER_PATH = "/usr/local/bin:/usr/bin:/bin"


def setup(*args, env=None, user=None, hide=(), where=None, timeout=60):
    """Run a copy of the set-up script (it works in the folder above its own), as `user` where
    given, with the folders in `hide` covered by an empty one (a package not installed)."""
    script = (where or ROOT) / "scripts" / "setup"
    command = ["bash", str(script), *args]
    if user is not None:
        command = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", *command]
    if hide:
        empty = tempfile.mkdtemp(prefix="smart-setup-empty-")
        os.chmod(empty, 0o755)
        mounts = " && ".join(f"mount --bind {shlex.quote(empty)} {shlex.quote(str(folder))}" for folder in hide)
        command = ["unshare", "--mount", "sh", "-c", f'{mounts} && exec "$@"', "sh", *command]
    # The set-up's own settings come from the test alone (.ci/run exports PYTHON for its set-up).
    inherited = {name: value for name, value in os.environ.items() if name not in ("PYTHON", "TORCH_INDEX")}
    try:
        return subprocess.run(command, capture_output=True, text=True, env={**inherited, **(env or {})}, timeout=timeout)
    finally:
        if hide:
            os.rmdir(empty)


def plan(stdout: str) -> list[str]:
    """The commands a run printed (a dry run: those it would run)."""
    return [line[2:] for line in stdout.splitlines() if line.startswith("+ ")]


def apt_knows(package: str) -> bool:
    return (
        shutil.which("apt-cache") is not None
        and subprocess.run(["apt-cache", "show", "--no-all-versions", package], capture_output=True).returncode == 0
    )


@pytest.fixture
def clone():
    """A copy of the set-up script and pyproject.toml in a folder of its own that anyone may read
    (the checkout may sit under root's home)."""
    where = Path(tempfile.mkdtemp(prefix="smart-setup-"))
    (where / "scripts").mkdir()
    shutil.copy(SETUP, where / "scripts" / "setup")
    shutil.copy(ROOT / "pyproject.toml", where / "pyproject.toml")
    for path in (where, where / "scripts", where / "scripts" / "setup", where / "pyproject.toml"):
        path.chmod(0o755)
    yield where
    shutil.rmtree(where)


@pytest.fixture
def no_ocr_data(clone):
    """A TESSDATA_PREFIX without eng.traineddata: the set-up must offer to install the language data."""
    empty = clone / "tessdata"
    empty.mkdir(mode=0o755)
    return {"TESSDATA_PREFIX": str(empty)}


def managed_python() -> Path:
    """Debian's python3, which refuses pip installs outside a venv (PEP 668)."""
    marker = subprocess.run(
        [str(DEBIAN_PYTHON), "-c", "import sysconfig; print(sysconfig.get_path('stdlib'))"], capture_output=True, text=True
    )
    if marker.returncode != 0 or not (Path(marker.stdout.strip()) / "EXTERNALLY-MANAGED").is_file():
        pytest.skip("no externally managed /usr/bin/python3 here")
    return DEBIAN_PYTHON


def minor(python: Path) -> str:
    return subprocess.run(
        [str(python), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"], capture_output=True, text=True
    ).stdout.strip()


def ensurepip_of(python: Path) -> Path:
    """The stdlib folder that Debian's python3.X-venv package installs."""
    return Path(f"/usr/lib/python{minor(python)}/ensurepip")


def can_hide_folders():
    """Covering a folder needs root and a mount namespace of our own."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("covering a system folder needs root and unshare")
    if subprocess.run(["unshare", "--mount", "true"], capture_output=True).returncode != 0:
        pytest.skip("no mount namespace here (a container without CAP_SYS_ADMIN)")


def a_user() -> int | None:
    """Who runs the set-up as a user: uid 65534 when the tests run as root, else the tests' own user."""
    if os.geteuid() != 0:
        return None
    if shutil.which("setpriv") is None:
        pytest.skip("becoming another user needs setpriv")
    return NOBODY


def offline_pip(where: Path) -> dict:
    """pip with no index and no configuration: the install stops at once, after pip has run in the venv."""
    empty = where / "no-index"
    empty.mkdir(mode=0o755, exist_ok=True)
    return {"PIP_CONFIG_FILE": os.devnull, "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(empty), "PIP_NO_CACHE_DIR": "1"}


def venv_python_facts(where: Path) -> dict:
    """What the venv's python says of itself: its base interpreter, its pip, and whether it is a venv."""
    probe = "import sys, pip; print(sys._base_executable); print(pip.__version__); print(sys.prefix != sys.base_prefix)"
    ran = subprocess.run([str(where / ".venv" / "bin" / "python"), "-c", probe], capture_output=True, text=True)
    assert ran.returncode == 0, ran.stderr
    base, pip_version, is_venv = ran.stdout.split()
    return {"base": base, "pip": pip_version, "venv": is_venv == "True"}


def test_an_externally_managed_python_gets_a_venv_and_pip_installs_into_it(clone):
    python = managed_python()
    ran = setup("--dry-run", "--no-apt", env={"PYTHON": str(python)}, where=clone)
    assert ran.returncode == 0, ran.stderr
    assert plan(ran.stdout) == [f"{python} -m venv .venv", VENV_PIP]  # never `/usr/bin/python3 -m pip install`


def test_a_real_venv_on_the_externally_managed_python_as_a_user(clone):
    """A user's clone, Debian's python3: the venv is made, and pip runs in it (no PEP 668 refusal)."""
    python = managed_python()
    user = a_user()
    if user is not None:
        os.chown(clone, user, user)
    env = {"PYTHON": str(python), "PATH": USER_PATH, "HOME": "/nonexistent", **offline_pip(clone)}
    ran = setup("--no-apt", env=env, user=user, where=clone, timeout=300)
    assert plan(ran.stdout) == [f"{python} -m venv .venv", VENV_PIP]
    assert "externally-managed-environment" not in ran.stderr
    assert "No matching distribution" in ran.stderr and "setup: the Python install failed" in ran.stderr and ran.returncode == 1
    facts = venv_python_facts(clone)
    assert facts["venv"] and Path(facts["base"]).resolve() == python.resolve()
    assert (clone / ".venv").stat().st_uid == (os.geteuid() if user is None else user) != 0


def test_without_ensurepip_pip_comes_from_the_wheel_the_distribution_ships(clone):
    """Debian's python3 without python3.X-venv: `venv --without-pip`, then pip from python3-pip-whl,
    for real; a second run reuses the venv, and a half-made one (as Debian's venv leaves behind) is
    made anew."""
    python = managed_python()
    can_hide_folders()
    wheels = sorted(Path("/usr/share/python-wheels").glob("pip-*.whl"))
    if not wheels:
        pytest.skip("no pip wheel from the distribution (python3-pip-whl) here")
    hide = [ensurepip_of(python)]
    env = {"PYTHON": str(python), **offline_pip(clone)}
    bootstrap = f".venv/bin/python {wheels[-1]}/pip install --quiet --no-index {wheels[-1]}"

    ran = setup("--no-apt", env=env, hide=hide, where=clone, timeout=300)
    assert plan(ran.stdout) == [f"{python} -m venv --without-pip .venv", bootstrap, VENV_PIP]
    assert "setup: the Python install failed" in ran.stderr and "externally-managed-environment" not in ran.stderr
    facts = venv_python_facts(clone)
    assert facts["venv"] and wheels[-1].name.startswith(f"pip-{facts['pip']}-")

    again = setup("--dry-run", "--no-apt", env=env, hide=hide, where=clone)
    assert again.returncode == 0 and plan(again.stdout) == [VENV_PIP]
    assert "virtual environment .venv: already there (made from /usr/bin/python3" in again.stdout and "reused" in again.stdout

    shutil.rmtree(next((clone / ".venv" / "lib").glob("python3.*")) / "site-packages" / "pip")  # pip gone
    half = setup("--dry-run", "--no-apt", env=env, hide=hide, where=clone)
    assert half.returncode == 0 and plan(half.stdout)[0] == f"{python} -m venv --clear --without-pip .venv"


def test_without_ensurepip_or_a_pip_wheel_root_installs_python3_venv_and_a_user_is_told_which(clone):
    python = managed_python()
    can_hide_folders()
    hide = [ensurepip_of(python), Path("/usr/share/python-wheels")]
    package = f"python{minor(python)}-venv"
    env = {"PYTHON": str(python)}

    as_root = setup("--dry-run", env=env, hide=hide, where=clone)
    assert as_root.returncode == 0, as_root.stderr
    commands = plan(as_root.stdout)
    install = next(c for c in commands if c.startswith(APT_INSTALL))
    assert package in install.split() and not install.startswith("sudo")
    assert commands[-2:] == [f"{python} -m venv .venv", VENV_PIP]

    no_apt = setup("--dry-run", "--no-apt", env=env, hide=hide, where=clone)
    assert no_apt.returncode == 1 and not plan(no_apt.stdout)
    assert f"--no-apt leaves {package} uninstalled" in no_apt.stderr and f"apt-get install {package}" in no_apt.stderr

    user = setup("--dry-run", env={**env, "PATH": USER_PATH, "HOME": "/nonexistent"}, user=a_user(), hide=hide, where=clone)
    if shutil.which("sudo", path=USER_PATH):
        assert user.returncode == 0 and any(c.startswith(f"sudo {APT_INSTALL}") and package in c for c in plan(user.stdout))
    else:
        assert user.returncode == 1 and not any(c.endswith(VENV_PIP) for c in plan(user.stdout))
        assert f"{package} did not install: not root and no sudo" in user.stderr and f"as root: apt-get install {package}" in user.stderr


def test_dry_run_as_root_installs_with_apt_without_sudo_then_the_python_side(clone, no_ocr_data):
    if os.geteuid() != 0:
        pytest.skip("the tests run as a user, not root")
    if shutil.which("apt-get") is None:
        pytest.skip("no apt-get on this machine")
    ran = setup("--dry-run", "--test", env=no_ocr_data, where=clone)
    assert ran.returncode == 0, ran.stderr
    commands = plan(ran.stdout)
    assert f"{APT_INSTALL} tesseract-ocr-eng" in commands
    assert not any(c.startswith("sudo") for c in commands)  # root needs no sudo (a container may have none)
    # apt-get update only when apt does not know the package (no lists yet).
    assert (f"{APT} update -qq" in commands) == (not apt_knows("tesseract-ocr-eng"))
    assert commands[-2:] == ["python3 -m venv .venv", f"{VENV_PIP}[test]"] and "nothing was run" in ran.stdout


def test_dry_run_as_a_user_uses_sudo_only_where_there_is_one_and_always_installs_the_python_side(clone, no_ocr_data):
    env = {**no_ocr_data, "PATH": USER_PATH, "HOME": "/nonexistent"}
    ran = setup("--dry-run", env=env, user=a_user(), where=clone)
    assert ran.returncode == 0, ran.stderr
    commands = plan(ran.stdout)
    assert commands[-1] == VENV_PIP and any(c.startswith("python3 -m venv ") for c in commands)
    if shutil.which("sudo", path=env["PATH"]):
        assert f"sudo {APT_INSTALL} tesseract-ocr-eng" in commands
    else:  # no sudo: apt is skipped, and said so; the Python side still runs
        assert not any("apt-get" in c for c in commands)
        assert "skipped tesseract-ocr-eng: not root and no sudo" in ran.stderr and "smart works without them" in ran.stderr


def test_no_venv_installs_into_python_itself_unless_the_system_manages_it(clone, tmp_path):
    # An interpreter of one's own (here a venv of the test's python, as a conda or pyenv one would be).
    own = tmp_path / "own"
    subprocess.run([shutil.which("python3"), "-m", "venv", "--without-pip", str(own)], check=True)
    ran = setup("--dry-run", "--no-apt", "--no-venv", env={"PYTHON": str(own / "bin" / "python")}, where=clone)
    assert ran.returncode == 0 and plan(ran.stdout) == [f"{own}/bin/python -m pip install --disable-pip-version-check torch==2.13.0 -e ."]
    assert not (clone / ".venv").exists()

    python = managed_python()
    refused = setup("--dry-run", "--no-apt", "--no-venv", env={"PYTHON": str(python)}, where=clone)
    assert refused.returncode == 1 and not plan(refused.stdout)
    assert "managed by the system (PEP 668" in refused.stderr and "leave out --no-venv" in refused.stderr


def test_no_apt_torch_index_and_bad_options(clone):
    ran = setup("--dry-run", "--no-apt", env={"TORCH_INDEX": "https://download.example/whl/cpu"}, where=clone)
    assert ran.returncode == 0 and plan(ran.stdout)[-1] == VENV_PIP.replace(
        "-check torch", "-check --extra-index-url https://download.example/whl/cpu torch"
    )
    assert "skipped system packages: --no-apt" in ran.stderr
    bad = setup("--dry-rnu", where=clone)
    assert bad.returncode == 2 and "unknown option --dry-rnu" in bad.stderr and not plan(bad.stdout)
    old = setup("--dry-run", env={"PYTHON": "no-such-python3"}, where=clone)
    assert old.returncode == 1 and "no Python interpreter 'no-such-python3'" in old.stderr


def readme_commands() -> dict[str, str]:
    """The README's three commands (set up, main job, tests), by their comments."""
    block = (ROOT / "README.md").read_text().split("## Set up, run, test", 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    commands = {}
    for line in block.splitlines():
        command, _, comment = line.partition("  #")
        commands[comment.strip().split()[0]] = command.strip()
    return commands


def test_ci_runs_the_readmes_set_up_and_test_commands_as_written_on_debians_python():
    readme = readme_commands()
    assert readme["set"].startswith("scripts/setup --test") and ". .venv/bin/activate" in readme["set"]
    ci = (ROOT / ".ci" / "run").read_text()
    assert readme["set"] in ci and readme["tests"] in ci
    assert ci.index(readme["set"]) < ci.index(readme["tests"])
    assert "PYTHON=/usr/bin/python3" in ci  # the real set-up on an externally managed interpreter
    assert os.access(SETUP, os.X_OK)
