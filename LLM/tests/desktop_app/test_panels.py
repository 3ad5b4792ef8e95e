"""The side panels and dialogs at laptop size (#22): the settings and tools panels fit their column, the closed
model dropdown keeps the size, the prompt box grows with its text, the tool editor waits before it complains,
the approval dialog answers the focused button, the MCP panel elides its path."""

from __future__ import annotations

import asyncio

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import (
    QComboBox,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QStyle,
    QStyleOptionComboBox,
    QWidget,
)

from LLM.core import ApprovalDecision, StepStarted, ToolCall
from LLM.core.servers import ServerStatus
from LLM.desktop_app.pages.tool_chat_page import progress_line
from LLM.desktop_app.widgets.tones import contrast_ratio
from LLM.tests.desktop_app.harness import (
    button,
    click,
    last_answer,
    model_combo,
    open_window,
    openai_yaml,
    page,
    prompt_edit,
    run,
    settle,
    type_and_send,
    wait_until,
)
from LLM.tests.desktop_app.test_approval_dialog import builtin_write_file, open_dialog
from LLM.tests.desktop_app.test_colours import PALETTES
from LLM.tests.desktop_app.test_tool_editor import open_editor, problems_shown, save_button

LAPTOP = (1000, 700)


def no_defaults_yaml(url: str) -> str:
    """A model without default_params: "model default" is then the request's own fallback."""
    return (f'models:\n  bare:\n    backend: openai\n    server_url: "{url}/v1"\n    model_name: bare-model\n'
            '    display_name: "Bare model"\n')


async def at_laptop_size(window, page_name: str):
    window.resize(*LAPTOP)
    shown = page(window, page_name)
    window.tabs.setCurrentWidget(shown)
    await wait_until(lambda: window.width() == LAPTOP[0] and shown.isVisible(), what="the laptop-sized window")
    await settle()
    return shown


# ----- 1. Max tokens: the real value of "model default" -----
@pytest.mark.parametrize("yaml_of", [no_defaults_yaml, openai_yaml], ids=["engine-default", "yaml-default"])
def test_panels_max_tokens_model_default_shows_the_value_sent(qloop, fake_server, tmp_path, yaml_of):
    """Regression (#22): "Max tokens: model default" sent 512, which the panel did not say."""
    fake_server.script({"text": "ok"})

    async def go():
        async with open_window(tmp_path, yaml_of(fake_server.url)) as window:
            chat = await at_laptop_size(window, "chatPage")
            spin = chat.findChild(QSpinBox, "maxTokensSpin")
            spin.setValue(0)  # the user chooses "model default"
            type_and_send(chat, "hi")
            await wait_until(lambda: last_answer(chat).status == "done", what="the answer")
            return spin.text()

    shown = run(qloop, go())
    sent = fake_server.requests()[0]["body"]["max_tokens"]
    assert shown == f"model default ({sent})"


# ----- 2. The closed model dropdown keeps the size -----
def test_panels_closed_model_dropdown_elides_the_name_never_the_size(qloop, fake_server, tmp_path):
    """Regression (#22): the closed dropdown cut "175 MB" to "175 MI"; the name gives way instead."""
    long_name = "A model with a display name far too long for any dropdown, " * 2
    yaml = openai_yaml(fake_server.url) + (
        f'  local:\n    backend: llama_cpp\n    base_model: /nowhere/model.gguf\n    port: 1\n'
        f'    display_name: "{long_name}"\n')

    async def go():
        async with open_window(tmp_path, yaml, initial_model="fake") as window:
            await at_laptop_size(window, "chatPage")
            selector = window.findChild(QWidget, "modelSelector")
            selector.set_config(window.ctx.config, [ServerStatus(
                "local", "llama_cpp", "ready", 1, "http://127.0.0.1:1", False, memory_bytes=175 * 2**20)])
            combo = model_combo(window)
            combo.setCurrentIndex(combo.findData("local"))
            await settle()
            window.grab().save(str(tmp_path / "dropdown.png"))
            option = QStyleOptionComboBox()
            combo.initStyleOption(option)
            field = combo.style().subControlRect(QStyle.ComplexControl.CC_ComboBox, option,
                                                 QStyle.SubControl.SC_ComboBoxEditField, combo)
            room = field.width() - option.iconSize.width() - 4  # Qt's label draws the icon, then the text
            shown = combo.closed_text(room)
            assert shown.endswith("ready  ·  175 MB") and "…" in shown, shown
            assert combo.fontMetrics().horizontalAdvance(shown) <= room

    run(qloop, go())


# ----- 3. The tools and settings panels fit their column -----
@pytest.mark.parametrize("page_name", ["chatPage", "toolChatPage"])
def test_panels_side_panel_fits_at_laptop_size_and_every_control_is_reachable(qloop, fake_server, tmp_path,
                                                                             page_name):
    """Regression (#22): at 1000x700 the tools panel scrolled sideways and clipped its labels, and Tool choice fell
    below the fold. Now nothing scrolls sideways, no label is cut, and every control can be scrolled to."""

    async def go():
        async with open_window(tmp_path, openai_yaml(fake_server.url)) as window:
            shown = await at_laptop_size(window, page_name)
            side = shown.findChild(QScrollArea, "sidePanel")
            await wait_until(lambda: side.widget().width() <= side.viewport().width() + 1,
                             what="the panel inside its column")
            window.grab().save(str(tmp_path / f"{page_name}.png"))
            assert side.horizontalScrollBar().maximum() == 0, side.widget().minimumSizeHint()
            width = side.viewport().width()
            problems = []
            for label in side.widget().findChildren(QLabel):
                if not label.isVisible():
                    continue
                right = label.mapTo(side.widget(), QPoint(label.width(), 0)).x()
                if right > width:
                    problems.append(f"{label.text()!r} ends at {right} of {width}")
                if not label.wordWrap() and label.width() < label.fontMetrics().horizontalAdvance(label.text()):
                    problems.append(f"{label.text()!r} clipped to {label.width()} px")
            assert problems == []
            for control in side.widget().findChildren(QWidget):
                if control.isVisible() and control.focusPolicy() & Qt.FocusPolicy.TabFocus:
                    side.ensureWidgetVisible(control)
                    top_left = control.mapTo(side.viewport(), QPoint(0, 0))
                    assert 0 <= top_left.x() and top_left.x() + control.width() <= width, control.objectName()
                    assert top_left.y() >= 0 and top_left.y() < side.viewport().height(), control.objectName()

    run(qloop, go())


# ----- 4. The new-tool editor waits before it complains -----
def test_panels_new_tool_editor_shows_problems_only_after_typing_or_saving(qloop, fake_server, tmp_path):
    """Regression (#22): the new-tool editor opened with a list of errors before anything was typed."""

    async def go():
        async with open_window(tmp_path, openai_yaml(fake_server.url), tools_dir=tmp_path / "tools") as window:
            tools = await at_laptop_size(window, "toolChatPage")
            click(button(tools, "newToolButton"))
            dialog = await wait_until(lambda: open_editor(window), what="the tool editor")
            assert problems_shown(dialog) == ""
            click(save_button(dialog))  # trying to save names what is missing; the dialog stays
            assert "name: required" in problems_shown(dialog) and open_editor(window) is dialog
            assert not save_button(dialog).isEnabled()
            click(dialog.findChild(QPushButton, "toolCancelButton"))
            await wait_until(lambda: open_editor(window) is None, what="the editor to close")

            click(button(tools, "newToolButton"))
            dialog = await wait_until(lambda: open_editor(window), what="the tool editor again")
            assert problems_shown(dialog) == ""
            QTest.keyClicks(dialog.findChild(QLineEdit, "toolNameEdit"), "x")
            assert "description: required" in problems_shown(dialog)
            click(dialog.findChild(QPushButton, "toolCancelButton"))
            await wait_until(lambda: open_editor(window) is None, what="the editor to close")

    run(qloop, go())


@pytest.mark.parametrize("theme", PALETTES)
def test_panels_tool_editor_problems_readable_on_light_and_dark(qloop, fake_server, tmp_path, theme):
    """The editor's problem text used a fixed red (#b3261e), about 2.5:1 on a dark palette."""

    async def go():
        async with open_window(tmp_path, openai_yaml(fake_server.url), tools_dir=tmp_path / "tools") as window:
            tools = await at_laptop_size(window, "toolChatPage")
            click(button(tools, "newToolButton"))
            dialog = await wait_until(lambda: open_editor(window), what="the tool editor")
            dialog.setPalette(PALETTES[theme])  # a dialog is a window: it keeps its own palette
            click(save_button(dialog))
            label = dialog.findChild(QLabel, "toolEditorProblems")
            colour = label.palette().color(label.foregroundRole())
            background = dialog.palette().color(dialog.backgroundRole())
            click(dialog.findChild(QPushButton, "toolCancelButton"))
            return contrast_ratio(colour, background), colour.name()

    ratio, colour = run(qloop, go())
    assert ratio >= 4.5, colour


# ----- 5. The prompt box grows with its text -----
def test_panels_prompt_box_grows_with_its_text_then_scrolls_and_shrinks_after_sending(qloop, fake_server, tmp_path):
    """Regression (#22): the prompt box kept three lines whatever was typed."""
    fake_server.script({"text": "ok"})

    async def go():
        async with open_window(tmp_path, openai_yaml(fake_server.url)) as window:
            chat = await at_laptop_size(window, "chatPage")
            edit = prompt_edit(chat)
            empty = edit.height()
            edit.setPlainText("\n".join(f"line {i}" for i in range(6)))
            await wait_until(lambda: edit.height() > empty, what="the box to grow")
            assert edit.verticalScrollBar().maximum() == 0  # six lines fit: no scrolling yet
            edit.setPlainText("\n".join(f"line {i}" for i in range(60)))
            await wait_until(lambda: edit.verticalScrollBar().maximum() > 0, what="the box to scroll")
            assert edit.height() <= window.height() // 3
            assert chat.send_button.isVisible() and chat.transcript.height() > edit.height()
            QTest.keyClick(edit, Qt.Key.Key_Return)
            await wait_until(lambda: last_answer(chat).status == "done", what="the answer")
            await wait_until(lambda: edit.height() == empty, what="the box to shrink back")

    run(qloop, go())


# ----- 6. Fallback mode says what it does -----
@pytest.mark.parametrize("event, expected", [
    pytest.param(StepStarted(1, "native", True), "Step 1 of 8  ·  native mode  ·  tools sent", id="native"),
    pytest.param(StepStarted(2, "fallback", False),
                 "Step 2 of 8  ·  fallback mode: tools described in the prompt, calls read from the text",
                 id="fallback"),
    pytest.param(StepStarted(1, "fallback", False, "required", True),
                 "Step 1 of 8  ·  fallback mode: tools described in the prompt, calls read from the text  ·  "
                 "tool_choice required (grammar)", id="fallback-forced"),
    pytest.param(StepStarted(3, "off", False), "Step 3 of 8  ·  tools off for this step",
                 id="final-answer"),
    pytest.param(StepStarted(1, "off", False, "none"), "Step 1 of 8  ·  tools off for this step  ·  "
                 "tool_choice none", id="choice-none"),
])
def test_panels_progress_line_words(event, expected):
    """Regression (#22): fallback mode said "no tools sent", which read like a bug."""
    assert progress_line(event, offset=0, max_iterations=8) == expected


# ----- 7. The approval dialog answers the focused button -----
@pytest.mark.parametrize("keys, expected", [
    pytest.param([Qt.Key.Key_Tab], ApprovalDecision.DENY_AND_STOP, id="tab-to-deny-and-stop"),
    pytest.param([Qt.Key.Key_Backtab], ApprovalDecision.ALWAYS, id="backtab-to-always"),
    pytest.param([Qt.Key.Key_Backtab, Qt.Key.Key_Backtab], ApprovalDecision.ONCE, id="backtab-twice-to-once"),
    pytest.param([], ApprovalDecision.DENY, id="nothing-else-denies"),
])
def test_panels_approval_dialog_enter_answers_the_focused_button(qloop, tmp_path, keys, expected):
    """Regression (#22): Tab to a button then Enter denied anyway (the default button won over the focused one)."""
    tool, call = builtin_write_file(tmp_path), ToolCall("write_file", {"path": "a.txt", "content": "hi"})

    async def go():
        task, shown = open_dialog(call, tool, "here")
        dialog = await shown
        for key in keys:
            QTest.keyClick(dialog.focusWidget() or dialog, key)
        QTest.keyClick(dialog.focusWidget() or dialog, Qt.Key.Key_Return)
        return await asyncio.wait_for(task, 10)

    assert run(qloop, go()) is expected


# ----- 8. The MCP panel elides its path -----
def test_panels_mcp_panel_elides_a_long_config_path_in_the_middle(qloop, fake_server, tmp_path):
    """Regression (#22): the whole mcp.json path widened the MCP panel past the window."""
    mcp_json = tmp_path.joinpath(*["a-rather-long-folder-name"] * 12, "mcp.json")
    mcp_json.parent.mkdir(parents=True)
    mcp_json.write_text('{"mcpServers": {}}')

    async def go():
        async with open_window(tmp_path, openai_yaml(fake_server.url), mcp_config=mcp_json) as window:
            window.resize(*LAPTOP)
            panel = window.findChild(QWidget, "mcpPanel")
            window.tabs.setCurrentWidget(panel)
            await wait_until(lambda: panel.isVisible() and window.width() == LAPTOP[0], what="the MCP tab")
            label = panel.findChild(QLabel, "mcpConfigPath")
            assert panel.minimumSizeHint().width() <= LAPTOP[0] - 260  # the sidebar takes the rest
            await wait_until(lambda: panel.width() < LAPTOP[0], what="the panel in the window")
            shown = QLabel.text(label)
            assert "…" in shown and shown.endswith("mcp.json") and str(mcp_json) in label.toolTip()

    run(qloop, go())
