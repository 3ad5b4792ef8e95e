"""The server status indicator of the selected model: state colour, load progress, and why it failed.

A failure is one plain sentence (LLM.core.session.describe_error) in at most two lines; the server's log is behind
"Show log". The view's height is the same in every state, so a failure never pushes the page down (#22)."""

from __future__ import annotations

import time

from PySide6.QtCore import QTimer, Qt, Signal
from PySide6.QtGui import QColor, QFont, QFontMetrics, QIcon, QPainter, QPalette, QPixmap, QResizeEvent, QTextLayout
from PySide6.QtWidgets import QApplication, QFrame, QHBoxLayout, QLabel, QPushButton, QSizePolicy, QWidget

from LLM.core import ModelEntry
from LLM.core.protocol import EngineProps
from LLM.core.servers import Reachability, ServerEvent
from LLM.core.session import describe_error

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
    "unreachable": "bad",
    "invalid": "bad",
}

STATE_TEXT = {
    "stopped": "Not loaded",
    "starting": "Starting",
    "stopping": "Stopping",
    "ready": "Ready",
    "running": "Running (started by another workbench process)",
    "failed": "Failed",
    "external": "External server",
    "unreachable": "External server",
    "invalid": "Invalid entry in llm_backends.yaml",
}
REASON_LINES = 2  # a failure's sentence gets this many lines, always reserved: the header never changes height


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


def fit_lines(text: str, font: QFont, width: int, lines: int = REASON_LINES) -> str:
    """``text`` broken into at most ``lines`` lines of ``width`` pixels, the last one elided where it runs over."""
    layout = QTextLayout(text, font)
    layout.beginLayout()
    starts: list[int] = []
    while len(starts) < lines:
        line = layout.createLine()
        if not line.isValid():
            break
        line.setLineWidth(max(1, width))
        starts.append(line.textStart())
    layout.endLayout()
    if not starts:
        return text
    kept = [text[a:b].strip() for a, b in zip(starts, starts[1:])]
    last = QFontMetrics(font).elidedText(text[starts[-1]:].strip(), Qt.TextElideMode.ElideRight, max(1, width))
    return "\n".join([*kept, last])


class ModelServerState:
    """What the window knows about one model's server, folded from ServerEvents."""

    def __init__(self, state: str = "stopped", detail: str = "") -> None:
        self.state = state
        self.detail = detail
        self.progress = ""
        self.error: str | None = None  # the failure in one plain sentence
        self.error_type: str | None = None
        self.exception: BaseException | None = None
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
        if state == "failed" and event.error is not None:
            self.exception = event.error
            self.error = describe_error(event.error)
            self.error_type = type(event.error).__name__
        elif state == "failed" and self.exception is None:  # no error of its own: the detail says what happened
            self.error = event.detail.splitlines()[0] if event.detail else "The server failed."
        # (A later failed event without an error, such as a crash loop's back-off, keeps the sentence it explains.)
        elif state in ("starting", "ready"):
            self.error = self.error_type = self.exception = None


class ReasonLabel(QLabel):
    """A failure's sentence in at most REASON_LINES lines, refitted to its width; the whole text in ``full_text``."""

    def __init__(self) -> None:
        super().__init__(objectName="serverStatusReason")
        self.full_text = ""
        self.setTextFormat(Qt.TextFormat.PlainText)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

    def set_full_text(self, text: str) -> None:
        self.full_text = text
        self._fit()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._fit()

    def _fit(self) -> None:
        fitted = fit_lines(self.full_text, self.font(), self.width()) if self.full_text else ""
        if fitted != self.text():
            self.setText(fitted)


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
        self._label: str | None = None
        self._reachability: dict[str, Reachability | None] = {}  # remote models: the last probe (None: checking)

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
        self.log_button = QPushButton("Show log", objectName="openLogButton")
        self.log_button.setToolTip("Show the server's log: its last lines, following as it grows")
        self.log_button.clicked.connect(lambda: self.model_id and self.open_log_requested.emit(self.model_id))
        # Why it failed, in plain words: broken into two lines by hand (fit_lines), the whole text in the tooltip.
        self.reason = ReasonLabel()
        self.reason.hide()

        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(8)
        row.addWidget(self.dot)
        row.addWidget(self.text)
        row.addWidget(self.detail, 1)
        row.addWidget(self.reason, 1)
        row.addWidget(self.retry_button)
        row.addWidget(self.load_button)
        row.addWidget(self.unload_button)
        row.addWidget(self.log_button)
        self.setLayout(row)

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
        self._label = entry.label if entry is not None else None
        self._invalid = invalid
        self._refresh()

    def show_reachability(self, model_id: str, result: Reachability | None) -> None:
        """A remote model's probe: None while it runs, then what it found (shown while that model is selected)."""
        self._reachability[model_id] = result
        if model_id == self.model_id:
            self._refresh()

    def _refresh(self) -> None:
        info = self._info
        reason = ""
        if self.model_id is None:
            state, detail = "stopped", "No model selected"
        elif self._invalid is not None:
            state, detail = "invalid", ""
            reason = " ".join(self._invalid.split())
        elif info is not None and info.state == "external":
            state, detail, reason = self._remote(info)
        elif info is not None and info.state == "failed":
            state, detail = "failed", ""
            reason = describe_error(info.exception, self._label) if info.exception else (info.error or info.detail)
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
        self.retry_button.setVisible(state in ("failed", "unreachable"))
        self.retry_button.setToolTip("Check again" if state == "unreachable" else "Start this model's server again")
        self.load_button.setVisible(state == "stopped" and self.model_id is not None and self._invalid is None)
        self.unload_button.setVisible(state in ("ready", "starting", "running"))
        self.log_button.setVisible(self.model_id is not None and state not in ("external", "unreachable", "invalid"))
        self.detail.setVisible(not reason)
        self.reason.setVisible(bool(reason))
        self.reason.set_full_text(reason)
        colours = self.reason.palette()
        colours.setColor(QPalette.ColorRole.WindowText, tone("bad", self.palette(), QPalette.ColorRole.Window))
        self.reason.setPalette(colours)
        tip = reason
        if state == "failed" and info is not None and info.exception is not None:
            error = info.exception
            tip += f"\n\nDetails: {type(error).__name__}: {str(error).splitlines()[0]}"
        elif state == "invalid":
            tip = self._invalid or ""
        self.reason.setToolTip(tip)
        # Room for the reason's lines in every state: showing or clearing a failure moves nothing below.
        lines = QFontMetrics(self.reason.font()).lineSpacing() * REASON_LINES
        self.setFixedHeight(max(lines, self.retry_button.sizeHint().height()) + 2)
        if state == "starting":
            if not self._ticker.isActive():
                self._ticker.start()
        else:
            self._ticker.stop()

    def _remote(self, info: ModelServerState) -> tuple[str, str, str]:
        """(state, detail, reason) of a remote model, from its last reachability probe."""
        found = self._reachability.get(self.model_id or "")
        if found is None:
            return "external", f"checking {info.detail}…" if self.model_id in self._reachability else info.detail, ""
        return ("external", found.text, "") if found.ok else ("unreachable", "", found.text)

    def _detail(self, info: ModelServerState) -> str:
        if info.state == "starting":
            elapsed = time.monotonic() - (info.starting_since or time.monotonic())
            limit = f" of {self._timeout_s:g} s" if self._timeout_s else ""
            step = info.progress or info.detail
            return f"{elapsed:.0f} s{limit}  ·  {step}" if step else f"{elapsed:.0f} s{limit}"
        if info.state == "ready" and info.props is not None:
            return f"{info.detail}  ·  {info.props.summary()}"
        return info.detail
