"""Config reloads racing requests: a retired supervisor starts nothing, requests go to its successor, and no
process outlives the app. Driven against the fake server as the 'engine'."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from LLM.core.inference import InferenceConfig, ainfer
from LLM.core.runtime import Runtime
from LLM.core.servers import LaunchSpec, ServerEvent, ServerManager, ServerState
from LLM.core.servers.process import group_alive, pid_alive
from LLM.core.servers.states import TRANSITIONS
from LLM.tests.core.servers.test_servers import fake_config
from LLM.tests.fakes.handle import REPO_ROOT, async_wait_until, fake_server_command, free_port

DEADLINE_S = 60  # only catches a hang


def launcher(entry) -> LaunchSpec:
    """The model name is on the command line, so a new name is a launch change (a restart), and the running
    process says which settings it was started with; a name starting 'slow' takes seconds to get ready."""
    flags = ["--model-name", entry.request_model_name]
    if entry.request_model_name.startswith("slow"):
        flags += ["--startup-delay", "3"]
    return LaunchSpec("fake", fake_server_command(int(entry.port), *flags), "health", entry.request_model_name,
                      None, {"PYTHONPATH": str(REPO_ROOT)})


class Setup:
    """A runtime on a manager over the fake engine, remembering every pid a server event named."""

    def __init__(self, tmp_path: Path, model_name: str = "old-name") -> None:
        self.port = free_port()
        self.config = fake_config(self.port, model_name=model_name)
        self.pids: set[int] = set()
        self.events: list[ServerEvent] = []
        self.manager = ServerManager(self.config, logs_dir=tmp_path / "logs", state_dir=tmp_path / "state",
                                     on_event=self._record, launcher=launcher)
        self.runtime = Runtime(self.config, self.manager)

    def _record(self, event: ServerEvent) -> None:
        self.events.append(event)
        if event.pid:
            self.pids.add(event.pid)

    def reloaded(self, model_name: str):
        return fake_config(self.port, model_name=model_name)

    def served_name(self) -> str:
        """The model name of the process listening now: which settings it was started with."""
        return httpx.get(f"http://127.0.0.1:{self.port}/v1/models", timeout=5).json()["data"][0]["id"]

    def prompts_answered(self) -> list[tuple[str, str]]:
        """(model name asked for, last user message) of every chat request the listening process answered."""
        log = httpx.get(f"http://127.0.0.1:{self.port}/_requests", timeout=5).json()
        return [(e["body"].get("model"), e["body"]["messages"][-1]["content"]) for e in log if e["type"] == "request"]

    def ask(self, prompt: str) -> asyncio.Future:
        return asyncio.ensure_future(ainfer(InferenceConfig(prompt=prompt, model_id="m"), self.runtime))

    async def cancel_a_reload_while_answering(self):
        """Start the server, have it answer slowly, begin a reload (which retires it) and cancel the reload
        while the answer goes on, as the window closing mid-reload does: (the retiring supervisor, the answer)."""
        await self.manager.ensure_ready("m")
        old = self.manager.server("m")
        httpx.post(f"http://127.0.0.1:{self.port}/_script", timeout=5,
                   json={"replies": [{"chunks": [f"w{i} " for i in range(40)], "delay_s": 0.05}]})
        answer = self.ask("long")
        await async_wait_until(lambda: old.busy, DEADLINE_S, "answering")
        reload = asyncio.ensure_future(self.runtime.reload(self.reloaded("new-name")))
        await async_wait_until(lambda: old.retiring, DEADLINE_S, "retiring")
        reload.cancel()
        with pytest.raises(asyncio.CancelledError):
            await reload
        return old, answer

    def send_once_stopping(self, prompt: str) -> list[asyncio.Future]:
        """Ask ``prompt`` the moment a server starts stopping (a reload's stop); the list gets its future."""
        requests: list[asyncio.Future] = []

        def send(event: ServerEvent) -> None:
            if event.state is ServerState.STOPPING and not requests:
                requests.append(self.ask(prompt))

        self.manager.add_listener(send)
        return requests

    def leftovers(self) -> list[int]:
        """Process groups of servers we started that still have a live process."""
        return sorted(pid for pid in self.pids if group_alive(pid) or pid_alive(pid))


def test_reload_a_request_sent_during_the_stop_is_served_by_the_new_server(tmp_path: Path):
    """Regression (#19 item 6): a message sent while a reload stopped a server found the retiring supervisor,
    which restarted with the old settings outside the manager and outlived the app with its model loaded."""
    s = Setup(tmp_path)
    requests = s.send_once_stopping("sent during the stop")
    async def go():
        await s.manager.ensure_ready("m")
        old_pid = s.manager.server("m").pid
        restarted = await asyncio.wait_for(s.runtime.reload(s.reloaded("new-name")), DEADLINE_S)
        response = await asyncio.wait_for(requests[0], DEADLINE_S)
        new = s.manager.server("m")
        seen = (s.served_name(), s.prompts_answered(), new.state, new.pid)
        await s.runtime.aclose()
        return old_pid, restarted, response, seen

    old_pid, restarted, response, (name, answered, state, new_pid) = asyncio.run(go())
    assert restarted == ["m"] and requests
    assert response.error_message is None, response.error_message
    assert name == "new-name" and ("new-name", "sent during the stop") in answered
    assert state is ServerState.READY and new_pid != old_pid and not group_alive(old_pid)
    assert s.leftovers() == []


def test_reload_a_request_sent_during_the_stop_takes_the_new_entrys_parameters(tmp_path: Path):
    """Review of #19 item 6: the request that waited for the reload went to the new server, but with the
    parameters (max_tokens, stop sequences) of the entry it had read before waiting."""
    s = Setup(tmp_path)
    requests = s.send_once_stopping("sent during the stop")
    async def go():
        await s.manager.ensure_ready("m")
        new = fake_config(s.port, model_name="new-name", default_params="{max_new_tokens: 7}")
        await asyncio.wait_for(s.runtime.reload(new), DEADLINE_S)
        response = await asyncio.wait_for(requests[0], DEADLINE_S)
        log = httpx.get(f"http://127.0.0.1:{s.port}/_requests", timeout=5).json()
        await s.runtime.aclose()
        return response, [e["body"] for e in log if e["type"] == "request"]

    response, bodies = asyncio.run(go())
    assert response.error_message is None, response.error_message
    (body,) = [b for b in bodies if b["messages"][-1]["content"] == "sent during the stop"]
    assert (body["model"], body.get("max_tokens")) == ("new-name", 7)


def test_reload_a_start_it_calls_off_continues_on_the_new_server(tmp_path: Path):
    """Regression (#19 item 6): requests waiting on a start that a reload called off got 'the start was
    cancelled'; they wait for the reload and are answered by the new server."""
    s = Setup(tmp_path, model_name="slow-old")

    async def go():
        waiting = [s.ask(f"waiting {i}") for i in range(2)]
        await async_wait_until(lambda: s.manager.server("m").pid is not None, DEADLINE_S, "the old engine spawned")
        old_pid = s.manager.server("m").pid
        await asyncio.wait_for(s.runtime.reload(s.reloaded("new-name")), DEADLINE_S)
        try:
            responses = await asyncio.wait_for(asyncio.gather(*waiting), DEADLINE_S)
            assert [r.error_message for r in responses] == [None, None]
            return old_pid, (s.served_name(), s.prompts_answered())
        finally:
            await s.runtime.aclose()

    old_pid, (name, answered) = asyncio.run(go())
    assert name == "new-name" and {("new-name", "waiting 0"), ("new-name", "waiting 1")} <= set(answered)
    assert not group_alive(old_pid) and s.leftovers() == []


def test_reload_a_server_started_while_the_reload_waited_is_not_left_on_the_old_settings(tmp_path: Path):
    """Regression (#19 item 6): a supervisor made for a model while a reload waited (here for another model's
    answer) was built from the old config and missed by the reload, so it kept running the old settings."""
    port_a, port_b = free_port(), free_port()

    def two_models(name_a: str, name_b: str):
        from LLM.core.config import parse_backends

        yaml = "models:\n" + "".join(
            f"  {m}:\n    base_model: fake.gguf\n    port: {p}\n    model_name: {n}\n    share_server: false\n"
            for m, p, n in (("a", port_a, name_a), ("b", port_b, name_b)))
        return parse_backends(yaml, strict=True)

    config = two_models("a-old", "b-old")
    manager = ServerManager(config, logs_dir=tmp_path / "logs", state_dir=tmp_path / "state", launcher=launcher)
    runtime = Runtime(config, manager)

    async def go():
        await manager.ensure_ready("a")
        httpx.post(f"http://127.0.0.1:{port_a}/_script", timeout=5,
                   json={"replies": [{"chunks": [f"w{i} " for i in range(40)], "delay_s": 0.05}]})
        answer_a = asyncio.ensure_future(ainfer(InferenceConfig(prompt="long", model_id="a"), runtime))
        await async_wait_until(lambda: manager.server("a").busy, DEADLINE_S, "a answering")
        reload = asyncio.ensure_future(runtime.reload(two_models("a-new", "b-new")))
        await asyncio.sleep(0)  # the reload runs up to its first await: waiting for a's answer to finish
        assert not reload.done() and manager.server("a").state is ServerState.READY
        answer_b = await asyncio.wait_for(ainfer(InferenceConfig(prompt="b", model_id="b"), runtime), DEADLINE_S)
        await asyncio.wait_for(reload, DEADLINE_S)
        await asyncio.wait_for(answer_a, DEADLINE_S)
        await manager.ensure_ready("b")
        name_b = httpx.get(f"http://127.0.0.1:{port_b}/v1/models", timeout=5).json()["data"][0]["id"]
        await runtime.aclose()
        return answer_b, name_b

    answer_b, name_b = asyncio.run(go())
    assert answer_b.error_message is None, answer_b.error_message
    assert name_b == "b-new"


def test_shutdown_stops_a_retired_server_whose_reload_was_cancelled(tmp_path: Path):
    """A reload cancelled while its retired server finished an answer (the window closing) left the server
    known to nobody: shutdown stops every retired server that still runs."""
    s = Setup(tmp_path)

    async def go():
        old, answer = await s.cancel_a_reload_while_answering()
        response = await asyncio.wait_for(answer, DEADLINE_S)
        alive_before = pid_alive(old.pid)
        await s.runtime.aclose()
        return response, alive_before, old

    response, alive_before, old = asyncio.run(go())
    assert response.error_message is None and alive_before
    assert old.state is ServerState.RETIRED and s.leftovers() == []


def test_a_request_after_a_cancelled_reload_finishes_the_retirement_first(tmp_path: Path):
    """Review of #19 item 6: after a reload was cancelled mid-retirement, the next request built a successor
    while the retired server still ran on the same port: the successor re-attached to (or collided with) a
    process that shutdown would then stop under it. The retirement is finished first."""
    s = Setup(tmp_path)

    async def go():
        old, answer = await s.cancel_a_reload_while_answering()
        await asyncio.wait_for(answer, DEADLINE_S)
        old_pid = old.pid
        response = await asyncio.wait_for(s.ask("after the cancelled reload"), DEADLINE_S)
        successor = s.manager.server("m")
        seen = (old.state, group_alive(old_pid), successor is not old, successor.owned, successor.pid != old_pid)
        await s.runtime.aclose()
        return response, seen

    response, (old_state, old_alive, replaced, owned, new_process) = asyncio.run(go())
    assert response.error_message is None, response.error_message
    assert old_state is ServerState.RETIRED and not old_alive
    assert replaced and owned and new_process
    assert s.leftovers() == []


def test_retired_is_terminal_and_reached_only_once_stopped():
    assert TRANSITIONS[ServerState.RETIRED] == frozenset()
    assert [s for s, targets in TRANSITIONS.items() if ServerState.RETIRED in targets] == [ServerState.STOPPED]
    assert set(TRANSITIONS) == set(ServerState)


def test_a_retired_supervisor_refuses_to_start(tmp_path: Path):
    from LLM.core.errors import ServerRetired

    s = Setup(tmp_path)

    async def go():
        server = s.manager.server("m")
        await server.retire()
        with pytest.raises(ServerRetired, match="replaced by a config reload"):
            await server.ensure_ready()
        await server.stop()  # a no-op: it holds nothing
        # The manager replaces a supervisor retired outside a reload rather than waiting for ever.
        await s.manager.ensure_ready("m")
        replacement = s.manager.server("m")
        await s.runtime.aclose()
        return server, replacement

    server, replacement = asyncio.run(go())
    assert server.state is ServerState.RETIRED and replacement is not server
    assert s.leftovers() == []
