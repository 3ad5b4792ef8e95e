"""The prompt box: Enter sends, Shift+Enter inserts a new line; it grows with its text up to a limit, then scrolls.
Files dropped or pasted on it (and a pasted image) are handed on to be attached; text drops and pastes as ever."""

from __future__ import annotations

import math
from pathlib import Path

from PySide6.QtCore import QMimeData, QSizeF, Qt, Signal
from PySide6.QtGui import QImage, QKeyEvent, QPixmap, QResizeEvent, QShowEvent
from PySide6.QtWidgets import QPlainTextEdit, QWidget

MIN_HEIGHT = 76  # about three lines: room to start typing
MAX_LINES = 10  # then it scrolls; never more than a third of the window either
# An image pasted as an encoded file is attached as those bytes (no decoding on the GUI thread); the suffix it gets.
IMAGE_FORMATS = {"image/png": "png", "image/jpeg": "jpg", "image/gif": "gif", "image/webp": "webp"}


def local_files(source: QMimeData) -> list[Path]:
    """The local files a drop or a paste carries; none when any URL is not a local file (a link is text)."""
    urls = source.urls() if source.hasUrls() else []
    if not urls or not all(url.isLocalFile() for url in urls):
        return []
    return [Path(url.toLocalFile()) for url in urls]


def carries_image(source: QMimeData) -> bool:
    """Whether a paste or drop is an image (asked on every move of a drag: it reads no data). One that also
    carries text is text: a spreadsheet's cells come with a picture of them, and the cells are what is meant."""
    return source.hasImage() and not source.hasText()


def pasted_image(source: QMimeData) -> QImage | tuple[str, bytes] | None:
    """An image a paste carries, as its encoded bytes when the clipboard has them, else as a QImage."""
    if not carries_image(source):
        return None
    for mime, suffix in IMAGE_FORMATS.items():
        if source.hasFormat(mime):
            data = bytes(source.data(mime).data())
            if data:
                return suffix, data
    image = source.imageData()
    if isinstance(image, QPixmap):
        image = image.toImage()
    return image if isinstance(image, QImage) and not image.isNull() else None


class PromptEdit(QPlainTextEdit):
    submitted = Signal()
    files_given = Signal(list)  # list[Path]: dropped or pasted files
    image_pasted = Signal(object)  # QImage, or (suffix, bytes) of an encoded image


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

    # Drops and pastes both arrive here (QPlainTextEdit routes them through these two).
    def canInsertFromMimeData(self, source: QMimeData) -> bool:
        return bool(local_files(source)) or carries_image(source) or super().canInsertFromMimeData(source)

    def insertFromMimeData(self, source: QMimeData) -> None:
        files = local_files(source)
        if files:
            self.files_given.emit(files)
            return
        image = pasted_image(source)
        if image is not None:
            self.image_pasted.emit(image)
            return
        super().insertFromMimeData(source)

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
