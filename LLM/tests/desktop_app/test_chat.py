"""The chat page of the real window against the fake server: streaming, Stop, switching, settings."""

from __future__ import annotations

import asyncio

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QLabel, QPlainTextEdit

from LLM.desktop_app.widgets.markdown_view import MarkdownView
from LLM.desktop_app.interaction import SwitchDecision
from LLM.tests.desktop_app.harness import (
    ScriptedInteraction,
    button,
    click,
    last_answer,
    open_window,
    openai_yaml,
    page,
    prompt_edit,
    run,
    select_model,
    transcript,
    type_and_send,
    wait_until,
)

SLOW = {"text": " ".join(f"word{i}" for i in range(400)), "delay_s": 0.03}


def test_desktop_chat_send_streams_text_and_shows_metrics(qloop, fake_server, tmp_path):
    fake_server.script({"chunks": ["Hello", " from", " the", " **fake**", " server."], "delay_s": 0.01})

    async def go():
        async with open_window(tmp_path, openai_yaml(fake_server.url)) as window:
            chat = page(window)
            type_and_send(chat, "Hi there")
            assert not button(chat, "sendButton").isEnabled() and button(chat, "stopButton").isEnabled()
            await wait_until(lambda: last_answer(chat).status == "done", what="answer done")
            text = transcript(chat).plain_text()
            assert "Hi there" in text and "Hello from the fake server." in text
            assert prompt_edit(chat).toPlainText() == ""
            assert button(chat, "sendButton").isEnabled() and not button(chat, "stopButton").isEnabled()
            widget = transcript(chat).widget_for(last_answer(chat).id)
            metrics = widget.metrics.text()
            assert "s to first token" in metrics and "tok/s" in metrics and "finish: stop" in metrics
            assert "5 prompt + 5 completion tokens" in metrics

    run(qloop, go())
    body = fake_server.requests()[0]["body"]
    assert body["messages"] == [{"role": "user", "content": "Hi there"}]
    assert body["model"] == "fake-model" and body["temperature"] == 0.3 and body["max_tokens"] == 64


def test_desktop_chat_shift_enter_adds_a_line_and_does_not_send(qloop, fake_server, tmp_path):
    async def go():
        async with open_window(tmp_path, openai_yaml(fake_server.url)) as window:
            chat = page(window)
            edit = prompt_edit(chat)
            edit.setFocus()
            QTest.keyClicks(edit, "line one")
            QTest.keyClick(edit, Qt.Key.Key_Return, Qt.KeyboardModifier.ShiftModifier)
            QTest.keyClicks(edit, "line two")
            await asyncio.sleep(0)
            assert edit.toPlainText() == "line one\nline two"
            assert chat.conversation.messages == []
            QTest.keyClick(edit, Qt.Key.Key_Return)
            await wait_until(lambda: chat.conversation.messages and last_answer(chat).status == "done")
            assert chat.conversation.messages[0].content == "line one\nline two"

    run(qloop, go())


def test_desktop_chat_stop_closes_the_server_stream_and_keeps_the_partial_answer(qloop, fake_server, tmp_path):
    fake_server.script(SLOW)

    async def go():
        async with open_window(tmp_path, openai_yaml(fake_server.url)) as window:
            chat = page(window)
            type_and_send(chat, "Tell me a long story")
            await wait_until(lambda: "word3" in last_answer(chat).content, what="first words")
            click(button(chat, "stopButton"))
            # Usable at once, without waiting for anything.
            assert button(chat, "sendButton").isEnabled() and not button(chat, "stopButton").isEnabled()
            answer = last_answer(chat)
            assert answer.status == "stopped" and answer.metrics.finish_reason == "cancelled" and answer.stop_reason is None
            partial = answer.content
            assert partial.startswith("word0 word1")
            event = await asyncio.to_thread(fake_server.wait_for_event, "disconnect", 30)
            assert event["after_chunks"] < 400
            await asyncio.sleep(0.2)  # nothing late may be appended to the stopped answer
            assert last_answer(chat).content == partial
            assert "stopped" in transcript(chat).widget_for(answer.id).badge.text()
            type_and_send(chat, "Again")
            await wait_until(lambda: last_answer(chat).status == "done", what="next answer")
            assert [m.status for m in chat.conversation.messages] == ["done", "stopped", "done", "done"]

    run(qloop, go())


def test_desktop_chat_escape_stops_the_answer(qloop, fake_server, tmp_path):
    fake_server.script(SLOW)

    async def go():
        async with open_window(tmp_path, openai_yaml(fake_server.url)) as window:
            chat = page(window)
            type_and_send(chat, "Go")
            await wait_until(lambda: last_answer(chat).content, what="first words")
            QTest.keyClick(prompt_edit(chat), Qt.Key.Key_Escape)
            assert last_answer(chat).status == "stopped" and not chat.busy
            await asyncio.to_thread(fake_server.wait_for_event, "disconnect", 30)

    run(qloop, go())


def test_desktop_chat_model_switch_while_streaming_stops_and_the_next_send_uses_the_new_model(
        qloop, fake_server, tmp_path):
    fake_server.script(SLOW)

    async def go():
        interaction = ScriptedInteraction(switches=(SwitchDecision.STOP,))  # "Stop it and switch"
        async with open_window(tmp_path, openai_yaml(fake_server.url, "first", "second"),
                               interaction=interaction) as window:
            chat = page(window)
            assert chat.model_id == "first"
            type_and_send(chat, "Hello first")
            await wait_until(lambda: last_answer(chat).content, what="first words")
            select_model(window, "second")
            answer = last_answer(chat)
            await wait_until(lambda: answer.status == "stopped", what="the answer stopped for the switch")
            assert answer.metrics.finish_reason == "cancelled" and answer.stop_reason == "model switched"
            assert button(chat, "sendButton").isEnabled()
            await asyncio.to_thread(fake_server.wait_for_event, "disconnect", 30)
            partial = answer.content
            type_and_send(chat, "Hello second")
            await wait_until(lambda: last_answer(chat).status == "done", what="answer from second")
            assert answer.content == partial  # the old request's late chunks went nowhere
            assert last_answer(chat).model_id == "second"

    run(qloop, go())
    first, second = (r["body"] for r in fake_server.requests())
    assert first["model"] == "first-model" and second["model"] == "second-model"
    # The stopped partial answer stays in the history the new model sees.
    assert [m["role"] for m in second["messages"]] == ["user", "assistant", "user"]


def test_desktop_chat_reasoning_is_collapsed_until_opened(qloop, fake_server, tmp_path):
    fake_server.script({"reasoning": "Let me think about greetings.", "text": "Hello!"})

    async def go():
        async with open_window(tmp_path, openai_yaml(fake_server.url)) as window:
            chat = page(window)
            type_and_send(chat, "Hi")
            await wait_until(lambda: last_answer(chat).status == "done")
            answer = last_answer(chat)
            assert answer.reasoning == "Let me think about greetings." and answer.content == "Hello!"
            widget = transcript(chat).widget_for(answer.id)
            assert widget.reasoning_toggle.isVisible() and not widget.reasoning_view.isVisible()
            assert "think about greetings" not in transcript(chat).plain_text()
            click(widget.reasoning_toggle)
            assert widget.reasoning_view.isVisible()
            assert "think about greetings" in transcript(chat).plain_text()

    run(qloop, go())


def test_desktop_chat_regenerate_keeps_the_old_answer_as_a_branch(qloop, fake_server, tmp_path):
    fake_server.script({"text": "First answer."}, {"text": "Second answer."})

    async def go():
        async with open_window(tmp_path, openai_yaml(fake_server.url)) as window:
            chat = page(window)
            type_and_send(chat, "Question")
            await wait_until(lambda: last_answer(chat).status == "done")
            first = last_answer(chat)
            regenerate = transcript(chat).widget_for(first.id).regenerate_button
            assert regenerate.isVisible()
            click(regenerate)
            await wait_until(lambda: last_answer(chat).id != first.id and last_answer(chat).status == "done")
            text = transcript(chat).plain_text()
            assert "Second answer." in text and "First answer." not in text
            assert [m.content for m in chat.conversation.siblings(last_answer(chat))] == [
                "First answer.", "Second answer."]

    run(qloop, go())
    bodies = [r["body"]["messages"] for r in fake_server.requests()]
    assert bodies[0] == bodies[1] == [{"role": "user", "content": "Question"}]


def test_desktop_chat_copy_and_new_chat(qloop, fake_server, tmp_path):
    fake_server.script({"text": "Use `print`:\n\n```python\nprint('hi')\n```\n"})

    async def go():
        async with open_window(tmp_path, openai_yaml(fake_server.url)) as window:
            chat = page(window)
            type_and_send(chat, "Show code")
            await wait_until(lambda: last_answer(chat).status == "done")
            widget = transcript(chat).widget_for(last_answer(chat).id)
            click(widget.copy_button)
            assert QGuiApplication.clipboard().text() == last_answer(chat).content
            views = widget.findChildren(MarkdownView)
            code_views = [v for v in views if "print('hi')" in v.plain_text()]
            assert code_views
            document = code_views[0].document()
            block = document.findBlock(document.toPlainText().index("print('hi')"))
            assert block.blockFormat().nonBreakableLines()  # rendered as a code block (monospace)
            click(window.sidebar.new_button)
            assert chat.conversation.messages == [] and transcript(chat).message_widgets() == []

    run(qloop, go())


def test_desktop_chat_side_panel_settings_are_sent_and_default_from_the_model(qloop, fake_server, tmp_path):
    async def go():
        async with open_window(tmp_path, openai_yaml(fake_server.url)) as window:
            chat = page(window)
            panel = chat.panel
            assert panel.temperature.value() == 0.3 and panel.max_tokens.value() == 64
            assert panel.top_p.value_or_none() is None
            panel.system_prompt.setPlainText("You are terse.")
            panel.temperature.setValue(0.9)
            panel.top_p.setValue(0.5)
            panel.stop.setPlainText("END")
            type_and_send(chat, "Hi")
            await wait_until(lambda: last_answer(chat).status == "done")
            click(panel.reset_button)
            assert panel.temperature.value() == 0.3 and panel.system_prompt.toPlainText() == ""

    run(qloop, go())
    body = fake_server.requests()[0]["body"]
    assert body["messages"][0] == {"role": "system", "content": "You are terse."}
    assert body["temperature"] == 0.9 and body["top_p"] == 0.5 and body["stop"] == ["END"]


def test_desktop_chat_server_error_marks_the_answer_failed_and_keeps_the_chat(qloop, fake_server, tmp_path):
    fake_server.script({"text": "Fine."}, {"status": 500, "body": {"error": {"message": "out of memory"}}})

    async def go():
        async with open_window(tmp_path, openai_yaml(fake_server.url)) as window:
            chat = page(window)
            type_and_send(chat, "One")
            await wait_until(lambda: last_answer(chat).status == "done")
            type_and_send(chat, "Two")
            await wait_until(lambda: last_answer(chat).status == "failed")
            answer = last_answer(chat)
            assert answer.error.startswith("Out of memory (HTTP 500") and "Error" not in answer.error
            assert "Out of memory (HTTP 500" in transcript(chat).plain_text()
            assert [m.content for m in chat.conversation.messages][:3] == ["One", "Fine.", "Two"]
            assert button(chat, "sendButton").isEnabled()

    run(qloop, go())


def test_desktop_chat_long_answer_renders_in_frozen_segments(qloop, fake_server, tmp_path):
    """Regression guard for lag on long answers: finished paragraphs are not parsed again."""
    paragraphs = [" ".join(f"p{p}w{w}" for w in range(60)) for p in range(40)]
    text = "\n\n".join(paragraphs)
    fake_server.script({"text": text, "n_chunks": 2000})

    async def go():
        async with open_window(tmp_path, openai_yaml(fake_server.url)) as window:
            chat = page(window)
            type_and_send(chat, "Long please")
            await wait_until(lambda: last_answer(chat).status == "done", timeout=30)
            widget = transcript(chat).widget_for(last_answer(chat).id)
            views = widget.findChildren(MarkdownView)
            assert len(views) > 5
            shown = transcript(chat).plain_text()
            assert "p0w0" in shown and "p39w59" in shown

    run(qloop, go())


def test_desktop_chat_closing_mid_answer_cancels_the_request(qloop, fake_server, tmp_path):
    fake_server.script(SLOW)

    async def go():
        async with open_window(tmp_path, openai_yaml(fake_server.url)) as window:
            chat = page(window)
            type_and_send(chat, "Go")
            await wait_until(lambda: last_answer(chat).content, what="first words")
            window.close()
            await asyncio.wait_for(window.wait_closed(), 10)
            assert last_answer(chat).status == "stopped" and len(window.ctx.tasks) == 0
            await asyncio.to_thread(fake_server.wait_for_event, "disconnect", 30)

    run(qloop, go())


def test_desktop_chat_context_meter_shows_used_of_usable_tokens(qloop, fake_server, tmp_path):
    fake_server.script({"text": "ok", "usage": {"prompt_tokens": 1200, "completion_tokens": 30, "total_tokens": 1230}})

    async def go():
        async with open_window(tmp_path, openai_yaml(fake_server.url)) as window:
            chat = page(window)
            meter = chat.findChild(QLabel, "contextMeter")
            assert meter.text() == "Context — / 3,072 tokens"  # 75% of the default 4096
            type_and_send(chat, "hello")
            await wait_until(lambda: last_answer(chat).status == "done", what="answer")
            assert meter.text() == "Context 1,230 / 3,072 tokens" and meter.property("full") is False
            click(window.sidebar.new_button)
            assert meter.text() == "Context — / 3,072 tokens"

    run(qloop, go())


def test_desktop_chat_base_model_continues_the_text_in_a_completion_view(qloop, fake_server, tmp_path):
    """model_type: base used to be accepted and ignored (pinned): the text is continued, without a template."""
    yaml = openai_yaml(fake_server.url, "chat") + (
        f"  base:\n    backend: openai\n    server_url: \"{fake_server.url}/v1\"\n    model_name: base-model\n"
        "    model_type: base\n")
    fake_server.script({"chunks": [" upon", " a time"]})

    async def go():
        async with open_window(tmp_path, yaml) as window:
            chat = page(window)
            select_model(window, "base")
            editor = chat.findChild(QPlainTextEdit, "completionEditor")
            await wait_until(lambda: editor.isVisible() and not prompt_edit(chat).isVisible(), what="completion view")
            assert button(chat, "sendButton").text() == "Continue"
            editor.setPlainText("Once")
            click(button(chat, "sendButton"))
            await wait_until(lambda: editor.toPlainText() == "Once upon a time" and not chat.busy, what="continued")
            assert "finish: stop" in chat.activity.text()
            select_model(window, "chat")
            await wait_until(lambda: transcript(chat).isVisible() and prompt_edit(chat).isVisible(), what="chat view")

    run(qloop, go())
    (request,) = fake_server.requests()
    assert request["path"] == "/v1/completions" and request["body"]["prompt"] == "Once"
    assert "messages" not in request["body"] and request["body"]["model"] == "base-model"


def test_desktop_chat_a_tool_call_in_the_plain_chat_says_what_was_called(qloop, fake_server, tmp_path):
    """Regression (#22): a tool call in the plain Chat tab showed as an empty answer ("finish: tool_calls")."""
    fake_server.script({"tool_calls": [{"name": "calculator", "arguments": {"expression": "6*7"}}]})

    async def go():
        async with open_window(tmp_path, openai_yaml(fake_server.url)) as window:
            chat = page(window)
            type_and_send(chat, "What is 6*7?")
            await wait_until(lambda: last_answer(chat).status == "done" and not chat.busy, what="answer")
            widget = transcript(chat).widget_for(last_answer(chat).id)
            await wait_until(lambda: widget.notices(), what="the notice drawn")
            (notice,) = widget.notices()
            assert notice.isVisible()
            assert 'calculator({"expression": "6*7"})' in notice.text() and "Tool chat tab" in notice.text()

    run(qloop, go())
