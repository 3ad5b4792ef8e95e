"""The real llama-cpp-python engine with the embedded default model (SmolLM2-135M)."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from LLM.core.config import SHIPPED_CONFIG, BackendsConfig, load_backends
from LLM.core.errors import PortInUseError
from LLM.core.events import TextDelta
from LLM.core.inference import InferenceConfig, ainfer, stream_inference
from LLM.core.runtime import Runtime
from LLM.core.servers import ServerManager, ServerState
from LLM.core.servers.process import pid_alive
from LLM.tests.fakes.handle import REPO_ROOT, free_port

# find_spec, not importorskip: importing llama_cpp in the test process opens files it never closes.
pytestmark = [
    pytest.mark.engine,
    pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None,
                       reason="llama-cpp-python is not installed (make test installs it)"),
]


def default_config(port: int) -> BackendsConfig:
    shipped = load_backends(SHIPPED_CONFIG, strict=True)
    entry = shipped.models["default"].model_copy(update={"port": port})
    return BackendsConfig(source=str(SHIPPED_CONFIG), models={"default": entry})


class Engine:
    def __init__(self, tmp: Path) -> None:
        self.port = free_port()
        self.tmp = tmp
        self.config = default_config(self.port)

    def manager(self) -> ServerManager:
        return ServerManager(self.config, logs_dir=self.tmp / "logs", state_dir=self.tmp / "state")


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    e = Engine(tmp_path)
    yield e
    # Whatever a test left behind is stopped here: no orphan engine processes.
    asyncio.run(e.manager().stop_all())


def test_engine_start_warmup_and_requests_reuse_one_process(engine: Engine):
    async def go():
        manager = engine.manager()
        runtime = Runtime(engine.config, manager)
        states: list[str] = []
        manager.add_listener(lambda ev: states.append(ev.state.value))
        first = await ainfer(InferenceConfig(prompt="Say hi.", model_id="default", max_new_tokens=8), runtime)
        pid = manager.server("default").pid
        second = await ainfer(InferenceConfig(prompt="Say bye.", model_id="default", max_new_tokens=8), runtime)
        same_pid = manager.server("default").pid
        await runtime.aclose()  # session policy: stops the server it started
        return first, second, pid, same_pid, states

    first, second, pid, same_pid, states = asyncio.run(go())
    assert first.error_message is None and first.generated_text.strip()
    assert second.error_message is None and second.generated_text.strip()
    assert pid == same_pid
    assert "ready" in states and states[-1] == "stopped"
    assert not pid_alive(pid)
    assert "llama_cpp.server" in (engine.tmp / "logs" / "default.log").read_text()


def test_engine_second_process_reattaches_to_the_same_server(engine: Engine):
    config_file = engine.tmp / "backends.yaml"
    config_file.write_text(
        SHIPPED_CONFIG.read_text().replace("port: 9100", f"port: {engine.port}")
    )
    env = {**os.environ, "LLM_STATE_DIR": str(engine.tmp / "state"), "LLM_LOGS_DIR": str(engine.tmp / "logs"),
           "PYTHONPATH": str(REPO_ROOT)}
    start = subprocess.run([sys.executable, "-m", "LLM", "--config", str(config_file), "servers", "start", "default"],
                           capture_output=True, text=True, env=env, timeout=300)
    assert start.returncode == 0, start.stderr
    status = subprocess.run([sys.executable, "-m", "LLM", "--config", str(config_file), "servers", "status"],
                            capture_output=True, text=True, env=env, timeout=60).stdout
    pid = int(status.split("pid")[1].split()[0])
    script = (
        "from LLM.core.inference import InferenceConfig, run_inference\n"
        "from LLM.core.runtime import default_portal\n"
        "print(repr(run_inference(InferenceConfig(prompt='Hi', model_id='default', max_new_tokens=4))))\n"
        "print(default_portal.get().runtime.servers.server('default').pid)\n"
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                         env={**env, "LLM_BACKENDS_CONFIG": str(config_file)})
    assert run.returncode == 0, run.stderr
    assert int(run.stdout.splitlines()[-1]) == pid
    assert pid_alive(pid), "a process that re-attached must not stop a server it did not start"
    stop = subprocess.run([sys.executable, "-m", "LLM", "--config", str(config_file), "servers", "stop", "default"],
                          capture_output=True, text=True, env=env, timeout=60)
    assert stop.returncode == 0, stop.stderr
    assert not pid_alive(pid)


def test_engine_kill_mid_stream_gives_server_exited_error_and_restarts(engine: Engine):
    async def go():
        manager = engine.manager()
        runtime = Runtime(engine.config, manager)
        await manager.ensure_ready("default")
        pid = manager.server("default").pid
        cfg = InferenceConfig(prompt="Write a long story about a dragon.", model_id="default", max_new_tokens=400)
        got_text = asyncio.Event()

        async def consume():
            async for event in stream_inference(cfg, runtime):
                if isinstance(event, TextDelta):
                    got_text.set()

        task = asyncio.ensure_future(consume())
        await asyncio.wait_for(got_text.wait(), 30)
        killed = time.monotonic()
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(Exception) as info:
            await asyncio.wait_for(task, 10)
        elapsed = time.monotonic() - killed
        failed_state = manager.server("default").state
        again = await ainfer(InferenceConfig(prompt="Hi", model_id="default", max_new_tokens=4), runtime)
        new_pid = manager.server("default").pid
        await runtime.aclose()
        return info.value, elapsed, failed_state, again, pid, new_pid

    error, elapsed, failed_state, again, pid, new_pid = asyncio.run(go())
    assert type(error).__name__ == "ServerExitedError", repr(error)
    assert elapsed < 2.0
    assert failed_state is ServerState.FAILED
    assert again.error_message is None and new_pid != pid
    assert not pid_alive(new_pid)


def test_engine_port_taken_by_a_plain_socket(engine: Engine):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", engine.port))
        sock.listen()
        with pytest.raises(PortInUseError, match=f"port {engine.port} is already in use"):
            asyncio.run(engine.manager().ensure_ready("default"))


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_engine_plain_script_stops_its_session_server_on_ctrl_c(engine: Engine, sig: signal.Signals):
    """A script that started a server itself (session policy) stops it when interrupted or terminated."""
    config_file = engine.tmp / "backends.yaml"
    config_file.write_text(SHIPPED_CONFIG.read_text().replace("port: 9100", f"port: {engine.port}"))
    script = (
        "import sys\n"
        "from LLM.core.inference import InferenceConfig, run_inference\n"
        "from LLM.core.runtime import default_portal\n"
        "run_inference(InferenceConfig(prompt='Hi', model_id='default', max_new_tokens=2))\n"
        "print(default_portal.get().runtime.servers.server('default').pid, flush=True)\n"
        "while True:\n"
        "    run_inference(InferenceConfig(prompt='Tell me a long story.', model_id='default', max_new_tokens=64))\n"
    )
    env = {**os.environ, "LLM_STATE_DIR": str(engine.tmp / "state"), "LLM_LOGS_DIR": str(engine.tmp / "logs"),
           "LLM_BACKENDS_CONFIG": str(config_file), "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)
    try:
        pid = int(proc.stdout.readline())
        assert pid_alive(pid)
        proc.send_signal(sig)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    deadline = time.monotonic() + 10
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pid_alive(pid), proc.stderr.read()
