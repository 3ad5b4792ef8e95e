"""Attached files, drawn: a chip per file waiting in the composer (loading, then its thumbnail or type, name and
size, with ×), and the files of a sent message in the transcript (image thumbnails, document chips)."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable, Coroutine
from typing import Any

import shiboken6
from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QFontMetrics, QPixmap
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QScrollArea, QToolButton, QVBoxLayout, QWidget

from LLM.core import LLMError
from LLM.core.attachments import Blobs, Media, human_size, thumbnail_png

from ..attachment_loading import THUMBNAIL_SIDE
from .elided_label import ElidedLabel

CHIP_ICON = 40  # pixels: a chip's thumbnail or type badge
TRANSCRIPT_THUMBNAIL = 120  # pixels: the longest side of a sent image in the transcript
MAX_THUMBNAILS = 256  # thumbnails the transcript keeps (each a few KB of PNG)

Spawn = Callable[[Coroutine[Any, Any, Any], str], object]


def type_badge(name: str, mime: str) -> str:
    """What a document's icon says: its extension (PDF, CSV, MD), else its type's last word."""
    suffix = name.rpartition(".")[2] if "." in name else ""
    return (suffix or mime.rpartition("/")[2] or "file")[:4].upper()


def pixmap(png: bytes, side: int) -> QPixmap:
    """A thumbnail PNG (already small: decoding it is cheap) fitted into ``side`` pixels."""
    image = QPixmap()
    image.loadFromData(png, "PNG")
    if image.isNull() or max(image.width(), image.height()) <= side:
        return image
    return image.scaled(side, side, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)


def _badge(text: str, side: int, name: str) -> QLabel:
    label = QLabel(text, objectName=name)
    label.setFixedSize(side, side)
    label.setAlignment(Qt.AlignmentFlag.AlignCenter)
    return label


class AttachmentChip(QFrame):
    """One file waiting to be sent. ``state``: loading (its name only) or ready (thumbnail or type, size)."""

    remove_requested = Signal(int)  # the file's key

    def __init__(self, key: int, name: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("attachmentChip")
        self.key = key
        self.name = name
        self.icon = _badge("…", CHIP_ICON, "chipIcon")
        self.title = ElidedLabel(name, name="chipName", mode=Qt.TextElideMode.ElideMiddle)
        self.title.setMaximumWidth(180)
        self.detail = QLabel("loading…", objectName="chipDetail")
        self.remove = QToolButton(objectName="removeAttachment", autoRaise=True)
        self.remove.setText("×" if QFontMetrics(self.remove.font()).inFontUcs4(0xD7) else "x")
        self.remove.setToolTip(f"Remove {name}")
        self.remove.setAccessibleName(f"Remove {name}")
        self.remove.setCursor(Qt.CursorShape.PointingHandCursor)
        self.remove.clicked.connect(lambda: self.remove_requested.emit(self.key))
        text = QVBoxLayout()
        text.setContentsMargins(0, 0, 0, 0)
        text.setSpacing(0)
        text.addWidget(self.title)
        text.addWidget(self.detail)
        row = QHBoxLayout(self)
        row.setContentsMargins(4, 4, 2, 4)
        row.setSpacing(6)
        row.addWidget(self.icon)
        row.addLayout(text)
        row.addWidget(self.remove, 0, Qt.AlignmentFlag.AlignTop)
        self.setProperty("state", "loading")
        self.setToolTip(f"{name}: reading…")

    @property
    def state(self) -> str:
        return str(self.property("state"))

    def fill(self, media: Media, size: int, thumbnail: bytes | None, tokens: int) -> None:
        """The file is read: what it is, its size and cost, an image's thumbnail."""
        self.detail.setText(f"{media.label} · {human_size(size)}")
        if thumbnail is not None:
            self.icon.setPixmap(pixmap(thumbnail, CHIP_ICON))
            self.icon.setObjectName("chipThumbnail")
        else:
            self.icon.setText(type_badge(self.name, media.mime))
        self.setToolTip(f"{self.name}\n{media.label}, {human_size(size)}, about {tokens:,} tokens of context")
        self.setProperty("state", "ready")
        for widget in (self, self.icon, self.detail):  # (the detail's style depends on the chip's state)
            widget.style().unpolish(widget)
            widget.style().polish(widget)


class ChipStrip(QScrollArea):
    """The chips above the prompt box, in a row that scrolls sideways; hidden while there are none."""

    remove_requested = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("attachmentChips")
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setWidgetResizable(True)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # Tab reaches each chip's ×, not the row itself
        body = QWidget(objectName="attachmentChipsBody")
        self._row = QHBoxLayout(body)
        self._row.setContentsMargins(0, 0, 0, 0)
        self._row.setSpacing(6)
        self._row.addStretch(1)
        self.setWidget(body)
        self._chips: dict[int, AttachmentChip] = {}
        self.hide()

    def add(self, key: int, name: str) -> AttachmentChip:
        chip = AttachmentChip(key, name)
        chip.remove_requested.connect(self.remove_requested)
        self._row.insertWidget(self._row.count() - 1, chip)
        self._chips[key] = chip
        self._fit()
        return chip

    def chip(self, key: int) -> AttachmentChip | None:
        return self._chips.get(key)

    def chips(self) -> list[AttachmentChip]:
        return list(self._chips.values())

    def remove(self, key: int) -> None:
        chip = self._chips.pop(key, None)
        if chip is not None:
            chip.setParent(None)
            chip.deleteLater()
        self._fit()

    def _fit(self) -> None:
        self.setVisible(bool(self._chips))
        if self._chips:  # as tall as a chip, and the scroll bar below it when the row is wider than the box
            height = max(c.sizeHint().height() for c in self._chips.values())
            self.setFixedHeight(height + self.horizontalScrollBar().sizeHint().height())


class ThumbnailCache(QObject):
    """Thumbnails of stored images by sha256, for the transcript: made off the GUI thread from the stored bytes,
    once per file however many messages show it. ``ready`` says one arrived (or failed: ``get`` is then None and
    ``failed`` True)."""

    ready = Signal(str)

    def __init__(self, blobs: Callable[[], Blobs], spawn: Spawn, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._blobs = blobs
        self._spawn = spawn
        self._done: OrderedDict[str, bytes | None] = OrderedDict()
        self._making: set[str] = set()

    def put(self, sha256: str, png: bytes) -> None:
        """A thumbnail made already (the composer's, as the message is sent)."""
        self._keep(sha256, png)

    def get(self, sha256: str, name: str) -> bytes | None:
        """The thumbnail, or None: then it is being made and ``ready`` follows (unless it ``failed``)."""
        if sha256 in self._done:
            self._done.move_to_end(sha256)
            return self._done[sha256]
        if sha256 not in self._making:
            self._making.add(sha256)
            self._spawn(self._make(sha256, name), f"thumbnail-{sha256[:8]}")
        return None

    def failed(self, sha256: str) -> bool:
        return sha256 in self._done and self._done[sha256] is None

    async def _make(self, sha256: str, name: str) -> None:
        blobs = self._blobs()
        try:
            png: bytes | None = await asyncio.to_thread(
                lambda: thumbnail_png(blobs.get(sha256, name).data, THUMBNAIL_SIDE))
        except LLMError:  # its stored copy is gone or damaged: the message shows the file's name instead
            png = None
        finally:
            self._making.discard(sha256)
        self._keep(sha256, png)
        self.ready.emit(sha256)

    def _keep(self, sha256: str, png: bytes | None) -> None:
        self._done[sha256] = png
        self._done.move_to_end(sha256)
        while len(self._done) > MAX_THUMBNAILS:
            self._done.popitem(last=False)


class FileChip(QFrame):
    """A sent document in the transcript: its type, name and size (an image whose thumbnail cannot be made, too)."""

    def __init__(self, name: str, mime: str, kind: str, size: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("fileChip")
        label = Media(kind, mime).label  # type: ignore[arg-type]
        self.text = f"{name} · {label} · {human_size(size)}"
        title = ElidedLabel(name, name="chipName", mode=Qt.TextElideMode.ElideMiddle)
        title.setMaximumWidth(220)
        detail = QLabel(f"{label} · {human_size(size)}", objectName="chipDetail")
        column = QVBoxLayout()
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(0)
        column.addWidget(title)
        column.addWidget(detail)
        row = QHBoxLayout(self)
        row.setContentsMargins(4, 4, 8, 4)
        row.setSpacing(6)
        row.addWidget(_badge(type_badge(name, mime), CHIP_ICON, "chipIcon"))
        row.addLayout(column)
        self.setToolTip(self.text)


class FileThumbnail(QLabel):
    """A sent image in the transcript: its thumbnail once made (its name until then)."""

    def __init__(self, name: str, mime: str, size: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("fileThumbnail")
        self.name = name
        self.text_for_reading = f"{name} · {Media('image', mime).label} · {human_size(size)}"
        self.setToolTip(self.text_for_reading)
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setMinimumSize(CHIP_ICON, CHIP_ICON)
        self.setText(name)

    def show_png(self, png: bytes) -> None:
        self.setPixmap(pixmap(png, TRANSCRIPT_THUMBNAIL))

    @property
    def has_image(self) -> bool:
        picture = self.pixmap()
        return picture is not None and not picture.isNull()


class FilesRow(QWidget):
    """The files of a sent message, in a row: image thumbnails (from ``cache``), document chips."""

    def __init__(self, files: list, cache: ThumbnailCache | None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("messageFiles")
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(8)
        self._cache = cache
        self._waiting: dict[str, list[FileThumbnail]] = {}
        self.items: list[QWidget] = []
        for file in files:  # core's FileParts: sha256, name, mime, size, kind
            png = cache.get(file.sha256, file.name) if cache is not None and file.kind == "image" else None
            if file.kind == "image" and cache is not None and not cache.failed(file.sha256):
                item: QWidget = FileThumbnail(file.name, file.mime, file.size)
                if png is not None:
                    item.show_png(png)
                else:
                    self._waiting.setdefault(file.sha256, []).append(item)
            else:
                item = FileChip(file.name, file.mime, file.kind, file.size)
            self.items.append(item)
            row.addWidget(item, 0, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        row.addStretch(1)
        if self._waiting and cache is not None:
            cache.ready.connect(self._arrived)

    def _arrived(self, sha256: str) -> None:
        if not shiboken6.isValid(self):  # (the message was removed while its thumbnail was being made)
            return
        waiting = self._waiting.pop(sha256, [])
        png = self._cache.get(sha256, waiting[0].name) if waiting and self._cache is not None else None
        for item in waiting:
            if png is not None:
                item.show_png(png)
            else:
                item.setText(f"{item.text()} (no preview)")
        if not self._waiting and self._cache is not None:
            self._cache.ready.disconnect(self._arrived)

    def thumbnails(self) -> list[FileThumbnail]:
        return [w for w in self.items if isinstance(w, FileThumbnail)]

    def chips(self) -> list[FileChip]:
        return [w for w in self.items if isinstance(w, FileChip)]

    def plain_text(self) -> str:
        return "\n".join(w.text_for_reading if isinstance(w, FileThumbnail) else w.text for w in self.items)
