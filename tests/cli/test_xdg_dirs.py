"""The XDG base directories: a relative $XDG_DATA_HOME, $XDG_CACHE_HOME or $XDG_STATE_HOME is
ignored, as the XDG Base Directory specification says ("If an implementation encounters a
relative path in any of these variables it should consider the path invalid and ignore it"):
taken as given, the default store, the ONNX exports, the picture cache and the search history
moved with the working directory (`XDG_DATA_HOME=rel smart status` looked for rel/smart/store)."""

from pathlib import Path

import pytest

from smartcli.cli.search_cmd import history_path
from smartcli.cli.web import cache_dir
from smartcli.models.onnx_export import onnx_cache_dir
from smartcli.store.catalog.layout import default_store_path

WHERE = {
    "XDG_DATA_HOME": (default_store_path, ".local/share/smart/store"),
    "XDG_CACHE_HOME": (onnx_cache_dir, ".cache/smart/onnx"),
    "XDG_STATE_HOME": (history_path, ".local/state/smart/search_history"),
}


@pytest.mark.parametrize("variable", list(WHERE))
def test_a_relative_xdg_directory_is_ignored_and_an_absolute_one_is_used(variable, monkeypatch, tmp_path):
    where, under_home = WHERE[variable]
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("SMART_CACHE_DIR", raising=False)
    monkeypatch.setenv(variable, "relative/dir")
    assert where() == tmp_path / "home" / under_home
    monkeypatch.setenv(variable, str(tmp_path / "xdg"))
    assert str(where()).startswith(str(tmp_path / "xdg"))


def test_the_picture_cache_ignores_a_relative_xdg_cache_home(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", "relative")
    assert cache_dir() == Path(tmp_path / "home" / ".cache" / "smart" / "pictures")
