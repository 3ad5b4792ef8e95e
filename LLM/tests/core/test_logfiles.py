"""Log files we write are readable by the user alone (open_private), the model servers' logs included."""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from LLM.core.logfiles import open_private
from LLM.core.servers import process


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def open_umask() -> Iterator[None]:
    """A umask that would leave a plainly opened file world-readable (0644), as on most desktops."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


@pytest.mark.parametrize("file_mode", ["a", "ab", "w", "wb", "a+", "w+"])
def test_logfiles_a_new_file_is_created_0600(tmp_path: Path, open_umask: None, file_mode: str):
    path = tmp_path / "logs" / "new.log"  # the folder is made too
    with open_private(path, file_mode) as f:
        f.write(b"x" if "b" in file_mode else "x")
    assert mode(path) == 0o600 and path.read_text() == "x"


def test_logfiles_an_existing_0644_file_is_narrowed(tmp_path: Path, open_umask: None):
    path = tmp_path / "old.log"
    path.write_text("written by an older version\n")
    path.chmod(0o644)
    with open_private(path, "a", encoding="utf-8") as f:
        f.write("more\n")
    assert mode(path) == 0o600


def test_logfiles_append_mode_appends_and_write_mode_truncates(tmp_path: Path):
    path = tmp_path / "a.log"
    for line in ("one\n", "two\n"):
        with open_private(path, "a", encoding="utf-8") as f:
            f.write(line)
    assert path.read_text() == "one\ntwo\n"
    with open_private(path, "w", encoding="utf-8") as f:
        f.write("fresh\n")
    assert path.read_text() == "fresh\n"


@pytest.mark.parametrize("file_mode", ["r", "rb", "x"])
def test_logfiles_a_mode_that_does_not_write_is_refused(tmp_path: Path, file_mode: str):
    with pytest.raises(ValueError, match="does not write"):
        open_private(tmp_path / "r.log", file_mode)
    assert not (tmp_path / "r.log").exists()


def test_logfiles_a_spawned_server_log_is_0600(tmp_path: Path, open_umask: None):
    """Regression (#19 item 2): a server's log (its command line, whatever it prints) was created 0644; one
    left by an older version is narrowed when the server starts again."""
    fresh, old = tmp_path / "logs" / "m.log", tmp_path / "logs" / "old.log"
    old.parent.mkdir()
    old.write_text("before\n")
    old.chmod(0o644)
    for path in (fresh, old):
        proc = process.spawn([sys.executable, "-c", "print('engine output')"], path)
        assert proc.wait(timeout=60) == 0
        assert mode(path) == 0o600
        assert "engine output" in path.read_text()
    assert old.read_text().startswith("before\n")  # appended to, not replaced
