"""The tool loop against the fake server: what it runs, what it sends back, and its guards."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from LLM.core.tools.builtin import build_default_registry
from LLM.core.inference import ToolEnabledInferenceConfig, arun_tool_inference, stream_tool_inference
from LLM.core.runtime import Runtime
from LLM.core.tools.loop import LoopFinished, LoopNotice, StepStarted, ToolCallEvent, ToolResultEvent
from LLM.core.tools import tool
from LLM.tests.conftest import openai_config
from LLM.tests.fakes.handle import FakeServerHandle

CALC = {"name": "calculator", "arguments": {"expression": "2+3"}}


@tool(timeout_s=0.3)
async def hangs() -> str:
    """Never returns."""
    await asyncio.Event().wait()
    return "unreachable"


@tool
def explodes(reason: str) -> str:
    """Always fails."""
    raise RuntimeError(f"kaboom: {reason}")


def make_runtime(server: FakeServerHandle, tmp_path: Path, mode: str = "native") -> Runtime:
    registry = build_default_registry(tmp_path)
    registry.register(hangs)
    registry.register(explodes)
    return Runtime(openai_config(server.url, tools=mode), tools=registry, workspace=tmp_path)


def run_loop(server, tmp_path, mode="native", before_call=None, **cfg):
    async def go():
        runtime = make_runtime(server, tmp_path, mode)
        events = []
        try:
            request = ToolEnabledInferenceConfig(prompt="Use tools", model_id="fake", enable_tools=True, **cfg)
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
    server = FakeServerHandle(None, "--props", "no-tools").wait_ready()
    try:
        yield server
    finally:
        server.stop()


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
                            tool_choice="required")
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
