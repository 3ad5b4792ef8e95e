"""The answer cards (#22): a cut answer says so and continues, reasoning reads apart from the answer, actions look
clickable, edited tool calls say so, wide tables scroll, segments keep their spacing, a streaming fence waits for
its whole first line."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QApplication, QLabel, QPushButton, QToolButton

from LLM.desktop_app.widgets.code_block import CodeBlockView
from LLM.desktop_app.widgets.markdown_view import MarkdownView
from LLM.desktop_app.widgets.segmented_markdown import SegmentedMarkdown
from LLM.tests.desktop_app.harness import (
    ScriptedInteraction,
    click,
    last_answer,
    open_window,
    openai_yaml,
    page,
    run,
    transcript,
    type_and_send,
    wait_until,
)

CALC = {"name": "calculator", "arguments": {"expression": "6*7"}}
WIDE_TABLE = ("| name | value |\n|---|---|\n| Supercalifragilisticexpialidocious_and_more | "
              "anotherverylongwordwithoutanyspaces_at_all_really |\n")


def test_answer_cards_cut_answer_names_the_limit_and_continue_writes_on(qloop, fake_server, tmp_path):
    fake_server.script({"text": "The primary colours are red, ", "finish_reason": "length"},
                       {"text": "yellow and blue.", "n_chunks": 3})

    async def go():
        async with open_window(tmp_path, openai_yaml(fake_server.url)) as window:
            window.resize(1000, 700)
            chat = page(window)
            type_and_send(chat, "Name them")
            await wait_until(lambda: last_answer(chat).final, what="the cut answer")
            cut = last_answer(chat)
            card = transcript(chat).widget_for(cut.id)
            assert not card.cut_row.isHidden()
            assert "token limit" in card.cut_note.text() and "64" in card.cut_note.text()
            button = card.findChild(QPushButton, "continueButton")
            assert button is not None and not button.isHidden() and button.isEnabled()
            click(button)
            await wait_until(lambda: last_answer(chat).id != cut.id and last_answer(chat).final,
                             what="the continued answer")
            whole = last_answer(chat)
            assert whole.content == "The primary colours are red, yellow and blue."
            sent = fake_server.requests()[-1]["body"]["messages"]
            assert sent[-1] == {"role": "assistant", "content": "The primary colours are red, "}
            new_card = transcript(chat).widget_for(whole.id)
            assert new_card.cut_row.isHidden() and new_card.findChild(QPushButton, "continueButton").isHidden()
            assert new_card.branch_text() == "2/2"  # the cut answer stays a branch

    run(qloop, go())


def test_answer_cards_reasoning_is_set_apart_from_the_answer(qloop, fake_server, tmp_path):
    fake_server.script({"reasoning": "The user greets me, so I greet back.", "text": "Hello!"})

    async def go():
        async with open_window(tmp_path, openai_yaml(fake_server.url)) as window:
            chat = page(window)
            type_and_send(chat, "Hi")
            await wait_until(lambda: last_answer(chat).final, what="the answer")
            card = transcript(chat).widget_for(last_answer(chat).id)
            click(card.reasoning_toggle)
            await wait_until(lambda: card.reasoning_view.isVisible(), what="the reasoning")
            box = card.reasoning_view.parentWidget()
            assert box.objectName() == "reasoningBox"
            assert box.findChild(QLabel, "reasoningLabel").text() == "Reasoning"
            [thinking] = card.reasoning_view.views()
            [answer] = [w for w in card.findChildren(SegmentedMarkdown) if w is not card.reasoning_view]
            said = answer.views()[0]
            assert thinking.font().italic() and not said.font().italic()
            assert thinking.font().pointSizeF() < said.font().pointSizeF()
            muted = window.palette().color(QPalette.ColorRole.PlaceholderText)
            assert thinking.palette().color(QPalette.ColorRole.Text) == muted
            assert said.palette().color(QPalette.ColorRole.Text) != muted
            assert thinking.mapTo(card, thinking.rect().topLeft()).x() > said.mapTo(card, said.rect().topLeft()).x()

    run(qloop, go())


def test_answer_cards_actions_and_step_links_look_clickable_and_take_the_keyboard(qloop, fake_server, tmp_path):
    fake_server.script({"tool_calls": [CALC]}, {"text": "It is 42."})

    async def go():
        async with open_window(tmp_path, openai_yaml(fake_server.url)) as window:
            tools = page(window, "toolChatPage")
            window.tabs.setCurrentWidget(tools)
            type_and_send(tools, "What is 6*7?")
            await wait_until(lambda: last_answer(tools).final, what="the tool answer")
            card = transcript(tools).widget_for(last_answer(tools).id)
            link = window.palette().color(QPalette.ColorRole.Link)
            names = ["copyButton", "regenerateButton", "stepButton", "editArgumentsButton", "editResultButton",
                     "rerunStepButton"]
            for name in names:
                button = card.findChild(QToolButton, name)
                assert button is not None, name
                assert button.cursor().shape() == Qt.CursorShape.PointingHandCursor, name
                assert button.focusPolicy() & Qt.FocusPolicy.TabFocus, name
                assert button.palette().color(QPalette.ColorRole.ButtonText) == link, name
            step = card.findChild(QToolButton, "stepButton")
            step.setFocus(Qt.FocusReason.TabFocusReason)
            assert step.hasFocus()

    run(qloop, go())


def test_answer_cards_edited_arguments_and_results_are_marked(qloop, fake_server, tmp_path):
    fake_server.script({"tool_calls": [CALC]}, {"text": "It is 42."}, {"text": "It is 10."}, {"text": "It is 7."})
    interaction = ScriptedInteraction(texts=('{"expression": "2*5"}', "7"))

    async def go():
        async with open_window(tmp_path, openai_yaml(fake_server.url), interaction=interaction) as window:
            tools = page(window, "toolChatPage")
            window.tabs.setCurrentWidget(tools)
            type_and_send(tools, "What is 6*7?")
            await wait_until(lambda: last_answer(tools).final, what="the tool answer")
            first = last_answer(tools)
            card = transcript(tools).widget_for(first.id).tool_cards()[0]
            assert card.edited_tag.isHidden()
            click(card.findChild(QToolButton, "editArgumentsButton"))
            await wait_until(lambda: last_answer(tools).id != first.id and last_answer(tools).final,
                             what="the replay with edited arguments")
            second = last_answer(tools)
            widget = transcript(tools).widget_for(second.id)
            tag = widget.tool_cards()[0].edited_tag
            assert not tag.isHidden() and tag.text() == "edited arguments"
            assert "6*7" in tag.toolTip()  # the model's own arguments, kept in its step
            assert "edited" in widget.findChild(QToolButton, "stepButton").text()
            click(widget.tool_cards()[0].findChild(QToolButton, "editResultButton"))
            await wait_until(lambda: last_answer(tools).id != second.id and last_answer(tools).final,
                             what="the replay with an edited result")
            tag = transcript(tools).widget_for(last_answer(tools).id).tool_cards()[0].edited_tag
            # (a replay of the replay: its arguments were edited before, its result now)
            assert not tag.isHidden() and tag.text() == "edited arguments and result"

    run(qloop, go())


def test_answer_cards_wide_table_scrolls_inside_its_card(qapp):
    view = MarkdownView()
    view.resize(300, 100)
    view.show()
    view.set_source("A table:\n\n" + WIDE_TABLE)
    QApplication.processEvents()
    document = view.document()
    cell = document.begin()
    while cell.isValid() and not cell.text().startswith("Supercali"):
        cell = cell.next()
    assert cell.layout().lineCount() == 1  # the word is whole, not broken letter by letter
    bar = view.horizontalScrollBar()
    assert bar.maximum() > 0  # the table scrolls sideways
    assert view.height() >= document.size().height() + bar.sizeHint().height()  # and the bar hides no row
    view.set_source("A paragraph with a longwordthatgoesonandonandonandonandonandonandonandonandonandonandonandon")
    QApplication.processEvents()
    assert bar.maximum() == 0  # without a table, text still wraps inside the view


def test_answer_cards_segment_joins_keep_paragraph_spacing(qapp):
    view = SegmentedMarkdown(segment_chars=10)
    view.setFixedWidth(400)
    view.set_text("First paragraph.\n\n```python\nprint(1)\n```\n\nAfter the code.\n\nA last paragraph here.\n")
    view.show()
    QApplication.processEvents()
    view.resize(400, view.sizeHint().height())  # as tall as its card gives it: no spare room between segments
    QApplication.processEvents()
    views = [v for v in view.views() if v.isVisible()]
    assert [type(v) for v in views[:3]] == [MarkdownView, CodeBlockView, MarkdownView]
    for above, below in zip(views, views[1:]):
        gap = below.geometry().top() - above.geometry().bottom() - 1
        assert gap >= 8, (above.source_text, below.source_text, gap)


def test_answer_cards_streaming_fence_takes_its_language_once_the_line_ends(qapp):
    block = CodeBlockView()
    seen = []
    for source in ("```", "```py", "```pyth", "```python", "```python\n", "```python\nprint(1)"):
        block.set_source(source)
        seen.append(block.code_view.language)
    assert seen == ["", "", "", "", "python", "python"]
    assert block.language_label.text() == "python"
