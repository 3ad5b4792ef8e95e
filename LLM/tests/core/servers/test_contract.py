"""ModelServer's contract, cell by cell: what ensure_ready, stop and retire do from each state (the table in its
docstring), driven against the fake server as the engine so the table cannot drift from the code."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

from LLM.core.errors import LLMError, ServerError, ServerRetired
from LLM.core.servers import ServerState
from LLM.core.servers.process import pid_alive
from LLM.core.servers.state_file import StateFile
from LLM.core.servers.supervisor import ModelServer
from LLM.tests.core.servers.test_servers import fake_config, fake_launcher
from LLM.tests.fakes.handle import async_wait_until, free_port

S = ServerState


class Supervised:
    """A ModelServer of its own (no manager, which keeps RETIRED to itself) on the fake engine, and its events."""

    def __init__(self, tmp_path: Path, *flags: str) -> None:
        self.events: list = []
        self.log = tmp_path / "m.log"
        self.server = ModelServer(fake_config(free_port()).models["m"], fake_launcher(*flags), self.log,
                                  StateFile(tmp_path / "servers.json"), self.events.append)


async def _into(server: ModelServer, state: ServerState) -> asyncio.Task[None] | None:
    """Drive ``server`` into ``state``; for STARTING and STOPPING, the task of the request under way."""
    if state is S.STARTING:
        starter = asyncio.ensure_future(server.ensure_ready())
        await async_wait_until(lambda: server.state is S.STARTING and server.pid is not None, 30, "a start")
        return starter
    if state in (S.READY, S.STOPPING, S.FAILED):
        await server.ensure_ready()
    if state is S.STOPPING:
        stopping = asyncio.ensure_future(server.stop())
        await asyncio.sleep(0)  # the stop runs up to its first await: the process group is being stopped
        return stopping
    if state is S.FAILED:
        os.kill(server.pid, signal.SIGKILL)  # a crash
        await async_wait_until(lambda: server.state is S.FAILED, 30, "the crash to be noticed")
    elif state is S.RETIRED:
        await server.retire()
    return None


async def _ask(server: ModelServer, verb: str) -> LLMError | None:
    try:
        await getattr(server, verb)()
    except LLMError as exc:
        return exc
    return None


def _transitions(events: list, start: str | None = None) -> list[str]:
    """The states passed through after ``start``, without the progress events reported within one state."""
    seen = [start]
    for event in events:
        if seen[-1] != event.state.value:
            seen.append(event.state.value)
    return seen[1:]


# (state, verb, the states it passes through, the error it raises, the process afterwards ("same": the one it
# had; "new": another, live; None: none), and what the request under way gets: the start in STARTING, the stop
# in STOPPING).
CONTRACT = [
    pytest.param(S.STOPPED, "ensure_ready", ["starting", "ready"], None, "new", None, id="stopped-ensure_ready"),
    pytest.param(S.STOPPED, "stop", [], None, None, None, id="stopped-stop"),
    pytest.param(S.STOPPED, "retire", ["retired"], None, None, None, id="stopped-retire"),
    pytest.param(S.STARTING, "ensure_ready", ["ready"], None, "same", None, id="starting-ensure_ready"),
    pytest.param(S.STARTING, "stop", ["failed", "stopped"], None, None, ServerError, id="starting-stop"),
    pytest.param(S.STARTING, "retire", ["failed", "stopped", "retired"], None, None, ServerRetired,
                 id="starting-retire"),
    pytest.param(S.READY, "ensure_ready", [], None, "same", None, id="ready-ensure_ready"),
    pytest.param(S.READY, "stop", ["stopping", "stopped"], None, None, None, id="ready-stop"),
    pytest.param(S.READY, "retire", ["stopping", "stopped", "retired"], None, None, None, id="ready-retire"),
    pytest.param(S.STOPPING, "ensure_ready", ["stopped", "starting", "ready"], None, "new", None,
                 id="stopping-ensure_ready"),
    pytest.param(S.STOPPING, "stop", ["stopped"], None, None, None, id="stopping-stop"),
    pytest.param(S.STOPPING, "retire", ["stopped", "retired"], None, None, None, id="stopping-retire"),
    pytest.param(S.FAILED, "ensure_ready", ["starting", "ready"], None, "new", None, id="failed-ensure_ready"),
    pytest.param(S.FAILED, "stop", ["stopped"], None, None, None, id="failed-stop"),
    pytest.param(S.FAILED, "retire", ["stopped", "retired"], None, None, None, id="failed-retire"),
    pytest.param(S.RETIRED, "ensure_ready", [], ServerRetired, None, None, id="retired-ensure_ready"),
    pytest.param(S.RETIRED, "stop", [], None, None, None, id="retired-stop"),
    pytest.param(S.RETIRED, "retire", [], None, None, None, id="retired-retire"),
]


@pytest.mark.parametrize("state, verb, passes, raises, process, pending_gets", CONTRACT)
def test_contract_each_request_from_each_state(tmp_path: Path, state, verb, passes, raises, process,
                                               pending_gets):
    # A start that takes a second: long enough to be caught in STARTING (the wait is on the state, not a clock).
    h = Supervised(tmp_path, *(("--startup-delay", "1") if state is S.STARTING else ()))

    async def go():
        server = h.server
        pending = await _into(server, state)
        assert server.state is state  # the precondition, checked with no await before the request
        before, mark = server.pid, len(h.events)
        error = await _ask(server, verb)
        pending_error = None
        if pending is not None:
            pending_error = (await asyncio.gather(pending, return_exceptions=True))[0]
        after, events = server.pid, h.events[mark:]
        await server.stop(wait_for_requests=False)  # leave no process behind
        return error, pending_error, before, after, events

    error, pending_error, before, after, events = asyncio.run(go())
    assert _transitions(events, state.value) == passes
    assert type(error) is raises if raises else error is None
    assert type(pending_error) is pending_gets if pending_gets else pending_error is None
    if process is None:
        assert after is None and (before is None or not pid_alive(before))
    elif process == "same":
        assert after == before and after is not None
    else:
        assert after is not None and after != before
    if state is S.STARTING and verb == "ensure_ready":  # joined: one process for both callers
        assert h.log.read_text().count("starting:") == 1


def test_contract_stop_from_stopped_stops_the_server_another_supervisor_of_ours_runs(tmp_path: Path):
    """The STOPPED cell's other half: a server of this model that another process of ours started (here a second
    supervisor on the same state file) is found by its record and stopped."""
    h = Supervised(tmp_path)
    other = ModelServer(h.server.entry, fake_launcher(), h.log, StateFile(tmp_path / "servers.json"), lambda _: None)

    async def go():
        await other.ensure_ready()
        pid = other.pid
        assert h.server.state is S.STOPPED
        await h.server.stop()
        return pid

    pid = asyncio.run(go())
    assert _transitions(h.events) == ["stopping", "stopped"] and not pid_alive(pid) and h.server.pid is None


def test_contract_stop_from_ready_waits_for_the_answers_in_flight(tmp_path: Path):
    h = Supervised(tmp_path)

    async def go():
        server = h.server
        await server.ensure_ready()
        async with server.in_use():
            stopping = asyncio.ensure_future(server.stop())
            await asyncio.sleep(0)  # one step: a stop that did not wait would be STOPPING by now
            waited = (server.state, stopping.done())
        await stopping
        return waited

    assert asyncio.run(go()) == (S.READY, False)
    assert _transitions(h.events)[-2:] == ["stopping", "stopped"]


def test_contract_a_retiring_ready_server_still_serves_then_refuses_once_stopped(tmp_path: Path):
    """While a retire waits for the answers in flight, ensure_ready on the READY server returns at once."""
    h = Supervised(tmp_path)

    async def go():
        server = h.server
        await server.ensure_ready()
        async with server.in_use():
            retiring = asyncio.ensure_future(server.retire())
            await asyncio.sleep(0)
            assert server.retiring and server.state is S.READY
            await server.ensure_ready()  # serves: no ServerRetired while READY
        await retiring
        return await _ask(server, "ensure_ready"), server.state

    error, state = asyncio.run(go())
    assert isinstance(error, ServerRetired) and state is S.RETIRED


def test_contract_a_cancelled_stop_does_not_break_the_next_start(tmp_path: Path):
    """Regression (#20, found writing this contract): a stop whose caller was cancelled while the process group
    was being stopped (a model switch called off, the window closing) left the server STOPPING with no stop
    under way; the next ensure_ready raised ServerError (IllegalTransition stopping -> starting) and ended
    FAILED. The stop now finishes whoever waits for it, and ensure_ready starts the server again."""
    h = Supervised(tmp_path)

    async def go():
        server = h.server
        await server.ensure_ready()
        stopping = asyncio.ensure_future(server.stop())
        await asyncio.sleep(0)
        stopping.cancel()
        await asyncio.gather(stopping, return_exceptions=True)
        try:
            await server.ensure_ready()
            return server.state
        finally:
            await server.stop(wait_for_requests=False)

    assert asyncio.run(go()) is S.READY


def test_contract_a_stop_that_waited_while_a_retire_finished_leaves_the_successor_alone(tmp_path: Path):
    """Regression (#20, seen in the soak's log under make bench): a stop waiting for the answers in flight while
    a config reload retired the server (retire(wait_for_requests=False)) went on afterwards: it read the pid
    recorded under the model's id, which by then may be the successor's server, stopped it, and raised
    IllegalTransition (retired -> stopped) into the window's unload task."""
    h = Supervised(tmp_path)
    successor = Supervised(tmp_path)  # the reload's new supervisor of the same model, the same state file

    async def go():
        server = h.server
        await server.ensure_ready()
        async with server.in_use():
            stopping = asyncio.ensure_future(server.stop())  # the user's unload, waiting for the answer
            await asyncio.sleep(0)
            await server.retire(wait_for_requests=False)  # the reload does not wait
            await successor.server.ensure_ready()
        await stopping  # the answer ended: the waiting stop resumes
        alive = pid_alive(successor.server.pid) and successor.server.state is S.READY
        await successor.server.stop()
        return server.state, alive

    assert asyncio.run(go()) == (S.RETIRED, True)
