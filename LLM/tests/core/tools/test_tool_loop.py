"""The tool loop against the fake server: what it runs, what it sends back, and its guards."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from LLM.core.errors import BackendStatusError, ContextOverflowError
from LLM.core.tools.builtin import build_default_registry
from LLM.core.inference import ToolEnabledInferenceConfig, arun_tool_inference, stream_tool_inference
from LLM.core.runtime import Runtime
from LLM.core.tools.loop import LoopFinished, LoopNotice, StepStarted, ToolCallEvent, ToolResultEvent
from LLM.core.tools import tool
from LLM.tests.conftest import openai_config
from LLM.tests.fakes.handle import FakeServerHandle, served
from LLM.tests.fakes.replies import CALL_TEXT, LLAMA_CONTEXT_ERROR, VLLM_CONTEXT_ERROR

CALC = {"name": "calculator", "arguments": {"expression": "2+3"}}
PROMPT = "Use tools"


@tool(timeout_s=0.3)
async def hangs() -> str:
    """Never returns."""
    await asyncio.Event().wait()
    return "unreachable"


@tool
def explodes(reason: str) -> str:
    """Always fails."""
    raise RuntimeError(f"kaboom: {reason}")


@tool
def dump(size: int) -> str:
    """Return a long text.

    Args:
        size: How many characters.
    """
    return "".join(f"line {i:06d}\n" for i in range(size // 12 + 1))[:size]


def make_runtime(server: FakeServerHandle, tmp_path: Path, mode: str = "native", **config: Any) -> Runtime:
    """A runtime on the fake server; ``config`` adds keys to the model's entry (context_size, ...)."""
    registry = build_default_registry(tmp_path)
    registry.register(hangs)
    registry.register(explodes)
    registry.register(dump)
    return Runtime(openai_config(server.url, tools=mode, **config), tools=registry, workspace=tmp_path)


def run_loop(server, tmp_path, mode="native", before_call=None, config: dict | None = None, **cfg):
    async def go():
        runtime = make_runtime(server, tmp_path, mode, **(config or {}))
        events = []
        try:
            request = ToolEnabledInferenceConfig(prompt=PROMPT, model_id="fake", enable_tools=True, **cfg)
            async for event in stream_tool_inference(request, runtime, before_call):
                events.append(event)
            return events, runtime
        finally:
            await runtime.aclose()

    events, runtime = asyncio.run(go())
    assert isinstance(events[-1], LoopFinished)
    return events[-1].result, events, runtime


def bodies(server: FakeServerHandle) -> list[dict]:
    return [r["body"] for r in server.requests()]


def test_tool_loop_native_call_result_goes_back_with_its_id(fake_server, tmp_path):
    fake_server.script({"tool_calls": [CALC]}, {"text": "The answer is 5."})
    result, events, _ = run_loop(fake_server, tmp_path, tools=["calculator"])
    assert result.final_text == "The answer is 5." and result.stopped_by is None
    assert [type(e).__name__ for e in events if isinstance(e, (ToolCallEvent, ToolResultEvent))] == [
        "ToolCallEvent", "ToolResultEvent"]
    call_event = next(e for e in events if isinstance(e, ToolCallEvent))
    assert call_event.source == "native" and call_event.call.arguments == {"expression": "2+3"}
    first, second = bodies(fake_server)
    assert [t["function"]["name"] for t in first["tools"]] == ["calculator"]
    assistant, tool_msg = second["messages"][-2:]
    assert assistant["tool_calls"][0]["id"] == "call_0_0"
    assert tool_msg == {"role": "tool", "tool_call_id": "call_0_0", "name": "calculator", "content": "5"}
    assert result.steps[0].results[0].output == "5"


def test_tool_loop_fallback_parses_text_calls_and_hides_markup(fake_server, tmp_path):
    text = 'Let me compute.\n<tool_call>\n{"name": "calculator", "arguments": {"expression": "6*7"}}\n</tool_call>'
    fake_server.script({"chunks": [text[:20], text[20:45], text[45:]]}, {"text": "It is 42."})
    result, events, _ = run_loop(fake_server, tmp_path, mode="fallback", tools=["calculator"])
    first, second = bodies(fake_server)
    assert "tools" not in first and "<tools>" in first["messages"][0]["content"]
    assert second["messages"][-1] == {"role": "user", "content": "<tool_response>\n42\n</tool_response>"}
    assert "<tool_call>" in second["messages"][-2]["content"]  # the model sees its own call
    streamed = "".join(e.text for e in events if type(e).__name__ == "TextDelta")
    assert "<tool_call" not in streamed and "Let me compute." in streamed
    assert result.steps[0].calls[0][1] == "fallback" and result.final_text == "It is 42."


def test_tool_loop_two_calls_in_one_turn_run_in_order(fake_server, tmp_path):
    fake_server.script(
        {"tool_calls": [CALC, {"name": "get_current_time", "arguments": {"timezone": "UTC"}}]}, {"text": "done"}
    )
    result, _, _ = run_loop(fake_server, tmp_path)
    step = result.steps[0]
    assert [c.name for c, _ in step.calls] == ["calculator", "get_current_time"]
    assert all(r.ok for r in step.results)
    tool_msgs = [m for m in bodies(fake_server)[1]["messages"] if m["role"] == "tool"]
    assert [m["tool_call_id"] for m in tool_msgs] == ["call_0_0", "call_0_1"]


@pytest.mark.parametrize(
    "call, expected",
    [
        pytest.param({"name": "explodes", "arguments": {"reason": "x"}}, "RuntimeError: kaboom: x", id="raises"),
        pytest.param({"name": "hangs", "arguments": {}}, "timed out", id="times-out"),
        pytest.param({"name": "calculator", "arguments": {"expr": "1"}}, "unknown argument 'expr'", id="invalid-args"),
        pytest.param({"name": "no_such_tool", "arguments": {}}, "unknown or disabled tool 'no_such_tool'", id="unknown"),
    ],
)
def test_tool_loop_failures_become_error_results(fake_server, tmp_path, call, expected):
    fake_server.script({"tool_calls": [call]}, {"text": "recovered"})
    result, _, _ = run_loop(fake_server, tmp_path, tools=["calculator", "hangs", "explodes"])
    outcome = result.steps[0].results[0]
    assert not outcome.ok and expected in outcome.error
    assert expected in bodies(fake_server)[1]["messages"][-1]["content"]
    assert result.final_text == "recovered"


def test_tool_loop_repeated_call_is_stopped(fake_server, tmp_path):
    fake_server.script(*[{"tool_calls": [CALC]}] * 3, {"text": "final without tools"})
    result, events, _ = run_loop(fake_server, tmp_path, tools=["calculator"])
    assert result.stopped_by == "repeated_call"
    assert any(isinstance(e, LoopNotice) and e.kind == "repeated_call" for e in events)
    last = bodies(fake_server)[-1]
    assert len(bodies(fake_server)) == 4 and "tools" not in last
    assert result.final_text == "final without tools"


def test_tool_loop_max_iterations_then_one_answer_without_tools(fake_server, tmp_path):
    fake_server.script(
        {"tool_calls": [{"name": "calculator", "arguments": {"expression": "1+1"}}]},
        {"tool_calls": [{"name": "calculator", "arguments": {"expression": "2+2"}}]},
        {"text": "best effort answer"},
    )
    result, _, _ = run_loop(fake_server, tmp_path, tools=["calculator"], max_iterations=2)
    assert result.stopped_by == "max_iterations" and result.final_text == "best effort answer"
    assert "tools" not in bodies(fake_server)[-1] and len(result.steps) == 3


def test_tool_loop_auto_mode_falls_back_when_server_rejects_tools(fake_server, tmp_path):
    call_text = '<tool_call>{"name": "calculator", "arguments": {"expression": "3*3"}}</tool_call>'
    fake_server.script({"reject_tools_status": 400}, {"text": call_text}, {"text": "nine"})
    result, events, runtime = run_loop(fake_server, tmp_path, mode="auto", tools=["calculator"])
    sent = bodies(fake_server)
    assert "tools" in sent[0] and "tools" not in sent[1] and "<tools>" in sent[1]["messages"][0]["content"]
    assert any(isinstance(e, LoopNotice) and e.kind == "fallback" for e in events)
    assert runtime.learned_tool_modes == {"fake": "fallback"}
    assert result.final_text == "nine"


def test_tool_loop_auto_mode_parses_text_when_no_native_calls(fake_server, tmp_path):
    call_text = '<tool_call>{"name": "calculator", "arguments": {"expression": "1+2"}}</tool_call>'
    fake_server.script({"text": call_text}, {"text": "three"})
    result, _, _ = run_loop(fake_server, tmp_path, mode="auto", tools=["calculator"])
    assert "tools" in bodies(fake_server)[0]
    assert result.steps[0].calls[0][1] == "fallback" and result.final_text == "three"


def test_tool_loop_empty_200_body_retries_without_streaming(fake_server, tmp_path):
    """Regression: llama-cpp-python chatml-function-calling answers a streamed tools request with an empty 200."""
    fake_server.script({"empty_body": True}, {"tool_calls": [CALC]}, {"text": "five"})
    result, events, _ = run_loop(fake_server, tmp_path, mode="auto", tools=["calculator"])
    sent = bodies(fake_server)
    assert sent[0]["stream"] is True and sent[1]["stream"] is False
    assert any(isinstance(e, LoopNotice) and e.kind == "empty_response" for e in events)
    assert result.final_text == "five" and result.steps[0].results[0].output == "5"


def test_tool_loop_empty_body_twice_switches_to_fallback(fake_server, tmp_path):
    fake_server.script({"empty_body": True}, {"empty_body": True}, {"text": "plain answer"})
    result, _, runtime = run_loop(fake_server, tmp_path, mode="native", tools=["calculator"])
    assert "tools" not in bodies(fake_server)[2] and result.final_text == "plain answer"
    assert runtime.learned_tool_modes["fake"] == "fallback"


def test_tool_loop_approval_hook_deny_and_allow(fake_server, tmp_path):
    write = {"name": "write_file", "arguments": {"path": "notes.txt", "content": "hi"}}
    asked = []
    fake_server.script({"tool_calls": [write]}, {"text": "ok"})
    result, _, _ = run_loop(fake_server, tmp_path, tools=["write_file"], before_call=lambda c, t: asked.append(c.name))
    assert asked == ["write_file"] and "denied" in result.steps[0].results[0].error
    assert not (tmp_path / "notes.txt").exists()

    async def allow(call, tool):
        return True

    fake_server.script({"tool_calls": [write]}, {"text": "ok"})
    result, _, _ = run_loop(fake_server, tmp_path, tools=["write_file"], before_call=allow)
    assert result.steps[0].results[0].ok and (tmp_path / "notes.txt").read_text() == "hi"


def test_tool_loop_cancel_mid_step_closes_the_stream(fake_server, tmp_path):
    fake_server.script({"tool_calls": [CALC]}, {"text": "slow " * 400, "delay_s": 0.02})

    async def go():
        runtime = make_runtime(fake_server, tmp_path)
        request = ToolEnabledInferenceConfig(prompt="x", model_id="fake", enable_tools=True, tools=["calculator"])
        seen_second_step = asyncio.Event()

        async def consume():
            async for event in stream_tool_inference(request, runtime):
                if isinstance(event, StepStarted) and event.iteration == 2:
                    seen_second_step.set()

        task = asyncio.ensure_future(consume())
        await asyncio.wait_for(seen_second_step.wait(), 10)
        await asyncio.sleep(0.1)  # let some of the slow answer stream
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await runtime.aclose()

    asyncio.run(go())
    assert fake_server.wait_for_event("disconnect")["after_chunks"] < 400


def test_tool_loop_unknown_tool_name_in_request_is_a_typed_error(fake_server, tmp_path):
    from LLM.core.errors import ToolError

    async def go():
        runtime = make_runtime(fake_server, tmp_path)
        try:
            request = ToolEnabledInferenceConfig(prompt="x", model_id="fake", enable_tools=True, tools=["nope"])
            await arun_tool_inference(request, runtime)
        finally:
            await runtime.aclose()

    with pytest.raises(ToolError, match="nope"):
        asyncio.run(go())


@pytest.fixture
def llama_like_server():
    """A fake that answers /props like llama-server with a template that cannot render tools (the default model)."""
    yield from served("--props", "no-tools")


def test_tool_loop_native_tool_choice_required_then_auto(fake_server: FakeServerHandle, tmp_path: Path):
    """A forced call is asked for once: after it is made, the next step lets the model answer."""
    fake_server.script({"tool_calls": [CALC]}, {"text": "5"})
    result, events, _ = run_loop(fake_server, tmp_path, tools=["calculator"], tool_choice="required")
    first, second = bodies(fake_server)
    assert first["tool_choice"] == "required" and "tool_choice" not in second
    assert [e.tool_choice for e in events if isinstance(e, StepStarted)] == ["required", "auto"]
    assert result.final_text == "5"


def test_tool_loop_native_tool_choice_names_one_function(fake_server: FakeServerHandle, tmp_path: Path):
    fake_server.script({"tool_calls": [CALC]}, {"text": "done"})
    run_loop(fake_server, tmp_path, tools=["calculator", "get_current_time"], tool_choice="calculator")
    assert bodies(fake_server)[0]["tool_choice"] == {"type": "function", "function": {"name": "calculator"}}


def test_tool_loop_fallback_forced_call_is_held_to_a_grammar_on_llama_server(llama_like_server, tmp_path: Path):
    call = '<tool_call>\n{"name": "calculator", "arguments": {"expression": "2+3"}}\n</tool_call>'
    llama_like_server.script({"text": call}, {"text": "It is 5."})
    result, events, _ = run_loop(llama_like_server, tmp_path, mode="fallback", tools=["calculator"],
                                 tool_choice="calculator")
    first, second = bodies(llama_like_server)
    assert first["grammar"].startswith("root ::= call\n") and "call-calculator ::=" in first["grammar"]
    assert "grammar" not in second
    assert "tools" not in first  # fallback: the tool list is in the system prompt
    assert [(e.tool_choice, e.constrained) for e in events if isinstance(e, StepStarted)] == [
        ("calculator", True), ("auto", False)]
    assert result.steps[0].results[0].output == "5" and result.final_text == "It is 5."


def test_tool_loop_forced_call_records_which_strings_its_grammar_capped(llama_like_server, tmp_path: Path):
    """Regression (#19, forced calls): a grammar-forced call caps strings without maxLength at 200 characters;
    the step says so (the window shows it on the tool card and in the inspector), and only that step."""
    call = '<tool_call>\n{"name": "calculator", "arguments": {"expression": "2+3"}}\n</tool_call>'
    llama_like_server.script({"text": call}, {"text": "It is 5."})
    result, _, _ = run_loop(llama_like_server, tmp_path, mode="fallback", tools=["calculator"],
                            tool_choice="required", max_new_tokens=4096)  # room for 3 calls of 200 characters
    assert [s.constraint_note for s in result.steps] == [
        "forced call: strings without maxLength capped at 200 characters (calculator.expression)", ""]


def test_tool_loop_fallback_forced_call_without_grammar_support_says_so(fake_server: FakeServerHandle,
                                                                        tmp_path: Path):
    fake_server.script({"text": "no call"})
    result, events, _ = run_loop(fake_server, tmp_path, mode="fallback", tools=["calculator"],
                                 tool_choice="required")
    assert "grammar" not in bodies(fake_server)[0]
    assert [n.kind for n in result.notices] == ["unconstrained"]


def test_tool_loop_fallback_tool_choice_none_sends_no_tool_prompt(fake_server: FakeServerHandle, tmp_path: Path):
    call = '<tool_call>\n{"name": "calculator", "arguments": {"expression": "2+3"}}\n</tool_call>'
    fake_server.script({"text": call})
    result, _, _ = run_loop(fake_server, tmp_path, mode="fallback", tools=["calculator"], tool_choice="none")
    system = bodies(fake_server)[0]["messages"][0]
    assert "<tools>" not in str(system.get("content")) and not result.steps[0].calls


def test_tool_loop_tool_choice_must_name_an_enabled_tool(fake_server: FakeServerHandle, tmp_path: Path):
    from LLM.core.errors import ConfigError

    with pytest.raises(ConfigError, match="tool_choice: 'nope' is not one of the enabled tools"):
        run_loop(fake_server, tmp_path, tools=["calculator"], tool_choice="nope")


def test_tool_loop_auto_mode_follows_the_engine_capabilities(llama_like_server, tmp_path: Path):
    """llama-server silently drops `tools` when the template cannot render them: auto goes to the text fallback."""
    llama_like_server.script({"text": "plain answer"})
    result, events, _ = run_loop(llama_like_server, tmp_path, mode="auto", tools=["calculator"])
    body = bodies(llama_like_server)[0]
    assert "tools" not in body and "<tools>" in body["messages"][0]["content"]
    assert [n.kind for n in result.notices] == ["fallback"]
    assert [e.mode for e in events if isinstance(e, StepStarted)] == ["fallback"]


@pytest.mark.parametrize(("declared", "mode"), [(False, "fallback"), (True, "auto")], ids=["no-tools", "tools"])
def test_tool_loop_auto_mode_follows_what_the_yaml_declares(fake_server, tmp_path: Path, declared, mode):
    """The one capabilities answer drives auto mode: `capabilities: {tools: false}` in the entry goes to text
    calls before any request, and says why; declared tools are asked for natively."""
    fake_server.script({"text": "plain answer"})
    result, events, _ = run_loop(fake_server, tmp_path, mode="auto", tools=["calculator"],
                                 config={"capabilities": {"tools": declared}})
    assert [e.mode for e in events if isinstance(e, StepStarted)] == [mode]
    assert ("tools" in bodies(fake_server)[0]) is declared
    if not declared:
        assert [n.message for n in result.notices] == [
            "the model cannot take native tool calls (its yaml entry says so, 100% sure); using text tool calls "
            "(fallback mode)"]


EARLIER_TURNS = [
    {"role": "user", "content": "What is 2+3?"},
    {"role": "assistant", "content": None, "tool_calls": [
        {"id": "c9", "type": "function", "function": {"name": "calculator", "arguments": '{"expression": "2+3"}'}}]},
    {"role": "tool", "tool_call_id": "c9", "name": "calculator", "content": "5"},
    {"role": "assistant", "content": "It is 5."},
]


@pytest.mark.parametrize("mode, native_kept", [("native", True), ("fallback", False)])
def test_tool_loop_earlier_tool_turns_go_back_in_the_form_the_mode_sends(fake_server, tmp_path, mode, native_kept):
    """A saved tool chat's calls and results go back: natively when tools are sent, else as text."""
    fake_server.script({"text": "You asked about 2+3."})
    run_loop(fake_server, tmp_path, mode, messages=EARLIER_TURNS)  # run_loop's prompt is the new question
    sent = [m for m in bodies(fake_server)[0]["messages"] if m["role"] != "system"]
    roles = [m["role"] for m in sent]
    if native_kept:
        assert roles == ["user", "assistant", "tool", "assistant", "user"]
        assert sent[1]["tool_calls"][0]["id"] == "c9" and sent[2]["tool_call_id"] == "c9"
    else:
        assert roles == ["user", "assistant", "user", "assistant", "user"]
        assert "<tool_call>" in sent[1]["content"] and "calculator" in sent[1]["content"]
        assert sent[2]["content"] == "<tool_response>\n5\n</tool_response>"
        assert not any("tool_calls" in m for m in sent)


# --- reasoning the prompt opened: a call drafted there is not run ---------------------------


@pytest.fixture
def thinking_server():
    """A llama-server-like fake whose chat template ends the generation prompt with ``<think>\\n`` (QwQ)."""
    yield from served("--props", "tools", "--generation-prompt", "<think>\n")


@pytest.fixture
def plain_llama_server():
    """A llama-server-like fake whose template does not open reasoning."""
    yield from served("--props", "tools", "--generation-prompt", "")


DRAFT_THEN_ANSWER = f"Let me think. Maybe {CALL_TEXT} but no, I know it.</think>The answer is 42."


@pytest.mark.parametrize("mode", ["fallback", "auto"])
def test_tool_loop_call_drafted_in_reasoning_is_not_run_when_the_prompt_opens_think(thinking_server, tmp_path, mode):
    """Regression (tool path fixes, bug 1): a call drafted inside reasoning was run when the prompt itself opened
    ``<think>``: QwQ-style templates end the prompt with <think>, so the raw text starts inside reasoning."""
    thinking_server.script({"text": DRAFT_THEN_ANSWER, "n_chunks": 9})
    result, events, _ = run_loop(thinking_server, tmp_path, mode, tools=["calculator"])
    assert [step.calls for step in result.steps] == [[]]
    assert len(bodies(thinking_server)) == 1
    assert result.final_text == "The answer is 42."
    assert "Maybe" in result.steps[0].reasoning and "Let me think" not in result.final_text


def test_tool_loop_text_before_a_lone_close_is_reasoning_without_knowing_the_prompt(fake_server, tmp_path):
    """Regression (tool path fixes, bug 1, second half): no /apply-template to ask, yet a lone </think> still makes
    the text before it reasoning, so the call drafted there is not run."""
    fake_server.script({"text": DRAFT_THEN_ANSWER, "n_chunks": 7})
    result, _, _ = run_loop(fake_server, tmp_path, "fallback", tools=["calculator"])
    assert result.steps[0].calls == [] and len(bodies(fake_server)) == 1
    assert result.final_text == "The answer is 42."


def test_tool_loop_text_before_a_lone_close_is_reasoning_when_the_prompt_does_not_open_it(plain_llama_server,
                                                                                           tmp_path):
    """Regression (tool path fixes, bug 1): a call drafted before a lone </think> is not run when the prompt is
    known not to open reasoning either."""
    plain_llama_server.script({"text": DRAFT_THEN_ANSWER, "n_chunks": 5})
    result, _, _ = run_loop(plain_llama_server, tmp_path, "fallback", tools=["calculator"])
    assert result.steps[0].calls == [] and len(bodies(plain_llama_server)) == 1
    assert result.final_text.endswith("The answer is 42.")


def test_tool_loop_server_split_reasoning_then_a_real_call_runs(thinking_server, tmp_path):
    """Regression (tool path fixes, bug 1): the fix must not void real calls. llama-server itself moves the
    reasoning to reasoning_content (its default): the content is the answer, and its call runs."""
    thinking_server.script({"reasoning": "I should compute it.", "text": CALL_TEXT}, {"text": "It is 42."})
    result, _, _ = run_loop(thinking_server, tmp_path, "fallback", tools=["calculator"])
    assert [call.name for call, _ in result.steps[0].calls] == ["calculator"]
    assert result.steps[0].results[0].output == "42" and result.final_text == "It is 42."


def test_tool_loop_server_consumed_an_empty_reasoning_then_a_real_call_runs(thinking_server, tmp_path):
    """Regression (tool path fixes, bug 1): the prompt opened <think>, the model closed it at once and the server
    took the tag away: no reasoning arrives, and the content (with its call) is still the answer, not reasoning."""
    thinking_server.script({"text": "Computing. " + CALL_TEXT}, {"text": "It is 42."})
    result, _, _ = run_loop(thinking_server, tmp_path, "fallback", tools=["calculator"])
    assert [call.name for call, _ in result.steps[0].calls] == ["calculator"]
    assert result.final_text == "It is 42."


def test_tool_loop_thinking_cut_off_by_max_tokens_runs_no_call(thinking_server, tmp_path):
    """Regression (tool path fixes, bug 1): raw output that ends inside the reasoning the prompt opened
    (finish_reason length) is all reasoning, and the call drafted in it is not run."""
    thinking_server.script({"text": f"Let me try {CALL_TEXT} and then", "finish_reason": "length"})
    result, _, _ = run_loop(thinking_server, tmp_path, "fallback", tools=["calculator"])
    assert result.steps[0].calls == [] and result.final_text == ""
    assert "Let me try" in result.steps[0].reasoning


# --- auto mode and 4xx answers ---------------------------------------------------------------


@pytest.mark.parametrize("body", [LLAMA_CONTEXT_ERROR, VLLM_CONTEXT_ERROR], ids=["llama-server", "vllm"])
def test_tool_loop_auto_mode_context_overflow_is_a_typed_error_not_a_fallback(fake_server, tmp_path, body):
    """Regression (tool path fixes, bug 2): auto mode took any 4xx as "tools unsupported" for the rest of the
    process; a context-overflow 400 switched the model to the text fallback, whose longer prompt overflowed too."""
    fake_server.script({"status": 400, "body": body}, {"text": "must not be asked"})
    with pytest.raises(ContextOverflowError) as info:
        run_loop(fake_server, tmp_path, "auto", tools=["calculator"])
    assert len(bodies(fake_server)) == 1
    message = str(info.value)
    assert "context" in message and fake_server.url in message
    assert info.value.status_code == 400


def test_tool_loop_auto_mode_does_not_learn_fallback_when_the_request_fails_without_tools_too(fake_server,
                                                                                               tmp_path):
    """Regression (tool path fixes, bug 2): auto mode took any 4xx as "tools unsupported" for the rest of the
    process; the switch is remembered only when the same request without `tools` succeeds."""
    bad = {"status": 400, "body": {"error": {"message": "unsupported value for 'top_k'"}}}

    async def go():
        runtime = make_runtime(fake_server, tmp_path, "auto")
        try:
            request = ToolEnabledInferenceConfig(prompt=PROMPT, model_id="fake", enable_tools=True,
                                                 tools=["calculator"])
            with pytest.raises(BackendStatusError, match="top_k") as info:
                async for _ in stream_tool_inference(request, runtime):
                    pass
            return runtime.learned_tool_modes, info.value
        finally:
            await runtime.aclose()

    fake_server.script(bad, bad)
    learned, error = asyncio.run(go())
    assert learned == {}
    assert error.status_code == 400
    sent = bodies(fake_server)
    assert len(sent) == 2 and "tools" in sent[0] and "tools" not in sent[1]


def test_tool_loop_auto_mode_learns_fallback_only_after_the_request_without_tools_succeeded(fake_server, tmp_path):
    """Regression (tool path fixes, bug 2): the fallback is learned, and announced, only once the request without
    `tools` has answered."""
    fake_server.script({"reject_tools_status": 422}, {"text": "plain answer"})
    result, events, runtime = run_loop(fake_server, tmp_path, "auto", tools=["calculator"])
    assert runtime.learned_tool_modes == {"fake": "fallback"} and result.final_text == "plain answer"
    kinds = [e.kind for e in events if isinstance(e, LoopNotice)]
    assert kinds.index("fallback") > 0  # announced after the retry answered, not before


# --- huge tool results -------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["native", "fallback"])
def test_tool_loop_huge_result_is_cut_for_the_model_but_kept_whole(fake_server, tmp_path, mode):
    """Regression (tool path fixes, bug 5): one huge tool result went back whole and could push the user's question
    out of the context; the model gets a part, saying how much was left out, and the result is kept whole."""
    call = {"name": "dump", "arguments": {"size": 100_000}}
    first = {"tool_calls": [call]} if mode == "native" else {
        "text": f'<tool_call>{json.dumps(call)}</tool_call>'}
    fake_server.script(first, {"text": "done"})
    result, events, _ = run_loop(fake_server, tmp_path, mode, config={"context_size": 2048}, tools=["dump"])
    whole = result.steps[0].results[0].output
    assert len(whole) == 100_000
    assert [len(e.result.output) for e in events if isinstance(e, ToolResultEvent)] == [100_000]
    second = bodies(fake_server)[1]["messages"]
    sent = second[-1]["content"]
    assert len(sent) < 2048 * 3
    assert "left out" in sent and f"{100_000:,}" in sent
    assert any(m["role"] == "user" and m["content"] == PROMPT for m in second)


def test_tool_loop_results_over_many_steps_never_push_out_the_question(fake_server, tmp_path):
    """Regression (tool path fixes, bug 5): tool results could push the user's question out of the context; over
    many steps the question stays, and every result still follows the turn that called it."""
    calls = [{"tool_calls": [{"name": "dump", "arguments": {"size": 50_000 + i}}]} for i in range(5)]
    fake_server.script(*calls, {"text": "done"})
    result, _, _ = run_loop(fake_server, tmp_path, "native", config={"context_size": 1024}, tools=["dump"])
    assert result.final_text == "done"
    for body in bodies(fake_server):
        assert any(m["role"] == "user" and m["content"] == PROMPT for m in body["messages"]), body["messages"]
        roles = [m["role"] for m in body["messages"]]
        # every tool result still follows the assistant turn that called it
        for i, role in enumerate(roles):
            if role == "tool":
                assert roles[i - 1] in ("assistant", "tool")
        size = sum(len(json.dumps(m)) for m in body["messages"])
        assert size < 1024 * 3, size


# --- parallel_tool_calls, and a forced call within max_tokens -----------------------------------------------

TIME_CALL = {"name": "get_current_time", "arguments": {"timezone": "UTC"}}


def notices(result, kind: str) -> list[str]:
    return [n.message for n in result.notices if n.kind == kind]


@pytest.mark.parametrize("parallel", [None, True], ids=["server-default", "true"])
def test_tool_loop_parallel_calls_run_unless_the_request_says_false(fake_server, tmp_path, parallel):
    fake_server.script({"tool_calls": [CALC, TIME_CALL]}, {"text": "done"})
    result, _, _ = run_loop(fake_server, tmp_path, tools=["calculator", "get_current_time"],
                            parallel_tool_calls=parallel)
    assert [c.name for c, _ in result.steps[0].calls] == ["calculator", "get_current_time"]
    assert bodies(fake_server)[0].get("parallel_tool_calls") == parallel and not notices(result, "parallel_tool_calls")


def test_tool_loop_parallel_tool_calls_false_native_keeps_the_first_call(fake_server, tmp_path):
    """The field goes to the server; a server that still sends several calls gets only the first run, and the
    history then holds that call and its result alone (a call without its result would be unanswered)."""
    fake_server.script({"tool_calls": [CALC, TIME_CALL]}, {"text": "done"})
    result, events, _ = run_loop(fake_server, tmp_path, tools=["calculator", "get_current_time"],
                                 parallel_tool_calls=False)
    first, second = bodies(fake_server)
    assert first["parallel_tool_calls"] is False and "tools" in first
    step = result.steps[0]
    assert [c.name for c, _ in step.calls] == ["calculator"] and step.dropped_calls == 1
    assert len(step.native_calls) == 2  # as the server sent them, for the inspector
    assert notices(result, "parallel_tool_calls") == [
        "parallel_tool_calls is false: ran the first of 2 tool calls and dropped 1 (get_current_time)"]
    assert [e.call.name for e in events if isinstance(e, ToolCallEvent)] == ["calculator"]
    assistant, tool_msg = second["messages"][-2:]
    assert [c["function"]["name"] for c in assistant["tool_calls"]] == ["calculator"]
    assert tool_msg["tool_call_id"] == assistant["tool_calls"][0]["id"]


def test_tool_loop_parallel_tool_calls_false_fallback_keeps_the_first_parsed_call(fake_server, tmp_path):
    text = ("Two at once.\n" + CALL_TEXT +
            '\n<tool_call>\n{"name": "calculator", "arguments": {"expression": "2+3"}}\n</tool_call>')
    fake_server.script({"text": text}, {"text": "42"})
    result, _, _ = run_loop(fake_server, tmp_path, mode="fallback", tools=["calculator"], parallel_tool_calls=False)
    first, second = bodies(fake_server)
    assert "parallel_tool_calls" not in first and "tools" not in first  # it qualifies `tools`, which are not sent
    assert [c.arguments for c, _ in result.steps[0].calls] == [{"expression": "6*7"}]
    assert len(notices(result, "parallel_tool_calls")) == 1
    assistant, tool_msg = second["messages"][-2:]
    assert assistant["content"].count("<tool_call>") == 1 and "6*7" in assistant["content"]
    assert "Two at once." in assistant["content"]
    assert tool_msg["content"] == "<tool_response>\n42\n</tool_response>"


@pytest.mark.parametrize("parallel, root", [(None, 'root ::= call ( "\\n" call ){0,2}\n'),
                                            (False, "root ::= call\n")], ids=["default", "false"])
def test_tool_loop_forced_grammar_allows_one_call_when_parallel_calls_are_off(llama_like_server, tmp_path,
                                                                              parallel, root):
    llama_like_server.script({"text": CALL_TEXT}, {"text": "42"})
    result, _, _ = run_loop(llama_like_server, tmp_path, mode="fallback", tools=["calculator"],
                            tool_choice="required", parallel_tool_calls=parallel, max_new_tokens=4096)
    first = bodies(llama_like_server)[0]
    assert first["grammar"].startswith(root) and "parallel_tool_calls" not in first
    assert result.steps[0].constrained


def test_tool_loop_forced_grammar_fits_max_tokens(llama_like_server, tmp_path):
    """Regression: with max_tokens 64 the grammar still let the expression run to 200 characters, and 2 or 3 of
    10 forced calls of the default model were cut off by max_tokens: no call at all. The grammar now closes within
    the request's max_tokens, and the step says what that cost."""
    llama_like_server.script({"text": CALL_TEXT}, {"text": "42"})
    result, _, _ = run_loop(llama_like_server, tmp_path, mode="fallback", tools=["calculator"],
                            tool_choice="required", max_new_tokens=64)
    grammar = bodies(llama_like_server)[0]["grammar"]
    assert grammar.startswith("root ::= call\n") and 'calculator-args-expression ::= "\\"" char{0,17} "\\""' in grammar
    assert result.steps[0].constraint_note == ("forced call, to fit max_tokens 64: strings capped at 17 characters "
                                               "(calculator.expression); at most 1 call (not 3)")


def test_tool_loop_forced_call_that_cannot_fit_max_tokens_runs_unconstrained_and_says_so(llama_like_server,
                                                                                         tmp_path):
    """A grammar that cannot close within max_tokens would spend them all inside a call: neither a call nor an
    answer. Without one the model still answers, and the user is told what max_tokens the call needs."""
    llama_like_server.script({"text": "It is 42."})
    result, events, _ = run_loop(llama_like_server, tmp_path, mode="fallback", tools=["calculator"],
                                 tool_choice="calculator", max_new_tokens=20)
    assert "grammar" not in bodies(llama_like_server)[0]
    assert notices(result, "budget") == [
        "max_tokens 20 is too small for a forced call to close (it needs at least 48); the call is asked for "
        "(tool_choice calculator) but not enforced"]
    assert [(e.tool_choice, e.constrained) for e in events if isinstance(e, StepStarted)] == [("calculator", False)]
    assert result.final_text == "It is 42."
