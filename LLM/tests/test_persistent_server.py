"""Migration check 2: one persistent server, reused and fast (``python LLM/tests/test_persistent_server.py``).

The first request starts the default model's server (load + warm-up); the second goes to the same
process and must be faster than the first.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

if __name__ == "__main__":  # run as a plain script from the repository root
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import pytest

from LLM.core.inference import InferenceConfig, run_inference
from LLM.core.runtime import default_portal
from LLM.tests.migration_check import main, run_as_user


def check() -> list[str]:
    timings, pids = [], []
    for prompt in ("Name a color.", "Name a fruit."):
        started = time.perf_counter()
        text = run_inference(InferenceConfig(prompt=prompt, model_id="default", max_new_tokens=8))
        timings.append(time.perf_counter() - started)
        assert text.strip(), f"no answer to {prompt!r}"
        pids.append(default_portal.get().runtime.servers.server("default").pid)
    assert pids[0] is not None and pids[0] == pids[1], f"the second request went to another server: {pids}"
    assert timings[1] < timings[0], f"the second request ({timings[1]:.2f} s) was not faster than the first " \
                                    f"({timings[0]:.2f} s, which started the server)"
    return [
        f"first request (server start + answer): {timings[0]:.2f} s",
        f"second request, same server pid {pids[1]}: {timings[1]:.2f} s",
    ]


@pytest.mark.engine
def test_persistent_server_script_passes(tmp_path: Path):
    out = run_as_user("test_persistent_server.py", tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "same server pid" in out.stdout and out.stdout.rstrip().endswith("PASSED")


if __name__ == "__main__":
    sys.exit(main(check, "Persistent server: the second request reuses the first one's server"))
