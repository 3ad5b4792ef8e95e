"""One catalog model on the Models page: what it is, whether it fits, why it ranks there, and its download
(progress from the worker thread handed to the Qt thread, newest only)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QProgressBar, QPushButton, QVBoxLayout, QWidget

from LLM.core.models import DownloadProgress, Recommendation

from .add_model_dialog import byte_size, parameter_count
from .elided_label import ElidedLabel

CAPABILITY_BADGES = ("tools", "vision", "reasoning", "embedding")  # what a row shows (chat goes without saying)

def badge(text: str, kind: str = "", tip: str = "") -> QLabel:
    label = QLabel(text, objectName="badge")
    label.setProperty("tone", kind)
    label.setToolTip(tip)
    return label


class LatestProgress:
    """The newest DownloadProgress from the worker thread, handed to the Qt thread at most once per loop turn:
    a fast link reports far more often than a label can be redrawn, and only the latest value matters."""

    def __init__(self, loop: asyncio.AbstractEventLoop, show: Callable[[DownloadProgress], None]) -> None:
        self._loop = loop
        self._show = show
        self._lock = threading.Lock()
        self._value: DownloadProgress | None = None

    def __call__(self, progress: DownloadProgress) -> None:  # the worker thread
        with self._lock:
            scheduled = self._value is not None
            self._value = progress
        if not scheduled:
            self._loop.call_soon_threadsafe(self._flush)

    def _flush(self) -> None:  # the Qt thread
        with self._lock:
            value, self._value = self._value, None
        if value is not None:
            self._show(value)


class CatalogRow(QFrame):
    """One recommended model: what it is, whether it fits, why it ranks here, and its download.

    ``state``: idle, downloading, done (files on disk: Add…), added, failed, cancelled."""

    def __init__(self, rec: Recommendation, parent: QWidget | None = None) -> None:
        super().__init__(parent, objectName="catalogRow")
        self.rec = rec
        self.state = "idle"
        self.cancel: threading.Event | None = None  # set: the download stops (its worker thread reads it)
        self.path: Path | None = None
        self.mmproj: Path | None = None
        self.setProperty("entry", rec.entry.id)
        self.name = QLabel(objectName="catalogName")
        self.facts = QLabel(objectName="catalogFacts")
        self.fit = badge("")
        self.badges = QHBoxLayout()
        self.badges.setSpacing(4)
        self.action = QPushButton("Download", objectName="catalogAction")
        self.cancel_button = QPushButton("Cancel", objectName="catalogCancel")
        self.cancel_button.setToolTip("Stop the download; what was fetched is kept and a new start resumes it")
        self.cancel_button.clicked.connect(self.request_cancel)
        top = QHBoxLayout()
        top.setContentsMargins(0, 0, 0, 0)
        top.addWidget(self.name)
        top.addWidget(self.facts)
        top.addWidget(self.fit)
        top.addLayout(self.badges)
        top.addStretch(1)
        top.addWidget(self.cancel_button)
        top.addWidget(self.action)

        self.reason = ElidedLabel(name="catalogReason")
        self.progress = QProgressBar(objectName="catalogProgress")
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(False)
        self.progress.setMaximumHeight(10)
        self.progress_text = QLabel(objectName="catalogProgressText")
        self.message = QLabel(objectName="catalogError")
        self.message.setWordWrap(True)
        self.message.setTextFormat(Qt.TextFormat.PlainText)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        bottom = QHBoxLayout()
        bottom.setContentsMargins(0, 0, 0, 0)
        bottom.addWidget(self.reason, 1)
        bottom.addWidget(self.progress, 1)
        bottom.addWidget(self.progress_text)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 5, 4, 5)
        layout.setSpacing(2)
        layout.addLayout(top)
        layout.addLayout(bottom)
        layout.addWidget(self.message)
        self.set_recommendation(rec)
        self._show_state()

    def set_recommendation(self, rec: Recommendation) -> None:
        """This task's ranking of the model (the quant, the fit and the reason may differ per task)."""
        self.rec = rec
        entry = rec.entry
        self.name.setText(entry.name)
        size = rec.file.size + (entry.mmproj.size if entry.mmproj else 0)
        self.facts.setText(f"{parameter_count(entry.parameters)} · {rec.quant} · {byte_size(size)}")
        self.facts.setToolTip(f"{entry.repo}: {rec.file.file}" + (f" + {entry.mmproj.file}" if entry.mmproj else "")
                              + f"\nlicense: {entry.license}" + (f"\n{entry.notes}" if entry.notes else ""))
        needed = byte_size(rec.memory_needed)
        self.fit.setText("fits" if rec.fits else f"too big: needs {needed}")
        self.fit.setProperty("tone", "good" if rec.fits else "bad")
        self.fit.setToolTip(f"needs about {needed} with a 4096-token context")
        restyle(self.fit)
        while self.badges.count():
            item = self.badges.takeAt(0)
            if item.widget() is not None:
                item.widget().deleteLater()
        for name in CAPABILITY_BADGES:
            if entry.capabilities.get(name):
                self.badges.addWidget(badge(name, tip=f"{name}: from the catalog"))
        if entry.gated:
            self.badges.addWidget(badge("gated", "warn", "The repository asks you to accept its terms: request "
                                                        "access on its page and set HF_TOKEN"))
        self.reason.setText(rec.reason)

    def badge_texts(self) -> list[str]:
        return [self.badges.itemAt(i).widget().text() for i in range(self.badges.count())
                if self.badges.itemAt(i).widget() is not None]

    # ----- the download's states -----
    def show_downloading(self) -> None:
        self.state = "downloading"
        self.message.clear()
        self.progress.setRange(0, 0)  # busy until the first figures arrive
        self.progress_text.setText("Starting…")
        self._show_state()

    def show_progress(self, progress: DownloadProgress) -> None:
        if self.state != "downloading":
            return  # a late report after the end
        total = progress.total_bytes
        if total:
            self.progress.setRange(0, 1000)  # permille: byte counts overflow a progress bar's int
            self.progress.setValue(int(1000 * min(progress.done_bytes, total) / total))
        what = "" if progress.filename == self.rec.file.file else f"{progress.filename}: "
        self.progress_text.setText(what + progress.describe())

    def show_done(self, path: Path, mmproj: Path | None) -> None:
        self.state, self.path, self.mmproj = "done", path, mmproj
        self.message.clear()
        self._show_state()

    def show_added(self, model_id: str) -> None:
        self.state = "added"
        self.message.setObjectName("catalogReason")
        self.message.setText(f"Added as {model_id}.")
        restyle(self.message)
        self._show_state()

    def show_failed(self, text: str, cancelled: bool = False) -> None:
        self.state = "cancelled" if cancelled else "failed"
        self.message.setObjectName("catalogNote" if cancelled else "catalogError")
        self.message.setText(text)
        restyle(self.message)
        self._show_state()

    def request_cancel(self) -> None:
        if self.cancel is not None:
            self.cancel.set()
            self.cancel_button.setEnabled(False)
            self.progress_text.setText("Cancelling…")

    def _show_state(self) -> None:
        state = self.state
        downloading = state == "downloading"
        self.reason.setVisible(not downloading)
        self.progress.setVisible(downloading)
        self.progress_text.setVisible(downloading)
        self.cancel_button.setVisible(downloading)
        self.cancel_button.setEnabled(downloading)
        self.message.setVisible(state in ("failed", "cancelled", "added") and bool(self.message.text()))
        self.action.setVisible(not downloading)
        self.action.setEnabled(state != "added")
        self.action.setText({"done": "Add…", "added": "Added", "failed": "Retry", "cancelled": "Resume"}
                            .get(state, "Download"))
        self.action.setToolTip({"done": f"Add {self.path} to your models",
                                "cancelled": "Start again: the download resumes where it stopped"}
                               .get(state, f"Download {self.rec.file.file} from {self.rec.entry.repo}"))


def restyle(widget: QWidget) -> None:
    """Apply the stylesheet again after a property or object name it selects on changed."""
    widget.style().unpolish(widget)
    widget.style().polish(widget)


