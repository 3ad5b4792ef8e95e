"""MCP tools through the tool loop, the model scripted by the fake OpenAI server and the tools served over stdio."""

from __future__ import annotations

import asyncio

import pytest

from LLM.core.errors import ToolError
from LLM.core.inference import ToolEnabledInferenceConfig, arun_tool_inference
from LLM.core.mcp import McpManager
from LLM.core.runtime import Runtime
from LLM.core.tools.approval import ApprovalDecision, ApprovalPolicy
from LLM.core.tools.builtin import build_default_registry
from LLM.core.tools.loop import Approval
from LLM.tests.conftest import openai_config
from LLM.tests.fakes.mcp_handle import stdio_entry, write_mcp_json

pytest.importorskip("mcp", reason="the MCP SDK (pip install '.[mcp]') is not installed")

ADD = {"name": "fake__add", "arguments": {"a": 2, "b": 3}}


def runtime_with(fake_server, tmp_path, servers) -> Runtime:
    path = write_mcp_json(tmp_path / "mcp.json", servers)
    return Runtime(openai_config(fake_server.url, tools="native"), tools=build_default_registry(tmp_path),
                   workspace=tmp_path, mcp=McpManager.from_path(path, logs_dir=tmp_path / "logs"))


def tool_run(fake_server, tmp_path, tools, before_call=None, servers=None):
    async def go():
        runtime = runtime_with(fake_server, tmp_path, servers or {"fake": stdio_entry(timeout=3)})
        try:
            cfg = ToolEnabledInferenceConfig(prompt="Use tools", model_id="fake", enable_tools=True, tools=tools)
            return await arun_tool_inference(cfg, runtime, before_call)
        finally:
            await runtime.aclose()

    return asyncio.run(asyncio.wait_for(go(), 90))


def sent_tool_messages(fake_server) -> list[dict]:
    return [m for m in fake_server.requests()[-1]["body"]["messages"] if m["role"] == "tool"]


def test_mcp_loop_named_tool_starts_its_server_asks_and_runs(fake_server, tmp_path):
    fake_server.script({"tool_calls": [ADD]}, {"text": "It is 5."})
    asked = []

    def approve(call, tool):
        asked.append((tool.server, call.name, call.arguments))
        return True

    result = tool_run(fake_server, tmp_path, ["fake__add"], approve)
    assert result.final_text == "It is 5." and asked == [("fake", "fake__add", {"a": 2, "b": 3})]
    first = fake_server.requests()[0]["body"]
    (sent,) = first["tools"]
    assert sent["function"]["name"] == "fake__add" and sent["function"]["parameters"]["required"] == ["a", "b"]
    assert sent_tool_messages(fake_server)[0]["content"] == "5"


@pytest.mark.parametrize("answer", [False, Approval.DENY], ids=["false", "deny"])
def test_mcp_loop_denial_is_a_result_the_model_sees(fake_server, tmp_path, answer):
    fake_server.script({"tool_calls": [ADD]}, {"text": "You said no."})
    result = tool_run(fake_server, tmp_path, ["fake__add"], lambda call, tool: answer)
    assert result.final_text == "You said no." and result.stopped_by is None
    assert "denied" in sent_tool_messages(fake_server)[0]["content"]


def test_mcp_loop_deny_and_stop_ends_the_run_without_asking_the_model(fake_server, tmp_path):
    second = {"name": "fake__add", "arguments": {"a": 1, "b": 1}}
    fake_server.script({"text": "Adding.", "tool_calls": [ADD, second]}, {"text": "never sent"})
    asked = []

    async def approve(call, tool):
        asked.append(call.arguments)
        return Approval.DENY_AND_STOP

    result = tool_run(fake_server, tmp_path, ["fake__add"], approve)
    assert result.stopped_by == "denied" and len(fake_server.requests()) == 1 and len(asked) == 1
    assert [r.ok for r in result.steps[0].results] == [False, False]
    assert any(n.kind == "denied" for n in result.notices)


def test_mcp_loop_auto_approved_tool_is_not_asked_about(fake_server, tmp_path):
    fake_server.script({"tool_calls": [ADD]}, {"text": "5"})
    asked = []
    result = tool_run(fake_server, tmp_path, ["fake__add"], lambda c, t: asked.append(c) or False,
                      servers={"fake": stdio_entry(autoApprove=["add"])})
    assert asked == [] and result.steps[0].results[0].output == "5"


def test_mcp_loop_error_and_timeout_become_results_and_the_loop_goes_on(fake_server, tmp_path):
    fake_server.script({"tool_calls": [{"name": "fake__boom", "arguments": {"message": "disk on fire"}},
                                       {"name": "fake__slow_echo", "arguments": {"text": "x", "seconds": 30}}]},
                       {"text": "Both failed."})
    result = tool_run(fake_server, tmp_path, ["fake__boom", "fake__slow_echo"], lambda c, t: True,
                      servers={"fake": stdio_entry(timeout=1)})
    boom, slow = result.steps[0].results
    assert not boom.ok and "disk on fire" in boom.error
    assert not slow.ok and "did not answer within 1 s" in slow.error
    assert result.final_text == "Both failed."
    contents = [m["content"] for m in sent_tool_messages(fake_server)]
    assert "disk on fire" in contents[0] and "did not answer" in contents[1]


def test_mcp_loop_a_failed_server_is_named_before_anything_is_sent(fake_server, tmp_path):
    with pytest.raises(ToolError, match="'broken' failed: MCP server 'broken' exited before it was ready"):
        tool_run(fake_server, tmp_path, ["broken__add"], servers={"broken": stdio_entry("--exit-at-start")})
    assert fake_server.requests() == []


def test_mcp_loop_arguments_are_checked_against_the_input_schema_before_approval(fake_server, tmp_path):
    """Regression (#19 item 4): an MCP call with a wrong type or an unknown key went to the approval prompt and on
    to the server, which coerced "2" to 2 and dropped the unknown key."""
    fake_server.script({"tool_calls": [{"name": "fake__add", "arguments": {"a": "2", "b": 3}},
                                       {"name": "fake__grow", "arguments": {"name": "sprout", "colour": "red"}}]},
                       {"text": "Fixed nothing."})
    asked = []

    async def go():
        runtime = runtime_with(fake_server, tmp_path, {"fake": stdio_entry(timeout=3)})
        try:
            cfg = ToolEnabledInferenceConfig(prompt="Use tools", model_id="fake", enable_tools=True,
                                             tools=["fake__add", "fake__grow"])
            result = await arun_tool_inference(cfg, runtime, lambda call, tool: asked.append(call.name) or True)
            grown = [spec.tool for spec in runtime.mcp.tool_specs("fake") if spec.tool == "sprout"]
            return result, grown
        finally:
            await runtime.aclose()

    result, grown = asyncio.run(asyncio.wait_for(go(), 90))
    wrong_type, unknown_key = result.steps[0].results
    assert not wrong_type.ok and "argument 'a': expected an integer, got \"2\"" in wrong_type.error
    assert not unknown_key.ok and "unknown argument 'colour'" in unknown_key.error
    assert asked == [] and grown == [], "nobody was asked and no call reached the server"
    contents = [m["content"] for m in sent_tool_messages(fake_server)]
    assert "expected an integer" in contents[0] and "'colour'" in contents[1]


def test_mcp_loop_always_allow_for_one_servers_tool_does_not_approve_the_others(fake_server, tmp_path):
    """Regression (#19 item 3): servers `x.y` and `x_y` both have `add`; "always" for one must not allow the other,
    whatever the function names."""
    fake_server.script({"tool_calls": [{"name": "x_y__add", "arguments": {"a": 1, "b": 1}}]},
                       {"tool_calls": [{"name": "x_y__add", "arguments": {"a": 2, "b": 2}},
                                       {"name": "x_y_2__add", "arguments": {"a": 3, "b": 3}}]},
                       {"text": "done"})
    asked = []

    async def ask(call, tool):
        asked.append((tool.server, call.arguments["a"]))
        return ApprovalDecision.ALWAYS

    policy = ApprovalPolicy()
    result = tool_run(fake_server, tmp_path, ["x_y__add", "x_y_2__add"], policy.hook(ask),
                      servers={"x.y": stdio_entry(timeout=3), "x_y": stdio_entry(timeout=3)})
    assert [r.output for step in result.steps for r in step.results] == ["2", "4", "6"]
    assert asked == [("x_y", 1), ("x.y", 3)]
