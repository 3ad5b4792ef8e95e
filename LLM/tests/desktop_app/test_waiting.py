"""An answer that has not begun says what it waits for and for how long; the header's starting line elides
a long path in its middle (#22)."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QLabel, QWidget

from LLM.core.servers import ServerEvent, ServerState
from LLM.desktop_app.widgets.elided_label import shorten_paths
from LLM.desktop_app.widgets.server_status import ModelServerState, ServerStatusView
from LLM.tests.desktop_app.harness import (
    fake_launcher,
    last_answer,
    open_window,
    openai_yaml,
    page,
    ScriptedInteraction,
    run,
    transcript,
    type_and_send,
    wait_until,
)
from LLM.tests.fakes.handle import free_port


def _waiting(chat):
    widget = transcript(chat).widget_for(last_answer(chat).id)
    return widget.waiting if widget is not None else None


def _waiting_text(chat) -> str:
    label = _waiting(chat)
    return label.text() if label is not None and label.isVisible() else ""


def test_waiting_slow_first_token_shows_the_elapsed_seconds_and_the_phase(qloop, fake_server, tmp_path):
    """Regression (#22): waiting showed a static "Waiting for the model…", with no elapsed time and no phase."""
    fake_server.script({"text": "At last.", "first_delay_s": 2.5})

    async def go():
        async with open_window(tmp_path, openai_yaml(fake_server.url)) as window:
            window.resize(1000, 700)
            chat = page(window)
            type_and_send(chat, "Hi")
            await wait_until(lambda: "1 s" in _waiting_text(chat), timeout=10, what="1 s waited")
            assert "reading the prompt" in _waiting_text(chat).lower()
            await wait_until(lambda: "2 s" in _waiting_text(chat), timeout=10, what="2 s waited")
            await wait_until(lambda: last_answer(chat).status == "done", timeout=30, what="the answer")
            await wait_until(lambda: not _waiting(chat).isVisible(), timeout=5, what="the waiting line gone")
            timers = [_waiting(chat).ticker, *_waiting(chat).findChildren(QTimer)]
            assert not any(timer.isActive() for timer in timers)
            assert "At last." in transcript(chat).plain_text()

    run(qloop, go())


def test_waiting_while_the_server_starts_names_the_model(qloop, tmp_path):
    """A message sent while its model loads says so, by the model's display name, not only "waiting"."""
    port = free_port()
    text = ("models:\n  m:\n    base_model: fake.gguf\n    share_server: false\n"
            f"    port: {port}\n    model_name: fake-model\n    display_name: \"Fake engine m\"\n"
            "    startup_timeout_s: 30\n")

    async def go():
        async with open_window(tmp_path, text, launcher=fake_launcher("--loading-s", "4")) as window:
            chat = page(window)
            await wait_until(lambda: str(window.findChild(QWidget, "serverStatus").property("state")) == "starting",
                             timeout=20, what="the server starting")
            type_and_send(chat, "Hi")
            await wait_until(lambda: "starting fake engine m" in _waiting_text(chat).lower(), timeout=10,
                             what="the starting phase")
            await wait_until(lambda: last_answer(chat).status == "done", timeout=60, what="the answer")
            assert not _waiting(chat).isVisible() and not _waiting(chat).ticker.isActive()

    run(qloop, go())


def test_waiting_an_open_approval_question_says_so_and_ticks(qloop, fake_server, tmp_path):
    """While the user has not answered an approval question, the answer says it waits for them (and how long);
    Stop ends the wait and its ticker."""
    fake_server.script({"tool_calls": [{"name": "write_file", "arguments": {"path": "a.txt", "content": "hi"}}]})
    interaction = ScriptedInteraction(None)  # a dialog left open

    async def go():
        async with open_window(tmp_path, openai_yaml(fake_server.url), interaction=interaction) as window:
            tools = page(window, "toolChatPage")
            window.tabs.setCurrentWidget(tools)
            tools.set_tool_enabled("write_file", True)
            type_and_send(tools, "Write it")
            await wait_until(lambda: "waiting for your approval" in _waiting_text(tools).lower(), timeout=10,
                             what="the approval phase")
            await wait_until(lambda: "1 s" in _waiting_text(tools), timeout=10, what="1 s waited")
            tools.stop()
            assert last_answer(tools).status == "stopped"
            assert not _waiting(tools).isVisible() and not _waiting(tools).ticker.isActive()

    run(qloop, go())


@pytest.mark.parametrize("size", [(1000, 700), (1600, 1000)], ids=["narrow", "wide"])
def test_waiting_header_shortens_a_long_starting_line(qloop, fake_server, tmp_path, size):
    """Regression (#22): the starting log line was cut at 160 characters, mid-path. Now a path keeps its file
    name, the line elides in the middle to the room it has (the elapsed time stays), the whole line in the
    tooltip."""
    path = "/home/someone/models/" + "very-long-folder-name/" * 8 + "Qwen2.5-7B-Instruct-Q4_K_M.gguf"
    line = f"llama_model_loader: loaded meta data with 33 key-value pairs from {path} (version GGUF V3)"

    async def go():
        async with open_window(tmp_path, openai_yaml(fake_server.url)) as window:
            window.resize(*size)
            status = window.findChild(ServerStatusView, "serverStatus")
            info = ModelServerState()
            info.apply(ServerEvent("fake", ServerState.STARTING, "loading", progress=line))
            status.show_state("fake", None, info)
            await wait_until(lambda: status.detail.width() > 0, timeout=5, what="laid out")
            shown = QLabel.text(status.detail)
            assert shown.startswith("0 s · llama_mo") and "very-long-folder-name" not in shown
            assert status.detail.fontMetrics().horizontalAdvance(shown) <= status.detail.contentsRect().width()
            assert line in status.detail.toolTip()
            if size[0] >= 1600:
                assert "…/Qwen2.5-7B-Instruct-Q4_K_M.gguf (version GGUF V3)" in shown
            assert status.mapTo(window, status.rect().topRight()).x() <= window.width()

    run(qloop, go())


@pytest.mark.parametrize("text, shown", [
    pytest.param("from /home/a/b/c.gguf (v3)", "from …/c.gguf (v3)", id="posix"),
    pytest.param("load C:\\m\\x\\y.gguf now", "load …\\y.gguf now", id="windows"),
    pytest.param("in ~/models/q/w.gguf", "in …/w.gguf", id="home"),
    pytest.param("a /tmp/x is short", "a /tmp/x is short", id="short-path-kept"),
    pytest.param("GET http://host/a/b/c", "GET http://host/a/b/c", id="url-kept"),
    pytest.param('"/a/b/c/d"', '"…/d"', id="quoted"),
])
def test_waiting_shorten_paths_keeps_the_file_name(text, shown):
    assert shorten_paths(text) == shown
