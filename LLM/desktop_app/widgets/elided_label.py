"""One line of text that gives way to its neighbours: cut short with "…" when narrow, the whole text in its tooltip."""

from __future__ import annotations

import math
import re

from PySide6.QtCore import QEvent, QSize, Qt
from PySide6.QtGui import QFontMetricsF, QResizeEvent
from PySide6.QtWidgets import QLabel

# An absolute path (POSIX, Windows or ~/) of three or more parts, up to a space, quote or bracket; not a URL's.
_PATH = re.compile(r"(?<![\w:/.~-])(?:[A-Za-z]:|~)?([/\\])[^\s\"'()\[\]]+(?:[/\\][^\s\"'()\[\]]+){2,}")


def shorten_paths(text: str) -> str:
    """Long paths in a log line cut to their last part ("…/model.gguf"): the file is what tells them apart."""
    def last_part(match: re.Match[str]) -> str:
        path, sep = match.group(0), match.group(1)
        return "…" + sep + re.split(r"[/\\]", path)[-1]
    return _PATH.sub(last_part, text)


class ElidedLabel(QLabel):
    """One line that gives way to the widgets beside it: cut short with "…" when its room is narrow, the whole
    text in its tooltip. ``text()`` is always the whole text. ``mode`` says where it is cut (the end by default;
    the middle keeps both ends of a path)."""

    def __init__(self, text: str = "", *, name: str | None = None,
                 mode: Qt.TextElideMode = Qt.TextElideMode.ElideRight) -> None:
        super().__init__()
        self._mode = mode
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
            self.fontMetrics().elidedText(self._full, self._mode, width)
        if shown != super().text():
            super().setText(shown)
