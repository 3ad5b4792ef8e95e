"""MCP in the window: the panel, MCP tools in the tool chat page, approvals (scripted and the real dialog)."""

from __future__ import annotations

import asyncio
import json

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QLabel, QPlainTextEdit, QPushButton, QWidget

from LLM.core import ApprovalDecision, Tool, ToolCall
from LLM.core.mcp import McpState
from LLM.desktop_app.dialogs import QtInteraction
from LLM.desktop_app.widgets.mcp_panel import McpPanel
from LLM.tests.desktop_app.harness import (
    ScriptedInteraction,
    click,
    last_answer,
    open_window,
    openai_yaml,
    page,
    run,
    type_and_send,
    wait_until,
)
from LLM.core.servers.process import pid_alive
from LLM.tests.fakes.mcp_handle import stdio_entry, write_mcp_json

pytest.importorskip("mcp", reason="the MCP SDK (pip install '.[mcp]') is not installed")

ADD = {"name": "fake__add", "arguments": {"a": 2, "b": 3}}


def panel(window) -> McpPanel:
    found = window.findChild(QWidget, "mcpPanel")
    assert isinstance(found, McpPanel)
    return found


def listed_tools(tools_page) -> dict[str, str]:
    """name -> label of the tool chat page's list."""
    items = (tools_page.tool_list.item(r) for r in range(tools_page.tool_list.count()))
    return {item.data(Qt.ItemDataRole.UserRole): item.text() for item in items}


async def mcp_ready(window, server: str = "fake") -> None:
    manager = window.ctx.runtime.mcp
    await wait_until(lambda: server in manager.names() and manager.status(server).state is McpState.READY, 30,
                     f"MCP server {server} ready")
    add = next(spec.name for spec in manager.tool_specs(server) if spec.tool == "add")
    await wait_until(lambda: add in listed_tools(page(window, "toolChatPage")), 10, "its tools listed")


def test_desktop_mcp_servers_start_when_shown_and_their_tools_join_the_tool_chat(qloop, fake_server, tmp_path):
    mcp_json = write_mcp_json(tmp_path / "mcp.json", {"fake": stdio_entry(), "broken": stdio_entry("--exit-at-start"),
                                                      "bad": {"args": []}})

    async def go():
        async with open_window(tmp_path, openai_yaml(fake_server.url), mcp_config=mcp_json) as window:
            await mcp_ready(window)
            tools = page(window, "toolChatPage")
            labels = listed_tools(tools)
            assert labels["fake__add"] == "fake__add  (MCP: fake, asks first)"
            assert "fake__add" in tools.enabled_tools() and "calculator" in tools.enabled_tools()
            p = panel(window)
            await wait_until(lambda: p.server_item("broken") is not None and p.server_item("broken").text(1) == "failed",
                             30, "the broken server shown failed")
            fake_item = p.server_item("fake")
            assert fake_item.text(1) == "ready" and fake_item.childCount() == 7
            assert fake_item.child(0).text(0) == "fake__add" and fake_item.child(0).text(1) == "asks"
            p.tree.setCurrentItem(p.server_item("broken"))
            shown = p.findChild(QPlainTextEdit, "mcpStderr").toPlainText()
            assert "exited before it was ready" in shown and "cannot start: no such database" in shown
            click(p.findChild(QPushButton, "mcpOpenLog"))
            assert window.ctx.interaction.opened == [tmp_path / "logs" / "mcp-broken.log"]
            invalid = [p.tree.topLevelItem(i) for i in range(p.tree.topLevelItemCount())
                       if p.tree.topLevelItem(i).text(0) == "bad"]
            assert invalid and invalid[0].text(1) == "invalid" and "mcpServers.bad" in invalid[0].text(2)

            # A tool unchecked in the panel leaves the tool chat and is saved as disabledTools.
            crash = next(fake_item.child(i) for i in range(fake_item.childCount())
                         if fake_item.child(i).text(0) == "fake__crash")
            crash.setCheckState(0, Qt.CheckState.Unchecked)
            await wait_until(lambda: "fake__crash" not in listed_tools(tools), 10, "the tool gone from the tool chat")
            assert json.loads(mcp_json.read_text())["mcpServers"]["fake"]["disabledTools"] == ["crash"]

            # Restart gives a fresh process; the tools come back, unchecked ones still unchecked.
            tools.set_tool_enabled("fake__boom", False)
            p.tree.setCurrentItem(p.server_item("fake"))
            pid_line = window.ctx.runtime.mcp.status("fake").stderr_tail[-1]
            click(p.findChild(QPushButton, "mcpRestartButton"))
            await wait_until(lambda: window.ctx.runtime.mcp.status("fake").state is McpState.READY
                             and window.ctx.runtime.mcp.status("fake").stderr_tail[-1] != pid_line, 30, "restarted")
            await wait_until(lambda: "fake__add" in listed_tools(tools), 10, "tools back")
            assert "fake__boom" in listed_tools(tools) and "fake__boom" not in tools.enabled_tools()
            assert "fake__add" in tools.enabled_tools()

            # The server's own toggle: stopped, its tools gone, saved as "disabled".
            pid = _pid(window.ctx.runtime.mcp.status("fake").stderr_tail)
            p.server_item("fake").setCheckState(0, Qt.CheckState.Unchecked)
            await wait_until(lambda: window.ctx.runtime.mcp.status("fake").state is McpState.STOPPED, 20, "stopped")
            await wait_until(lambda: "fake__add" not in listed_tools(tools), 10, "its tools gone")
            await wait_until(lambda: p.server_item("fake").text(1) == "disabled", 10, "shown disabled")
            assert json.loads(mcp_json.read_text())["mcpServers"]["fake"]["disabled"] is True
            await wait_until(lambda: not pid_alive(pid), 10, "the server process gone")
            p.server_item("fake").setCheckState(0, Qt.CheckState.Checked)
            await mcp_ready(window)
            return _pid(window.ctx.runtime.mcp.status("fake").stderr_tail)

    pid = run(qloop, go())
    assert not pid_alive(pid), "closing the window stops its MCP servers"


def test_desktop_mcp_call_asks_and_allow_once_runs_it(qloop, fake_server, tmp_path):
    mcp_json = write_mcp_json(tmp_path / "mcp.json", {"fake": stdio_entry()})
    fake_server.script({"tool_calls": [ADD]}, {"text": "It is 5."}, {"tool_calls": [ADD]}, {"text": "No."})
    interaction = ScriptedInteraction(ApprovalDecision.ONCE, ApprovalDecision.DENY)

    async def go():
        async with open_window(tmp_path, openai_yaml(fake_server.url), interaction=interaction,
                               mcp_config=mcp_json) as window:
            await mcp_ready(window)
            tools = page(window, "toolChatPage")
            window.tabs.setCurrentWidget(tools)
            type_and_send(tools, "Add 2 and 3")
            await wait_until(lambda: last_answer(tools).status == "done", 30, "the answer")
            (card,) = last_answer(tools).tool_cards
            assert (card.name, card.ok, card.output) == ("fake__add", True, "5")
            type_and_send(tools, "Again")
            await wait_until(lambda: len(tools.conversation.messages) == 4 and last_answer(tools).status == "done", 30)
            (card,) = last_answer(tools).tool_cards
            assert card.ok is False and "denied" in card.error

    run(qloop, go())
    assert interaction.asked == [("fake__add", {"a": 2, "b": 3})] * 2
    assert "denied" in fake_server.requests()[3]["body"]["messages"][-1]["content"]


def test_desktop_mcp_always_allow_is_saved_to_auto_approve(qloop, fake_server, tmp_path):
    mcp_json = write_mcp_json(tmp_path / "mcp.json", {"fake": stdio_entry()})
    fake_server.script({"tool_calls": [ADD]}, {"text": "5"}, {"tool_calls": [ADD]}, {"text": "5 again"})
    interaction = ScriptedInteraction(ApprovalDecision.ALWAYS)

    async def go():
        async with open_window(tmp_path, openai_yaml(fake_server.url), interaction=interaction,
                               mcp_config=mcp_json) as window:
            await mcp_ready(window)
            tools = page(window, "toolChatPage")
            type_and_send(tools, "Add")
            await wait_until(lambda: last_answer(tools).status == "done", 30)
            assert json.loads(mcp_json.read_text())["mcpServers"]["fake"]["autoApprove"] == ["add"]
            await wait_until(lambda: listed_tools(tools)["fake__add"] == "fake__add  (MCP: fake)", 10, "label")
            tools.new_chat()  # a new chat forgets per-chat "always"; the saved autoApprove remains
            type_and_send(tools, "Add again")
            await wait_until(lambda: tools.conversation.messages and last_answer(tools).status == "done", 30)
            assert last_answer(tools).tool_cards[0].ok is True

    run(qloop, go())
    assert len(interaction.asked) == 1


def test_desktop_mcp_deny_and_stop_ends_the_answer(qloop, fake_server, tmp_path):
    mcp_json = write_mcp_json(tmp_path / "mcp.json", {"fake": stdio_entry()})
    fake_server.script({"text": "Let me add.", "tool_calls": [ADD]}, {"text": "never asked"})
    interaction = ScriptedInteraction(ApprovalDecision.DENY_AND_STOP)

    async def go():
        async with open_window(tmp_path, openai_yaml(fake_server.url), interaction=interaction,
                               mcp_config=mcp_json) as window:
            await mcp_ready(window)
            tools = page(window, "toolChatPage")
            type_and_send(tools, "Add")
            await wait_until(lambda: last_answer(tools).status == "done", 30)
            answer = last_answer(tools)
            assert answer.tool_cards[0].ok is False and answer.metrics.finish_reason == "denied"
            assert any(getattr(part, "kind", None) == "denied" for part in answer.parts)

    run(qloop, go())
    assert len(fake_server.requests()) == 1


def test_desktop_mcp_approval_dialog_shows_server_tool_and_arguments(qloop):
    async def ask(button_name: str | None) -> ApprovalDecision:
        tool = Tool(name="files__write", description="Write a file on disk.", parameters={"type": "object"},
                    fn=lambda **_: None, needs_approval=True, server="files")
        call = ToolCall("files__write", {"path": "/tmp/x", "content": "line\n" * 3})
        task = asyncio.ensure_future(QtInteraction().approve_tool(None, call, tool))
        dialog = await wait_until(lambda: next((w for w in QApplication.topLevelWidgets()
                                                if w.objectName() == "approvalDialog" and w.isVisible()), None),
                                  10, "the approval dialog")
        head = dialog.findChild(QLabel, "approvalHead").text()
        assert "files__write" in head and "files" in head
        assert dialog.findChild(QLabel, "approvalDescription").text() == "Write a file on disk."
        shown = json.loads(dialog.findChild(QPlainTextEdit, "approvalArguments").toPlainText())
        assert shown == call.arguments
        if button_name is None:
            dialog.reject()  # Esc
        else:
            click(dialog.findChild(QPushButton, button_name))
        return await asyncio.wait_for(task, 10)

    async def go():
        assert await ask("approvalAllowOnce") is ApprovalDecision.ONCE
        assert await ask("approvalAllowAlways") is ApprovalDecision.ALWAYS
        assert await ask("approvalDeny") is ApprovalDecision.DENY
        assert await ask("approvalDenyAndStop") is ApprovalDecision.DENY_AND_STOP
        assert await ask(None) is ApprovalDecision.DENY

    run(qloop, go())


def _pid(stderr_tail) -> int:
    line = next(line for line in reversed(stderr_tail) if "(pid " in line)
    return int(line.rsplit("(pid ", 1)[1].rstrip(")"))


def test_desktop_mcp_json_edits_apply_while_the_window_runs(qloop, fake_server, tmp_path):
    mcp_json = write_mcp_json(tmp_path / "mcp.json", {})

    async def go():
        async with open_window(tmp_path, openai_yaml(fake_server.url), mcp_config=mcp_json) as window:
            p = panel(window)
            assert "No MCP servers yet" in p.findChild(QLabel, "mcpConfigProblem").text()
            write_mcp_json(mcp_json, {"fake": stdio_entry()})  # as an editor saves it
            await mcp_ready(window)
            await wait_until(lambda: p.server_item("fake") is not None and p.server_item("fake").text(1) == "ready",
                             10, "the new server in the panel")
            mcp_json.write_text("{not json")
            await wait_until(lambda: "not valid JSON" in p.findChild(QLabel, "mcpStatusLine").text(), 10,
                             "the bad edit reported")
            assert window.ctx.runtime.mcp.status("fake").state is McpState.READY  # the last good config stays

    run(qloop, go())


def test_desktop_mcp_unreadable_mcp_json_is_shown_and_the_window_works(qloop, fake_server, tmp_path):
    mcp_json = tmp_path / "mcp.json"
    mcp_json.write_text('{"mcpServers": [')
    fake_server.script({"text": "Hello."})

    async def go():
        async with open_window(tmp_path, openai_yaml(fake_server.url), mcp_config=mcp_json) as window:
            problem = panel(window).findChild(QLabel, "mcpConfigProblem").text()
            assert "mcp.json: not valid JSON" in problem
            chat = page(window, "chatPage")
            type_and_send(chat, "Hi")
            await wait_until(lambda: last_answer(chat).status == "done", 20, "an answer all the same")

    run(qloop, go())


def test_desktop_mcp_panel_and_log_never_show_env_secrets(qloop, fake_server, tmp_path, monkeypatch):
    """Regression (#19 item 2): the panel's tooltip and the server's log (created 0644) showed a ${env:NAME} value
    of `args` expanded."""
    monkeypatch.setenv("MCP_SECRET", "s3cr3t-value-42")
    entry = stdio_entry(args=["-X", "key=${env:MCP_SECRET}", "-m", "LLM.tests.fakes.mcp_server"])
    mcp_json = write_mcp_json(tmp_path / "mcp.json", {"fake": entry})

    async def go():
        async with open_window(tmp_path, openai_yaml(fake_server.url), mcp_config=mcp_json) as window:
            await mcp_ready(window)
            p = panel(window)
            await wait_until(lambda: p.server_item("fake") is not None and p.server_item("fake").text(1) == "ready",
                             10, "the server in the panel")
            item = p.server_item("fake")
            return [item.toolTip(column) for column in range(3)] + [item.text(column) for column in range(3)]

    shown = run(qloop, go())
    assert "key=${env:MCP_SECRET}" in shown[0] and not any("s3cr3t" in text for text in shown)
    log = tmp_path / "logs" / "mcp-fake.log"
    assert "key=${env:MCP_SECRET}" in log.read_text() and "s3cr3t" not in log.read_text()
    assert log.stat().st_mode & 0o777 == 0o600


def test_desktop_mcp_always_allow_is_kept_per_server_and_tool(qloop, fake_server, tmp_path):
    """Regression (#19 item 3): servers `x.y` and `x_y` (names that sanitise alike) each have `add`; "Always allow"
    for one server's tool must not approve the other's, and each name keeps its server."""
    mcp_json = write_mcp_json(tmp_path / "mcp.json", {"x.y": stdio_entry(), "x_y": stdio_entry()})
    fake_server.script({"tool_calls": [{"name": "x_y__add", "arguments": {"a": 1, "b": 1}}]}, {"text": "2"},
                       {"tool_calls": [{"name": "x_y_2__add", "arguments": {"a": 2, "b": 2}}]}, {"text": "4"})
    interaction = ScriptedInteraction(ApprovalDecision.ALWAYS, ApprovalDecision.ONCE)

    async def go():
        async with open_window(tmp_path, openai_yaml(fake_server.url), interaction=interaction,
                               mcp_config=mcp_json) as window:
            await mcp_ready(window, "x.y")
            await mcp_ready(window, "x_y")
            tools = page(window, "toolChatPage")
            registry = window.ctx.runtime.tools
            assert (registry.get("x_y__add").server, registry.get("x_y_2__add").server) == ("x_y", "x.y")
            type_and_send(tools, "Add")
            await wait_until(lambda: last_answer(tools).status == "done", 30)
            type_and_send(tools, "Add on the other server")
            await wait_until(lambda: len(tools.conversation.messages) == 4 and last_answer(tools).status == "done", 30)
            return [card.output for m in tools.conversation.messages for card in getattr(m, "tool_cards", [])]

    outputs = run(qloop, go())
    assert outputs == ["2", "4"]
    assert interaction.asked == [("x_y__add", {"a": 1, "b": 1}), ("x_y_2__add", {"a": 2, "b": 2})]
    saved = json.loads(mcp_json.read_text())["mcpServers"]
    assert saved["x_y"]["autoApprove"] == ["add"] and "autoApprove" not in saved["x.y"]
