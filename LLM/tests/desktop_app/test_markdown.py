"""Markdown rendering for the transcript: where a streaming answer may be cut, segment reuse, code blocks."""

from __future__ import annotations

import sys
import time

import pytest
from PySide6.QtGui import QGuiApplication, QTextFormat
from PySide6.QtWidgets import QApplication, QPushButton

from LLM.desktop_app.widgets.code_block import Fence, parse_fence
from LLM.desktop_app.widgets.segmented_markdown import SegmentedMarkdown, next_segment, stable_split


@pytest.mark.parametrize(
    "text, min_chars, expected",
    [
        pytest.param("one\n\ntwo", 1, 5, id="after-first-blank-line"),
        pytest.param("one\n\ntwo\n\nthree", 6, 10, id="first-break-past-the-minimum"),
        pytest.param("one line only", 1, 0, id="no-break-yet"),
        pytest.param("```\ncode\n\nmore\n```\n\nafter", 1, 20, id="not-inside-a-code-fence"),
        pytest.param("~~~\ncode\n\n~~~\n\nx", 1, 15, id="tilde-fence"),
        pytest.param("```\nunclosed\n\nstill code", 1, 0, id="open-fence-never-cut"),
    ],
)
def test_desktop_markdown_stable_split(text, min_chars, expected):
    assert stable_split(text, min_chars) == expected


def test_desktop_markdown_segments_freeze_finished_paragraphs(qapp):
    view = SegmentedMarkdown(segment_chars=50)
    paragraphs = [f"Paragraph {i} " + "word " * 12 for i in range(8)]
    text = ""
    for paragraph in paragraphs:
        text += paragraph + "\n\n"
        view.set_text(text)
    first = view.views()[0]
    frozen_source = first.source_text
    assert len(view.views()) > 2
    view.set_text(text + "tail")
    assert view.views()[0] is first and first.source_text == frozen_source  # not parsed again
    assert "".join(v.source_text for v in view.views()) == text + "tail"
    assert "Paragraph 7" in view.plain_text()
    view.set_text("something else")  # not a continuation: start over
    assert len(view.views()) == 1 and view.plain_text() == "something else"


def test_desktop_qt_binding_keeps_refcounts(qapp):
    """Pins the PySide6 6.12.0 bug on Python 3.11: every call returning None dropped a reference to
    None, so the test process aborted at exit ("deallocating None/True"). Use a release without it."""
    button = QPushButton()
    before = sys.getrefcount(None)
    for _ in range(200):
        button.setEnabled(True)
    assert sys.getrefcount(None) >= before - 5


@pytest.mark.parametrize(
    "text, expected",
    [
        pytest.param("Use it:\n\n```py\nx\n```\nafter", ("text", 9), id="text-before-a-block-is-finished"),
        pytest.param("```py\nx = 1\n```\nafter", ("code", 16), id="block-ends-after-its-closing-line"),
        pytest.param("```py\nx = 1\n```", None, id="closing-fence-may-still-grow"),
        pytest.param("```py\nx = 1\n", None, id="open-block"),
        pytest.param("````md\n```\ninner\n```\n````\n", ("code", 26), id="longer-fence-holds-shorter"),
        pytest.param("~~~\nx\n~~~\n", ("code", 10), id="tilde-fence"),
        pytest.param("- item\n\n    ```\n    code\n    ```\n", None, id="indented-fence-stays-in-the-list"),
        pytest.param("```inline``` words\n\nmore", None, id="inline-code-is-no-fence"),
        pytest.param("just words", None, id="nothing-finished"),
    ],
)
def test_desktop_markdown_next_segment(text, expected):
    assert next_segment(text, 1000) == expected


@pytest.mark.parametrize(
    "source, expected",
    [
        pytest.param("```python\nx = 1\n```\n", Fence("python", "x = 1", True), id="closed"),
        pytest.param("```python title\nx = 1\ny", Fence("python", "x = 1\ny", False), id="streaming"),
        pytest.param("```js\nx\n``", Fence("js", "x\n", False), id="closing-fence-on-its-way"),
        pytest.param("```\nx\n", Fence("", "x\n", False), id="no-language"),
        pytest.param("````md\n```\ninner\n```\n````", Fence("md", "```\ninner\n```", True), id="nested"),
    ],
)
def test_desktop_markdown_parse_fence(source, expected):
    assert parse_fence(source) == expected


LONG_LINE = "values = [" + ", ".join(str(i) for i in range(80)) + "]  # " + "x" * 20
CODE = "\n".join(["def total(values):", '    """Add them', '    up."""', f"    {LONG_LINE}", "    return sum(values)"])
ANSWER = f"Here is the code:\n\n```python\n{CODE}\n```\n\nThat is all."


def _shown(width: int = 500) -> SegmentedMarkdown:
    view = SegmentedMarkdown()
    view.resize(width, 400)
    view.show()
    return view


def test_desktop_code_block_has_a_language_label_and_copies_the_exact_code(qapp):
    """#22: copying a block was only in the context menu; a block names its language."""
    assert len(LONG_LINE) >= 300
    view = _shown()
    view.set_text(ANSWER)
    [block] = view.code_blocks()
    assert block.language_label.text() == "python"
    QGuiApplication.clipboard().clear()
    block.copy_button.click()
    assert QGuiApplication.clipboard().text() == CODE
    assert "".join(v.source_text for v in view.views()) == ANSWER  # the segments still add up to the answer
    assert "That is all." in view.plain_text() and "Here is the code" in view.plain_text()


def test_desktop_code_block_long_lines_scroll_sideways_or_wrap(qapp):
    """#22: a block cut its long lines with no way to reach them."""
    view = _shown()
    view.set_text(ANSWER)
    code = view.code_blocks()[0].code_view
    qapp.processEvents()
    bar = code.horizontalScrollBar()
    assert bar.maximum() > 0 and bar.isVisible(), "the 300-character line cannot be reached"
    assert code.viewport().height() >= code.document().size().height() - 1, "the scroll bar hides the last line"
    unwrapped = code.height()
    view.code_blocks()[0].wrap_button.click()
    qapp.processEvents()
    assert bar.maximum() == 0 and code.height() > unwrapped  # wrapped: every character in view, no scrolling
    assert view.width() <= 500


def _coloured(code_view) -> list[tuple[int, int, int, str]]:
    """The coloured ranges drawn (line, start, length, colour), once they have caught up with the text (they
    follow it by a few idle turns of the event loop)."""
    deadline = time.monotonic() + 10
    while code_view.colouring() and time.monotonic() < deadline:
        QApplication.processEvents()
    assert not code_view.colouring(), "colouring never finished"
    ranges = []
    block = code_view.document().begin()
    while block.isValid():
        ranges += [(block.blockNumber(), r.start, r.length, r.format.foreground().color().name())
                   for r in block.layout().formats() if r.format.hasProperty(QTextFormat.Property.ForegroundBrush)]
        block = block.next()
    return ranges


def test_desktop_code_block_is_highlighted_and_streaming_gives_the_same_colours(qapp):
    pytest.importorskip("pygments")
    whole = _shown()
    whole.set_text(ANSWER)
    colours = _coloured(whole.code_blocks()[0].code_view)
    assert len({colour for *_, colour in colours}) >= 3, "no syntax colours"
    streamed = _shown()
    for end in range(1, len(ANSWER) + 1, 7):
        streamed.set_text(ANSWER[:end])
        QApplication.processEvents()  # colours catch up piece by piece (a docstring spans two pieces)
    streamed.set_text(ANSWER)
    [block] = streamed.code_blocks()
    assert block.code() == CODE and _coloured(block.code_view) == colours
    assert "".join(v.source_text for v in streamed.views()) == ANSWER


def test_desktop_code_block_left_open_is_coloured_to_its_end_once_the_answer_ends(qapp):
    """Regression (#22 review): an answer that ended (or was stopped) inside a fence never coloured the block's
    last line, which colouring waits for until it is complete."""
    pytest.importorskip("pygments")
    view = _shown()
    view.set_text("```python\nx = 1\nreturn_value = compute(x)")
    [block] = view.code_blocks()
    _coloured(block.code_view)
    last_line = block.code_view.document().lastBlock()
    assert not last_line.layout().formats()  # still being written: not coloured yet
    view.finish()
    _coloured(block.code_view)
    assert last_line.layout().formats(), "the last line was never coloured"
