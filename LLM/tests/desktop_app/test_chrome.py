"""The window's chrome at 1000x700 (#22): one New chat, panels that collapse, Help, file dialogs that remember
their folder, results that stay in the status bar, Esc out of the model picker."""

from __future__ import annotations

import asyncio
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QFileDialog, QPushButton, QScrollArea, QWidget

from LLM.desktop_app.about import app_version
from LLM.desktop_app.dialogs import QtInteraction
from LLM.desktop_app.interaction import FolderMemory
from LLM.tests.desktop_app.harness import (
    ScriptedInteraction,
    last_answer,
    model_combo,
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


async def small_and_active(window) -> None:
    window.resize(1000, 700)
    await wait_until(lambda: window.isActiveWindow() and window.width() == 1000, what="the window active at 1000")


def keys(window, key: Qt.Key, modifier=Qt.KeyboardModifier.ControlModifier) -> None:
    QTest.keyClick(window.focusWidget() or window, key, modifier)


def test_chrome_one_new_chat_button_and_ctrl_n(qloop, fake_server, tmp_path):
    """#22: the sidebar and the composer each had a New chat button."""
    fake_server.set_default({"text": "Hi."})

    async def go():
        async with open_window(tmp_path, openai_yaml(fake_server.url)) as window:
            await small_and_active(window)
            shown = [b for b in window.findChildren(QPushButton) if b.text() == "New chat" and b.isVisibleTo(window)]
            assert shown == [window.sidebar.new_button]
            chat = page(window)
            type_and_send(chat, "hello")
            await wait_until(lambda: last_answer(chat).final, what="the answer")
            keys(window, Qt.Key.Key_N)
            await wait_until(lambda: not chat.conversation.nodes, what="a new chat")

    run(qloop, go())


def test_chrome_sidebar_and_settings_collapse_and_come_back(qloop, fake_server, tmp_path):
    """#22: neither the sidebar nor the settings panel could be collapsed."""
    async def go():
        async with open_window(tmp_path, openai_yaml(fake_server.url)) as window:
            await small_and_active(window)
            chat = page(window)
            side = chat.findChild(QScrollArea, "sidePanel")
            wide = transcript(chat).width()
            keys(window, Qt.Key.Key_B)
            await wait_until(lambda: not window.sidebar.isVisible(), what="the sidebar hidden")
            assert not window.sidebar_action.isChecked()
            keys(window, Qt.Key.Key_B, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
            await wait_until(lambda: not side.isVisible(), what="the settings hidden")
            await wait_until(lambda: transcript(chat).width() > wide + 300, what="the chat takes the room")
            window.grab().save(str(tmp_path / "collapsed.png"))
            keys(window, Qt.Key.Key_F)  # search: reachable with the sidebar hidden
            await wait_until(lambda: window.sidebar.isVisible() and window.focusWidget() is window.sidebar.search,
                             what="the sidebar back with the search focused")
            assert window.sidebar_action.isChecked()
            window.settings_action.trigger()
            await wait_until(side.isVisible, what="the settings back")
            side.findChild(QWidget, "temperatureSpin").setFocus()
            await wait_until(lambda: side.isAncestorOf(window.focusWidget()), what="a setting focused")
            keys(window, Qt.Key.Key_B, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
            # Hiding the panel that holds the keys gives them to the prompt, as hiding the sidebar does.
            await wait_until(lambda: not side.isVisible() and window.focusWidget() is prompt_edit(chat),
                             what="the keys back in the prompt")

    run(qloop, go())


def test_chrome_help_about_and_keyboard_shortcuts(qloop, fake_server, tmp_path):
    """#22: no Help/About."""
    interaction = ScriptedInteraction()

    async def go():
        async with open_window(tmp_path, openai_yaml(fake_server.url), interaction=interaction) as window:
            titles = [action.text() for action in window.menuBar().actions()]
            assert titles == ["&File", "&View", "&Help"]
            await window.show_about()
            about = interaction.shown[-1]
            assert "LLM Workbench" in about.text and app_version() in about.text
            for place in (window.ctx.config_path, window.ctx.servers.logs_dir, window.ctx.history.path):
                assert str(place) in about.informative
            assert "Licence: MIT" in about.informative and "Engine: an external" in about.informative
            await window.show_shortcuts()
            listed = interaction.shown[-1].text
            for key in ("Ctrl+N", "Ctrl+B", "Ctrl+Shift+B", "Ctrl+F", "Ctrl+L", "F2", "Esc", "Ctrl+PgDown"):
                assert f"<b>{key}" in listed, key

    run(qloop, go())


def test_chrome_file_dialogs_start_in_the_last_folder_of_their_kind(qloop, tmp_path):
    """#22: file dialogs always started in the home folder. The real Qt dialogs, offscreen."""
    chosen = tmp_path / "exports" / "chat.json"
    chosen.parent.mkdir()
    chosen.write_text("{}")
    interaction = QtInteraction(FolderMemory(home=tmp_path))

    async def answer(expect: Path, pick: Path | None) -> None:
        dialog = await wait_until(lambda: next((w for w in QApplication.topLevelWidgets()
                                                if isinstance(w, QFileDialog) and w.isVisible()), None),
                                  what="the file dialog")
        assert Path(dialog.directory().absolutePath()) == expect
        if pick is None:
            dialog.reject()
        else:
            dialog.selectFile(str(pick))
            dialog.accept()

    async def go():
        helper = asyncio.ensure_future(answer(tmp_path, chosen))
        assert await interaction.choose_open_path(None, "Import chat", "JSON (*.json)", kind="import") == chosen
        await helper
        helper = asyncio.ensure_future(answer(chosen.parent, None))  # the same kind: where the last one was
        assert await interaction.choose_open_path(None, "Import chat", "JSON (*.json)", kind="import") is None
        await helper
        helper = asyncio.ensure_future(answer(tmp_path, None))  # another kind: still home
        assert await interaction.choose_save_path(None, "Export chat", "x.md", "Markdown (*.md)",
                                                  kind="export") is None
        await helper

    run(qloop, go())


def test_chrome_export_and_import_ask_with_their_own_kind(qloop, fake_server, tmp_path):
    fake_server.set_default({"text": "Hi."})
    interaction = ScriptedInteraction(paths=(tmp_path / "out" / "chat.md", None))

    async def go():
        async with open_window(tmp_path, openai_yaml(fake_server.url), interaction=interaction) as window:
            chat = page(window)
            type_and_send(chat, "hello")
            await wait_until(lambda: last_answer(chat).final, what="the answer")
            await window.history.export(None, "md")
            await window.history.import_file()
            assert interaction.path_kinds == ["export", "import"]

    run(qloop, go())


def test_chrome_file_action_results_stay_in_the_status_bar(qloop, fake_server, tmp_path):
    """#22: "Exported … to …" vanished after 12 s; an error must never time out."""
    fake_server.set_default({"text": "Hi."})
    target = tmp_path / "chat.md"
    interaction = ScriptedInteraction(paths=(target, tmp_path / "missing-folder" / "chat.md"))

    async def go():
        async with open_window(tmp_path, openai_yaml(fake_server.url), interaction=interaction) as window:
            chat = page(window)
            type_and_send(chat, "hello")
            await wait_until(lambda: last_answer(chat).final, what="the answer")
            await window.history.export(None, "md")
            assert target.is_file()
            assert f"to {target}" in window.result_label.text() and window.result_label.isVisible()
            assert window.statusBar().currentMessage() == ""  # not a message with a timeout
            await window.history.export(None, "md")
            assert window.result_label.text().startswith("Cannot export")
            window.statusBar().showMessage("Reloaded llm_backends.yaml", 50)  # passing news covers it a while
            await wait_until(lambda: window.statusBar().currentMessage() == "", what="the passing message gone")
            await wait_until(window.result_label.isVisible, what="the result shown again")
            assert window.result_label.text().startswith("Cannot export")

    run(qloop, go())


def test_chrome_esc_in_the_model_picker_returns_to_the_prompt(qloop, fake_server, tmp_path):
    """#22: Ctrl+L then Esc left the focus on the dropdown."""
    async def go():
        async with open_window(tmp_path, openai_yaml(fake_server.url, "alpha", "beta"),
                               initial_model="alpha") as window:
            await small_and_active(window)
            chat = page(window)
            await wait_until(lambda: window.focusWidget() is prompt_edit(chat), what="the prompt focused")
            combo = model_combo(window)
            keys(window, Qt.Key.Key_L)
            await wait_until(lambda: combo.view().isVisible(), what="the model list open")
            QTest.keyClick(combo.view(), Qt.Key.Key_Escape)
            await wait_until(lambda: not combo.view().isVisible(), what="the list closed")
            await wait_until(lambda: window.focusWidget() is prompt_edit(chat), what="back in the prompt")
            assert window.selector.current_model_id() == "alpha"

    run(qloop, go())


BASE = ("  base:\n    backend: openai\n    server_url: \"{url}/v1\"\n    model_name: base-model\n"
        "    display_name: \"Base model\"\n    model_type: base\n")


def test_chrome_base_model_keeps_the_chat_reachable_and_asks_before_clearing_its_text(qloop, fake_server, tmp_path):
    """#22: choosing a base model hid the open chat, and New chat silently cleared the base model's text."""
    fake_server.set_default({"text": "Hi there."})
    interaction = ScriptedInteraction(discards=(False, True))

    async def go():
        yaml = openai_yaml(fake_server.url, "chat") + BASE.format(url=fake_server.url)
        async with open_window(tmp_path, yaml, interaction=interaction, initial_model="chat") as window:
            chat = page(window)
            type_and_send(chat, "hello")
            await wait_until(lambda: last_answer(chat).final, what="the answer")
            first = chat.conversation.id
            select_model(window, "base")
            await wait_until(lambda: chat.completion_editor.isVisible(), what="the completion editor")
            chat.completion_editor.setPlainText("Once upon a time")
            window.sidebar.new_button.click()
            await wait_until(lambda: interaction.questions[-1:] == [("discard_text", "Base model", "")],
                             what="the question")
            assert chat.completion_editor.toPlainText() == "Once upon a time"  # kept: the answer was Keep
            assert chat.conversation.id == first  # and the chat is still the open one
            window.new_chat()
            await wait_until(lambda: not chat.completion_editor.toPlainText(), what="cleared after Clear it")
            window.sidebar.open_requested.emit(first)  # the sidebar stays usable
            await wait_until(lambda: chat.conversation.id == first, what="the chat opened")
            assert "instruct model" in chat.activity.text()
            select_model(window, "chat")
            await wait_until(lambda: transcript(chat).isVisible(), what="the chat shown again")
            assert "Hi there." in transcript(chat).plain_text()

    run(qloop, go())
