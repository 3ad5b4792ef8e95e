"""The tool chat as a workbench: each step's raw exchange, edit a call or a result and go on, re-run a step.
Against the fake server, asserting on what it received."""

from __future__ import annotations

import json
import os
import subprocess

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QLabel, QPlainTextEdit, QPushButton, QToolButton

from LLM.core.history import HistoryStore
from LLM.desktop_app.widgets.step_inspector import StepInspector
from LLM.tests.fakes.handle import FakeServerHandle
from LLM.tests.desktop_app.harness import (
    ScriptedInteraction,
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

CALC = {"name": "calculator", "arguments": {"expression": "6*7"}}


def bodies(fake_server) -> list[dict]:
    return [r["body"] for r in fake_server.requests() if "body" in r]


async def tool_turn(window, text: str):
    tools = page(window, "toolChatPage")
    window.tabs.setCurrentWidget(tools)
    type_and_send(tools, text)
    await wait_until(lambda: last_answer(tools).final, what="the tool answer")
    return tools


def card_button(tools, message_id: str, index: int, name: str) -> QToolButton:
    card = transcript(tools).widget_for(message_id).tool_cards()[index]
    found = card.findChild(QToolButton, name)
    assert found is not None and not found.isHidden(), name
    return found


def test_desktop_replay_inspector_shows_the_exact_exchange_and_copies_it(qloop, fake_server, tmp_path):
    fake_server.script({"tool_calls": [CALC]}, {"text": "It is 42."})

    async def go():
        async with open_window(tmp_path, openai_yaml(fake_server.url)) as window:
            tools = await tool_turn(window, "What is 6*7?")
            answer = last_answer(tools)
            assert [s.iteration for s in answer.steps] == [1, 2]
            widget = transcript(tools).widget_for(answer.id)
            step_buttons = [b for b in widget.findChildren(QToolButton, "stepButton")]
            assert len(step_buttons) == 2
            click(step_buttons[0])
            await wait_until(lambda: tools.replay.inspectors, what="the inspector")
            inspector: StepInspector = tools.replay.inspectors[-1]
            sent = bodies(fake_server)[0]
            assert json.loads(inspector.request_view.toPlainText()) == sent
            parsed = json.loads(inspector.parsed_view.toPlainText())
            assert parsed["calls"][0]["name"] == "calculator" and parsed["calls"][0]["source"] == "native"
            assert parsed["native_tool_calls"][0]["function"]["name"] == "calculator"
            assert "Step 1" in inspector.summary.text() and "auto mode" in inspector.summary.text()
            inspector.findChild(QPushButton, "copyRequestJson").click()
            assert json.loads(QGuiApplication.clipboard().text()) == sent
            inspector.findChild(QPushButton, "copyRequestCurl").click()
            command = QGuiApplication.clipboard().text()
            assert inspector.step.url.endswith("/v1/chat/completions")
            return command, sent

    command, sent = run(qloop, go())
    # The copied command really sends the same request.
    fake_server.script({"text": "again"})
    before = len(bodies(fake_server))
    done = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=30, env=dict(os.environ))
    assert done.returncode == 0, done.stderr
    assert bodies(fake_server)[before] == sent


def test_desktop_replay_edited_result_goes_back_and_the_old_answer_stays(qloop, fake_server, tmp_path):
    fake_server.script({"tool_calls": [CALC]}, {"text": "It is 42."}, {"text": "It is 50."})
    interaction = ScriptedInteraction(texts=("50",))

    async def go():
        async with open_window(tmp_path, openai_yaml(fake_server.url), interaction=interaction) as window:
            tools = await tool_turn(window, "What is 6*7?")
            old = last_answer(tools)
            click(card_button(tools, old.id, 0, "editResultButton"))
            await wait_until(lambda: last_answer(tools).id != old.id and last_answer(tools).final,
                             what="the replayed answer")
            new = last_answer(tools)
            assert new.content == "It is 50." and new.tool_cards[0].output == "50"
            assert [s.iteration for s in new.steps] == [1, 2]  # step 1 kept, step 2 new
            sent = bodies(fake_server)[2]["messages"]
            assert [m["role"] for m in sent if m["role"] != "system"] == ["user", "assistant", "tool"]
            assert sent[-1]["content"] == "50"
            assert transcript(tools).widget_for(new.id).branch_text() == "2/2"
            assert old.id in tools.conversation.nodes and old.content == "It is 42."
            assert ("text", "Edit the result", "42") in interaction.questions

    run(qloop, go())


def test_desktop_replay_edited_arguments_run_the_tool_again(qloop, fake_server, tmp_path):
    fake_server.script({"tool_calls": [CALC]}, {"text": "It is 42."}, {"text": "It is 10."})
    interaction = ScriptedInteraction(texts=('{"expression": "2*5"}',))

    async def go():
        async with open_window(tmp_path, openai_yaml(fake_server.url), interaction=interaction) as window:
            tools = await tool_turn(window, "What is 6*7?")
            old = last_answer(tools)
            click(card_button(tools, old.id, 0, "editArgumentsButton"))
            await wait_until(lambda: last_answer(tools).id != old.id and last_answer(tools).final,
                             what="the replayed answer")
            new = last_answer(tools)
            card = new.tool_cards[0]
            assert (card.arguments, card.ok, card.output) == ({"expression": "2*5"}, True, "10")
            sent = bodies(fake_server)[2]["messages"]
            call = next(m for m in sent if m.get("tool_calls"))["tool_calls"][0]
            assert json.loads(call["function"]["arguments"]) == {"expression": "2*5"}
            assert sent[-1]["role"] == "tool" and sent[-1]["content"] == "10"

    run(qloop, go())


def test_desktop_replay_bad_arguments_keep_the_dialog_open_with_the_reason(qloop, fake_server, tmp_path):
    """Regression (#22): edited arguments that were not JSON closed the dialog, lost the edit and put the reason
    in grey footer text. The question stays open with the reason under the field until the text parses."""
    fake_server.script({"tool_calls": [CALC]}, {"text": "It is 42."}, {"text": "It is 10."})
    interaction = ScriptedInteraction(texts=("[1, 2", "[1, 2]", '{"expression": "2*5"}'))

    async def go():
        async with open_window(tmp_path, openai_yaml(fake_server.url), interaction=interaction) as window:
            tools = await tool_turn(window, "What is 6*7?")
            old = last_answer(tools)
            assert await tools.replay.replay(old.id, 0, "edit_arguments")
            await wait_until(lambda: last_answer(tools).id != old.id and last_answer(tools).final,
                             what="the replayed answer")
            assert interaction.text_errors[0].startswith("the arguments are not JSON (")
            assert interaction.text_errors[1:] == ["the arguments must be a JSON object ({...})"]
            assert last_answer(tools).tool_cards[0].arguments == {"expression": "2*5"}

    run(qloop, go())


def test_desktop_replay_cancelled_edit_changes_nothing(qloop, fake_server, tmp_path):
    fake_server.script({"tool_calls": [CALC]}, {"text": "It is 42."})
    interaction = ScriptedInteraction(texts=("[1, 2", None))

    async def go():
        async with open_window(tmp_path, openai_yaml(fake_server.url), interaction=interaction) as window:
            tools = await tool_turn(window, "What is 6*7?")
            old = last_answer(tools)
            assert not await tools.replay.replay(old.id, 0, "edit_arguments")
            assert len(interaction.text_errors) == 1
            assert last_answer(tools).id == old.id and len(tools.conversation.nodes) == 2

    run(qloop, go())


def test_desktop_replay_rerun_step_uses_the_tool_choice_chosen_now(qloop, fake_server, tmp_path):
    fake_server.script({"tool_calls": [CALC]}, {"text": "It is 42."}, {"text": "No tools this time."})

    async def go():
        async with open_window(tmp_path, openai_yaml(fake_server.url)) as window:
            tools = await tool_turn(window, "What is 6*7?")
            old = last_answer(tools)
            tools.tool_choice.setCurrentIndex(tools.tool_choice.findData("none"))
            click(card_button(tools, old.id, 0, "rerunStepButton"))
            await wait_until(lambda: last_answer(tools).id != old.id and last_answer(tools).final,
                             what="the re-run answer")
            new = last_answer(tools)
            assert new.content == "No tools this time." and not new.tool_cards
            body = bodies(fake_server)[2]
            assert body["tool_choice"] == "none"
            assert [m["role"] for m in body["messages"] if m["role"] != "system"] == ["user"]

    run(qloop, go())


def test_desktop_forced_call_says_its_strings_were_capped(qloop, tmp_path):
    """Regression (#19, forced calls): a grammar-forced call caps every string without maxLength at 200
    characters and the window did not say so; the tool card and the step's inspector do now, and so does the
    saved step."""
    # The harness's max_new_tokens (64) is what caps the expression (the grammar fits the call within it).
    capped = "forced call, to fit max_tokens 64: strings capped at 17 characters (calculator.expression)"
    server = FakeServerHandle(None, "--props", "no-tools").wait_ready()  # answers /props: it takes grammars
    try:
        call = '<tool_call>\n{"name": "calculator", "arguments": {"expression": "6*7"}}\n</tool_call>'
        server.script({"text": call}, {"text": "It is 42."})

        async def go():
            async with open_window(tmp_path, openai_yaml(server.url)) as window:
                tools = page(window, "toolChatPage")
                window.tabs.setCurrentWidget(tools)
                tools.tool_mode.setCurrentIndex(tools.tool_mode.findData("fallback"))
                tools.tool_choice.setCurrentIndex(tools.tool_choice.findData("calculator"))
                type_and_send(tools, "What is 6*7?")
                await wait_until(lambda: last_answer(tools).final, what="the tool answer")
                answer = last_answer(tools)
                assert [s.constraint_note for s in answer.steps] == [capped, ""]
                widget = transcript(tools).widget_for(answer.id)
                (card,) = widget.tool_cards()
                await wait_until(lambda: capped in card.text(), what="the note on the tool card")
                assert not card.note.isHidden()
                click(widget.findChildren(QToolButton, "stepButton")[0])
                await wait_until(lambda: tools.replay.inspectors, what="the inspector")
                assert capped in tools.replay.inspectors[-1].summary.text()
                return tools.conversation.id, answer.id

        conversation_id, answer_id = run(qloop, go())
        assert "grammar" in bodies(server)[0]
    finally:
        server.stop()
    with HistoryStore(tmp_path / "data" / "history.sqlite3") as store:
        saved = store.load(conversation_id)
    assert [s.constraint_note for s in saved.nodes[answer_id].steps] == [capped, ""]


def _text_dialog():
    from LLM.desktop_app.dialogs import TextDialog

    shown = [w for w in QApplication.topLevelWidgets() if isinstance(w, TextDialog) and w.isVisible()]
    return shown[0] if shown else None


def test_desktop_replay_edit_dialog_refuses_bad_json_and_ctrl_enter_confirms(qloop, fake_server, tmp_path):
    """Regression (#22): the real edit dialog. Ctrl+Enter confirms; bad JSON keeps it open with the session's
    reason under the field and the typed text intact; Tab leaves the field instead of inserting a tab."""
    from LLM.desktop_app.dialogs import QtInteraction

    fake_server.script({"tool_calls": [CALC]}, {"text": "It is 42."}, {"text": "It is 10."})

    async def go():
        async with open_window(tmp_path, openai_yaml(fake_server.url), interaction=QtInteraction()) as window:
            tools = await tool_turn(window, "What is 6*7?")
            old = last_answer(tools)
            click(card_button(tools, old.id, 0, "editArgumentsButton"))
            await wait_until(lambda: _text_dialog() is not None, what="the edit dialog")
            dialog = _text_dialog()
            editor = dialog.findChild(QPlainTextEdit, "textEditor")
            error = dialog.findChild(QLabel, "textError")
            assert editor.tabChangesFocus()
            editor.setFocus()
            editor.setPlainText('{"expression": "2*5"')
            QTest.keyClick(editor, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
            await wait_until(lambda: error.isVisible(), what="the error under the field")
            assert dialog.isVisible() and editor.toPlainText() == '{"expression": "2*5"'
            assert error.text().startswith("the arguments are not JSON (")
            assert last_answer(tools).id == old.id
            editor.setPlainText('{"expression": "2*5"}')
            QTest.keyClick(editor, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
            await wait_until(lambda: last_answer(tools).id != old.id and last_answer(tools).final,
                             what="the replayed answer")
            assert _text_dialog() is None
            card = last_answer(tools).tool_cards[0]
            assert (card.arguments, card.output) == ({"expression": "2*5"}, "10")

    run(qloop, go())
