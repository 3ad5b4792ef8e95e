"""A fenced code block in an answer: language label, Copy and Wrap buttons, long lines scroll sideways,
syntax colours from Pygments (when installed), updated incrementally while the block streams in."""

from __future__ import annotations

import functools
import math
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass

from PySide6.QtCore import QTimer
from PySide6.QtGui import (
    QColor,
    QFont,
    QFontDatabase,
    QGuiApplication,
    QPalette,
    QResizeEvent,
    QSyntaxHighlighter,
    QTextBlockFormat,
    QTextCharFormat,
    QTextCursor,
    QTextDocument,
)
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QSizePolicy, QToolButton, QVBoxLayout, QWidget

from .markdown_view import MarkdownView, tint

try:  # Optional: without Pygments a block is shown in one colour.
    from pygments.lexers import get_lexer_by_name
    from pygments.styles import get_style_by_name
    from pygments.util import ClassNotFound
except ImportError:  # pragma: no cover - exercised only where the desktop extra is incomplete
    get_lexer_by_name = None

# Pygments lexes ~0.2 ms a line here: too slow to do in one go for a 200-line block between two frames. Colours
# are computed in slices of at most this long, on idle turns of the event loop, catching up behind the text: the
# lines that arrived as the block streams, then the whole block once more when it closes (so a string spanning
# two streamed pieces gets its colour). Only lines whose colours changed are redrawn.
SLICE_S = 0.004
LEXER_POLL_MS = 15  # while a language's lexer is being made in its thread
# Made as soon as a transcript exists: the first code block of an answer, streaming, must not wait for them.
PRELOADED = ("python",)  # language -> its lexer (or None), made once per process

FormatRanges = list[tuple[int, int, QTextCharFormat]]  # (start, length, format) in UTF-16 units of a line


@dataclass(frozen=True)
class Fence:
    """A fenced code block's parts: ``language`` from the info string, ``code`` between the fences."""

    language: str
    code: str
    closed: bool


def parse_fence(source: str) -> Fence:
    """Split a fenced block's source (opening fence first; the closing one may not have arrived yet).

    A last line made only of fewer fence characters than the opener is the closing fence on its way, not code.
    """
    opener, ended, body = source.partition("\n")
    stripped = opener.lstrip()
    char = stripped[:1] if stripped[:1] in ("`", "~") else "`"
    marker = len(stripped) - len(stripped.lstrip(char))
    info = stripped[marker:].strip()
    # The language is known once the fence's line has ended: "```pyth" streaming in is not a language yet (its
    # label would flicker, and a lexer would be made for each prefix).
    language = info.split()[0] if info and ended else ""
    lines = body.split("\n")
    for index, line in enumerate(lines):
        candidate = line.strip()
        if candidate and set(candidate) == {char}:
            if len(candidate) >= marker:
                return Fence(language, "\n".join(lines[:index]), True)
            if index == len(lines) - 1:
                lines[index] = ""
    return Fence(language, "\n".join(lines), False)


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _style_name() -> str:
    dark = QGuiApplication.palette().color(QPalette.ColorRole.Base).lightness() < 128
    return "monokai" if dark else "default"


@functools.cache
def _format_for(style_name: str, token_type) -> QTextCharFormat | None:
    """How a Pygments style draws a token type (None: plain); the same answer every time, so it is kept."""
    style = get_style_by_name(style_name).style_for_token(token_type)
    if not (style["color"] or style["bold"] or style["italic"]):
        return None
    fmt = QTextCharFormat()
    if style["color"]:
        fmt.setForeground(QColor(f"#{style['color']}"))
    if style["bold"]:
        fmt.setFontWeight(QFont.Weight.Bold)
    if style["italic"]:
        fmt.setFontItalic(True)
    return fmt


class LineLexer:
    """Lexes ``text`` (starting at a line start) into each line's coloured ranges, a slice at a time."""

    def __init__(self, lexer, text: str, first_line: int = 0) -> None:
        self.first_line = first_line
        self.applied = 0  # lines already handed to the highlighter
        self.lines: list[FormatRanges] = [[]]
        self._tokens = lexer.get_tokens_unprocessed(text)
        self._style = _style_name()
        self._column = 0
        self.done = False

    def advance(self, deadline: float) -> bool:
        """Lex until ``deadline`` (a ``perf_counter`` time) or the end; True once the whole text is lexed."""
        lines, style = self.lines, self._style
        for count, (_index, token_type, value) in enumerate(self._tokens):
            fmt = _format_for(style, token_type)
            for number, piece in enumerate(value.split("\n")):
                if number:
                    lines.append([])
                    self._column = 0
                width = _utf16_len(piece)
                if fmt is not None and width:
                    lines[-1].append((self._column, width, fmt))
                self._column += width
            if count % 32 == 31 and time.perf_counter() >= deadline:
                return False
        self.done = True
        return True

    def finished_lines(self) -> int:
        """How many of ``lines`` are final (the last one may still grow until the text is lexed)."""
        return len(self.lines) if self.done else len(self.lines) - 1


def lex_lines(lexer, text: str) -> list[FormatRanges]:
    """Each line of ``text`` with its coloured ranges, in one go."""
    job = LineLexer(lexer, text)
    job.advance(math.inf)
    return job.lines


class _Highlighter(QSyntaxHighlighter):
    """Applies ranges computed elsewhere: a line is coloured without lexing it again."""

    def __init__(self, document: QTextDocument) -> None:
        super().__init__(document)
        self.lines: list[FormatRanges] = []

    def highlightBlock(self, text: str) -> None:
        number = self.currentBlock().blockNumber()
        if number < len(self.lines):
            for start, length, fmt in self.lines[number]:
                self.setFormat(start, length, fmt)


class CodeView(MarkdownView):
    """The code itself: unwrapped (a horizontal scroll bar for long lines) unless wrapping is asked for.

    ``source_text`` is the fenced source, like every segment of an answer, so the segments add up to the answer.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, markdown=False)
        self.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.setLineWrapMode(MarkdownView.LineWrapMode.NoWrap)
        self._code = ""
        self._lexer = None
        self._lexer_loading: Future | None = None
        self._language = None
        self._queued = 0  # lines handed to a colouring job so far
        self._pieces = 0  # streamed pieces lexed separately (a whole pass at the end makes them agree)
        self._closed = False
        self._job: LineLexer | None = None
        self._worker = QTimer(self, singleShot=True, interval=0)
        self._worker.timeout.connect(self._work)
        self._wrapped = False
        self._highlighter = _Highlighter(self.document()) if get_lexer_by_name is not None else None

    @property
    def code(self) -> str:
        return self._code

    @property
    def language(self) -> str:
        return self._language or ""

    def set_source(self, text: str) -> None:
        if text == self._source:
            return
        self._source = text
        fence = parse_fence(text)
        if fence.language != self._language:
            self._language = fence.language
            self._lexer = None
            self._lexer_loading = _load_lexer(fence.language) if self._highlighter is not None else None
            self._replace("")
        self._show(fence.code)
        self._closed = fence.closed
        if self._lexer_loading is not None and not self._worker.isActive():
            self._worker.start(0)

    def finish(self) -> None:
        """The answer ended, perhaps inside this block (its fence never closed): its last line is complete too,
        and the block is coloured whole."""
        if not self._closed:
            self._closed = True
            if self._lexer_loading is not None and not self._worker.isActive():
                self._worker.start(0)

    def _show(self, code: str) -> None:
        old, self._code = self._code, code
        if not old:  # (inserting into an empty document would carry the view's cursor, and the view, to the end)
            self._replace(code)
        elif code.startswith(old):
            if code != old:
                cursor = QTextCursor(self.document())
                cursor.movePosition(QTextCursor.MoveOperation.End)
                cursor.insertText(code[len(old):])
        elif old.startswith(code):  # the newline before a closing fence, taken back
            cursor = QTextCursor(self.document())
            cursor.setPosition(_utf16_len(code))
            cursor.movePosition(QTextCursor.MoveOperation.End, QTextCursor.MoveMode.KeepAnchor)
            cursor.removeSelectedText()
        else:
            self._replace(code)

    def _replace(self, code: str) -> None:
        self._code = code
        self._queued = self._pieces = 0
        self._job = None
        if self._highlighter is not None:
            self._highlighter.lines = []
        self.setPlainText(code)
        self._mark_lines()

    def set_wrapped(self, wrapped: bool) -> None:
        self._wrapped = wrapped
        self.setLineWrapMode(MarkdownView.LineWrapMode.WidgetWidth if wrapped else MarkdownView.LineWrapMode.NoWrap)
        self._mark_lines()

    def _mark_lines(self) -> None:
        # Lines are marked unbreakable as Qt's Markdown importer marks code (lines added later inherit it), and
        # that mark would also stop wrapping: it goes while wrapping is asked for.
        cursor = QTextCursor(self.document())
        cursor.select(QTextCursor.SelectionType.Document)
        fmt = QTextBlockFormat()
        fmt.setNonBreakableLines(not self._wrapped)
        cursor.mergeBlockFormat(fmt)

    def code_block_at(self, pos) -> str | None:
        return self._code

    def colouring(self) -> bool:
        """Whether colours are still being worked out (they follow the text by a few idle turns)."""
        return self._worker.isActive() or self._job is not None

    def _next_job(self) -> LineLexer | None:
        lines = self._code.split("\n")
        complete = len(lines) if self._closed else len(lines) - 1
        if complete > self._queued:  # lines that arrived since the last job
            job = LineLexer(self._lexer, "\n".join(lines[self._queued:complete]), self._queued)
            self._queued = complete
            self._pieces += 1
            return job
        if self._closed and self._pieces > 1:
            self._pieces = 1
            return LineLexer(self._lexer, self._code)
        return None

    def _work(self) -> None:
        if self._lexer is None:
            if self._lexer_loading is None:
                return
            if not self._lexer_loading.done():
                self._worker.start(LEXER_POLL_MS)
                return
            self._lexer = self._lexer_loading.result() if self._lexer_loading.exception() is None else None
            if self._lexer is None:  # a language Pygments does not know: one colour
                self._lexer_loading = None
                return
        deadline = time.perf_counter() + SLICE_S
        while time.perf_counter() < deadline:
            if self._job is None:
                self._job = self._next_job()
                if self._job is None:
                    return
            job = self._job
            job.advance(deadline)
            self._apply(job)
            if job.done:
                self._job = None
        self._worker.start(0)

    def _apply(self, job: LineLexer) -> None:
        """Hand the job's finished lines to the highlighter, redrawing only those whose colours changed."""
        known = self._highlighter.lines
        document = self.document()
        for offset in range(job.applied, job.finished_lines()):
            number = job.first_line + offset
            ranges = job.lines[offset]
            if number < len(known):
                if known[number] == ranges:
                    continue
                known[number] = ranges
            else:
                known.extend([] for _ in range(number - len(known)))
                known.append(ranges)
            self._highlighter.rehighlightBlock(document.findBlockByNumber(number))
        job.applied = job.finished_lines()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._fit(self.document().size())


def _load_lexer(language: str) -> Future | None:
    """The lexer for ``language`` (None inside when Pygments has none), made once per language in a thread:
    a lexer compiles its regular expressions when first made (~90 ms for Python), a visible stall if the event
    loop waited for it; meanwhile the block is shown in one colour."""
    if get_lexer_by_name is None or not language:
        return None
    return _lexer_future(language.lower())


@functools.cache
def _lexer_future(language: str) -> Future:
    """The one Future of ``language``'s lexer: the first ask starts its thread, later ones share the Future (two
    blocks of one language never compile its lexer twice)."""
    future: Future = Future()
    threading.Thread(target=_make_lexer, args=(language, future), name=f"lexer-{language}", daemon=True).start()
    return future


def preload_lexers(languages: tuple[str, ...] = PRELOADED) -> None:
    """Start making the lexers of the commonest languages now, while nothing streams (see ``_load_lexer``)."""
    for language in languages:
        _load_lexer(language)


def _make_lexer(language: str, future: Future) -> None:
    try:
        future.set_result(get_lexer_by_name(language))
    except ClassNotFound:
        future.set_result(None)
    except Exception as error:  # noqa: BLE001 - whatever Pygments raises, the block stays readable, uncoloured
        future.set_exception(error)


class CodeBlockView(QFrame):
    """Header (language, Wrap, Copy) above the code."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("codeBlock")
        self.setAutoFillBackground(True)
        palette = self.palette()
        palette.setColor(QPalette.ColorRole.Window, tint(QGuiApplication.palette().color(QPalette.ColorRole.Base)))
        self.setPalette(palette)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 2, 4, 6)
        layout.setSpacing(0)
        header = QHBoxLayout()
        self.language_label = QLabel(objectName="codeLanguage")
        self.wrap_button = QToolButton(text="Wrap", objectName="codeWrapButton", autoRaise=True, checkable=True)
        self.wrap_button.setToolTip("Wrap long lines instead of scrolling sideways")
        self.copy_button = QToolButton(text="Copy", objectName="codeCopyButton", autoRaise=True)
        self.copy_button.setToolTip("Copy this code block")
        header.addWidget(self.language_label)
        header.addStretch(1)
        header.addWidget(self.wrap_button)
        header.addWidget(self.copy_button)
        layout.addLayout(header)
        self.code_view = CodeView(self)
        layout.addWidget(self.code_view)
        self.copy_button.clicked.connect(lambda: QGuiApplication.clipboard().setText(self.code_view.code))
        self.wrap_button.toggled.connect(self.code_view.set_wrapped)

    def set_source(self, text: str) -> None:
        self.code_view.set_source(text)
        language = self.code_view.language or "code"
        if self.language_label.text() != language:
            self.language_label.setText(language)

    def finish(self) -> None:
        self.code_view.finish()

    @property
    def source_text(self) -> str:
        return self.code_view.source_text

    def code(self) -> str:
        return self.code_view.code

    def plain_text(self) -> str:
        return self.code_view.code
