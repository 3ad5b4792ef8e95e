"""The interaction facade without a display: core's approval policy asking through the scripted double (once,
always per tool or per MCP server and tool, deny, deny and stop, a question withdrawn with its request, an MCP
"always" saved in autoApprove), and the words of the questions. Imports no Qt."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from LLM.core.events import ToolCall
from LLM.core.mcp import McpManager, parse_mcp_config
from LLM.core.mcp.tools import object_schema
from LLM.core.tools.approval import Approval, ApprovalDecision, ApprovalPolicy, approval_key, approve_call
from LLM.core.tools.registry import Tool, ToolRegistry
from LLM.desktop_app.interaction import approval_asker, approval_question, delete_tool_question, switch_question
from LLM.tests.desktop_app.scripted_interaction import ScriptedInteraction
from LLM.tests.fakes.handle import REPO_ROOT, async_wait_until
from LLM.tests.fakes.mcp_handle import write_mcp_json

ONCE, ALWAYS, DENY, STOP = (ApprovalDecision.ONCE, ApprovalDecision.ALWAYS, ApprovalDecision.DENY,
                            ApprovalDecision.DENY_AND_STOP)
ADD_SCHEMA = object_schema({"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
                            "required": ["a", "b"]})
PARENT = object()  # what the window passes (a widget); the facade needs no Qt type for it


def local(name: str = "write_file", needs_approval: bool = True) -> Tool:
    return Tool(name=name, description="Write a file.", parameters={"type": "object", "properties": {}},
                fn=lambda **_: "", needs_approval=needs_approval)


def mcp(server: str, name: str) -> Tool:
    return Tool(name=name, description="", parameters=ADD_SCHEMA, fn=lambda **_: "", needs_approval=True,
                server=server, server_tool="add")


WRITE, READ = local(), local("read_file", needs_approval=False)
X_Y, X_DOT_Y = mcp("x_y", "x_y__add"), mcp("x.y", "x_y_2__add")


def call_of(tool: Tool) -> ToolCall:
    return ToolCall(tool.name, {"a": 1, "b": 2} if tool.server else {})


async def _run_calls(policy: ApprovalPolicy, interaction: ScriptedInteraction, tools: list[Tool]) -> list:
    """Each tool's call through core's path before a call runs (argument check, then the policy's hook)."""
    hook = policy.hook(approval_asker(interaction, PARENT))
    return [await approve_call(tool, call_of(tool), hook) for tool in tools]


def test_interaction_facade_and_its_double_import_no_qt():
    script = ("import sys, LLM.desktop_app.interaction, LLM.tests.desktop_app.scripted_interaction\n"
              "print([m for m in sys.modules if m.split('.')[0] in ('PySide6', 'shiboken6', 'qasync')])\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO_ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("tools, answers, verdicts, asked, remembered", [
    pytest.param([WRITE, WRITE], [ONCE, ONCE], [Approval.ALLOW] * 2, 2, set(), id="once-asks-every-time"),
    pytest.param([WRITE, WRITE], [ALWAYS], [Approval.ALLOW] * 2, 1, {"write_file"}, id="always-asks-once"),
    pytest.param([X_Y, X_Y, X_DOT_Y], [ALWAYS, DENY], [Approval.ALLOW, Approval.ALLOW, Approval.DENY], 2,
                 {approval_key(X_Y)}, id="always-for-an-mcp-tool-is-per-server-and-tool"),
    pytest.param([WRITE, WRITE], [DENY, ONCE], [Approval.DENY, Approval.ALLOW], 2, set(),
                 id="deny-asks-again-next-time"),
    pytest.param([WRITE], [STOP], [Approval.DENY_AND_STOP], 1, set(), id="deny-and-stop"),
    pytest.param([WRITE], [], [Approval.DENY], 1, set(), id="no-answer-denies"),
    pytest.param([READ, READ], [], [Approval.ALLOW] * 2, 0, set(), id="a-tool-without-approval-never-asks"),
])
def test_interaction_policy_through_the_facade(tools, answers, verdicts, asked, remembered):
    interaction = ScriptedInteraction(*answers)
    policy = ApprovalPolicy()
    assert asyncio.run(_run_calls(policy, interaction, tools)) == verdicts
    assert len(interaction.asked) == asked and interaction.parents == [PARENT] * asked
    assert set(policy.allowed) == remembered


def test_interaction_a_call_with_wrong_arguments_is_never_asked_about():
    interaction = ScriptedInteraction(ONCE)
    outcome = asyncio.run(approve_call(X_Y, ToolCall("x_y__add", {"a": "one"}),
                                       ApprovalPolicy().hook(approval_asker(interaction, PARENT))))
    assert not isinstance(outcome, Approval) and "invalid arguments" in outcome.error
    assert interaction.asked == []


def test_interaction_a_question_of_a_stopped_request_is_withdrawn_and_remembers_nothing():
    """Stop (or a model switch) cancels the request waiting on an approval: the open question goes with it, and
    nothing it might have answered is kept or saved."""
    saved: list[tuple[str, str]] = []
    interaction = ScriptedInteraction(None)  # a dialog left open
    policy = ApprovalPolicy(save_always=lambda server, tool: saved.append((server, tool)))

    async def go():
        request = asyncio.ensure_future(_run_calls(policy, interaction, [X_Y]))
        await async_wait_until(lambda: interaction.asked, 10, "the approval question")
        request.cancel()
        await asyncio.gather(request, return_exceptions=True)
        return request.cancelled()

    assert asyncio.run(go())
    assert interaction.cancelled == 1 and set(policy.allowed) == set() and saved == []


def test_interaction_always_for_an_mcp_tool_is_saved_in_auto_approve(tmp_path: Path):
    """"Always allow" for an MCP tool, answered through the facade, lands in its server's autoApprove in mcp.json
    (by the server's own tool name); from then on the server's tool arrives needing no approval, so a new chat
    does not ask either. A local tool's "always" stays in the chat."""
    pytest.importorskip("mcp", reason="the MCP SDK (pip install '.[mcp]') is not installed")
    from LLM.tests.fakes.mcp_server import build_server

    path = write_mcp_json(tmp_path / "mcp.json", {"fake": {"command": "in-process"}})
    manager = McpManager(parse_mcp_config(path.read_text(), str(path)), logs_dir=tmp_path / "logs",
                         in_process={"fake": build_server("fake")})
    registry = ToolRegistry()
    manager.attach(registry)
    interaction = ScriptedInteraction(ALWAYS, ALWAYS)

    async def go():
        try:
            await manager.start_all(wait=True)
            add = registry.get("fake__add")
            chat = ApprovalPolicy(save_always=manager.always_allow)
            first = await _run_calls(chat, interaction, [add, WRITE])
            next_chat = ApprovalPolicy(save_always=manager.always_allow)
            later = await _run_calls(next_chat, interaction, [registry.get("fake__add")])
            return first, later, chat.problem, next_chat.must_ask(WRITE)
        finally:
            await manager.aclose()

    first, later, problem, asks_local_again = asyncio.run(asyncio.wait_for(go(), 60))
    assert first == [Approval.ALLOW, Approval.ALLOW] and later == [Approval.ALLOW] and problem is None
    assert [name for name, _ in interaction.asked] == ["fake__add", "write_file"]
    assert json.loads(path.read_text())["mcpServers"]["fake"]["autoApprove"] == ["add"]
    assert asks_local_again


@pytest.mark.parametrize("question, title, text, informative, detail", [
    pytest.param(approval_question(ToolCall("write_file", {"path": "ü.txt"}), local()), "Allow write_file?",
                 "The model wants to run <b>write_file</b>.", "Write a file.", '{\n  "path": "ü.txt"\n}',
                 id="approval"),
    pytest.param(approval_question(ToolCall("f__w", {}), Tool("f__w", "", {"type": "object"}, lambda: None,
                                                             server="f<", server_tool="w")), "Allow f__w?",
                 "The model wants to run <b>f__w</b> (its tool ‘w’) of the MCP server <b>f&lt;</b>.",
                 "(no description)", "{}", id="approval-mcp"),
    pytest.param(switch_question("One", "Two"), "Switch model?", "<b>One</b> is still writing an answer.",
                 "Switch to Two now, or let the answer finish first?", "", id="switch"),
    pytest.param(delete_tool_question("w", Path("/t/w.json")), "Delete tool?", "Delete the tool <b>w</b>?",
                 "Its file /t/w.json is removed.", "", id="delete-tool"),
])
def test_interaction_question_words(question, title, text, informative, detail):
    assert (question.title, question.text, question.informative, question.detail) == (title, text, informative,
                                                                                        detail)
