"""Helpers for the desktop window tests: a qasync loop, async waits with deadlines, scripted dialogs.

pytest-qt's waitUntil spins only Qt's loop, so a coroutine started by a click would never run.
Each test body is therefore a coroutine run with ``qloop.run_until_complete``: it clicks, then
awaits conditions with ``wait_until`` while the asyncio loop (which is Qt's loop) keeps running.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

# PySide6 before qasync: qasync binds to the first Qt binding imported.
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QComboBox, QPlainTextEdit, QPushButton, QWidget

import qasync
import shiboken6

from LLM.core.servers import LaunchSpec
from LLM.desktop_app.app import build_main_window
from LLM.desktop_app.pages.chat_page import ChatPage
from LLM.desktop_app.main_window import MainWindow
from LLM.desktop_app.widgets.transcript import TranscriptView
from LLM.tests.desktop_app.scripted_interaction import ScriptedInteraction  # noqa: F401 (re-exported for the tests)
from LLM.tests.fakes.handle import REPO_ROOT, fake_server_command
from LLM.tests.fakes.handle import async_wait_until as wait_until  # noqa: F401 (re-exported for the tests)

def qasync_loop(qapp: QApplication) -> Iterator[qasync.QEventLoop]:
    """Body of each desktop test module's ``qloop`` fixture: a qasync loop as the asyncio loop, closed after."""
    qapp.setQuitOnLastWindowClosed(False)  # a closing window must not end run_until_complete
    loop = qasync.QEventLoop(qapp)
    asyncio.set_event_loop(loop)
    try:
        yield loop
    finally:
        loop.close()
        asyncio.set_event_loop(None)


async def settle(turns: int = 3) -> None:
    """Let posted Qt events (layout requests, resizes) and queued callbacks run. Never call processEvents() inside
    a coroutine: it re-enters qasync and steps another task (a reachability probe) in the middle of this one."""
    for _ in range(turns):
        QApplication.sendPostedEvents()
        await asyncio.sleep(0)


def run(loop: asyncio.AbstractEventLoop, coro: Any, timeout: float = 90) -> Any:
    return loop.run_until_complete(asyncio.wait_for(coro, timeout))


def fake_launcher(*flags: str):
    """A launcher whose "engine" is the fake server, so a launchable model can start, crash, restart."""

    def launch(entry) -> LaunchSpec:
        # Load-time settings go on the command line, as a real engine's do: a change to them restarts the server.
        argv = fake_server_command(int(entry.port), "--context-size", str(entry.context_size), *flags)
        return LaunchSpec("fake", argv, "health",
                          entry.request_model_name, None, {"PYTHONPATH": str(REPO_ROOT)})

    return launch


def openai_yaml(url: str, *ids: str, extra: str = "") -> str:
    """Models attached to one running fake server; each sends its id + '-model' as the model name."""
    lines = ["models:"]
    for model_id in ids or ("fake",):
        lines += [
            f"  {model_id}:",
            "    backend: openai",
            f'    server_url: "{url}/v1"',
            f"    model_name: {model_id}-model",
            f'    display_name: "{model_id.title()} model"',
            "    default_params:",
            "      temperature: 0.3",
            "      max_new_tokens: 64",
        ]
    return "\n".join(lines) + "\n" + extra


@asynccontextmanager
async def open_window(tmp_path: Path, config_text: str, *, interaction: ScriptedInteraction | None = None,
                      initial_model: str | None = None, history_path: Path | None = None,
                      tools_dir: Path | None = None, mcp_config: Path | None = None,
                      **manager_options: Any) -> AsyncIterator[MainWindow]:
    """The real window on a temporary llm_backends.yaml and its own history file (default
    tmp_path/data/history.sqlite3), user tools folder (default an empty tmp_path/no-user-tools) and mcp.json
    (default none);
    every server it started is stopped after."""
    config = tmp_path / "llm_backends.yaml"
    config.write_text(config_text)
    options = {"logs_dir": tmp_path / "logs", "state_dir": tmp_path / "state", **manager_options}
    window = build_main_window(
        config, manager_options=options, interaction=interaction or ScriptedInteraction(),
        initial_model=initial_model, workspace=tmp_path, tools_dir=tools_dir or tmp_path / "no-user-tools",
        history_path=history_path or tmp_path / "data" / "history.sqlite3",
        mcp_config_path=mcp_config or tmp_path / "no-mcp.json",  # never the user's own MCP servers
    )
    window.resize(1100, 760)
    window.show()
    try:
        yield window
    finally:
        await window.shutdown()
        if window.ctx.servers is not None:
            await window.ctx.servers.stop_all()
        window.close()
        await asyncio.sleep(0.05)  # let queued signals and callbacks for this window run now
        # Delete the C++ side here, while the loop runs, not whenever Python's GC gets to the
        # wrapper (possibly in a worker thread, mid-way through a later test).
        shiboken6.delete(window)


# ----- driving the window by object name -----
def page(window: MainWindow, name: str = "chatPage") -> ChatPage:
    found = window.findChild(QWidget, name)
    assert isinstance(found, ChatPage), name
    return found


def prompt_edit(p: QWidget) -> QPlainTextEdit:
    return p.findChild(QPlainTextEdit, "promptEdit")


def button(p: QWidget, name: str) -> QPushButton:
    return p.findChild(QPushButton, name)


def transcript(p: QWidget) -> TranscriptView:
    return p.findChild(TranscriptView, "transcript")


def model_combo(window: MainWindow) -> QComboBox:
    return window.findChild(QComboBox, "modelCombo")


def server_status(window: MainWindow) -> str:
    return str(window.findChild(QWidget, "serverStatus").property("state"))


def type_and_send(p: QWidget, text: str) -> None:
    edit = prompt_edit(p)
    edit.setFocus()
    edit.setPlainText(text)
    QTest.keyClick(edit, Qt.Key.Key_Return)


def click(widget: QWidget) -> None:
    QTest.mouseClick(widget, Qt.MouseButton.LeftButton)


def select_model(window: MainWindow, model_id: str) -> None:
    """Choose a model as a user does: open the dropdown's list and click the item."""
    combo = model_combo(window)
    index = combo.findData(model_id)
    assert index >= 0, model_id
    combo.showPopup()
    view = combo.view()
    item = view.model().index(index, 0)
    view.scrollTo(item)
    QTest.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=view.visualRect(item).center())
    assert combo.currentIndex() == index and not view.isVisible(), "the click did not choose the item"


def last_answer(p: ChatPage):
    return p.conversation.messages[-1]
