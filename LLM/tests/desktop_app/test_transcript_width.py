"""The transcript's width: every message card, and its buttons, fit the visible width of the view."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPoint
from PySide6.QtWidgets import QLabel, QSplitter, QWidget

from LLM.desktop_app.widgets.transcript import TranscriptView
from LLM.tests.desktop_app.harness import (
    last_answer,
    open_window,
    openai_yaml,
    page,
    run,
    transcript,
    type_and_send,
    wait_until,
)

PARAGRAPH = ("A reply long enough to wrap over a few lines of the transcript, so that a handful of them "
             "fills the view and the vertical scroll bar appears. ") * 3
TOKEN = "x" * 300  # one unbreakable word, wider than any window
# The built-in model's name: the card header (name, status, Copy, Regenerate) must fit beside the scroll bar.
DISPLAY_NAME = "SmolLM2 135M Instruct (built-in)"


def _right_edge(widget: QWidget, view: TranscriptView) -> int:
    """Where ``widget`` ends, in the coordinates of the view's viewport (what the user sees)."""
    return widget.mapTo(view.viewport(), QPoint(widget.width(), 0)).x()


def _overflows(view: TranscriptView) -> list[str]:
    """Everything that reaches past the right edge of the viewport (empty when the transcript fits)."""
    width = view.viewport().width()
    problems = []
    if view.widget().width() > width:
        problems.append(f"body {view.widget().width()} px wide in a {width} px viewport")
    # What the body needs: wider than the view, its text is cut off at the right even if the body is not (#22).
    if view.widget().minimumSizeHint().width() > width:
        problems.append(f"body needs {view.widget().minimumSizeHint().width()} px in a {width} px viewport")
    for card in view.message_widgets():
        if _right_edge(card, view) > width:
            problems.append(f"card {card.message_id} ends at {_right_edge(card, view)} of {width} px")
        shown = QLabel.text(card.author)  # what is drawn: the whole name, or the name cut short with "…"
        if card.author.fontMetrics().horizontalAdvance(shown) > card.author.contentsRect().width():
            problems.append(f"the name {shown!r} is clipped, not elided")
        for button in (card.copy_button, card.regenerate_button):
            if not button.isVisible():
                continue
            if _right_edge(button, view) > width:
                problems.append(f"{button.text()} of {card.message_id} ends at {_right_edge(button, view)} "
                                f"of {width} px")
            if button.width() < button.sizeHint().width():
                problems.append(f"{button.text()} of {card.message_id} squeezed to {button.width()} px")
    return problems


async def _settled_overflows(view: TranscriptView) -> list[str]:
    # Qt lays widgets out from posted events: give it until the deadline to settle, then report what is left.
    try:
        await wait_until(lambda: not _overflows(view), timeout=30, what="the transcript to fit its viewport")
    except AssertionError:
        pass
    return _overflows(view)


def _drag_splitter(chat: QWidget, column_width: int) -> None:
    """Give the chat column ``column_width`` pixels, as a user dragging the handle beside the settings does."""
    splitter = chat.findChild(QWidget, "chatColumn").parentWidget()
    assert isinstance(splitter, QSplitter)
    total = sum(splitter.sizes())
    splitter.setSizes([column_width, total - column_width])


@pytest.mark.parametrize("size", [(1000, 700), (1600, 900)], ids=["narrow", "wide"])
def test_transcript_cards_and_their_buttons_fit_the_view_once_it_scrolls(qloop, fake_server, tmp_path, size):
    """Regression (#19, transcript width): once the vertical scroll bar appeared, each message card was wider
    than the view and its right-hand buttons were cut off ("Cop", "Regenerat")."""
    fake_server.set_default({"text": PARAGRAPH})

    async def go():
        config = openai_yaml(fake_server.url).replace('"Fake model"', f'"{DISPLAY_NAME}"')
        async with open_window(tmp_path, config) as window:
            window.resize(*size)
            chat = page(window)
            view = transcript(chat)
            for turn in range(12):
                type_and_send(chat, f"Question {turn}: please answer at some length.")
                await wait_until(lambda: last_answer(chat).status == "done", what=f"answer {turn}")
                if view.verticalScrollBar().isVisible():
                    break
            assert view.verticalScrollBar().isVisible(), "the transcript never needed to scroll"
            assert view.widget_for(last_answer(chat).id).regenerate_button.isVisible()
            problems = await _settled_overflows(view)
            # Where there is room, names are shown whole (they give way only when the card is narrow).
            assert [QLabel.text(card.author) for card in view.message_widgets()] == [
                card.author.text() for card in view.message_widgets()]
            for column_width in (600, 420):  # narrower than the cards' header wants, with the scroll bar beside
                _drag_splitter(chat, column_width)
                problems += [f"{column_width} px column: {p}" for p in await _settled_overflows(view)]
            assert not problems, "\n".join(problems)
            # A very long word (a URL, a hash) wraps or clips inside its card; it never widens the transcript.
            fake_server.script({"text": f"Here it is: {TOKEN} and more words after it."})
            type_and_send(chat, f"Repeat {TOKEN}")
            await wait_until(lambda: last_answer(chat).status == "done", what="the long word's answer")
            # The same in a label: an error naming a long path.
            fake_server.script({"status": 500, "body": {"error": {"message": f"cannot open /models/{TOKEN}"}}})
            type_and_send(chat, "And now?")
            await wait_until(lambda: last_answer(chat).status == "failed", what="the failed answer")
            problems = await _settled_overflows(view)
            assert not problems, "\n".join(problems)

    run(qloop, go())


# A model name of 110 characters, and a tool argument of 270 characters with nowhere to break a line (#22).
LONG_NAME = ("Qwen2.5-Coder-32B-Instruct-GGUF-Q4_K_M-imatrix-calibrated-on-code-and-chat-"
             "with-a-very-long-suffix-for-testing")[:110].ljust(110, "x")
UNBROKEN = "1234567890" * 27


@pytest.mark.parametrize("size", [(1000, 700), (1600, 1000)], ids=["1000x700", "1600x1000"])
def test_transcript_fits_its_view_with_a_long_model_name_and_an_unbroken_tool_argument(
        qloop, fake_server, tmp_path, size):
    """Regression (#22, transcript width): a 110-character display_name or a tool argument with no spaces (a URL,
    a 270-character expression) widened every card of the Chat and Tool chat tabs past the view, and their
    Copy/Regenerate buttons and the scroll bar went off-screen (the tool chat body 1,558 px too wide)."""
    assert len(LONG_NAME) == 110 and len(UNBROKEN) == 270

    async def go():
        config = openai_yaml(fake_server.url).replace('"Fake model"', f'"{LONG_NAME}"')
        async with open_window(tmp_path, config) as window:
            window.resize(*size)
            problems = []
            for name in ("chatPage", "toolChatPage"):
                chat = page(window, name)
                window.tabs.setCurrentWidget(chat)
                view = transcript(chat)
                if name == "chatPage":
                    fake_server.script({"text": f"The number is {UNBROKEN}, as asked."})
                else:
                    fake_server.script(
                        {"tool_calls": [{"name": "calculator", "arguments": {"expression": UNBROKEN}}]},
                        {"text": f"The result is {UNBROKEN}."})
                type_and_send(chat, f"Work out {UNBROKEN}")
                await wait_until(lambda: last_answer(chat).final, what=f"the answer in {name}")
                assert view.widget_for(last_answer(chat).id).regenerate_button.isVisible()
                if name == "toolChatPage":
                    assert view.widget_for(last_answer(chat).id).tool_cards(), "no tool card to measure"
                problems += [f"{name} at {size}: {p}" for p in await _settled_overflows(view)]
                # Each card's parts (markdown, tool cards) end inside the viewport too.
                width = view.viewport().width()
                for card in view.message_widgets():
                    for part in card.tool_cards():
                        for label in (part.arguments, part.result):
                            if _right_edge(label, view) > width:
                                problems.append(f"{name}: tool card text ends at {_right_edge(label, view)} "
                                                f"of {width} px")
                assert view.widget_for(last_answer(chat).id).author.toolTip() == LONG_NAME
            assert not problems, "\n".join(problems)

    run(qloop, go())
