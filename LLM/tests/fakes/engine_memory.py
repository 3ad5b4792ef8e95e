"""What llama-server itself reports holding for a model: its "memory breakdown" log line (model + context +
compute, in MiB), read from a real start with the verbose log. Used by the fit test and bench/models.py."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

from LLM.tests.fakes.handle import free_port

# "|   - Host               |                  152 =    92 +      45 +      15                |"
BREAKDOWN_RE = re.compile(r"memory_breakdown_print: \|\s+- Host\s+\|\s+(\d+) =\s+(\d+) \+\s+(\d+) \+\s+(\d+)")


def engine_reported_memory(binary: Path, model: Path, context_size: int, timeout: float = 90) -> dict[str, int]:
    """{"total", "model", "context", "compute"} in bytes, as the engine's log states them after loading."""
    argv = [str(binary), "-m", str(model), "-c", str(context_size), "-t", "2", "--host", "127.0.0.1",
            "--port", str(free_port()), "--no-webui", "-v"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            errors="replace", start_new_session=True)
    deadline = time.monotonic() + timeout
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            match = BREAKDOWN_RE.search(line)
            if match:
                total, weights, context, compute = (int(v) * 2**20 for v in match.groups())
                return {"total": total, "model": weights, "context": context, "compute": compute}
            if time.monotonic() > deadline:
                break
        raise AssertionError(f"llama-server printed no memory breakdown within {timeout:g} s: {' '.join(argv)}")
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=10)
