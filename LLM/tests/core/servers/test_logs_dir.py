"""Where server logs go (#22): LLM/logs only in a source checkout; an installed app uses the user's log dir."""

from __future__ import annotations

from pathlib import Path

import pytest
from platformdirs import user_log_dir

from LLM.core.config import APP_NAME
from LLM.core.servers.manager import LOGS_ENV_VAR, PACKAGE_LOGS_DIR, default_logs_dir


@pytest.mark.parametrize(("checkout", "has_logs", "expected"), [
    (True, True, "package"),
    (False, True, "user"),  # site-packages: the wheel ships LLM/logs/.gitkeep, and a venv is writable
    (True, False, "user"),
], ids=["source-checkout", "installed-copy", "checkout-without-logs"])
def test_default_logs_dir(tmp_path, monkeypatch, checkout, has_logs, expected):
    monkeypatch.delenv(LOGS_ENV_VAR, raising=False)
    logs = tmp_path / "root" / "LLM" / "logs"
    logs.parent.mkdir(parents=True)
    if has_logs:
        logs.mkdir()
    if checkout:
        (tmp_path / "root" / "pyproject.toml").write_text("[project]\n")
    want = logs if expected == "package" else Path(user_log_dir(APP_NAME))
    assert default_logs_dir(logs) == want


def test_default_logs_dir_env_wins(tmp_path, monkeypatch):
    monkeypatch.setenv(LOGS_ENV_VAR, str(tmp_path / "mine"))
    assert default_logs_dir() == tmp_path / "mine"


def test_default_logs_dir_of_this_checkout_is_llm_logs(monkeypatch):
    monkeypatch.delenv(LOGS_ENV_VAR, raising=False)
    assert default_logs_dir() == PACKAGE_LOGS_DIR
