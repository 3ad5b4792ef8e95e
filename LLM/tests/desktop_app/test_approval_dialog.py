"""The one approval dialog: a built-in tool and an MCP tool are asked about alike, driven offscreen through the
real interaction facade (QtInteraction); where a tool acts comes from the runtime (workspace, MCP server)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QFontDatabase
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QDialogButtonBox, QLabel, QPlainTextEdit, QPushButton

from LLM.core import ApprovalDecision, Runtime, Tool, ToolCall
from LLM.core.config import BackendsConfig
from LLM.core.mcp import McpManager, parse_mcp_config
from LLM.core.tools.builtin import build_default_registry
from LLM.desktop_app.dialogs import QtInteraction
from LLM.desktop_app.interaction import approval_asker, runtime_place, tool_place
from LLM.tests.desktop_app.harness import click, run, wait_until
from LLM.tests.desktop_app.scripted_interaction import ScriptedInteraction

ANSWER_ORDER = ["Allow once", "Always allow", "Deny", "Deny and stop"]
LONG = "x" * 270  # an unbroken argument: shown whole, never cut


def builtin_write_file(workspace: Path) -> Tool:
    return build_default_registry(workspace).get("write_file")


def mcp_write() -> Tool:
    return Tool(name="files__write", description="Write a file on disk.", parameters={"type": "object"},
                fn=lambda **_: None, needs_approval=True, server="files", server_tool="write")


def open_dialog(call: ToolCall, tool: Tool, where: str):
    """Ask through the real facade; returns the pending answer and the dialog shown."""
    task = asyncio.ensure_future(QtInteraction().approve_tool(None, call, tool, where))

    async def shown():
        return await wait_until(lambda: next((w for w in QApplication.topLevelWidgets()
                                              if w.objectName() == "approvalDialog" and w.isVisible()), None),
                                10, "the approval dialog")
    return task, shown()


def answer_buttons(dialog) -> list[QPushButton]:
    """The answer buttons, left to right as drawn."""
    box = dialog.findChild(QDialogButtonBox)
    return sorted(box.findChildren(QPushButton), key=lambda b: b.mapTo(dialog, b.rect().topLeft()).x())


@pytest.mark.parametrize("kind", ["builtin", "mcp"])
def test_approval_dialog_is_one_dialog_for_builtin_and_mcp_tools(qloop, tmp_path, kind):
    """Regression (#22): built-in tools had a message box that hid the arguments and named no folder, with other
    buttons than the MCP dialog. Now both show the tool, where it acts, the description and the full arguments,
    with the same four answers in the same order, Deny the default."""
    if kind == "builtin":
        tool, call = builtin_write_file(tmp_path), ToolCall("write_file", {"path": "notes.txt", "content": LONG})
        where = tool_place(tool, tmp_path)
    else:
        tool, call = mcp_write(), ToolCall("files__write", {"path": "/tmp/x", "content": LONG})
        where = tool_place(tool, None, "npx files-server")

    async def go():
        task, shown = open_dialog(call, tool, where)
        dialog = await shown
        dialog.grab().save(str(tmp_path / f"approval-{kind}.png"))
        assert call.name in dialog.windowTitle()
        assert call.name in dialog.findChild(QLabel, "approvalHead").text()
        place = dialog.findChild(QLabel, "approvalWhere").text()
        assert (str(tmp_path) if kind == "builtin" else "files") in place and place.startswith("Where it acts:")
        if kind == "mcp":
            assert "npx files-server" in place
        assert dialog.findChild(QLabel, "approvalDescription").text() == tool.description
        box = dialog.findChild(QPlainTextEdit, "approvalArguments")
        assert box.isReadOnly() and json.loads(box.toPlainText()) == call.arguments
        assert box.font().family() == QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont).family()
        buttons = answer_buttons(dialog)
        assert [b.text() for b in buttons] == ANSWER_ORDER
        assert [b.isDefault() for b in buttons] == [False, False, True, False]
        click(buttons[0])
        return await asyncio.wait_for(task, 10)

    assert run(qloop, go()) is ApprovalDecision.ONCE


@pytest.mark.parametrize("key, button, expected", [
    pytest.param(Qt.Key.Key_Escape, None, ApprovalDecision.DENY, id="esc-denies"),
    pytest.param(Qt.Key.Key_Return, None, ApprovalDecision.DENY, id="enter-denies"),
    pytest.param(None, "approvalAllowOnce", ApprovalDecision.ONCE, id="allow-once"),
    pytest.param(None, "approvalAllowAlways", ApprovalDecision.ALWAYS, id="always"),
    pytest.param(None, "approvalDeny", ApprovalDecision.DENY, id="deny"),
    pytest.param(None, "approvalDenyAndStop", ApprovalDecision.DENY_AND_STOP, id="deny-and-stop"),
])
def test_approval_dialog_answers_map_to_decisions(qloop, tmp_path, key, button, expected):
    tool, call = builtin_write_file(tmp_path), ToolCall("write_file", {"path": "a.txt", "content": "hi"})

    async def go():
        task, shown = open_dialog(call, tool, tool_place(tool, tmp_path))
        dialog = await shown
        if key is not None:
            QTest.keyClick(dialog.focusWidget() or dialog, key)
        else:
            click(dialog.findChild(QPushButton, button))
        return await asyncio.wait_for(task, 10)

    assert run(qloop, go()) is expected


@pytest.mark.parametrize("name, server, target, workspace, expected", [
    pytest.param("write_file", None, None, Path("/work/space"), "This computer, in the workspace folder /work/space",
                 id="builtin-file-tool"),
    pytest.param("read_file", None, None, None, "This computer", id="builtin-no-workspace"),
    pytest.param("backup", None, None, Path("/work/space"),
                 "This computer, with your permissions (a tool of your own, not confined to the workspace)",
                 id="user-python-tool"),
    pytest.param("t", "files", "npx srv --root /d", None, "MCP server \u201cfiles\u201d: npx srv --root /d", id="mcp"),
    pytest.param("t", "files", None, Path("/w"), "MCP server \u201cfiles\u201d", id="mcp-unknown-target"),
])
def test_tool_place_words(name, server, target, workspace, expected):
    """Regression (#22 review): every local tool was said to act "in the workspace folder", a user's own Python tool
    too, which nothing confines: the approval question understated what was approved."""
    tool = Tool(name=name, description="", parameters={"type": "object"}, fn=lambda: None, server=server)
    assert tool_place(tool, workspace, target) == expected


def test_approval_asker_says_where_from_the_runtime_with_secrets_masked(tmp_path):
    """The asker the chat pages use passes the runtime's workspace for a local tool, and the MCP server's target
    as mcp.json shows it (the URL's token masked) for an MCP tool."""
    mcp = McpManager(parse_mcp_config(json.dumps({"mcpServers": {"files": {
        "url": "https://mcp.example/api?token=s3cret"}}}), str(tmp_path / "mcp.json")))
    runtime = Runtime(BackendsConfig(source="test"), workspace=tmp_path, mcp=mcp)
    interaction = ScriptedInteraction(ApprovalDecision.ONCE, ApprovalDecision.ONCE)
    ask = approval_asker(interaction, None, runtime)
    local = builtin_write_file(tmp_path)

    async def go():
        await ask(ToolCall("write_file", {"path": "a", "content": ""}), local)
        await ask(ToolCall("files__write", {}), mcp_write())

    asyncio.run(go())
    assert interaction.places[0] == f"This computer, in the workspace folder {tmp_path}"
    assert interaction.places[1].startswith("MCP server \u201cfiles\u201d: https://mcp.example/api")
    assert "s3cret" not in interaction.places[1]
    assert runtime_place(local, None) == "This computer"
