"""Server manager state machine and supervision, driven against the fake server as the 'engine'."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from LLM.core.config import parse_backends
from LLM.core.errors import (ModelTooLargeError, PortInUseError, ResourceNotAvailableError, ServerExitedError,
                             ServerStartTimeout)
from LLM.core.inference import InferenceConfig, ainfer
from LLM.core.runtime import Runtime
from LLM.core.servers import LaunchSpec, ServerEvent, ServerManager, ServerState
from LLM.core.servers.process import pid_alive
from LLM.core.servers.state_file import ServerRecord, StateFile
from LLM.tests.fakes.gguf_models import write_model_gguf
from LLM.tests.fakes.handle import REPO_ROOT, async_wait_until, fake_server_command, free_port


def fake_config(port: int, **extra: object):
    lines = [f"models:\n  m:\n    base_model: fake.gguf\n    port: {port}\n    model_name: fake-model"]
    lines += [f"    {k}: {v}" for k, v in extra.items()]
    return parse_backends("\n".join(lines) + "\n", strict=True)


def fake_launcher(*flags: str, argv: list[str] | None = None):
    def launch(entry) -> LaunchSpec:
        command = argv or fake_server_command(int(entry.port), *flags)
        return LaunchSpec("fake", command, "health", entry.request_model_name, None, {"PYTHONPATH": str(REPO_ROOT)})

    return launch


class Harness:
    """A manager on a fake engine, recording every event it reports."""

    def __init__(self, tmp_path: Path, *flags: str, argv: list[str] | None = None, **extra: object) -> None:
        self.port = free_port()
        self.config = fake_config(self.port, **extra)
        self.events: list[ServerEvent] = []
        self.tmp_path = tmp_path
        self.manager = ServerManager(
            self.config, logs_dir=tmp_path / "logs", state_dir=tmp_path / "state",
            on_event=self.events.append, launcher=fake_launcher(*flags, argv=argv),
        )

    def states(self) -> list[str]:
        result: list[str] = []
        for event in self.events:
            if not result or result[-1] != event.state.value:
                result.append(event.state.value)
        return result

    @property
    def server(self):
        return self.manager.server("m")


def test_servers_lifecycle_reports_every_transition(tmp_path: Path):
    h = Harness(tmp_path)

    async def go():
        await h.manager.ensure_ready("m")
        pid = h.server.pid
        assert pid_alive(pid)
        await h.manager.stop("m")
        return pid

    pid = asyncio.run(go())
    assert h.states() == ["starting", "ready", "stopping", "stopped"]
    assert not pid_alive(pid)
    assert StateFile(tmp_path / "state" / "servers.json").load() == {}
    assert "starting:" in (tmp_path / "logs" / "m.log").read_text()


def test_servers_concurrent_ensure_ready_starts_once(tmp_path: Path):
    h = Harness(tmp_path, "--startup-delay", "0.5")

    async def go():
        await asyncio.gather(*(h.manager.ensure_ready("m") for _ in range(5)))
        pid = h.server.pid
        await h.manager.ensure_ready("m")  # idempotent once ready
        assert h.server.pid == pid
        await h.manager.stop("m")

    asyncio.run(go())
    assert (tmp_path / "logs" / "m.log").read_text().count("starting:") == 1
    assert h.states().count("starting") == 1


def test_servers_early_exit_fails_fast_with_log_tail(tmp_path: Path):
    argv = [sys.executable, "-c", "import sys; print('model file is corrupt'); sys.exit(3)"]
    h = Harness(tmp_path, argv=argv, startup_timeout_s=60)
    # Fast means "on the exit, not on the 60 s timeout" (that would raise ServerStartTimeout), not a stopwatch.
    with pytest.raises(ServerExitedError) as info:
        asyncio.run(h.manager.ensure_ready("m"))
    assert info.value.returncode == 3 and "model file is corrupt" in str(info.value)
    assert h.server.state is ServerState.FAILED and h.events[-1].error is info.value


def test_servers_start_timeout_kills_the_process(tmp_path: Path):
    h = Harness(tmp_path, "--startup-delay", "60", startup_timeout_s=1)
    pids: list[int] = []
    h.manager.add_listener(lambda e: e.pid and pids.append(e.pid))
    with pytest.raises(ServerStartTimeout, match="not ready after 1 s"):
        asyncio.run(h.manager.ensure_ready("m"))
    assert pids and not pid_alive(pids[0])


def test_servers_health_503_while_loading_is_not_ready(tmp_path: Path):
    h = Harness(tmp_path, "--loading-s", "0.8")

    async def go():
        started = time.monotonic()
        await h.manager.ensure_ready("m")
        elapsed = time.monotonic() - started
        await h.manager.stop("m")
        return elapsed

    assert asyncio.run(go()) >= 0.8


def test_servers_port_taken_by_another_process(tmp_path: Path):
    h = Harness(tmp_path)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", h.port))
        sock.listen()
        with pytest.raises(PortInUseError) as info:
            asyncio.run(h.manager.ensure_ready("m"))
    assert info.value.port == h.port and f"port {h.port} is already in use" in str(info.value)
    assert f"pid {os.getpid()}" in str(info.value)  # the owner is named when /proc tells


def test_servers_crash_marks_failed_and_next_request_restarts(tmp_path: Path):
    h = Harness(tmp_path)

    async def go():
        await h.manager.ensure_ready("m")
        first = h.server.pid
        os.kill(first, signal.SIGKILL)
        await async_wait_until(lambda: h.server.state is ServerState.FAILED, 30, "failed state")
        assert isinstance(h.server.error, ServerExitedError)
        await h.manager.ensure_ready("m")
        second = h.server.pid
        await h.manager.stop("m")
        return first, second

    first, second = asyncio.run(go())
    assert first != second
    assert h.states() == ["starting", "ready", "failed", "starting", "ready", "stopping", "stopped"]


def test_servers_kill_mid_stream_gives_server_exited_error(tmp_path: Path):
    h = Harness(tmp_path)

    async def go():
        runtime = Runtime(h.config, h.manager)
        await h.manager.ensure_ready("m")

        # Script the running fake through its control endpoint.
        import httpx

        httpx.post(f"http://127.0.0.1:{h.port}/_script", json={"replies": [{"text": "w " * 500, "delay_s": 0.05}]})
        pid = h.server.pid
        task = asyncio.ensure_future(ainfer(InferenceConfig(prompt="hi", model_id="m"), runtime))
        await asyncio.sleep(0.3)  # let a few chunks arrive (the assertion below does not depend on it)
        os.kill(pid, signal.SIGKILL)
        # At once, not after the 300 s read timeout: this deadline only catches that hang.
        response = await asyncio.wait_for(task, 60)
        await runtime.aclose()
        return response

    response = asyncio.run(go())
    assert response.error_type == "ServerExitedError", response.error_message
    assert "exited while answering" in response.error_message


def test_servers_idle_ttl_stops_after_last_request(tmp_path: Path):
    h = Harness(tmp_path, keep_alive=0.5)

    async def go():
        runtime = Runtime(h.config, h.manager)
        response = await ainfer(InferenceConfig(prompt="hi", model_id="m"), runtime)
        assert response.error_message is None
        done_at = time.monotonic()
        await async_wait_until(lambda: h.server.state is ServerState.STOPPED, 30, "idle stop")
        await runtime.aclose()
        return time.monotonic() - done_at

    assert asyncio.run(go()) >= 0.45


def test_servers_stale_record_with_dead_pid_is_cleaned(tmp_path: Path):
    h = Harness(tmp_path)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    state = StateFile(tmp_path / "state" / "servers.json")
    state.put(ServerRecord("m", dead.pid, "127.0.0.1", h.port, "oldhash", time.time(), ["x"], dead.pid))

    async def go():
        await h.manager.ensure_ready("m")
        pid = h.server.pid
        record = state.load()["m"]
        await h.manager.stop("m")
        return pid, record

    pid, record = asyncio.run(go())
    assert record.pid == pid != dead.pid


def test_servers_reattach_from_another_process_and_session_stop(tmp_path: Path):
    """A second process re-attaches to our running server; it never stops a server it did not start."""
    h = Harness(tmp_path)
    script = f"""
import asyncio, sys
sys.path.insert(0, {str(REPO_ROOT)!r})
from LLM.tests.core.servers.test_servers import Harness
from pathlib import Path
async def go():
    h = Harness(Path({str(tmp_path)!r}))
    h.port = {h.port}
    from LLM.tests.core.servers.test_servers import fake_config, fake_launcher
    from LLM.core.servers import ServerManager
    h.manager = ServerManager(fake_config({h.port}), logs_dir=h.tmp_path / "logs", state_dir=h.tmp_path / "state",
                              launcher=fake_launcher())
    await h.manager.ensure_ready("m")
    print(h.manager.server("m").pid, h.manager.server("m").owned)
    await h.manager.shutdown()
asyncio.run(go())
"""

    async def go():
        await h.manager.ensure_ready("m")
        pid = h.server.pid
        out = await asyncio.to_thread(
            subprocess.run, [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
        )
        alive_after_second = pid_alive(pid)
        await h.manager.shutdown()  # we started it under the session policy: stops it
        return pid, out, alive_after_second

    pid, out, alive_after_second = asyncio.run(go())
    assert out.stdout.split() == [str(pid), "False"], out.stderr
    assert alive_after_second
    assert not pid_alive(pid)


def test_servers_detached_start_survives_shutdown(tmp_path: Path):
    h = Harness(tmp_path)

    async def go():
        await h.manager.ensure_ready("m", detach=True)
        pid = h.server.pid
        await h.manager.shutdown()
        alive = pid_alive(pid)
        await h.manager.stop("m")
        return pid, alive

    pid, alive = asyncio.run(go())
    assert alive and not pid_alive(pid)


def test_servers_changed_launch_settings_stop_the_old_server(tmp_path: Path):
    h = Harness(tmp_path)
    state = StateFile(tmp_path / "state" / "servers.json")

    async def go():
        await h.manager.ensure_ready("m")
        old = h.server.pid
        # Same model, new engine flags: a different config hash.
        other = ServerManager(h.config, logs_dir=tmp_path / "logs", state_dir=tmp_path / "state",
                              launcher=fake_launcher("--model-name", "other"))
        await other.ensure_ready("m")
        new = other.server("m").pid
        await other.stop("m")
        return old, new

    old, new = asyncio.run(go())
    assert old != new and not pid_alive(old) and not pid_alive(new)
    assert state.load() == {}


def test_servers_request_during_a_stop_waits_then_restarts(tmp_path: Path):
    """Regression: an idle-TTL stop racing a new request raised IllegalTransition (stopping -> starting)."""
    h = Harness(tmp_path)

    async def go():
        await h.manager.ensure_ready("m")
        first = h.server.pid
        stopping = asyncio.ensure_future(h.manager.stop("m"))
        await asyncio.sleep(0)  # stop() runs up to its first await: the process is being stopped
        assert h.server.state is ServerState.STOPPING
        await h.manager.ensure_ready("m")
        await stopping
        second = h.server.pid
        state = h.server.state
        await h.manager.stop("m")
        return first, second, state

    first, second, state = asyncio.run(go())
    assert state is ServerState.READY and first != second
    assert h.states() == ["starting", "ready", "stopping", "stopped", "starting", "ready", "stopping", "stopped"]


def test_servers_reload_updates_an_entry_in_place_when_launch_settings_are_unchanged(tmp_path: Path):
    """Renaming a model (display_name) used to forget its running supervisor (pinned): the live server and its
    supervisor stay; only a change to the launch spec (here the model name on the command line) restarts it."""

    def launcher(entry) -> LaunchSpec:
        command = fake_server_command(int(entry.port), "--model-name", entry.request_model_name)
        return LaunchSpec("fake", command, "health", entry.request_model_name, None, {"PYTHONPATH": str(REPO_ROOT)})

    port = free_port()
    config = fake_config(port)
    manager = ServerManager(config, logs_dir=tmp_path / "logs", state_dir=tmp_path / "state", launcher=launcher)

    async def go():
        await manager.ensure_ready("m")
        server, pid = manager.server("m"), manager.server("m").pid
        renamed = fake_config(port, display_name='"Renamed"')
        restarted = await manager.reload(renamed)
        kept = (manager.server("m") is server, server.pid == pid, server.entry.label, restarted)
        relaunched = fake_config(port, model_name="other-name")
        restarted_again = await manager.reload(relaunched)
        stopped_old = not pid_alive(pid)
        await manager.stop_all()
        return kept, restarted_again, stopped_old

    kept, restarted_again, stopped_old = asyncio.run(go())
    assert kept == (True, True, "Renamed", [])
    assert restarted_again == ["m"] and stopped_old


STUBBORN_WORKER = """
import os, signal, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)  # like an engine worker busy freeing GPU memory
child = subprocess.Popen([sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, "
                          "signal.SIG_IGN); print('child', flush=True); time.sleep(600)"])
print(child.pid, flush=True)
time.sleep(600)
"""


def test_servers_stop_ends_the_whole_group_even_a_worker_that_ignores_sigterm():
    """A child that ignored SIGTERM survived the stop (pinned): the group is polled until it is empty."""
    from LLM.core.servers.process import group_alive, stop_process_group

    leader = subprocess.Popen([sys.executable, "-c", STUBBORN_WORKER], stdout=subprocess.PIPE, text=True,
                              start_new_session=True)
    child = int(leader.stdout.readline())
    assert leader.stdout.readline().strip() == "child"
    threading.Thread(target=leader.wait, daemon=True).start()  # reap the leader as its parent would
    assert stop_process_group(leader.pid, grace_s=0.5)
    assert not group_alive(leader.pid) and not pid_alive(child)


def test_servers_a_reused_pid_is_never_signalled(tmp_path: Path):
    """A record whose pid now belongs to another process (same command, another start) is not ours: the
    process is left alone and the record dropped. A missing start time used to count as proof."""
    h = Harness(tmp_path)
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        state = StateFile(tmp_path / "state" / "servers.json")
        argv = [sys.executable, "-c", "import time; time.sleep(60)"]
        state.put(ServerRecord("m", stranger.pid, "127.0.0.1", h.port, "hash", time.time(), argv, os.getpid(),
                               started="123"))
        asyncio.run(h.manager.stop("m"))
        assert stranger.poll() is None and pid_alive(stranger.pid)
        assert state.load() == {}
    finally:
        stranger.kill()
        stranger.wait()


def _script(port: int, *replies: dict) -> None:
    import httpx

    httpx.post(f"http://127.0.0.1:{port}/_script", json={"replies": list(replies)}).raise_for_status()


def _chunks_sent(port: int) -> int:
    import httpx

    return httpx.get(f"http://127.0.0.1:{port}/_progress").json()["chunks_sent"]


def renaming_launcher(entry) -> LaunchSpec:
    """The model name is on the command line: changing it changes the launch spec."""
    command = fake_server_command(int(entry.port), "--model-name", entry.request_model_name)
    return LaunchSpec("fake", command, "health", entry.request_model_name, None, {"PYTHONPATH": str(REPO_ROOT)})


def test_servers_concurrent_reloads_are_serialized_and_the_latest_wins(tmp_path: Path):
    """Two reloads close together raised KeyError and left the runtime and the manager on different configs
    (pinned): they run one at a time, and one that finds a newer one waiting gives way to it."""
    port = free_port()
    config = fake_config(port)
    manager = ServerManager(config, logs_dir=tmp_path / "logs", state_dir=tmp_path / "state",
                            launcher=renaming_launcher)
    runtime = Runtime(config, manager)

    async def go():
        await manager.ensure_ready("m")
        slow = fake_config(port, model_name="other")  # a launch change: its reload stops the server (it awaits)
        middle = fake_config(port, display_name='"Middle"')
        latest = fake_config(port, display_name='"Latest"')
        results = await asyncio.gather(runtime.reload(slow), runtime.reload(middle), runtime.reload(latest))
        labels = (runtime.config.models["m"].label, manager.config.models["m"].label)
        await runtime.aclose()
        return results, labels

    results, labels = asyncio.run(go())
    assert results == [["m"], [], []]  # the middle one gave way; the latest was an in-place update
    assert labels == ("Latest", "Latest")


def test_servers_reload_mid_answer_keeps_the_answer(tmp_path: Path):
    """Renaming a model mid-answer closed its client and dropped the answer (pinned); a launch change
    waits for the answer before it restarts the server."""
    port = free_port()
    config = fake_config(port)
    manager = ServerManager(config, logs_dir=tmp_path / "logs", state_dir=tmp_path / "state",
                            launcher=renaming_launcher)
    runtime = Runtime(config, manager)

    async def answer_across(reload_to) -> tuple[str, str | None, list[str], int | None]:
        await manager.ensure_ready("m")
        pid = manager.server("m").pid
        _script(port, {"chunks": [f"w{i} " for i in range(30)], "delay_s": 0.03})
        before = _chunks_sent(port)
        task = asyncio.ensure_future(ainfer(InferenceConfig(prompt="go", model_id="m"), runtime))
        await async_wait_until(lambda: _chunks_sent(port) >= before + 3, what="streaming")
        restarted = await runtime.reload(reload_to)
        response = await task
        return response.generated_text, response.error_message, restarted, pid

    async def go():
        renamed = await answer_across(fake_config(port, display_name='"Renamed"'))
        relaunched = await answer_across(fake_config(port, display_name='"Renamed"', model_name="other"))
        await runtime.aclose()
        return renamed, relaunched

    (text, error, restarted, _), (text2, error2, restarted2, old_pid) = asyncio.run(go())
    assert error is None and text.split() == [f"w{i}" for i in range(30)] and restarted == []
    assert error2 is None and text2.split() == [f"w{i}" for i in range(30)] and restarted2 == ["m"]
    assert not pid_alive(old_pid)


def budget_manager(tmp_path: Path, ids: list[str], *, max_loaded: int = 2, weights: int | None = None,
                   available: int | None = None, confirm=None, startup_delay: float = 0.0,
                   model_file: Path | None = None, **extra: object):
    """A manager over fake engines; ``weights`` makes each model's estimate that many bytes (a real file);
    ``model_file`` (a GGUF) is what each model's estimate reads instead."""
    yaml = [f"defaults:\n  max_loaded: {max_loaded}\nmodels:"]
    for model_id in ids:
        # Separate servers on one (fake) base: the budget is about servers, not about groups.
        yaml.append(f"  {model_id}:\n    base_model: fake.gguf\n    port: {free_port()}\n    model_name: {model_id}\n"
                    "    share_server: false")
        yaml += [f"    {k}: {v}" for k, v in extra.get(model_id, {}).items()]
    config = parse_backends("\n".join(yaml) + "\n", strict=True)
    weights_file = model_file
    if weights is not None:
        weights_file = tmp_path / "weights.bin"
        weights_file.write_bytes(b"\0" * weights)

    def launcher(entry) -> LaunchSpec:
        flags = ("--startup-delay", str(startup_delay)) if startup_delay else ()
        return LaunchSpec("fake", fake_server_command(int(entry.port), *flags), "health", entry.request_model_name,
                          str(weights_file) if weights_file else None, {"PYTHONPATH": str(REPO_ROOT)})

    return ServerManager(config, logs_dir=tmp_path / "logs", state_dir=tmp_path / "state", launcher=launcher,
                         memory_probe=lambda: available, confirm_unload=confirm)


def test_servers_a_model_too_large_for_its_context_is_refused_with_a_context_that_fits(tmp_path: Path):
    """The estimate counts the KV cache of the configured context: a start that cannot fit says which
    context_size would, before anything is loaded or unloaded."""
    model = write_model_gguf(tmp_path / "m.gguf", layers=8, embedding=512, heads=8, kv_heads=8, context=65536)
    per_token = 2 * 8 * 8 * 64 * 2
    available = model.stat().st_size + 4096 * per_token + 8 * 2**20
    manager = budget_manager(tmp_path, ["a"], max_loaded=5, available=available, model_file=model,
                             a={"context_size": 32768})

    async def go():
        with pytest.raises(ModelTooLargeError) as caught:
            await manager.ensure_ready("a")
        return caught.value

    error = asyncio.run(go())
    assert 512 <= (error.fitting_context or 0) < 32768 and error.fitting_context % 256 == 0
    assert f"with context_size {error.fitting_context} it would fit" in str(error)
    assert error.available == available and error.needed > available
    assert loaded_ids(manager) == []


def loaded_ids(manager: ServerManager) -> list[str]:
    return sorted(m for m in manager.config.models if manager.server(m).loaded)


def test_servers_max_loaded_unloads_the_least_recently_used_idle_server(tmp_path: Path):
    manager = budget_manager(tmp_path, ["a", "b", "c"])
    events: list[ServerEvent] = []
    manager.add_listener(events.append)

    async def go():
        try:
            await manager.ensure_ready("a")
            await manager.ensure_ready("b")
            await manager.ensure_ready("a")  # a is used again: b is now the least recent
            await manager.ensure_ready("c")
            return loaded_ids(manager)
        finally:
            await manager.stop_all()

    assert asyncio.run(go()) == ["a", "c"]
    assert any(e.model_id == "b" and e.detail == "unloaded to make room for 'c'" for e in events)


def test_servers_a_busy_or_reattached_server_is_never_unloaded(tmp_path: Path):
    manager = budget_manager(tmp_path, ["a", "b"], max_loaded=1)

    async def go():
        try:
            await manager.ensure_ready("a")
            async with manager.in_use("a"):  # a request in flight
                with pytest.raises(ResourceNotAvailableError, match="'a' is answering"):
                    await manager.ensure_ready("b")
            manager.server("a").owned = False  # as after re-attaching to another process's server
            with pytest.raises(ResourceNotAvailableError, match="'a' was started by another process"):
                await manager.ensure_ready("b")
            manager.server("a").owned = True
            await manager.ensure_ready("b")
            return loaded_ids(manager)
        finally:
            await manager.stop_all()

    assert asyncio.run(go()) == ["b"]


def test_servers_memory_budget_unloads_or_names_the_numbers(tmp_path: Path):
    """A model whose weights do not fit the available memory unloads idle ones first; if it still cannot
    fit, the error says how much it needs and how much is free, and nothing was unloaded."""
    manager = budget_manager(tmp_path, ["a", "b"], max_loaded=5, weights=3000, available=2000)

    async def go():
        with pytest.raises(ResourceNotAvailableError, match=r"cannot start 'a': it needs about 0 MiB"):
            await manager.ensure_ready("a")
        return loaded_ids(manager)

    assert asyncio.run(go()) == []


def test_servers_forever_server_is_unloaded_only_when_the_user_confirms(tmp_path: Path):
    asked: list[tuple[str, str]] = []
    answers = [False, True]

    async def confirm(victim: str, starting: str) -> bool:
        asked.append((victim, starting))
        return answers.pop(0)

    manager = budget_manager(tmp_path, ["a", "b"], max_loaded=1, confirm=confirm,
                             a={"keep_alive": "forever"})

    async def go():
        try:
            await manager.ensure_ready("a")
            with pytest.raises(ResourceNotAvailableError, match="kept forever"):
                await manager.ensure_ready("b")
            await manager.ensure_ready("b")
            return loaded_ids(manager)
        finally:
            await manager.stop_all()

    assert asyncio.run(go()) == ["b"]
    assert asked == [("a", "b"), ("a", "b")]


def test_servers_a_non_executable_engine_ends_failed_not_starting(tmp_path: Path):
    """A llama_server_bin that is not executable raised a raw PermissionError and left the model in
    'starting' for ever (pinned): it fails with a typed error, and a retry is possible."""
    binary = tmp_path / "llama-server"
    binary.write_text("#!/bin/sh\nexit 0\n")
    binary.chmod(0o644)
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    config = parse_backends(f"models:\n  m:\n    base_model: {gguf}\n    port: {free_port()}\n"
                            f"    llama_server_bin: {binary}\n", strict=True)
    manager = ServerManager(config, logs_dir=tmp_path / "logs", state_dir=tmp_path / "state")

    async def go():
        with pytest.raises(ResourceNotAvailableError, match="is not executable"):
            await manager.ensure_ready("m")
        return manager.server("m").state, manager.server("m").error

    state, error = asyncio.run(go())
    assert state is ServerState.FAILED and isinstance(error, ResourceNotAvailableError)


def test_servers_a_start_called_off_by_a_stop_gives_waiters_a_typed_error(tmp_path: Path):
    """Requests waiting on a start that a stop (or reload) called off got a bare CancelledError (pinned)."""
    from LLM.core.errors import ServerError

    h = Harness(tmp_path, "--startup-delay", "3")

    async def go():
        try:
            waiters = [asyncio.ensure_future(h.manager.ensure_ready("m")) for _ in range(2)]
            await async_wait_until(lambda: h.server.pid is not None, what="the engine spawned")
            await h.manager.stop("m")
            results = await asyncio.gather(*waiters, return_exceptions=True)
            return results, h.server.state
        finally:
            await h.manager.stop_all()

    results, state = asyncio.run(go())
    assert all(isinstance(r, ServerError) and "was cancelled" in str(r) for r in results), results
    assert state in (ServerState.STOPPED, ServerState.FAILED)
