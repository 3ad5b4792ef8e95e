"""The tool chat page against the fake server: tool cards, fallback parsing, approvals, loop guards."""

from __future__ import annotations

import json

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox

from LLM.desktop_app.interaction import ApprovalDecision
from LLM.tests.desktop_app.harness import (
    ScriptedInteraction,
    button,
    click,
    last_answer,
    open_window,
    openai_yaml,
    page,
    run,
    transcript,
    type_and_send,
    wait_until,
)

CALC = {"name": "calculator", "arguments": {"expression": "2+3"}}
WRITE = {"name": "write_file", "arguments": {"path": "notes.txt", "content": "hello"}}


def test_desktop_tools_native_calculator_call_shows_a_card_with_the_result(qloop, fake_server, tmp_path):
    fake_server.script({"tool_calls": [CALC]}, {"text": "The answer is 5."})

    async def go():
        async with open_window(tmp_path, openai_yaml(fake_server.url)) as window:
            tools = page(window, "toolChatPage")
            window.tabs.setCurrentWidget(tools)
            type_and_send(tools, "What is 2+3?")
            await wait_until(lambda: last_answer(tools).status == "done", what="tool answer")
            answer = last_answer(tools)
            (card,) = answer.tool_cards
            assert (card.name, card.arguments, card.source, card.ok, card.output) == (
                "calculator", {"expression": "2+3"}, "native", True, "5")
            assert card.duration_ms is not None
            (card_widget,) = transcript(tools).widget_for(answer.id).tool_cards()
            shown = card_widget.text()
            assert "calculator" in shown and "native call" in shown and "→ 5" in shown and "ms" in shown
            assert json.loads(card_widget.arguments.text()) == {"expression": "2+3"}
            assert answer.content == "The answer is 5."
            assert answer.metrics.finish_reason == "stop"
            assert answer.iteration == 2

    run(qloop, go())
    first = fake_server.requests()[0]["body"]
    assert sorted(t["function"]["name"] for t in first["tools"]) == ["calculator", "get_current_time"]


def test_desktop_tools_text_call_is_parsed_by_the_fallback_and_marked_so(qloop, fake_server, tmp_path):
    text = 'Let me compute.\n<tool_call>\n{"name": "calculator", "arguments": {"expression": "6*7"}}\n</tool_call>'
    fake_server.script({"chunks": [text[:20], text[20:50], text[50:]]}, {"text": "It is 42."})

    async def go():
        async with open_window(tmp_path, openai_yaml(fake_server.url)) as window:
            tools = page(window, "toolChatPage")
            tools.tool_mode.setCurrentIndex(tools.tool_mode.findData("fallback"))
            type_and_send(tools, "6 times 7?")
            await wait_until(lambda: last_answer(tools).status == "done")
            answer = last_answer(tools)
            (card,) = answer.tool_cards
            assert card.source == "fallback" and card.output == "42"
            assert "<tool_call>" not in transcript(tools).plain_text()
            assert "parsed from text (fallback)" in transcript(tools).plain_text()
            assert answer.content == "Let me compute.\n\nIt is 42."

    run(qloop, go())
    first = fake_server.requests()[0]["body"]
    assert "tools" not in first and "calculator" in first["messages"][0]["content"]


def test_desktop_tools_denied_approval_does_not_run_the_tool(qloop, fake_server, tmp_path):
    fake_server.script({"tool_calls": [WRITE]}, {"text": "I could not write it."})
    interaction = ScriptedInteraction(ApprovalDecision.DENY)

    async def go():
        async with open_window(tmp_path, openai_yaml(fake_server.url), interaction=interaction) as window:
            tools = page(window, "toolChatPage")
            tools.set_tool_enabled("write_file", True)
            type_and_send(tools, "Write notes.txt")
            await wait_until(lambda: last_answer(tools).status == "done")
            (card,) = last_answer(tools).tool_cards
            assert card.ok is False and "denied" in card.error
            assert "denied" in transcript(tools).plain_text()

    run(qloop, go())
    assert interaction.asked == [("write_file", {"path": "notes.txt", "content": "hello"})]
    assert not (tmp_path / "notes.txt").exists()
    tool_message = fake_server.requests()[1]["body"]["messages"][-1]
    assert tool_message["role"] == "tool" and "denied" in tool_message["content"]


def test_desktop_tools_always_allow_asks_once_per_chat(qloop, fake_server, tmp_path):
    second = {"name": "write_file", "arguments": {"path": "more.txt", "content": "again"}}
    fake_server.script({"tool_calls": [WRITE]}, {"tool_calls": [second]}, {"text": "Done."},
                       {"tool_calls": [WRITE]}, {"text": "Done again."})
    interaction = ScriptedInteraction(ApprovalDecision.ALWAYS, ApprovalDecision.DENY)

    async def go():
        async with open_window(tmp_path, openai_yaml(fake_server.url), interaction=interaction) as window:
            tools = page(window, "toolChatPage")
            tools.set_tool_enabled("write_file", True)
            type_and_send(tools, "Write two files")
            await wait_until(lambda: last_answer(tools).status == "done")
            assert [c.ok for c in last_answer(tools).tool_cards] == [True, True]
            assert len(interaction.asked) == 1
            window.tabs.setCurrentWidget(tools)
            click(window.sidebar.new_button)  # "always" is per chat
            type_and_send(tools, "Write again")
            await wait_until(lambda: tools.conversation.messages and last_answer(tools).status == "done")
            assert [c.ok for c in last_answer(tools).tool_cards] == [False]

    run(qloop, go())
    assert len(interaction.asked) == 2
    assert (tmp_path / "notes.txt").read_text() == "hello" and (tmp_path / "more.txt").read_text() == "again"


def test_desktop_tools_stop_while_waiting_for_approval(qloop, fake_server, tmp_path):
    fake_server.script({"tool_calls": [WRITE]})
    interaction = ScriptedInteraction(None)  # never answers

    async def go():
        async with open_window(tmp_path, openai_yaml(fake_server.url), interaction=interaction) as window:
            tools = page(window, "toolChatPage")
            tools.set_tool_enabled("write_file", True)
            type_and_send(tools, "Write it")
            await wait_until(lambda: interaction.asked, what="approval question")
            assert "waiting for your approval" in transcript(tools).plain_text()
            click(button(tools, "stopButton"))
            assert last_answer(tools).status == "stopped" and button(tools, "sendButton").isEnabled()
            await wait_until(lambda: interaction.cancelled, what="question withdrawn")

    run(qloop, go())
    assert not (tmp_path / "notes.txt").exists()


def test_desktop_tools_max_iterations_guard_is_shown(qloop, fake_server, tmp_path):
    other = {"name": "calculator", "arguments": {"expression": "1+1"}}
    fake_server.script({"tool_calls": [CALC]}, {"tool_calls": [other]}, {"text": "Final without tools."})

    async def go():
        async with open_window(tmp_path, openai_yaml(fake_server.url)) as window:
            tools = page(window, "toolChatPage")
            tools.max_iterations.setValue(2)
            type_and_send(tools, "Loop")
            await wait_until(lambda: last_answer(tools).status == "done")
            answer = last_answer(tools)
            assert [n.kind for n in answer.parts if hasattr(n, "kind")] == ["max_iterations"]
            assert "max iterations: reached max_iterations (2)" in transcript(tools).plain_text()
            assert answer.metrics.finish_reason == "max_iterations"
            assert answer.content == "Final without tools."

    run(qloop, go())
    assert len(fake_server.requests()) == 3


def test_desktop_tools_list_defaults_and_schema_tooltips(qloop, fake_server, tmp_path):
    async def go():
        async with open_window(tmp_path, openai_yaml(fake_server.url)) as window:
            tools = page(window, "toolChatPage")
            assert tools.enabled_tools() == ["calculator", "get_current_time"]
            items = {tools.tool_list.item(i).data(Qt.ItemDataRole.UserRole): tools.tool_list.item(i)
                     for i in range(tools.tool_list.count())}
            assert '"expression"' in items["calculator"].toolTip()
            assert "asks first" in items["write_file"].text() and "approval" in items["write_file"].toolTip()
            assert tools.tool_mode.currentData() is None and "auto" in tools.tool_mode.currentText()

    run(qloop, go())


def test_desktop_tools_tool_choice_forces_the_first_call(qloop, fake_server, tmp_path):
    fake_server.script({"tool_calls": [CALC]}, {"text": "It is 5."})

    async def go():
        async with open_window(tmp_path, openai_yaml(fake_server.url)) as window:
            tools = page(window, "toolChatPage")
            window.tabs.setCurrentWidget(tools)
            combo = tools.findChild(QComboBox, "toolChoiceCombo")
            assert [combo.itemData(i) for i in range(combo.count())] == [
                "auto", "required", "none", "calculator", "get_current_time"]
            combo.setCurrentIndex(combo.findData("calculator"))
            type_and_send(tools, "2+3?")
            await wait_until(lambda: last_answer(tools).status == "done", what="tool answer")
            tools.set_tool_enabled("calculator", False)  # a disabled tool cannot stay the forced choice
            assert combo.currentData() == "auto" and combo.findData("calculator") < 0

    run(qloop, go())
    first, second = (r["body"] for r in fake_server.requests())
    assert first["tool_choice"] == {"type": "function", "function": {"name": "calculator"}}
    assert "tool_choice" not in second
