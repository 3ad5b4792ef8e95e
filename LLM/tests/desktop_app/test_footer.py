"""The footer under the transcript (prompt, Send/Stop, New chat, status line, context meter) at 1000x700:
long status text never pushes the buttons or the settings out of the window, sending moves nothing, and a
model switch clears what the footer said about the previous model."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPoint, QRect
from PySide6.QtWidgets import QSplitter, QWidget

from LLM.tests.desktop_app.harness import (
    button,
    last_answer,
    open_window,
    openai_yaml,
    page,
    run,
    select_model,
    type_and_send,
    wait_until,
)

LONG_STATUSES = [
    "Step 1 of 8  ·  native mode  ·  tools sent  ·  tool_choice calculator (grammar)",
    "Not saved: database is locked (the history file /home/someone/.local/share/llm-workbench/history.sqlite3 "
    "is used by another program); the answer stays in this window until you close it",
]
BASE = ("  base:\n    backend: openai\n    server_url: \"{url}/v1\"\n    model_name: base-model\n"
        "    display_name: \"Base model\"\n    model_type: base\n")


def _in_window(widget: QWidget) -> QRect:
    window = widget.window()
    return QRect(widget.mapTo(window, QPoint(0, 0)), widget.size())


def _outside(window: QWidget, chat: QWidget, width: int = 1000) -> list[str]:
    """The footer's buttons and the settings panel that reach past the window's edges (empty when all fit)."""
    problems = []
    if window.width() != width:
        problems.append(f"the window grew to {window.width()} px")
    for widget in (button(chat, "sendButton"), button(chat, "stopButton"), chat.findChild(QWidget, "sidePanel")):
        rect = _in_window(widget)
        if not window.rect().contains(rect) or widget.width() < widget.minimumSizeHint().width():
            problems.append(f"{widget.objectName()} at {rect.getRect()} in a {window.width()} px window")
    return problems


def _geometries(chat: QWidget) -> dict[str, object]:
    """Where the panels are: the splitter's sizes and the settings panel, Send and the prompt in the window."""
    splitter = chat.findChild(QWidget, "chatColumn").parentWidget()
    assert isinstance(splitter, QSplitter)
    return {"splitter": splitter.sizes(), "side": _in_window(chat.findChild(QWidget, "sidePanel")).getRect(),
            "send": _in_window(button(chat, "sendButton")).getRect(),
            "body": _in_window(chat.window().findChild(QWidget, "pageTabs")).getRect()}


@pytest.mark.parametrize("size", [(1000, 700), (1600, 1000)], ids=["narrow", "wide"])
@pytest.mark.parametrize("status", LONG_STATUSES, ids=["tool-step", "not-saved"])
@pytest.mark.parametrize("name", ["chatPage", "toolChatPage"], ids=["chat", "tool-chat"])
def test_footer_long_status_keeps_send_stop_and_settings_in_the_window(qloop, fake_server, tmp_path, name, status,
                                                                       size):
    """Regression (#22): at 1000x700 the status line neither wrapped nor elided, so a long status pushed
    Send, Stop and the settings panel out of the window (and the tab widget took the width of its widest page,
    hidden ones too). It elides now, the whole text in its tooltip."""

    async def go():
        async with open_window(tmp_path, openai_yaml(fake_server.url)) as window:
            window.resize(*size)
            chat = page(window, name)
            window.tabs.setCurrentWidget(chat)
            chat.activity.setText(status)
            try:
                await wait_until(lambda: not _outside(window, chat, size[0]), timeout=5, what="the footer to fit")
            except AssertionError:
                pass
            assert _outside(window, chat, size[0]) == []
            assert chat.activity.toolTip() == status and chat.activity.text() == status

    run(qloop, go())


@pytest.mark.parametrize("name", ["chatPage", "toolChatPage"], ids=["chat", "tool-chat"])
def test_footer_sending_moves_neither_the_splitter_nor_the_settings(qloop, fake_server, tmp_path, name):
    """Regression (#22): panels jumped on every send as the status line's text changed its width."""
    fake_server.script({"text": "A slow answer " * 8, "n_chunks": 8, "delay_s": 0.15,
                        "usage": {"prompt_tokens": 1200, "completion_tokens": 30, "total_tokens": 1230}})

    async def go():
        async with open_window(tmp_path, openai_yaml(fake_server.url)) as window:
            window.resize(1000, 700)
            chat = page(window, name)
            window.tabs.setCurrentWidget(chat)
            await wait_until(lambda: window.width() == 1000, what="the window at 1000 px")
            before = _geometries(chat)
            type_and_send(chat, "Tell me something long enough to stream for a while.")
            await wait_until(lambda: chat.busy and fake_server.chunks_sent() > 2, what="the answer streaming")
            during = _geometries(chat)
            await wait_until(lambda: not chat.busy and last_answer(chat).status == "done", what="the answer")
            after = _geometries(chat)
            assert during == before and after == before

    run(qloop, go())


def test_footer_base_model_note_is_cleared_when_switching_to_an_instruct_model(qloop, fake_server, tmp_path):
    """Regression (#22): the tool chat kept "This is a base model…" after switching to an instruct model."""

    async def go():
        yaml = openai_yaml(fake_server.url, "chat") + BASE.format(url=fake_server.url)
        async with open_window(tmp_path, yaml) as window:
            tools = page(window, "toolChatPage")
            window.tabs.setCurrentWidget(tools)
            select_model(window, "base")
            await wait_until(lambda: tools.activity.text().startswith("This is a base model"), what="base note")
            select_model(window, "chat")
            await wait_until(lambda: tools.model_id == "chat", what="the switch")
            assert "base model" not in tools.activity.text()

    run(qloop, go())


def test_footer_base_model_metrics_are_cleared_when_switching_to_an_instruct_model(qloop, fake_server, tmp_path):
    """Regression (#22): the Chat tab kept a base model's metrics summary after a switch to an instruct model."""
    fake_server.script({"chunks": [" upon", " a time"]})

    async def go():
        yaml = openai_yaml(fake_server.url, "chat") + BASE.format(url=fake_server.url)
        async with open_window(tmp_path, yaml) as window:
            chat = page(window)
            select_model(window, "base")
            chat.completion_editor.setPlainText("Once")
            await wait_until(lambda: chat.completion_editor.isVisible(), what="completion view")
            button(chat, "sendButton").click()
            await wait_until(lambda: "finish: stop" in chat.activity.text() and not chat.busy, what="metrics")
            select_model(window, "chat")
            await wait_until(lambda: chat.model_id == "chat", what="the switch")
            assert "finish" not in chat.activity.text()

    run(qloop, go())
