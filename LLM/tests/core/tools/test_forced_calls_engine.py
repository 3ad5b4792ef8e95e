"""Forced tool calls on the real engine (llama-server, the default model): one call when parallel calls are off,
and every call closed within max_tokens. Only the forced step is under test: each run is closed once it finished
(the calls, the tools and a final answer would add minutes on a loaded 2-core machine, not evidence)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import aclosing
from pathlib import Path

import pytest

from LLM.core.inference import ToolEnabledInferenceConfig, stream_tool_inference
from LLM.core.runtime import Runtime
from LLM.core.tools.loop import StepFinished, ToolStep
from LLM.tests.core.servers.test_engine import Engine
from LLM.tests.core.servers.test_engine import pytestmark as engine_marks

pytestmark = engine_marks


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    e = Engine(tmp_path)
    yield e
    asyncio.run(e.manager().stop_all())  # no orphan engine processes


def forced_steps(engine: Engine, prompts: list[str], **request: object) -> list[ToolStep]:
    """The first (forced) step of a tool run for each prompt, one runtime for all."""

    async def first_step(runtime: Runtime, prompt: str) -> ToolStep:
        cfg = ToolEnabledInferenceConfig(prompt=prompt, model_id="default", enable_tools=True, tool_choice="required",
                                         max_iterations=1, **request)
        async with aclosing(stream_tool_inference(cfg, runtime)) as events:
            async for event in events:
                if isinstance(event, StepFinished):
                    return event.step
        raise AssertionError(f"no step finished for {prompt!r}")

    async def go() -> list[ToolStep]:
        runtime = engine.runtime()
        try:
            return [await first_step(runtime, prompt) for prompt in prompts]
        finally:
            await runtime.aclose()

    return asyncio.run(go())


def test_engine_parallel_tool_calls_false_forces_exactly_one_call(engine: Engine):
    """The default model repeats a forced call until the grammar stops it (three times at most, before): with
    parallel_tool_calls false the grammar admits one call, whatever the prompt."""
    prompts = ["What is 17*23?", "What time is it in Tokyo?", "How much is 45 plus 17?",
               "What is the date today in UTC?", "What is the square root of 144?"]
    steps = forced_steps(engine, prompts, tools=["calculator", "get_current_time"], parallel_tool_calls=False,
                         max_new_tokens=256)
    for prompt, step in zip(prompts, steps):
        assert step.constrained and step.mode == "fallback", prompt
        assert step.request_body["grammar"].startswith("root ::= call\n")
        assert "parallel_tool_calls" not in step.request_body  # no `tools` sent: the grammar does its work
        # One call made (not one kept of several: the grammar allowed no more).
        assert len(step.calls) == 1 and step.dropped_calls == 0, (prompt, step.raw_text)
        assert step.raw_text.count("<tool_call>") == 1, (prompt, step.raw_text)


CALCULATOR_PROMPTS = ["What is 17*23? Use the calculator.", "How much is 45 plus 17?",
                      "What is the square root of 144?", "Compute 2 to the power of 10.", "What is 3.5 times 4?",
                      "Divide 100 by 7.", "What is 12% of 250?", "Add 1234 and 5678.", "What is sin(pi/2)?",
                      "How many seconds are in a day?"]


def test_engine_forced_calls_close_within_a_small_max_tokens(engine: Engine):
    """Regression: with max_new_tokens 64, 2 or 3 of these 10 forced calls ran into max_tokens inside the
    expression (the grammar allowed 200 characters) and no call was made. The grammar now fits the budget."""
    steps = forced_steps(engine, CALCULATOR_PROMPTS, tools=["calculator"], max_new_tokens=64)
    cut = [(p, s.raw_text) for p, s in zip(CALCULATOR_PROMPTS, steps)
           if not s.calls or not s.raw_text.rstrip().endswith("</tool_call>")]
    assert cut == []
    for step in steps:
        assert step.constrained and step.calls[0][0].name == "calculator"
        assert step.completion_tokens is None or step.completion_tokens <= 64
