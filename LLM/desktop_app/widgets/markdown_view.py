"""Markdown display that stays cheap while an answer streams: auto-height views, split into frozen segments."""

from __future__ import annotations

import math

from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import (
    QColor,
    QContextMenuEvent,
    QGuiApplication,
    QPalette,
    QTextBlock,
    QTextBlockFormat,
    QTextCursor,
    QWheelEvent,
)
from PySide6.QtWidgets import QFrame, QSizePolicy, QTextBrowser, QVBoxLayout, QWidget

# Re-parsing Markdown costs ~1.4 ms per 1,000 characters (with layout). A streaming answer is cut
# into segments of about this size at paragraph breaks outside code fences; finished segments are
# never parsed again, so each refresh costs the same on the 10th paragraph as on the 1,000th.
SEGMENT_CHARS = 1500


class MarkdownView(QTextBrowser):
    """A borderless, non-scrolling text view whose height follows its document."""

    def __init__(self, parent: QWidget | None = None, markdown: bool = True) -> None:
        super().__init__(parent)
        self._markdown = markdown
        self._source = ""
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setOpenExternalLinks(True)
        self.setTextInteractionFlags(
            Qt.TextInteractionFlag.TextSelectableByMouse
            | Qt.TextInteractionFlag.TextSelectableByKeyboard
            | Qt.TextInteractionFlag.LinksAccessibleByMouse
        )
        # Transparent via the window's stylesheet (#markdownView): a per-widget stylesheet costs
        # ~0.2 ms for each of the many views a long transcript creates.
        self.setObjectName("markdownView")
        self.viewport().setAutoFillBackground(False)
        self.document().setDocumentMargin(1)
        self.document().setUndoRedoEnabled(False)  # read-only: no undo history to grow
        self.document().documentLayout().documentSizeChanged.connect(self._fit)
        self.setFixedHeight(self._height_for(0))

    @property
    def source_text(self) -> str:
        return self._source

    def set_source(self, text: str) -> None:
        if text == self._source:
            return
        self._source = text
        if self._markdown:
            self.setMarkdown(text)
            _shade_code_blocks(self)
        else:
            self.setPlainText(text)

    def plain_text(self) -> str:
        return self.document().toPlainText()

    def _height_for(self, document_height: float) -> int:
        return max(1, math.ceil(document_height)) + 2 * self.frameWidth()

    def _fit(self, size) -> None:
        height = self._height_for(size.height())
        if height != self.height():
            self.setFixedHeight(height)

    def wheelEvent(self, event: QWheelEvent) -> None:
        event.ignore()  # never scrolls itself: let the transcript scroll

    def contextMenuEvent(self, event: QContextMenuEvent) -> None:
        menu = self.createStandardContextMenu(event.pos())
        code = self.code_block_at(event.pos())
        if code is not None:
            action = menu.addAction("Copy code block")
            action.triggered.connect(lambda: QGuiApplication.clipboard().setText(code))
        menu.exec(event.globalPos())
        menu.deleteLater()

    def code_block_at(self, pos: QPoint) -> str | None:
        """The whole fenced code block under ``pos`` (consecutive code lines), or None."""
        block = self.cursorForPosition(pos).block()
        if not _is_code(block):
            return None
        while block.previous().isValid() and _is_code(block.previous()):
            block = block.previous()
        lines = []
        while block.isValid() and _is_code(block):
            lines.append(block.text())
            block = block.next()
        return "\n".join(lines)


def _is_code(block: QTextBlock) -> bool:
    # Qt's Markdown importer marks code-block lines as non-breakable (and gives them a fixed font).
    return block.blockFormat().nonBreakableLines()


def _shade_code_blocks(view: MarkdownView) -> None:
    """Code blocks get a background, paragraphs some air (Qt's importer sets only fonts and lists)."""
    document = view.document()
    # The application's palette: the stylesheet makes each view's own Base transparent.
    shade = _tint(QGuiApplication.palette().color(QPalette.ColorRole.Base))
    # One edit block: the document is laid out once at the end, not once per changed block.
    editor = QTextCursor(document)
    editor.beginEditBlock()
    block = document.begin()
    while block.isValid():
        fmt = QTextBlockFormat()
        if _is_code(block):
            fmt.setBackground(shade)
            fmt.setLeftMargin(6)
            fmt.setRightMargin(6)
            if not _is_code(block.previous()):
                fmt.setTopMargin(8)
            if not _is_code(block.next()):
                fmt.setBottomMargin(8)
        elif block.textList() is None or not _in_list(block.next(), block):
            fmt.setBottomMargin(10)
        editor.setPosition(block.position())
        editor.mergeBlockFormat(fmt)
        block = block.next()
    editor.endEditBlock()


def _in_list(block: QTextBlock, previous: QTextBlock) -> bool:
    """Whether ``block`` continues the list ``previous`` is in (no gap between list items)."""
    return block.isValid() and block.textList() is not None and block.textList() == previous.textList()


def _tint(base: QColor) -> QColor:
    # A few shades off the base colour: visible in light and dark palettes alike.
    return base.darker(106) if base.lightness() > 128 else base.lighter(130)


def stable_split(text: str, min_chars: int) -> int:
    """The first paragraph break (outside code fences) at or after ``min_chars``; 0 if none yet.

    ``text`` must itself start outside a fence (it always starts at an earlier split).
    """
    in_fence = False
    pos = 0
    for line in text.splitlines(keepends=True):
        stripped = line.lstrip()
        if stripped.startswith("```") or stripped.startswith("~~~"):
            in_fence = not in_fence
        pos += len(line)
        if pos >= min_chars and not in_fence and not stripped.strip() and line.endswith("\n"):
            return pos
    return 0


class SegmentedMarkdown(QWidget):
    """Markdown text shown as a column of MarkdownViews; only the last one is re-rendered as text grows."""

    def __init__(
        self, parent: QWidget | None = None, markdown: bool = True, segment_chars: int = SEGMENT_CHARS
    ) -> None:
        super().__init__(parent)
        self._markdown = markdown
        self._segment_chars = segment_chars
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.setSpacing(0)
        self._views: list[MarkdownView] = []
        self._frozen = 0  # characters of text held by all views but the last
        self._text = ""
        self._add_view()

    def _add_view(self) -> MarkdownView:
        view = MarkdownView(self, self._markdown)
        self._layout.addWidget(view)
        self._views.append(view)
        return view

    def set_text(self, text: str) -> None:
        if text == self._text:
            return
        if not text.startswith(self._text[: self._frozen]):
            self._reset()
        self._text = text
        rest = text[self._frozen :]
        while self._markdown and len(rest) > 2 * self._segment_chars:
            cut = stable_split(rest, self._segment_chars)
            if not cut:
                break
            self._views[-1].set_source(rest[:cut])
            self._frozen += cut
            rest = rest[cut:]
            self._add_view()
        self._views[-1].set_source(rest)

    def _reset(self) -> None:
        for view in self._views[1:]:
            view.setParent(None)
            view.deleteLater()
        del self._views[1:]
        self._frozen = 0
        self._text = ""
        self._views[0].set_source("")

    def text(self) -> str:
        return self._text

    def plain_text(self) -> str:
        return "\n".join(view.plain_text() for view in self._views)

    def views(self) -> list[MarkdownView]:
        return list(self._views)
