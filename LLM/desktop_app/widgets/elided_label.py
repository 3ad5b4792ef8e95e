"""One line of text that gives way to its neighbours: cut short with "…" when narrow, the whole text in its tooltip."""

from __future__ import annotations

import math

from PySide6.QtCore import QEvent, QSize, Qt
from PySide6.QtGui import QFontMetricsF, QResizeEvent
from PySide6.QtWidgets import QLabel


class ElidedLabel(QLabel):
    """One line that gives way to the widgets beside it: cut short with "…" when its room is narrow, the whole
    text in its tooltip. ``text()`` is always the whole text."""

    def __init__(self, text: str = "", *, name: str | None = None) -> None:
        super().__init__()
        self.setTextFormat(Qt.TextFormat.PlainText)
        if name:
            self.setObjectName(name)
        self._full = ""
        self.setText(text)

    def setText(self, text: str) -> None:
        self._full = text
        self.setToolTip(text)
        self.updateGeometry()
        self._elide()

    def text(self) -> str:
        return self._full

    def sizeHint(self) -> QSize:
        margins = self.contentsMargins()
        return QSize(self._text_width() + margins.left() + margins.right(), super().sizeHint().height())

    def minimumSizeHint(self) -> QSize:
        return QSize(min(self.sizeHint().width(), self.fontMetrics().horizontalAdvance("M…")),
                     super().minimumSizeHint().height())

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._elide()

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() in (QEvent.Type.FontChange, QEvent.Type.StyleChange):  # the stylesheet's bold, italic
            self.updateGeometry()
            self._elide()

    def _text_width(self) -> int:
        # Fractional advances rounded up: elidedText cuts a text given exactly its rounded width ("Y…" for "You").
        return math.ceil(QFontMetricsF(self.font()).horizontalAdvance(self._full))

    def _elide(self) -> None:
        width = self.contentsRect().width()
        shown = self._full if self._text_width() <= width else \
            self.fontMetrics().elidedText(self._full, Qt.TextElideMode.ElideRight, width)
        if shown != super().text():
            super().setText(shown)
