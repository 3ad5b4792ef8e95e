"""The add-model dialog: what inspecting a model found (facts, capabilities with confidence and source, memory
and fit), the entry core proposes for it (id, name, port, context, projector) to edit, and Add, which writes the
entry into llm_backends.yaml keeping its comments.

Opened with ``open()``, never ``exec()`` (a nested loop would re-enter qasync). Tests fill the fields and call
``accept()`` directly; ``added`` says what was written.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from LLM.core import BackendsConfig, ConfigError, LLMError
from LLM.core.models import CAPABILITIES, CONFIDENT, Machine, ModelReport, NewEntry, add_entry, gib, propose_entry

from .elided_label import ElidedLabel
from .tones import tone

KINDS = {"gguf": "GGUF model", "hf": "Hugging Face model folder", "peft_adapter": "LoRA adapter (PEFT folder)",
         "gguf_lora": "LoRA adapter (GGUF)", "mmproj": "multimodal projector (mmproj)"}
REFIT_DELAY_MS = 250  # the fit is asked again once the context spin box rests, not at every step
MAX_CONTEXT = 1 << 20

Spawn = Callable[[Coroutine[Any, Any, Any]], Any]


def parameter_count(count: int | None) -> str:
    """``135M``, ``1.5B``, ``8B``: a parameter count as model names write it."""
    if not count:
        return "unknown"
    for unit, scale in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if count >= scale:
            value = count / scale
            return f"{value:.1f}".rstrip("0").rstrip(".") + unit if value < 10 else f"{value:.0f}{unit}"
    return str(count)


def byte_size(size: int | None) -> str:
    """Binary units, as the machine line, the estimates and the engine's log give them: ``139 MiB``, ``1.04 GiB``."""
    if size is None:
        return "unknown"
    if size < 2**20:
        return f"{size / 2**10:.0f} KiB" if size >= 2**10 else f"{size} B"
    return gib(size)

def first_sentence(error: BaseException) -> str:
    """An error as one line for the dialog (core's messages say what to do in their first line)."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


class AddModelDialog(QDialog):
    """One inspected model and the entry to add for it. ``added(yaml_path, model_id)`` once written."""

    added = Signal(str, str)

    def __init__(self, parent: QWidget | None, report: ModelReport, *, config: BackendsConfig,
                 machine: Machine | None, target: Path,
                 reinspect: Callable[[int], Awaitable[ModelReport]] | None = None, spawn: Spawn | None = None,
                 choose_mmproj: Callable[[], Awaitable[Path | None]] | None = None,
                 mmproj: Path | None = None, id_hint: str | None = None, name_hint: str | None = None) -> None:
        super().__init__(parent, objectName="addModelDialog")
        self.report = report
        self.config = config
        self.machine = machine
        self.target = Path(target)
        self._reinspect = reinspect
        self._spawn = spawn
        self._choose_mmproj = choose_mmproj
        self._id_hint, self._name_hint = id_hint, name_hint  # a catalog download: its id and name
        self._fit_seq = 0  # only the newest fit asked for is shown
        info = report.info
        name = Path(report.path or "").name or "model"
        self.setWindowTitle(f"Add {name}")
        self.setMinimumWidth(620)

        title = QLabel(f"<b>{_escape(name)}</b>", objectName="addModelTitle")
        path = ElidedLabel(report.path or "", name="addModelPath", mode=Qt.TextElideMode.ElideMiddle)
        path.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        # What the files say, two facts a line.
        facts = QGridLayout()
        facts.setHorizontalSpacing(12)
        self.facts: dict[str, QLabel] = {}
        shown = [
            ("Kind", KINDS.get(info.kind, info.kind) if info else "unknown"),
            ("Architecture", (info.architecture if info else None) or "unknown"),
            ("Parameters", parameter_count(info.parameters if info else None)),
            ("Quantization", (info.quantization if info else None) or "unknown"),
            ("Native context", f"{info.context_length:,} tokens" if info and info.context_length else "unknown"),
            ("Size on disk", byte_size(info.size_bytes) if info else "unknown"),
            ("License", (info.license if info else None) or "not stated"),
            ("Base model", (info.base_model if info else None) or "—"),
        ]
        for index, (label, value) in enumerate(shown):
            row, column = divmod(index, 2)
            key = QLabel(f"{label}:")
            key.setObjectName("factKey")
            value_label = QLabel(value, objectName=f"fact_{label.lower().replace(' ', '_')}")
            value_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            value_label.setToolTip(value)
            self.facts[label] = value_label
            facts.addWidget(key, row, column * 2)
            facts.addWidget(value_label, row, column * 2 + 1)
        facts.setColumnStretch(1, 1)
        facts.setColumnStretch(3, 1)

        self.capabilities = self._capability_table(report)

        self.memory_label = QLabel(objectName="addModelMemory")
        self.memory_label.setWordWrap(True)
        self.fit_label = QLabel(objectName="addModelFit")
        self.fit_label.setWordWrap(True)

        # The entry to write: what propose_entry chose, editable.
        self.id_edit = QLineEdit(objectName="addModelId")
        self.name_edit = QLineEdit(objectName="addModelName")
        self.port_spin = QSpinBox(objectName="addModelPort")
        self.port_spin.setRange(1024, 65535)
        self.context_spin = QSpinBox(objectName="addModelContext")
        self.context_spin.setRange(256, MAX_CONTEXT)
        self.context_spin.setSingleStep(256)
        self.context_spin.setSuffix(" tokens")
        self.context_spin.setToolTip("context_size: the tokens a request and its answer may take together; the "
                                     "KV cache grows with it")
        self.mmproj_edit = QLineEdit(objectName="addModelMmproj")
        self.mmproj_edit.setPlaceholderText("none: text only")
        self.mmproj_edit.setToolTip("mmproj: the vision projector loaded beside the weights (images in chats)")
        self.mmproj_button = QPushButton("Choose…", objectName="addModelMmprojButton")
        self.mmproj_button.clicked.connect(self._pick_mmproj)
        mmproj_row = QWidget()
        mmproj_layout = QHBoxLayout(mmproj_row)
        mmproj_layout.setContentsMargins(0, 0, 0, 0)
        mmproj_layout.addWidget(self.mmproj_edit, 1)
        mmproj_layout.addWidget(self.mmproj_button)
        form = QFormLayout()
        form.addRow("Id:", self.id_edit)
        form.addRow("Display name:", self.name_edit)
        form.addRow("Port:", self.port_spin)
        form.addRow("Context size:", self.context_spin)
        form.addRow("Projector:", mmproj_row)
        form.setRowVisible(mmproj_row, bool(info and info.kind == "gguf"))

        self.notes = QLabel(objectName="addModelNotes")
        self.notes.setWordWrap(True)
        self.where = ElidedLabel(f"Written to {self.target}", name="addModelTarget",
                                 mode=Qt.TextElideMode.ElideMiddle)
        self.error = QLabel(objectName="addModelError")
        self.error.setWordWrap(True)
        self.error.setTextFormat(Qt.TextFormat.PlainText)
        self.error.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self._colour(self.error, "bad")
        self.error.hide()

        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.add_button = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.add_button.setText("Add")
        self.add_button.setObjectName("addModelAdd")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addWidget(title)
        layout.addWidget(path)
        layout.addLayout(facts)
        layout.addWidget(self.capabilities)
        layout.addWidget(self.memory_label)
        layout.addWidget(self.fit_label)
        layout.addLayout(form)
        layout.addWidget(self.notes)
        layout.addWidget(self.error)
        layout.addWidget(self.where)
        layout.addWidget(self.buttons)

        self._refit_timer = QTimer(self, singleShot=True, interval=REFIT_DELAY_MS)
        self._refit_timer.timeout.connect(self._refit)
        self.proposal: NewEntry | None = None
        self._propose(mmproj)
        self._show_fit(report)
        self.context_spin.valueChanged.connect(lambda _value: self._refit_timer.start())

    # ----- what was found -----
    def _capability_table(self, report: ModelReport) -> QTableWidget:
        table = QTableWidget(0, 4, objectName="addModelCapabilities")
        table.setHorizontalHeaderLabels(("capability", "yes/no", "confidence", "source"))
        table.verticalHeader().hide()
        table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        table.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        header = table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)
        names = [name for name in CAPABILITIES if name in report.capabilities]
        names += [name for name in report.capabilities if name not in names]
        palette = table.palette()
        for name in names:
            cap = report.capabilities[name]
            row = table.rowCount()
            table.insertRow(row)
            guess = cap.confidence < CONFIDENT
            answer = ("yes" if cap.value else "no") + ("?" if guess else "")
            cells = (name.replace("_", " "), answer, f"{cap.confidence:.0%}", cap.source)
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip(cap.detail or f"{name}: {answer} ({cap.source})")
                if column == 1 and cap.value:
                    item.setForeground(tone("neutral" if guess else "good", palette))
                table.setItem(row, column, item)
        table.resizeRowsToContents()
        rows = sum(table.rowHeight(r) for r in range(table.rowCount()))
        table.setFixedHeight(min(rows, 8 * 24) + table.horizontalHeader().sizeHint().height() + 4)
        return table

    def capability_rows(self) -> list[tuple[str, str, str, str]]:
        """The table as text, for tests: (capability, yes/no, confidence, source)."""
        t = self.capabilities
        return [tuple(t.item(r, c).text() for c in range(4)) for r in range(t.rowCount())]  # type: ignore[misc]

    def _show_fit(self, report: ModelReport) -> None:
        memory = report.memory
        context = report.context_size
        at = f" at {context:,} tokens of context" if context else ""
        self.memory_label.setText(f"Memory{at}: {memory.describe()}" if memory is not None
                                  else "Memory: not estimated for this kind of file")
        fit = report.fit
        if fit is None:
            self.fit_label.setText("Fit: unknown (free memory not known)" if memory is not None else "")
            self.fit_label.setVisible(memory is not None)
            return
        self.fit_label.setVisible(True)
        self.fit_label.setText(("Fits: " if fit.fits else "Too big: ") + fit.describe())
        self._colour(self.fit_label, "good" if fit.fits else "bad")

    def _colour(self, label: QLabel, kind: str) -> None:
        palette = label.palette()
        palette.setColor(QPalette.ColorRole.WindowText, tone(kind, self.palette(), QPalette.ColorRole.Window))
        label.setPalette(palette)

    # ----- the proposed entry -----
    def _propose(self, mmproj: Path | None) -> None:
        """Fill the fields from core's proposal; an adapter or a projector (no model to serve on its own) gets
        core's sentence saying what to do instead, and nothing to add."""
        try:
            proposal = propose_entry(self.report, self.config, self.machine, mmproj=mmproj, id_hint=self._id_hint,
                                     display_name=self._name_hint)
        except (ConfigError, OSError) as exc:
            self.show_error(first_sentence(exc))
            for widget in (self.id_edit, self.name_edit, self.port_spin, self.context_spin, self.mmproj_edit,
                           self.mmproj_button, self.add_button):
                widget.setEnabled(False)
            return
        self.proposal = proposal
        fields = proposal.fields
        self.id_edit.setText(proposal.model_id)
        self.name_edit.setText(str(fields.get("display_name") or ""))
        self.port_spin.setValue(int(fields.get("port") or self.port_spin.minimum()))
        self.context_spin.blockSignals(True)  # the report shown is already for the proposal's context
        self.context_spin.setValue(int(fields.get("context_size") or 4096))
        self.context_spin.blockSignals(False)
        self.mmproj_edit.setText(str(fields.get("mmproj") or ""))
        self.notes.setText("\n".join(f"• {note}" for note in proposal.notes))
        self.notes.setVisible(bool(proposal.notes))
        if self.report.context_size != self.context_spin.value():
            self._refit_timer.start()  # the proposal chose another context (one that fits): show its fit

    def _refit(self) -> None:
        if self._reinspect is None or self._spawn is None:
            return
        self._fit_seq += 1
        self._spawn(self._refit_async(self.context_spin.value(), self._fit_seq))

    async def _refit_async(self, context: int, seq: int) -> None:
        try:
            report = await self._reinspect(context)
        except (LLMError, OSError) as exc:
            if seq == self._fit_seq:
                self.fit_label.setText(f"Fit: cannot tell ({first_sentence(exc)})")
            return
        if seq == self._fit_seq:  # a newer context was asked for meanwhile: its answer is the one to show
            self._show_fit(report)

    def _pick_mmproj(self) -> None:
        if self._choose_mmproj is not None and self._spawn is not None:
            self._spawn(self._pick_mmproj_async())

    async def _pick_mmproj_async(self) -> None:
        self.mmproj_button.setEnabled(False)
        try:
            path = await self._choose_mmproj()
        finally:
            self.mmproj_button.setEnabled(True)
        if path is not None:
            self.mmproj_edit.setText(str(path))

    # ----- adding -----
    def entry_fields(self) -> dict[str, Any]:
        """The entry as it will be written: the proposal with the user's edits."""
        fields = dict(self.proposal.fields) if self.proposal is not None else {}
        fields["display_name"] = self.name_edit.text().strip() or None
        fields["port"] = self.port_spin.value()
        fields["context_size"] = self.context_spin.value()
        mmproj = self.mmproj_edit.text().strip()
        if mmproj:
            fields["mmproj"] = str(Path(mmproj).expanduser())
        else:
            fields.pop("mmproj", None)
        return fields

    def accept(self) -> None:
        """Write the entry; on a problem (the id is taken, a field is invalid, the file cannot be written) the
        dialog stays open with the reason, and every field as typed."""
        if self.proposal is None:
            return
        model_id = self.id_edit.text().strip()
        if not model_id:
            self.show_error("Give the model an id (letters, digits, '_', '-' and '.').")
            self.id_edit.setFocus()
            return
        try:
            add_entry(self.target, model_id, self.entry_fields(), comment=self._comment())
        except ConfigError as exc:
            self.show_error(first_sentence(exc))
            return
        except OSError as exc:
            self.show_error(f"Cannot write {self.target}: {exc.strerror or exc}")
            return
        self.error.hide()
        self.added.emit(str(self.target), model_id)
        super().accept()

    def show_error(self, text: str) -> None:
        self.error.setText(text)
        self.error.show()

    def error_text(self) -> str:
        return self.error.text() if not self.error.isHidden() else ""

    def _comment(self) -> str:
        info = self.report.info
        parts = [p for p in (info.architecture if info else None,
                             f"{parameter_count(info.parameters)} parameters" if info and info.parameters else None,
                             info.quantization if info else None) if p]
        return "Added from the Models page" + (f": {', '.join(parts)}" if parts else "")

    def done(self, result: int) -> None:
        self._fit_seq += 1  # a fit still on its way has nobody to show it to
        self._refit_timer.stop()
        super().done(result)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

