"""The server status indicator of the selected model: state colour, load progress, and why it failed."""

from __future__ import annotations

import time

from PySide6.QtCore import QTimer, Qt, Signal
from PySide6.QtGui import QColor, QIcon, QPainter, QPalette, QPixmap
from PySide6.QtWidgets import (QApplication, QFrame, QHBoxLayout, QLabel, QPlainTextEdit, QPushButton, QVBoxLayout,
                               QWidget)

from LLM.core import ModelEntry
from LLM.core.protocol import EngineProps
from LLM.core.servers import ServerEvent

from .elided_label import ElidedLabel, shorten_paths
from .tones import tone

# Each state's tone (widgets/tones.py): its shade is picked for the palette it is drawn on, light or dark.
STATE_TONES = {
    "stopped": "neutral",
    "starting": "warn",
    "stopping": "warn",
    "ready": "good",
    "running": "good",
    "failed": "bad",
    "external": "info",
    "invalid": "bad",
}

STATE_TEXT = {
    "stopped": "Not loaded",
    "starting": "Starting",
    "stopping": "Stopping",
    "ready": "Ready",
    "running": "Running (started by another workbench process)",
    "failed": "Failed",
    "external": "External server (not managed here)",
    "invalid": "Invalid entry in llm_backends.yaml",
}


def state_colour(state: str, palette: QPalette | None = None) -> QColor:
    """The colour that shows ``state``, readable on ``palette``'s base (the application's by default)."""
    return tone(STATE_TONES.get(state, "neutral"), palette if palette is not None else QApplication.palette())


def state_icon(state: str, size: int = 12, palette: QPalette | None = None) -> QIcon:
    pixmap = QPixmap(size, size)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(state_colour(state, palette))
    painter.drawEllipse(1, 1, size - 2, size - 2)
    painter.end()
    return QIcon(pixmap)


class ModelServerState:
    """What the window knows about one model's server, folded from ServerEvents."""

    def __init__(self, state: str = "stopped", detail: str = "") -> None:
        self.state = state
        self.detail = detail
        self.progress = ""
        self.error: str | None = None
        self.error_type: str | None = None
        self.pid: int | None = None
        self.starting_since: float | None = None
        self.props: EngineProps | None = None
        self.memory_bytes: int | None = None

    def apply(self, event: ServerEvent) -> None:
        state = event.state.value
        if state == "starting" and self.state != "starting":
            self.starting_since = time.monotonic()
            self.progress = ""
        self.state = state
        self.detail = event.detail
        self.pid = event.pid if event.pid is not None else self.pid
        if event.progress:
            self.progress = event.progress
        if state == "ready":
            self.props = event.props
            self.memory_bytes = event.memory_bytes
        elif state != "stopping":
            self.props = None
            self.memory_bytes = None
        if state == "failed":
            self.error = str(event.error) if event.error else event.detail
            self.error_type = type(event.error).__name__ if event.error else None
        elif state in ("starting", "ready"):
            self.error = self.error_type = None


class ServerStatusView(QFrame):
    retry_requested = Signal(str)
    open_log_requested = Signal(str)
    unload_requested = Signal(str)
    load_requested = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("serverStatus")
        self.setAccessibleName("Model server status")
        self.model_id: str | None = None
        self._info: ModelServerState | None = None
        self._timeout_s: float | None = None
        self._adapter: str | None = None

        self.dot = QLabel(objectName="serverStatusDot")
        self.text = QLabel(objectName="serverStatusText")
        # An engine's loading line names long paths: cut in the middle, the elapsed time and the file name stay.
        self.detail = ElidedLabel(name="serverStatusDetail", mode=Qt.TextElideMode.ElideMiddle)
        self.detail.setMinimumWidth(80)
        self.retry_button = QPushButton("Retry", objectName="retryButton")
        self.retry_button.clicked.connect(lambda: self.model_id and self.retry_requested.emit(self.model_id))
        # A selected model is stopped only after Unload (choosing one starts it): Load is the way back.
        self.load_button = QPushButton("Load", objectName="loadButton")
        self.load_button.setToolTip("Start this model's server again")
        self.load_button.clicked.connect(lambda: self.model_id and self.load_requested.emit(self.model_id))
        self.unload_button = QPushButton("Unload", objectName="unloadButton")
        self.unload_button.setToolTip("Stop this model's server and free its memory (answers in progress finish first)")
        self.unload_button.clicked.connect(lambda: self.model_id and self.unload_requested.emit(self.model_id))
        self.log_button = QPushButton("Open log", objectName="openLogButton")
        self.log_button.setToolTip("Show the server's log: its last lines, following as it grows")
        self.log_button.clicked.connect(lambda: self.model_id and self.open_log_requested.emit(self.model_id))
        self.error_view = QPlainTextEdit(objectName="serverErrorView")
        self.error_view.setReadOnly(True)
        self.error_view.setMaximumHeight(120)
        self.error_view.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.error_view.hide()

        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(8)
        row.addWidget(self.dot)
        row.addWidget(self.text)
        row.addWidget(self.detail, 1)
        row.addWidget(self.retry_button)
        row.addWidget(self.load_button)
        row.addWidget(self.unload_button)
        row.addWidget(self.log_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(6)
        layout.addLayout(row)
        layout.addWidget(self.error_view)

        # While a server loads, the elapsed time ticks: a slow load never looks like a hang.
        self._ticker = QTimer(self, interval=1000)
        self._ticker.timeout.connect(self._refresh)
        self.show_state(None, None, None)

    @property
    def state(self) -> str:
        return str(self.property("state") or "")

    def show_state(self, model_id: str | None, entry: ModelEntry | None, info: ModelServerState | None,
                   invalid: str | None = None, adapter: str | None = None) -> None:
        """``adapter``: which adapter this model selects on a shared server (said while it runs)."""
        self.model_id = model_id
        self._adapter = adapter
        self._info = info
        self._timeout_s = entry.startup_timeout_s if entry is not None else None
        self._invalid = invalid
        self._refresh()

    def _refresh(self) -> None:
        info = self._info
        if self.model_id is None:
            state, detail = "stopped", "No model selected"
        elif self._invalid is not None:
            state, detail = "invalid", self._invalid
        elif info is None:
            state, detail = "stopped", ""
        elif info.state == "stopped":
            state, detail = "stopped", "Load starts it again"
        else:
            state, detail = info.state, self._detail(info)
        if self._adapter and state in ("ready", "running"):
            detail = f"{self._adapter}  ·  {detail}" if detail else self._adapter
        self.setProperty("state", state)
        self.dot.setPixmap(state_icon(state, 14).pixmap(14, 14))
        self.text.setText(STATE_TEXT.get(state, state))
        # Engine log lines carry tabs and runs of spaces: collapse them for a one-line summary.
        self.detail.setText(shorten_paths(" ".join(detail.splitlines()[0].split())) if detail else "")
        self.detail.setToolTip(detail)
        self.retry_button.setVisible(state == "failed")
        self.load_button.setVisible(state == "stopped" and self.model_id is not None and self._invalid is None)
        self.unload_button.setVisible(state in ("ready", "starting", "running"))
        self.log_button.setVisible(self.model_id is not None and state not in ("external", "invalid"))
        error = None
        if state == "failed" and info is not None and info.error:
            error = f"{info.error_type}: {info.error}" if info.error_type else info.error
        elif state == "invalid":
            error = self._invalid
        self.error_view.setVisible(bool(error))
        if error and self.error_view.toPlainText() != error:
            self.error_view.setPlainText(error)
            bar = self.error_view.verticalScrollBar()
            bar.setValue(bar.maximum())  # the last log lines are the telling ones
        if state == "starting":
            if not self._ticker.isActive():
                self._ticker.start()
        else:
            self._ticker.stop()

    def _detail(self, info: ModelServerState) -> str:
        if info.state == "starting":
            elapsed = time.monotonic() - (info.starting_since or time.monotonic())
            limit = f" of {self._timeout_s:g} s" if self._timeout_s else ""
            step = info.progress or info.detail
            return f"{elapsed:.0f} s{limit}  ·  {step}" if step else f"{elapsed:.0f} s{limit}"
        if info.state == "failed":
            return info.error_type or info.detail
        if info.state == "ready" and info.props is not None:
            return f"{info.detail}  ·  {info.props.summary()}"
        return info.detail
