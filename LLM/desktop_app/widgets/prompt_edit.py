"""The prompt box: Enter sends, Shift+Enter inserts a new line; it grows with its text up to a limit, then scrolls."""

from __future__ import annotations

import math

from PySide6.QtCore import QSizeF, Qt, Signal
from PySide6.QtGui import QKeyEvent, QResizeEvent, QShowEvent
from PySide6.QtWidgets import QPlainTextEdit, QWidget

MIN_HEIGHT = 76  # about three lines: room to start typing
MAX_LINES = 10  # then it scrolls; never more than a third of the window either


class PromptEdit(QPlainTextEdit):
    submitted = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("promptEdit")
        self.setPlaceholderText("Message the model…  (Enter to send, Shift+Enter for a new line)")
        self.setTabChangesFocus(True)
        self.setFixedHeight(MIN_HEIGHT)
        # The plain-text layout measures the document in lines (wrapped ones included), after each change.
        self.document().documentLayout().documentSizeChanged.connect(self._fit)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and not (
            event.modifiers() & Qt.KeyboardModifier.ShiftModifier
        ):
            self.submitted.emit()
            return
        super().keyPressEvent(event)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._fit()  # a new width wraps the text into more or fewer lines

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self._fit()

    def _fit(self, _size: QSizeF | None = None) -> None:
        lines = max(1, math.ceil(self.document().documentLayout().documentSize().height()))
        chrome = (2 * self.frameWidth() + 2 * self.document().documentMargin() + self.contentsMargins().top()
                  + self.contentsMargins().bottom() + self.viewportMargins().top() + self.viewportMargins().bottom())
        wanted = math.ceil(chrome + lines * self.fontMetrics().lineSpacing())
        limit = math.ceil(chrome + MAX_LINES * self.fontMetrics().lineSpacing())
        if self.window() is not self:
            limit = min(limit, self.window().height() // 3)
        height = max(MIN_HEIGHT, min(wanted, limit))
        if height != self.height():
            self.setFixedHeight(height)
