"""The window without a mouse: focus lands in the prompt, shortcuts reach the search and the model picker."""

from __future__ import annotations

import asyncio

from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QLineEdit, QListWidget, QWidget

from LLM.tests.desktop_app.harness import (
    last_answer,
    model_combo,
    open_window,
    openai_yaml,
    page,
    prompt_edit,
    run,
    wait_until,
)

SLOW = {"text": " ".join(f"word{i}" for i in range(400)), "delay_s": 0.03}


def focused(window: QWidget) -> QWidget | None:
    """The widget that gets the keys while the window is active."""
    return window.focusWidget()


async def keys_in_prompt(window: QWidget, chat: QWidget) -> None:
    """The window is active (shortcuts need that) and the keys go to the prompt."""
    await wait_until(window.isActiveWindow, what="the window active")
    await wait_until(lambda: focused(window) is prompt_edit(chat), what="the prompt focused")


def press(window: QWidget, key: Qt.Key, modifier=Qt.KeyboardModifier.NoModifier) -> None:
    """A key typed where the focus is, as a user types it."""
    QTest.keyClick(focused(window), key, modifier)


def test_desktop_keyboard_prompt_has_focus_at_start_and_after_each_tab_switch(qloop, fake_server, tmp_path):
    """Pins #22: at start the model dropdown had the focus and the prompt was 9 Tabs away."""

    async def go():
        async with open_window(tmp_path, openai_yaml(fake_server.url)) as window:
            window.resize(1000, 700)
            chat, tools = page(window), page(window, "toolChatPage")
            await keys_in_prompt(window, chat)  # at start
            press(window, Qt.Key.Key_2, Qt.KeyboardModifier.ControlModifier)
            assert window.tabs.currentWidget() is tools and focused(window) is prompt_edit(tools)
            press(window, Qt.Key.Key_3, Qt.KeyboardModifier.ControlModifier)
            assert window.tabs.currentIndex() == 2
            press(window, Qt.Key.Key_PageUp, Qt.KeyboardModifier.ControlModifier)
            assert window.tabs.currentWidget() is tools and focused(window) is prompt_edit(tools)
            press(window, Qt.Key.Key_PageUp, Qt.KeyboardModifier.ControlModifier)
            assert window.tabs.currentWidget() is chat and focused(window) is prompt_edit(chat)
            press(window, Qt.Key.Key_PageDown, Qt.KeyboardModifier.ControlModifier)
            assert window.tabs.currentWidget() is tools and focused(window) is prompt_edit(tools)
            press(window, Qt.Key.Key_1, Qt.KeyboardModifier.ControlModifier)
            assert window.tabs.currentWidget() is chat and focused(window) is prompt_edit(chat)

    run(qloop, go())


def test_desktop_keyboard_search_shortcut_filters_escape_clears_then_returns_and_enter_opens(
        qloop, fake_server, tmp_path):
    fake_server.script({"text": "Apples are red."}, {"text": "Pears are green."})

    async def go():
        async with open_window(tmp_path, openai_yaml(fake_server.url)) as window:
            chat = page(window)
            search = window.findChild(QLineEdit, "historySearch")
            results = window.findChild(QListWidget, "conversationList")
            assert "Ctrl+F" in search.placeholderText()
            for question in ("apples?", "pears?"):  # two saved chats, typed and sent from the keyboard
                await keys_in_prompt(window, chat)
                QTest.keyClicks(focused(window), question)
                press(window, Qt.Key.Key_Return)
                await wait_until(lambda: not chat.busy and last_answer(chat).content, what="the answer")
                press(window, Qt.Key.Key_N, Qt.KeyboardModifier.ControlModifier)  # File > New chat
            await wait_until(lambda: results.count() == 2, what="two saved chats")
            press(window, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
            assert focused(window) is search
            QTest.keyClicks(search, "apples")
            await wait_until(lambda: results.count() == 1, what="the search narrows the list")
            press(window, Qt.Key.Key_Escape)
            assert search.text() == "" and focused(window) is search
            await wait_until(lambda: results.count() == 2, what="the cleared search lists every chat")
            press(window, Qt.Key.Key_Escape)
            assert focused(window) is prompt_edit(chat)
            # Enter in the search box opens the first result; Down then Enter opens the one chosen.
            press(window, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
            QTest.keyClicks(search, "pears")
            await wait_until(lambda: results.count() == 1, what="one match")
            press(window, Qt.Key.Key_Return)
            await wait_until(lambda: chat.conversation.messages and "pears" in chat.conversation.messages[0].content,
                             what="the found chat opened")
            assert focused(window) is prompt_edit(chat)
            press(window, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
            press(window, Qt.Key.Key_Escape)
            await wait_until(lambda: results.count() == 2, what="every chat listed")
            press(window, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
            press(window, Qt.Key.Key_Down)
            assert focused(window) is results
            results.setCurrentRow(1)  # the older chat (apples): what Down would reach
            press(window, Qt.Key.Key_Return)
            await wait_until(lambda: "apples" in chat.conversation.messages[0].content, what="the chosen chat opened")

    run(qloop, go())


def test_desktop_keyboard_model_shortcut_opens_the_picker_and_arrow_enter_switches(qloop, fake_server, tmp_path):
    async def go():
        async with open_window(tmp_path, openai_yaml(fake_server.url, "alpha", "beta"),
                               initial_model="alpha") as window:
            combo = model_combo(window)
            assert "Ctrl+L" in combo.toolTip()
            await keys_in_prompt(window, page(window))
            press(window, Qt.Key.Key_L, Qt.KeyboardModifier.ControlModifier)
            await wait_until(lambda: combo.view().isVisible(), what="the model list open")
            QTest.keyClick(combo.view(), Qt.Key.Key_Down)
            QTest.keyClick(combo.view(), Qt.Key.Key_Return)
            await wait_until(lambda: page(window).model_id == "beta", what="switched to beta")
            assert window.selector.current_model_id() == "beta" and not combo.view().isVisible()
            await wait_until(lambda: focused(window) is prompt_edit(page(window)), what="back in the prompt")

    run(qloop, go())


def test_desktop_keyboard_a_whole_chat_with_stop_and_no_mouse(qloop, fake_server, tmp_path):
    fake_server.script({"text": "Hello from the keyboard."}, SLOW)

    async def go():
        async with open_window(tmp_path, openai_yaml(fake_server.url)) as window:
            chat = page(window)
            await keys_in_prompt(window, chat)
            QTest.keyClicks(focused(window), "Hi")
            press(window, Qt.Key.Key_Return)
            await wait_until(lambda: not chat.busy and last_answer(chat).content == "Hello from the keyboard.",
                             what="the answer")
            QTest.keyClicks(focused(window), "Tell me more")
            press(window, Qt.Key.Key_Return)
            await wait_until(lambda: last_answer(chat).content, what="first words of the slow answer")
            press(window, Qt.Key.Key_Escape)
            assert last_answer(chat).status == "stopped" and not chat.busy
            assert focused(window) is prompt_edit(chat)
            await asyncio.to_thread(fake_server.wait_for_event, "disconnect", 30)

    run(qloop, go())
