"""Regex checks under a deadline (LLM.core.tools.safe_regex): answers as ``re`` gives them, a catastrophic pattern
stopped with a typed outcome, and the event loop left running while a check waits."""

from __future__ import annotations

import asyncio
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

from LLM.core.tools import Tool, ToolRegistry
from LLM.core.tools.canned import canned_tool_from_dict
from LLM.core.tools.json_schema import value_problems
from LLM.core.tools.safe_regex import IN_PROCESS_STEPS, Outcome, search_all, worst_case_steps

CATASTROPHIC = r"^(\w+\s?)*$"
HANG_S = 120  # only catches a hang: a check is stopped after its own deadline, seconds at most


def within_deadline(fn, *args):
    """Run ``fn`` in a thread and fail (instead of hanging the suite) if it does not return in HANG_S."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(fn, *args).result(timeout=HANG_S)


def test_safe_regex_stops_a_catastrophic_pattern_with_a_timed_out_outcome():
    """Regression (#19 item 8): ``^(\\w+\\s?)*$`` against 30 characters backtracks for about a minute, holding the
    GIL; the check is stopped at its deadline and says so."""
    assert within_deadline(search_all, [(CATASTROPHIC, "a" * 30 + "!")], 0.5) == [Outcome.TIMED_OUT]


@pytest.mark.parametrize("pattern, text, expected", [
    pytest.param(r"^[A-Z]{3}$", "OSL", Outcome.MATCHED, id="in-process-match"),
    pytest.param(r"^[A-Z]{3}$", "osl", Outcome.NOT_MATCHED, id="in-process-no-match"),
    pytest.param(r"\d{4}-\d{2}-\d{2}", "due 2024-01-15!", Outcome.MATCHED, id="searched-not-anchored"),
    pytest.param(CATASTROPHIC, "hello world", Outcome.MATCHED, id="child-match"),
    pytest.param(CATASTROPHIC, "hello, world", Outcome.NOT_MATCHED, id="child-no-match"),
    pytest.param(r"[a-z]+$", "x" * 3000 + "!", Outcome.NOT_MATCHED, id="long-value-goes-to-the-child"),
    pytest.param(r"(\w)\1", "book", Outcome.MATCHED, id="backreference-goes-to-the-child"),
    pytest.param("(", "x", Outcome.INVALID, id="invalid-pattern"),
    pytest.param(r"\p{L}+", "x", Outcome.INVALID, id="ecma-only-syntax"),
])
def test_safe_regex_answers_as_re_does(pattern: str, text: str, expected: Outcome):
    assert within_deadline(search_all, [(pattern, text)]) == [expected]


def test_safe_regex_checks_before_a_stopped_one_keep_their_answers():
    checks = [(r"(\w)\1", "book"), (r"(\w)\1", "word"), (CATASTROPHIC, "a" * 30 + "!")]
    assert within_deadline(search_all, checks) == [Outcome.MATCHED, Outcome.NOT_MATCHED, Outcome.TIMED_OUT]


@pytest.mark.parametrize("interpreter", [
    pytest.param("/nonexistent/python", id="cannot-start"),
    pytest.param("/bin/false", id="dies-at-once"),
])
def test_safe_regex_a_check_that_could_not_run_is_failed_not_timed_out(monkeypatch, interpreter):
    """Review of #19 item 8: a child that could not start raised OSError out of the tool loop, and one that
    died was reported as a catastrophic pattern that "took longer than 5 s"."""
    monkeypatch.setattr(sys, "executable", interpreter)  # a frozen app, a broken install
    assert within_deadline(search_all, [(CATASTROPHIC, "a" * 30 + "!")]) == [Outcome.FAILED]
    problems = value_problems({"type": "string", "pattern": CATASTROPHIC}, "a" * 30 + "!")
    assert len(problems) == 1 and "could not run" in problems[0][1]


@pytest.mark.parametrize("pattern, length, proven", [
    pytest.param(r"^[A-Z]{3}$", 3, True, id="fixed-shape"),
    pytest.param(r"^\d{4}-\d{2}-\d{2}$", 10_000, True, id="fixed-shape-long-value"),
    pytest.param(r"^[a-z_]+$", 200, True, id="one-repeat-anchored"),
    pytest.param(r"^(https?://)?[\w.-]+$", 80, True, id="optional-group"),
    pytest.param(r"(?=\d)\d{2,5}", 40, True, id="lookahead"),
    pytest.param(r"^[a-z_]+$", 100_000, False, id="one-repeat-huge-value"),
    pytest.param(r"\w+\s?\w+$", 1000, False, id="two-overlapping-repeats"),
    pytest.param(CATASTROPHIC, 5, True, id="nested-repeat-tiny-value"),
    pytest.param(CATASTROPHIC, 30, False, id="nested-repeat"),
    pytest.param(r"(a|a)*$", 30, False, id="overlapping-alternatives-repeated"),
    pytest.param(r"(\w)\1", 2, False, id="backreference"),
])
def test_safe_regex_runs_in_process_only_what_it_proves_cheap(pattern: str, length: int, proven: bool):
    steps = worst_case_steps(pattern, length)
    assert (steps is not None and steps <= IN_PROCESS_STEPS) is proven


def test_safe_regex_catastrophic_pattern_leaves_the_event_loop_running():
    """Regression (#19 item 8): a tool without code whose ``pattern`` backtracks for a minute froze the event loop
    past the tool's timeout; now the call fails with a clear error while other tasks keep running."""
    definition = canned_tool_from_dict({
        "name": "greet", "description": "Greets someone.",
        "parameters": {"type": "object", "properties": {"name": {"type": "string", "pattern": CATASTROPHIC}},
                       "required": ["name"]},
        "reply": {"template": "Hello {name}."}}, source="test")
    registry = ToolRegistry([Tool.from_canned(definition)])

    async def go():
        call = asyncio.create_task(registry.execute("greet", {"name": "a" * 30 + "!"}))
        ticks = 0  # loop turns that other work got while the call was still being checked
        while not call.done():
            await asyncio.sleep(0.01)
            ticks += not call.done()
        return await asyncio.wait_for(call, HANG_S), ticks

    result, ticks = asyncio.run(asyncio.wait_for(go(), HANG_S))
    assert not result.ok
    assert "argument 'name'" in result.error and "took longer than" in result.error
    assert "catastrophic" in result.error
    assert ticks > 0
    assert asyncio.run(registry.execute("greet", {"name": "Ada"})).output == "Hello Ada."
