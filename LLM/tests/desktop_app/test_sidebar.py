"""The sidebar at 1000x700 (#22): long titles cut with "…", search matches highlighted (no brackets), counts that
read right, titles edited in place."""

from __future__ import annotations

import sqlite3

import pytest
from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QAbstractItemView, QApplication, QLineEdit

from LLM.core import Conversation
from LLM.core.history import HistoryStore
from LLM.desktop_app.widgets.conversation_item import ENTRY_ROLE, EMPTY_TITLE, match_segments
from LLM.tests.desktop_app.harness import open_window, openai_yaml, run, wait_until
from LLM.tests.desktop_app.test_history import sidebar, stored, titles

LONG_TITLE = "Planning the long hike across the northern mountains with tents, stoves and " + "x" * 34


@pytest.mark.parametrize(("snippet", "pieces"), [
    ("plain text", [("plain text", False)]),
    ("…the [mountains] are high", [("…the ", False), ("mountains", True), (" are high", False)]),
    ("[tent] and [stove]", [("tent", True), (" and ", False), ("stove", True)]),
    ("line one\n\n  [two]", [("line one ", False), ("two", True)]),
    ("", []),
], ids=["no-match", "one-match", "two-matches", "whitespace-folded", "empty"])
def test_sidebar_match_segments(snippet, pieces):
    assert match_segments(snippet) == pieces


def row_of(window, conversation_id: str) -> int:
    return sidebar(window).ids().index(conversation_id)


def facts(window, conversation_id: str) -> str:
    return sidebar(window).list.item(row_of(window, conversation_id)).data(ENTRY_ROLE).facts


def test_sidebar_long_title_is_cut_with_an_ellipsis_not_scrolled_sideways(qloop, fake_server, tmp_path):
    """#22: a long title clipped mid-word and grew a horizontal scrollbar in the sidebar at 1000x700."""
    history = tmp_path / "data" / "history.sqlite3"
    assert len(LONG_TITLE) == 110
    stored(history, ("long", LONG_TITLE, "hello"), ("short", "Tomatoes", "buy some"))

    async def go():
        async with open_window(tmp_path, openai_yaml(fake_server.url), history_path=history) as window:
            window.resize(1000, 700)
            bar = sidebar(window)
            await wait_until(lambda: bar.list.viewport().width() > 0 and window.width() == 1000, what="laid out")
            assert not bar.list.horizontalScrollBar().isVisible()
            assert bar.width() < 400  # the long title did not widen the sidebar
            shown = bar.shown_title(row_of(window, "long"))
            assert shown.endswith("…") and LONG_TITLE.startswith(shown[:-1])
            assert bar.shown_title(row_of(window, "short")) == "Tomatoes"
            assert LONG_TITLE in bar.list.item(row_of(window, "long")).toolTip()
            window.sidebar.grab().save(str(tmp_path / "sidebar.png"))

    run(qloop, go())


def test_sidebar_search_highlights_matches_instead_of_brackets(qloop, fake_server, tmp_path):
    """#22: matches were shown as literal [brackets]."""
    history = tmp_path / "data" / "history.sqlite3"
    stored(history, ("tent", "Packing", "Pack the tent for the mountains"))

    async def go():
        async with open_window(tmp_path, openai_yaml(fake_server.url), history_path=history) as window:
            sidebar(window).search.setText("mount")
            await wait_until(lambda: sidebar(window).list.count() == 1
                             and sidebar(window).list.item(0).data(ENTRY_ROLE).segments, what="the search result")
            item = sidebar(window).list.item(0)
            assert ("mountains", True) in item.data(ENTRY_ROLE).segments
            assert "[" not in item.text() and "mountains" in item.text()

    run(qloop, go())


def test_sidebar_counts_read_singular_and_only_the_branch_shown(qloop, fake_server, tmp_path):
    """#22: "1 messages", and a regenerated answer counted once per version."""
    history = tmp_path / "data" / "history.sqlite3"
    stored(history, ("one", "Only a question", "hello"))
    with HistoryStore(history) as store:
        conversation = Conversation("Regenerated twice")
        conversation.id = "versions"
        conversation.add_user("hi")
        conversation.add_assistant("m")
        conversation.regenerate("m")
        conversation.regenerate("m")  # 4 messages stored, 2 on the branch shown
        store.save_all(conversation)

    async def go():
        async with open_window(tmp_path, openai_yaml(fake_server.url), history_path=history) as window:
            assert facts(window, "one").endswith("  1 message")
            assert facts(window, "versions").endswith("  2 messages")
            assert "not counted" in sidebar(window).list.item(row_of(window, "versions")).toolTip()

    run(qloop, go())


def double_click(widget, pos) -> None:
    """As a mouse sends it: press, release, press, double-click, release (QTest's mouseDClick offscreen sends no
    double-click event the view reacts to)."""
    QTest.mouseClick(widget, Qt.MouseButton.LeftButton, pos=pos)
    QTest.mousePress(widget, Qt.MouseButton.LeftButton, pos=pos)
    QApplication.sendEvent(widget, QMouseEvent(QEvent.Type.MouseButtonDblClick, QPointF(pos),
                                               widget.mapToGlobal(QPointF(pos)), Qt.MouseButton.LeftButton,
                                               Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier))
    QTest.mouseRelease(widget, Qt.MouseButton.LeftButton, pos=pos)


def test_sidebar_rename_edits_the_title_in_place(qloop, fake_server, tmp_path):
    """#22: rename opened a tiny dialog. Now F2 (or double-click, or the menu) edits the row: Enter saves, Esc
    cancels, an empty title is refused with a message."""
    history = tmp_path / "data" / "history.sqlite3"
    stored(history, ("trip", "Pack the tent", "hello"), ("food", "Tomatoes", "buy"))

    def editor():
        return sidebar(window_ref[0]).list.findChild(QLineEdit, "titleEditor")

    window_ref = []

    async def go():
        async with open_window(tmp_path, openai_yaml(fake_server.url), history_path=history) as window:
            window_ref.append(window)
            bar = sidebar(window)
            bar.list.setCurrentRow(row_of(window, "trip"))
            bar.list.setFocus()
            QTest.keyClick(bar.list, Qt.Key.Key_F2)
            await wait_until(lambda: editor() is not None and editor().isVisible(), what="the title editor")
            assert editor().text() == "Pack the tent"
            editor().clear()
            QTest.keyClick(editor(), Qt.Key.Key_Return)
            assert bar.notice.isVisible() and bar.notice.text() == EMPTY_TITLE
            assert bar.list.state() == QAbstractItemView.State.EditingState  # still open: the edit is not lost
            QTest.keyClick(editor(), Qt.Key.Key_Escape)
            await wait_until(lambda: bar.list.state() != QAbstractItemView.State.EditingState, what="edit cancelled")
            assert not bar.notice.isVisible()
            assert titles(window) == ["Tomatoes", "Pack the tent"]

            assert bar.start_rename("trip")  # what the context menu's Rename does
            await wait_until(lambda: editor() is not None and editor().isVisible(), what="the title editor")
            editor().setText("  Trip planning ")
            QTest.keyClick(editor(), Qt.Key.Key_Return)
            await wait_until(lambda: "Trip planning" in titles(window), what="the renamed chat")
            with HistoryStore(history) as store:
                assert store.load("trip").title == "Trip planning"

            food = bar.list.item(row_of(window, "food"))
            double_click(bar.list.viewport(), bar.list.visualItemRect(food).center())
            await wait_until(lambda: editor() is not None and editor().isVisible(), what="editing on double-click")
            assert editor().text() == "Tomatoes"
            QTest.keyClick(editor(), Qt.Key.Key_Escape)

    run(qloop, go())
    db = sqlite3.connect(history)
    assert db.execute("SELECT title FROM conversations WHERE id = 'food'").fetchone() == ("Tomatoes",)
    db.close()


def test_sidebar_a_refresh_while_a_title_is_typed_keeps_the_editor(qloop, fake_server, tmp_path):
    """Review of #22: another tab's answer ending refreshes the list; rebuilding the rows destroyed the open title
    editor and the half-typed title with it. The refresh waits until the editor closes."""
    history = tmp_path / "data" / "history.sqlite3"
    stored(history, ("trip", "Pack the tent", "hello"), ("food", "Tomatoes", "buy"))

    async def go():
        async with open_window(tmp_path, openai_yaml(fake_server.url), history_path=history) as window:
            bar = sidebar(window)
            assert bar.start_rename("trip")
            editor = await wait_until(lambda: bar.list.findChild(QLineEdit, "titleEditor"), what="the title editor")
            editor.setText("Trip pla")
            with HistoryStore(history) as other_tab:  # a chat saved elsewhere meanwhile
                other_tab.rename("food", "Tomatoes and basil")
            window.history.refresh()
            assert bar.list.state() == QAbstractItemView.State.EditingState and editor.text() == "Trip pla"
            assert "Tomatoes and basil" not in titles(window)  # not yet: shown once the editor closes
            editor.setText("Trip planning")
            QTest.keyClick(editor, Qt.Key.Key_Return)
            await wait_until(lambda: sorted(titles(window)) == ["Tomatoes and basil", "Trip planning"],
                             what="both titles")

    run(qloop, go())
