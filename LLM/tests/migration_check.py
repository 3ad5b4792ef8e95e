"""What the migration guide's three check scripts share: running as a plain script or under pytest.

As a script (``python LLM/tests/quick_test.py``) a check uses the user's own config and prints what it
verified; under pytest the same script runs as a subprocess against a copy of the shipped config on a
free port with its own state and log directories, so it never meets a server the user has running.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from LLM.core.config import SHIPPED_CONFIG
from LLM.tests.fakes.handle import REPO_ROOT, free_port


def main(check: Callable[[], list[str]], title: str) -> int:
    """Run ``check`` (it returns the lines to print and raises AssertionError on failure); exit 0 or 1."""
    print(f"{title} ...", flush=True)
    try:
        lines = check()
    except AssertionError as exc:
        print(f"FAILED: {exc}", flush=True)
        return 1
    except Exception as exc:  # an LLMError (no engine, no model) is a failed check, said in one line
        print(f"FAILED: {type(exc).__name__}: {str(exc).splitlines()[0]}", flush=True)
        return 1
    for line in lines:
        print(f"  ok  {line}", flush=True)
    print("PASSED", flush=True)
    return 0


def shipped_config_text(port: int) -> str:
    """The shipped llm_backends.yaml with its default model on ``port`` and on one engine thread: beside another
    busy process on a 2-core machine, llama.cpp's spinning thread barriers made each token take seconds."""
    text = SHIPPED_CONFIG.read_text()
    entry = "\n    port: 9100\n"  # the default model's own line (the commented reference says more after it)
    assert text.count(entry) == 1, f"{SHIPPED_CONFIG} no longer has one {entry.strip()!r} line"
    return text.replace(entry, f"\n    port: {port}\n    threads: 1\n")


def run_as_user(script: str, tmp_path: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run ``LLM/tests/<script>`` as the guide says, from the repository root, isolated from the user's servers."""
    config = tmp_path / "llm_backends.yaml"
    config.write_text(shipped_config_text(free_port()))
    env = {**os.environ, "LLM_BACKENDS_CONFIG": str(config), "LLM_STATE_DIR": str(tmp_path / "state"),
           "LLM_LOGS_DIR": str(tmp_path / "logs"), "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run([sys.executable, f"LLM/tests/{script}"], cwd=REPO_ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)
