"""Watches llm_backends.yaml and says when its content changed (debounced; survives atomic saves)."""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QFileSystemWatcher, QObject, QTimer, Signal

DEBOUNCE_MS = 250  # editors write a file in several steps; reload once they are done


class ConfigWatcher(QObject):
    changed = Signal()

    def __init__(self, path: Path, parent: QObject | None = None, debounce_ms: int = DEBOUNCE_MS) -> None:
        super().__init__(parent)
        self.path = Path(path)
        self._watcher = QFileSystemWatcher(self)
        # The directory too: an editor that saves by renaming a new file over the old one
        # ends the watch on the file itself.
        self._watcher.fileChanged.connect(self._poke)
        self._watcher.directoryChanged.connect(self._poke)
        self._timer = QTimer(self, singleShot=True, interval=debounce_ms)
        self._timer.timeout.connect(self._fire)
        self._seen = self._signature()
        self._arm()

    def _signature(self) -> tuple[int, int] | None:
        try:
            stat = os.stat(self.path)
        except OSError:
            return None
        return stat.st_mtime_ns, stat.st_size

    def _arm(self) -> None:
        file, folder = str(self.path), str(self.path.parent)
        if self.path.exists() and file not in self._watcher.files():
            self._watcher.addPath(file)
        if self.path.parent.is_dir() and folder not in self._watcher.directories():
            self._watcher.addPath(folder)

    def _poke(self, _path: str = "") -> None:
        self._timer.start()

    def _fire(self) -> None:
        self._arm()
        signature = self._signature()
        # Directory events also come for other files; only a change of ours counts.
        if signature is not None and signature != self._seen:
            self._seen = signature
            self.changed.emit()

    def stop(self) -> None:
        self._timer.stop()
        paths = self._watcher.files() + self._watcher.directories()
        if paths:
            self._watcher.removePaths(paths)
