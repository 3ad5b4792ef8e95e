"""Helpers for the llmctl tests: one llmctl subprocess with private homes, and a config naming the fake server."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from LLM.tests.fakes.handle import REPO_ROOT, FakeServerHandle


def llmctl(config: Path, *args: str, timeout: float = 60, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """One llmctl run with a private state, history and config home; ``stdin`` is written up front."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "LLM_STATE_DIR": str(config.parent / "state"),
           "LLM_DATA_DIR": str(config.parent / "data"), "XDG_CONFIG_HOME": str(config.parent / "xdg")}
    stream = {"stdin": subprocess.DEVNULL} if stdin is None else {"input": stdin}
    return subprocess.run([sys.executable, "-m", "LLM", "--config", str(config), *args],
                          capture_output=True, text=True, timeout=timeout, env=env, **stream)


def write_config(tmp_path: Path, server: FakeServerHandle) -> Path:
    """A backends.yaml with `fake` (the fake server) and `broken` (an invalid entry, for the error paths)."""
    config = tmp_path / "backends.yaml"
    config.write_text(
        f"models:\n  fake:\n    backend: openai\n    server_url: {server.url}/v1\n    model_name: fake-model\n"
        "  broken:\n    base_model: x.gguf\n    port: 99999\n"
    )
    return config
