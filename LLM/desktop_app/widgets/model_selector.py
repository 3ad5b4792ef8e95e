"""The model dropdown: every model of llm_backends.yaml with its server state, updated live."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeyEvent, QPaintEvent, QStandardItem, QStandardItemModel, QWheelEvent
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QStyle,
    QStyleOptionComboBox,
    QStylePainter,
    QVBoxLayout,
    QWidget,
)

from LLM.core import BackendsConfig, ModelEntry
from LLM.core.models import ModelReport
from LLM.core.servers import ServerEvent, ServerStatus

from .server_status import ModelServerState, ServerStatusView, state_icon

SEPARATOR = "  ·  "  # between an item's name, backend, state and size
MODEL_SHORTCUT = "Ctrl+L"  # as LM Studio's model loader; the window binds it
MODEL_ID_ROLE = Qt.ItemDataRole.UserRole
STATE_ROLE = Qt.ItemDataRole.UserRole + 1

SHORT_STATE = {
    "stopped": "stopped",
    "starting": "starting…",
    "stopping": "stopping…",
    "ready": "ready",
    "running": "running",
    "failed": "failed",
    "external": "external",
}


def describe_entry(entry: ModelEntry) -> str:
    """Backend and adapter, as the dropdown shows them next to the name."""
    text = entry.backend
    if entry.adapter_dir:
        text += f" + LoRA {entry.adapter_name}"
    return text


def dropdown_order(config: BackendsConfig) -> list[str]:
    """File order, except that a shared server's other entries (its adapters) follow the entry leading it."""
    order: list[str] = []
    for model_id, entry in config.models.items():
        if not entry.launchable:
            order.append(model_id)
        elif config.group_of(model_id).id == model_id:
            order += config.group_of(model_id).model_ids
    return order


def adapter_label(config: BackendsConfig, model_id: str) -> str | None:
    """Which adapter a model selects on its shared server, for the status line; None when it shares nothing."""
    entry = config.models.get(model_id)
    if entry is None or not entry.launchable:
        return None
    if entry.adapter_dir:
        scale = f" × {entry.adapter_scale:g}" if entry.adapter_scale != 1 else ""
        return f"adapter {entry.adapter_name}{scale}"
    if len(config.group_of(model_id).members) > 1:
        return "no adapter (the bare base)"
    return None


def report_lines(report: ModelReport) -> list[str]:
    """Tooltip lines for what a model can do, each with how sure the app is and why, and whether it fits."""
    lines = []
    for name, cap in report.capabilities.items():
        if cap.value or cap.confidence >= 0.6:
            detail = f"; {cap.detail}" if cap.detail else ""
            lines.append(f"{name}: {'yes' if cap.value else 'no'} ({cap.confidence:.0%} sure, from {cap.source}{detail})")
    if report.fit is not None:
        lines.append(f"memory: {report.fit.describe()}")
    elif report.problem:
        lines.append(f"files: {report.problem}")
    lines += [f"missing: {problem}" for problem in report.extra.get("requirements", [])]
    return lines


class ModelCombo(QComboBox):
    """A dropdown where only a deliberate choice counts: a click or Enter on an item of the open list.

    On a closed QComboBox the arrow keys and the mouse wheel change the selection and emit ``activated``,
    so browsing would start one model server per key press. Here they open the list instead (keys) or
    are left to the window (wheel), and nothing is chosen until the user picks an item.
    """

    BROWSE_KEYS = frozenset({Qt.Key.Key_Up, Qt.Key.Key_Down, Qt.Key.Key_PageUp, Qt.Key.Key_PageDown,
                             Qt.Key.Key_Home, Qt.Key.Key_End})

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() in self.BROWSE_KEYS and not event.modifiers():
            self.showPopup()
            return
        super().keyPressEvent(event)

    def wheelEvent(self, event: QWheelEvent) -> None:
        event.ignore()  # scroll the page, not the choice

    def closed_text(self, room: int) -> str:
        """The current item's text for ``room`` pixels: a long name gives way ("…"), never the backend, state and
        size after it (Qt's own label cut "175 MB" to "175 MI")."""
        text = self.currentText()
        metrics = self.fontMetrics()
        if metrics.horizontalAdvance(text) <= room:
            return text
        name, sep, rest = text.partition(SEPARATOR)
        tail = sep + rest
        return metrics.elidedText(name, Qt.TextElideMode.ElideRight,
                                  max(room - metrics.horizontalAdvance(tail), 0)) + tail

    def paintEvent(self, _event: QPaintEvent) -> None:
        painter = QStylePainter(self)
        option = QStyleOptionComboBox()
        self.initStyleOption(option)
        painter.drawComplexControl(QStyle.ComplexControl.CC_ComboBox, option)
        field = self.style().subControlRect(QStyle.ComplexControl.CC_ComboBox, option,
                                            QStyle.SubControl.SC_ComboBoxEditField, self)
        icon = option.iconSize.width() + 4 if not option.currentIcon.isNull() else 0  # as Qt's label lays it out
        option.currentText = self.closed_text(field.width() - icon - 2)
        painter.drawControl(QStyle.ControlElement.CE_ComboBoxLabel, option)


class ModelSelector(QWidget):
    model_selected = Signal(str)
    retry_requested = Signal(str)
    open_log_requested = Signal(str)
    unload_requested = Signal(str)
    load_requested = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("modelSelector")
        self.combo = ModelCombo(objectName="modelCombo")
        self.combo.setAccessibleName("Model")
        self.combo.setToolTip(f"Choose the model ({MODEL_SHORTCUT}): arrows to browse, Enter to switch, Esc to keep "
                              "the current one")
        self.combo.setMinimumContentsLength(48)
        self.combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self._model = QStandardItemModel(self)
        self.combo.setModel(self._model)
        self.status = ServerStatusView()
        self.status.retry_requested.connect(self.retry_requested)
        self.status.open_log_requested.connect(self.open_log_requested)
        self.status.unload_requested.connect(self.unload_requested)
        self.status.load_requested.connect(self.load_requested)

        label = QLabel("Model")
        label.setBuddy(self.combo)
        label.setFixedHeight(self.combo.sizeHint().height())
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(10)
        # Top-aligned: when a failure expands the status with its log, the dropdown stays put.
        top = Qt.AlignmentFlag.AlignTop
        row.addWidget(label, 0, top)
        row.addWidget(self.combo, 0, top)
        row.addWidget(self.status, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(row)

        self.config: BackendsConfig | None = None
        self.states: dict[str, ModelServerState] = {}
        # What each model can do and whether it fits, known before loading (ModelReport): badges and tooltip lines.
        self.reports: dict[str, tuple[list[str], list[str]]] = {}
        # How well each model called tools on BFCL, from its best report card: (badge, tooltip line).
        self.scores: dict[str, tuple[str, str]] = {}
        self._items: dict[str, QStandardItem] = {}
        self.combo.activated.connect(self._on_activated)

    # ----- contents -----
    def set_config(self, config: BackendsConfig, statuses: list[ServerStatus] = (), select: str | None = None) -> None:
        """(Re)fill the list; keeps the selection when that model still exists."""
        previous = self.current_model_id()
        keep = select or previous
        self.config = config
        for row in statuses:
            if row.model_id not in self.states or self.states[row.model_id].state == "stopped":
                self.states[row.model_id] = ModelServerState(row.state, row.detail)
            self.states[row.model_id].memory_bytes = row.memory_bytes
        self.combo.blockSignals(True)
        try:
            self._model.clear()
            self._items.clear()
            for model_id in dropdown_order(config):
                item = QStandardItem()
                item.setData(model_id, MODEL_ID_ROLE)
                self._model.appendRow(item)
                self._items[model_id] = item
                self._render_item(model_id)
            for model_id, problems in config.invalid.items():
                item = QStandardItem(state_icon("invalid"), f"{model_id}  ·  invalid entry")
                item.setData(model_id, MODEL_ID_ROLE)
                item.setData("invalid", STATE_ROLE)
                item.setToolTip("\n".join(problems))
                item.setEnabled(False)
                self._model.appendRow(item)
                self._items[model_id] = item
            index = self.combo.findData(keep, MODEL_ID_ROLE) if keep in config.models else -1
            if index < 0 and config.models:
                index = self.combo.findData(next(iter(config.models)), MODEL_ID_ROLE)
            self.combo.setCurrentIndex(index)
        finally:
            self.combo.blockSignals(False)
        self._refresh_status()
        current = self.current_model_id()
        if current is not None and (current != previous or select is not None):
            self.model_selected.emit(current)

    def _render_item(self, model_id: str) -> None:
        item = self._items.get(model_id)
        if item is None or self.config is None or model_id not in self.config.models:
            return
        entry = self.config.models[model_id]
        info = self.states.get(model_id)
        state = "external" if not entry.launchable else (info.state if info else "stopped")
        badges, report_tip = self.reports.get(model_id, ([], []))
        score, score_tip = self.scores.get(model_id, ("", ""))
        parts = [entry.label, describe_entry(entry), *([" ".join(badges)] if badges else []),
                 *([score] if score else []), SHORT_STATE.get(state, state)]
        text = SEPARATOR.join(parts)
        if entry.launchable and self.config.group_of(model_id).id != model_id:
            text = f"    ↳ {text}"  # an adapter (or another name) on the server of the entry above it
        if info is not None and info.memory_bytes and state in ("ready", "running"):
            text += f"{SEPARATOR}{info.memory_bytes / 2**20:.0f} MB"
        item.setText(text)
        item.setIcon(state_icon(state))
        item.setData(state, STATE_ROLE)
        tip = [f"id: {model_id}", f"backend: {entry.backend}", f"url: {entry.base_url}"]
        if entry.adapter_dir:
            tip.append(f"adapter: {entry.adapter_dir}")
        if entry.launchable and len(self.config.group_of(model_id).members) > 1:
            others = [m for m in self.config.group_of(model_id).model_ids if m != model_id]
            tip.append(f"shares its server with: {', '.join(others)} (switching between them is instant)")
        if info is not None and info.state == "starting" and info.progress:
            tip.append(f"loading: {info.progress}")
        if info is not None and info.props is not None:
            tip.append(f"engine: {info.props.summary()}")
        if info is not None and info.error:
            tip.append(f"error: {info.error.splitlines()[0]}")
        tip += report_tip
        if score_tip:
            tip.append(score_tip)
        item.setToolTip("\n".join(tip))

    def set_report(self, model_id: str, badges: list[str], tip: list[str]) -> None:
        """What ``model_id`` can do ("tools", "vision?" for a guess) and its tooltip lines (capabilities with
        their confidence and source, the memory fit); shown next to its name."""
        self.reports[model_id] = (badges, tip)
        self._render_item(model_id)
        if model_id == self.current_model_id():
            self.combo.update()

    def set_scores(self, scores: dict[str, tuple[str, str]]) -> None:
        """Each model's tool-calling score (``BFCL 42%``) and its tooltip line, shown after its badges; models
        missing from ``scores`` show none."""
        changed = set(scores) | set(self.scores)
        self.scores = dict(scores)
        for model_id in changed:
            self._render_item(model_id)
        self.combo.update()

    # ----- state -----
    def on_server_event(self, event: ServerEvent) -> None:
        info = self.states.setdefault(event.model_id, ModelServerState())
        info.apply(event)
        self._render_item(event.model_id)
        if event.model_id == self.current_model_id():
            self._refresh_status()

    def _refresh_status(self) -> None:
        model_id = self.current_model_id()
        entry = self.config.models.get(model_id) if (self.config and model_id) else None
        if entry is not None and not entry.launchable:
            info = ModelServerState("external", entry.base_url)
        else:
            info = self.states.get(model_id) if model_id else None
        adapter = adapter_label(self.config, model_id) if self.config and model_id else None
        self.status.show_state(model_id, entry, info, adapter=adapter)

    # ----- selection -----
    def current_model_id(self) -> str | None:
        data = self.combo.currentData(MODEL_ID_ROLE)
        return str(data) if data is not None else None

    def select(self, model_id: str) -> bool:
        """Choose a model as the user would (the list's activation); re-choosing retries a stopped server."""
        index = self.combo.findData(model_id, MODEL_ID_ROLE)
        if index < 0 or not self._model.item(index).isEnabled():
            return False
        self.combo.setCurrentIndex(index)
        self._on_activated(index)
        return True

    def show_model(self, model_id: str) -> None:
        """Put the dropdown back on ``model_id`` without choosing it (a switch the user called off)."""
        index = self.combo.findData(model_id, MODEL_ID_ROLE)
        if index >= 0:
            self.combo.setCurrentIndex(index)
            self._refresh_status()

    def open_picker(self) -> None:
        """The model shortcut: the list opens with the focus on it; arrows and Enter choose, as a click does."""
        self.combo.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.combo.showPopup()

    def item_state(self, model_id: str) -> str | None:
        item = self._items.get(model_id)
        return item.data(STATE_ROLE) if item is not None else None

    def item_text(self, model_id: str) -> str | None:
        item = self._items.get(model_id)
        return item.text() if item is not None else None

    def item_tooltip(self, model_id: str) -> str | None:
        item = self._items.get(model_id)
        return item.toolTip() if item is not None else None

    def _on_activated(self, _index: int) -> None:
        self._refresh_status()
        model_id = self.current_model_id()
        if model_id is not None:
            self.model_selected.emit(model_id)
