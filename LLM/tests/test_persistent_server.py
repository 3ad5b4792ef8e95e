"""Migration check 2: one persistent server, reused and fast (``python LLM/tests/test_persistent_server.py``).

The first request starts the default model's server (load + warm-up); the second goes to the same process
and is faster because it starts nothing. The check asserts that cause, not a stopwatch: beside a busy process
two wall-clock times may come out either way although the second request never waited for a server (#19,
loaded machine). The times are printed for the reader.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

if __name__ == "__main__":  # run as a plain script from the repository root
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import pytest

from LLM.core.servers import ServerEvent, ServerState
from LLM.core.inference import InferenceConfig, run_inference
from LLM.core.runtime import default_portal
from LLM.tests.migration_check import main, run_as_user


def check() -> list[str]:
    servers = default_portal.get().runtime.servers
    events: list[tuple[float, ServerEvent]] = []
    servers.add_listener(lambda event: events.append((time.perf_counter(), event)))
    timings, pids, starts = [], [], []
    for prompt in ("Name a color.", "Name a fruit."):
        started, seen = time.perf_counter(), len(events)
        text = run_inference(InferenceConfig(prompt=prompt, model_id="default", max_new_tokens=8))
        timings.append(time.perf_counter() - started)
        assert text.strip(), f"no answer to {prompt!r}"
        pids.append(servers.server("default").pid)
        starts.append([(at, e.state) for at, e in events[seen:]
                       if e.state in (ServerState.STARTING, ServerState.READY)])
    assert pids[0] is not None and pids[0] == pids[1], f"the second request went to another server: {pids}"
    assert starts[0] and starts[0][-1][1] is ServerState.READY, "the first request did not start the server"
    assert not starts[1], "the second request waited for a server start: it was not faster for reusing one"
    start_s = starts[0][-1][0] - starts[0][0][0]
    return [
        f"first request (server start {start_s:.2f} s + answer): {timings[0]:.2f} s",
        f"second request, same server pid {pids[1]}, nothing started: {timings[1]:.2f} s",
    ]


@pytest.mark.engine
def test_persistent_server_script_passes(tmp_path: Path):
    out = run_as_user("test_persistent_server.py", tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "same server pid" in out.stdout and out.stdout.rstrip().endswith("PASSED")


if __name__ == "__main__":
    sys.exit(main(check, "Persistent server: the second request reuses the first one's server"))
