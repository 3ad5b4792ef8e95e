"""Auto-height text views for the transcript: Markdown (code blocks shaded) and plain text that wraps anywhere."""

from __future__ import annotations

import math

from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import (
    QColor,
    QContextMenuEvent,
    QFont,
    QGuiApplication,
    QPalette,
    QTextBlock,
    QTextBlockFormat,
    QTextCursor,
    QTextOption,
    QTextTable,
    QWheelEvent,
)
from PySide6.QtWidgets import QFrame, QSizePolicy, QTextBrowser, QWidget

# The space between two paragraphs: inside a view (each block's bottom margin) and between the views of one answer
# (segments), where Qt drops a document's first top and last bottom margins.
PARAGRAPH_GAP = 10


class MarkdownView(QTextBrowser):
    """A borderless text view whose height follows its document; it scrolls only sideways, where a wide table (or
    a code block's long line) needs more room than the card has."""

    def __init__(self, parent: QWidget | None = None, markdown: bool = True) -> None:
        super().__init__(parent)
        self._markdown = markdown
        self._source = ""
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self.horizontalScrollBar().rangeChanged.connect(lambda *_: self._fit(self.document().size()))
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
            # Table cells wrap between words only, never inside one (the default wraps anywhere, which broke a
            # wide table's words letter by letter): a table wider than the card scrolls sideways instead.
            self.setWordWrapMode(QTextOption.WrapMode.WordWrap if _has_table(self.document()) else
                                 QTextOption.WrapMode.WrapAtWordBoundaryOrAnywhere)
        else:
            self.setPlainText(text)

    def plain_text(self) -> str:
        return self.document().toPlainText()

    def _height_for(self, document_height: float) -> int:
        bar = self.horizontalScrollBar()
        extra = bar.sizeHint().height() if bar.maximum() > 0 else 0  # the bar takes room below the last line
        return max(1, math.ceil(document_height)) + 2 * self.frameWidth() + extra

    def _fit(self, size) -> None:
        height = self._height_for(size.height())
        if height != self.height():
            self.setFixedHeight(height)

    def wheelEvent(self, event: QWheelEvent) -> None:
        if event.angleDelta().x() and not event.angleDelta().y():  # sideways: this view's own scroll bar
            super().wheelEvent(event)
        else:
            event.ignore()  # up and down: the transcript

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


class PlainTextView(MarkdownView):
    """Selectable plain text, QLabel-like (``setText``/``text``), that wraps anywhere: a URL, a hash or a long
    number breaks inside its card instead of making the card (and the transcript) wider than the view (#22)."""

    def __init__(self, parent: QWidget | None = None, *, name: str | None = None, font: QFont | None = None) -> None:
        super().__init__(parent, markdown=False)
        self.setWordWrapMode(QTextOption.WrapMode.WrapAtWordBoundaryOrAnywhere)
        if name:
            self.setObjectName(name)
        if font is not None:
            self.setFont(font)

    def setText(self, text: str) -> None:
        self.set_source(text)

    def text(self) -> str:
        return self.source_text


def _is_code(block: QTextBlock) -> bool:
    # Qt's Markdown importer marks code-block lines as non-breakable (and gives them a fixed font).
    return block.blockFormat().nonBreakableLines()


def _shade_code_blocks(view: MarkdownView) -> None:
    """Code blocks get a background, paragraphs some air (Qt's importer sets only fonts and lists)."""
    document = view.document()
    # The application's palette: the stylesheet makes each view's own Base transparent.
    shade = tint(QGuiApplication.palette().color(QPalette.ColorRole.Base))
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
            fmt.setBottomMargin(PARAGRAPH_GAP)
        editor.setPosition(block.position())
        editor.mergeBlockFormat(fmt)
        block = block.next()
    editor.endEditBlock()


def _has_table(document) -> bool:
    return any(isinstance(frame, QTextTable) for frame in document.rootFrame().childFrames())


def _in_list(block: QTextBlock, previous: QTextBlock) -> bool:
    """Whether ``block`` continues the list ``previous`` is in (no gap between list items)."""
    return block.isValid() and block.textList() is not None and block.textList() == previous.textList()


def tint(base: QColor) -> QColor:
    # A few shades off the base colour: visible in light and dark palettes alike.
    return base.darker(106) if base.lightness() > 128 else base.lighter(130)
