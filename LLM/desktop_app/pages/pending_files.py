"""The files attached to the message being written: each one read off the event loop, shown as a chip at once and
filled in when ready, refused with the composer's error line; the page sends the ready ones with the text."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QObject, Signal
from PySide6.QtGui import QImage

from LLM.core import LLMError
from LLM.core.attachments import Attachment

from ..attachment_loading import LoadedFile, load_file
from ..widgets.composer import Composer

Spawn = Callable[[Coroutine[Any, Any, Any], str], object]


@dataclass
class PendingFile:
    key: int
    name: str
    loaded: LoadedFile | None = None  # None while it is being read

    @property
    def ready(self) -> bool:
        return self.loaded is not None


def png_of(image: QImage) -> bytes:
    """A pasted image as PNG bytes (call it off the GUI thread: encoding a screenshot takes a while)."""
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(buffer, "PNG")
    buffer.close()
    return bytes(data.data())


class PendingFiles(QObject):
    """The composer's attachments, in the order given. ``changed`` follows every addition, fill-in, refusal and
    removal (the page redraws the context meter)."""

    changed = Signal()

    def __init__(self, composer: Composer, spawn: Spawn, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.composer = composer
        self._spawn = spawn
        self._files: dict[int, PendingFile] = {}
        self._keys = itertools.count(1)
        self._pasted = itertools.count(1)  # pasted-image-1.png, -2, ... for this composer
        composer.chips.remove_requested.connect(self.remove)

    # ----- what the user gives -----
    def add_paths(self, paths: list[Path]) -> None:
        for path in paths:
            self._add(Path(path).name, Path(path))

    def add_image(self, image: QImage | tuple[str, bytes]) -> None:
        """A pasted image: a QImage (encoded as PNG off the GUI thread), or bytes already encoded with their suffix
        (``("jpg", data)``: the clipboard's own file, taken as it is)."""
        number = next(self._pasted)
        if isinstance(image, QImage):
            self._add(f"pasted-image-{number}.png", image)
        else:
            suffix, data = image
            name = f"pasted-image-{number}.{suffix}"
            self._add(name, (name, data))

    def _add(self, name: str, source: Path | QImage | tuple[str, bytes]) -> None:
        key = next(self._keys)
        self._files[key] = PendingFile(key, name)
        self.composer.chips.add(key, name)
        self._spawn(self._load(key, name, source), f"attach-{key}")
        self.changed.emit()

    async def _load(self, key: int, name: str, source: Path | QImage | tuple[str, bytes]) -> None:
        try:
            if isinstance(source, QImage):
                source = (name, await asyncio.to_thread(png_of, source))
            loaded = await load_file(source)
        except LLMError as exc:
            if self._files.pop(key, None) is not None:  # (not if it was removed meanwhile)
                self.composer.chips.remove(key)
                self.composer.show_error(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
                self.changed.emit()
            return
        pending = self._files.get(key)
        if pending is None:  # removed while it was read: nothing to show
            return
        pending.loaded = loaded
        chip = self.composer.chips.chip(key)
        if chip is not None:
            chip.fill(loaded.attachment.media, loaded.attachment.size, loaded.thumbnail, loaded.tokens)
        self.changed.emit()

    def remove(self, key: int) -> None:
        if self._files.pop(key, None) is not None:
            self.composer.chips.remove(key)
            self.changed.emit()

    def discard(self, keys: list[int]) -> None:
        """Sent: these go (files attached meanwhile stay)."""
        for key in keys:
            self.remove(key)

    # ----- what the page reads -----
    @property
    def files(self) -> list[PendingFile]:
        return list(self._files.values())

    def loading(self) -> list[PendingFile]:
        return [f for f in self._files.values() if not f.ready]

    def ready(self) -> list[tuple[int, LoadedFile]]:
        return [(f.key, f.loaded) for f in self._files.values() if f.loaded is not None]

    def attachments(self) -> list[Attachment]:
        return [loaded.attachment for _key, loaded in self.ready()]

    def tokens(self) -> int:
        """The context the ready files take, as estimated (the meter's "files ~N")."""
        return sum(loaded.tokens for _key, loaded in self.ready())
