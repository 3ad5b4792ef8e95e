"""The approval policy (pure): when the user is asked, what "Always allow" remembers (per server and tool), and
what reaches the loop; plus the check of a call's arguments that comes before anyone is asked."""

from __future__ import annotations

import asyncio

import pytest

from LLM.core.errors import McpConfigError
from LLM.core.events import ToolCall
from LLM.core.tools.approval import (
    Approval,
    ApprovalDecision,
    ApprovalPolicy,
    approval_key,
    approve_call,
    verdict,
)
from LLM.core.tools.registry import Tool, ToolResult
from LLM.core.mcp.tools import object_schema

SCHEMA = object_schema({"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
                        "required": ["a", "b"]})


def mcp_tool(server: str, tool: str = "add", name: str | None = None, needs_approval: bool = True) -> Tool:
    return Tool(name=name or f"{server}__{tool}", description="", parameters=SCHEMA, fn=lambda **_: "",
                needs_approval=needs_approval, server=server, server_tool=tool)


def local_tool(name: str = "write_file", needs_approval: bool = True) -> Tool:
    return Tool(name=name, description="", parameters={"type": "object", "properties": {}}, fn=lambda **_: "",
                needs_approval=needs_approval)


X_DOT_Y, X_Y = mcp_tool("x.y", name="x_y_2__add"), mcp_tool("x_y", name="x_y__add")


@pytest.mark.parametrize("tool, allowed, allow_all, asks", [
    pytest.param(local_tool(needs_approval=False), set(), False, False, id="local-tool-without-approval"),
    pytest.param(local_tool(), set(), False, True, id="local-tool-that-asks"),
    pytest.param(local_tool(), {"write_file"}, False, False, id="local-tool-always-allowed"),
    pytest.param(mcp_tool("x_y", needs_approval=False), set(), False, False, id="mcp-auto-approve"),
    pytest.param(X_Y, set(), False, True, id="mcp-tool-asks"),
    pytest.param(X_Y, {approval_key(X_Y)}, False, False, id="mcp-tool-always-allowed"),
    pytest.param(X_DOT_Y, {approval_key(X_Y)}, False, True, id="other-server-same-tool-still-asks"),
    pytest.param(X_Y, {"x_y__add"}, False, True, id="a-function-name-allows-no-mcp-tool"),
    pytest.param(mcp_tool("x_y", name="x_y__add_renamed"), {approval_key(X_Y)}, False, False,
                 id="same-server-and-tool-under-another-name"),
    pytest.param(X_Y, set(), True, False, id="allow-all"),
])
def test_approval_policy_must_ask(tool, allowed, allow_all, asks):
    assert ApprovalPolicy(set(allowed), allow_all=allow_all).must_ask(tool) is asks


@pytest.mark.parametrize("decision, expected", [
    (ApprovalDecision.ONCE, Approval.ALLOW), (ApprovalDecision.ALWAYS, Approval.ALLOW),
    (ApprovalDecision.DENY, Approval.DENY), (ApprovalDecision.DENY_AND_STOP, Approval.DENY_AND_STOP),
], ids=lambda v: getattr(v, "value", v))
def test_approval_verdict(decision, expected):
    assert verdict(decision) is expected


def test_approval_always_is_kept_per_server_and_tool():
    """Regression (#19 item 3): "Always allow" was kept by the function name the model sees, which could name
    another server's tool later; it is kept by (server, tool) now."""
    asked: list[str] = []

    async def ask(call: ToolCall, tool: Tool) -> ApprovalDecision:
        asked.append(tool.server)
        return ApprovalDecision.ALWAYS

    async def go():
        chat_memory: set[str] = set()
        policy = ApprovalPolicy(chat_memory)
        assert await policy.decide(ToolCall("x_y__add", {}), X_Y, ask) is Approval.ALLOW
        assert await policy.decide(ToolCall("x_y__add", {}), X_Y, ask) is Approval.ALLOW
        # The other server's tool, even if it were offered under the very same function name, still asks.
        moved = mcp_tool("x.y", name="x_y__add")
        assert policy.must_ask(moved)
        await policy.decide(ToolCall("x_y__add", {}), moved, ask)
        return chat_memory

    memory = asyncio.run(go())
    assert asked == ["x_y", "x.y"] and memory == {approval_key(X_Y), approval_key(X_DOT_Y)}
    assert "x_y__add" not in memory


def test_approval_always_for_an_mcp_tool_is_saved_and_a_failed_save_still_allows():
    saved: list[tuple[str, str]] = []
    policy = ApprovalPolicy(save_always=lambda server, tool: saved.append((server, tool)))
    assert policy.record(X_DOT_Y, ApprovalDecision.ALWAYS) is Approval.ALLOW
    assert policy.record(local_tool(), ApprovalDecision.ALWAYS) is Approval.ALLOW  # local: this chat only
    assert saved == [("x.y", "add")] and policy.problem is None

    def refuse(server: str, tool: str) -> None:
        raise McpConfigError("mcp.json: cannot be written")

    failing = ApprovalPolicy(save_always=refuse)
    assert failing.record(X_Y, ApprovalDecision.ALWAYS) is Approval.ALLOW and not failing.must_ask(X_Y)
    assert "not saved" in failing.problem and "cannot be written" in failing.problem


@pytest.mark.parametrize("arguments, problem", [
    pytest.param({"a": "2", "b": 3}, "argument 'a': expected an integer", id="wrong-type"),
    pytest.param({"a": 1, "b": 2, "c": 3}, "unknown argument 'c'", id="unknown-key"),
    pytest.param({"a": 1}, "argument 'b': required", id="missing"),
])
def test_approval_bad_arguments_are_an_error_result_and_nobody_is_asked(arguments, problem):
    """Regression (#19 item 4): an MCP tool's arguments were not checked against its inputSchema before the
    approval prompt; the server then coerced wrong types and dropped unknown keys."""
    asked = []
    outcome = asyncio.run(approve_call(X_Y, ToolCall("x_y__add", arguments), lambda c, t: asked.append(c) or True))
    assert isinstance(outcome, ToolResult) and not outcome.ok and problem in outcome.error
    assert outcome.error.startswith("invalid arguments for x_y__add") and asked == []


def test_approval_good_arguments_go_to_the_hook_only_when_the_tool_needs_approval():
    asked = []

    def hook(call, tool):
        asked.append(tool.name)
        return Approval.DENY_AND_STOP

    call = ToolCall("x_y__add", {"a": 1, "b": 2})
    assert asyncio.run(approve_call(X_Y, call, hook)) is Approval.DENY_AND_STOP
    assert asyncio.run(approve_call(mcp_tool("x_y", needs_approval=False), call, hook)) is Approval.ALLOW
    assert asyncio.run(approve_call(X_Y, call, None)) is Approval.DENY  # nobody to ask: denied
    assert asyncio.run(approve_call(X_Y, call, lambda c, t: True)) is Approval.ALLOW
    assert asked == ["x_y__add"]


def test_approval_a_server_schema_beyond_the_checked_subset_lets_the_call_through():
    odd = Tool(name="s__t", description="", parameters=object_schema({"type": "object", "properties": {
        "a": {"type": "decimal"}, "b": {"$ref": "#/$defs/B"}}}), fn=lambda **_: "", server="s", server_tool="t")
    assert asyncio.run(approve_call(odd, ToolCall("s__t", {"a": 1, "b": {"x": 1}}), None)) is Approval.ALLOW
