"""llmctl servers as a user runs it (a real subprocess): bad arguments and a damaged servers.json."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from LLM.tests.fakes.handle import REPO_ROOT, free_port


def llmctl(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "backends.yaml"
    if not config.exists():
        config.write_text(f"models:\n  m:\n    base_model: m.gguf\n    port: {free_port()}\n")
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "LLM_STATE_DIR": str(tmp_path / "state"),
           "LLM_LOGS_DIR": str(tmp_path / "logs"), "XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    return subprocess.run([sys.executable, "-m", "LLM", "--config", str(config), *args], capture_output=True,
                          text=True, timeout=60, env=env, stdin=subprocess.DEVNULL)


def write_log(tmp_path: Path) -> None:
    (tmp_path / "logs").mkdir(exist_ok=True)
    (tmp_path / "logs" / "m.log").write_text("".join(f"line {i}\n" for i in range(1, 6)))


@pytest.mark.parametrize("count", ["-1", "-40", "many"])
def test_cli_servers_logs_refuses_a_bad_line_count(tmp_path: Path, count: str):
    """Regression (#19 item 10): `llmctl servers logs MODEL -n -1` printed a traceback."""
    write_log(tmp_path)
    out = llmctl(tmp_path, "servers", "logs", "m", "-n", count)
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr
    assert "-n/--lines" in out.stderr and ("cannot be negative" in out.stderr or "expected a number" in out.stderr)


@pytest.mark.parametrize("count, printed", [("0", []), ("2", ["line 4", "line 5"]), ("99", [f"line {i}" for i in range(1, 6)])])
def test_cli_servers_logs_prints_the_last_lines(tmp_path: Path, count: str, printed: list[str]):
    write_log(tmp_path)
    out = llmctl(tmp_path, "servers", "logs", "m", "-n", count)
    assert out.returncode == 0 and out.stdout.splitlines() == printed, out.stderr


@pytest.mark.parametrize("text", ["[]", '{"servers": []}', '{"servers": {"m": "pid 12"}}',
                                  '{"servers": {"m": {"model_id": "m", "pid": "12"}}}', "{not json"],
                         ids=["list", "servers-a-list", "entry-a-string", "pid-a-string", "not-json"])
def test_cli_servers_status_starts_with_a_damaged_state_file(tmp_path: Path, text: str):
    """Regression (#19 item 10): a hand-edited servers.json of the wrong shape stopped llmctl with a
    traceback (AttributeError); it starts, and the entry is ignored with a warning."""
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "servers.json").write_text(text)
    for command in (["servers", "status"], ["models"]):
        out = llmctl(tmp_path, *command)
        assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr
        assert "stopped" in out.stdout
