"""Tools without code in the window: the editor dialog, and the New / Edit / Delete buttons under the tool list.

The dialog only gathers text and shows what core's ``canned_tool_from_form`` says about it, as
you type; saving writes the JSON file into the user tools folder and registers the tool, so it
is in the list (checked) and usable from the next request.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFontDatabase, QPalette
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from LLM.core import LLMError, Tool
from LLM.core.tools import REPLY_KINDS, CannedTool, canned_tool_from_form, default_tools_dir

from ..context import AppContext
from .tones import tone

REPLY_LABELS = {"text": "Fixed text", "json": "Fixed JSON", "template": "Template using the arguments"}
REPLY_HINTS = {
    "text": "The text every call gets back.",
    "json": 'A JSON value every call gets back, e.g. {"temperature": 21, "sky": "clear"}',
    "template": "Text with {argument} placeholders, e.g. It is sunny in {city}.  Write {{ and }} for braces.",
}
NEW_SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string", "description": "The city"}},
    "required": ["city"],
    "additionalProperties": False,
}


class ToolEditor(QDialog):
    """Name, description, JSON Schema and canned reply. Problems show once the user has typed or pressed Save (a
    new form is not wrong, only unfinished); from then on Save stays disabled while anything is wrong."""

    def __init__(self, parent: QWidget | None, *, directory: Path, taken: Iterable[str],
                 save: Callable[[CannedTool], Tool], definition: CannedTool | None = None) -> None:
        super().__init__(parent, objectName="toolEditor")
        self.setWindowTitle(f"Edit tool {definition.name}" if definition else "New tool")
        self.setWindowModality(Qt.WindowModality.WindowModal)
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.resize(560, 620)
        self._directory = directory
        self._taken = list(taken)
        self._save = save
        self._definition: CannedTool | None = None
        self.saved: Tool | None = None
        self._touched = definition is not None  # an existing tool's problems (if any) are news at once

        mono = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        self.name = QLineEdit(objectName="toolNameEdit", placeholderText="get_weather")
        self.description = QLineEdit(objectName="toolDescriptionEdit",
                                     placeholderText="What the tool does; the model reads this to decide when to call")
        self.schema = QPlainTextEdit(objectName="toolSchemaEdit")
        self.schema.setFont(mono)
        self.schema.setToolTip("The arguments, as a JSON Schema of type object")
        self.reply_kind = QComboBox(objectName="toolReplyKindCombo")
        for kind in REPLY_KINDS:
            self.reply_kind.addItem(REPLY_LABELS[kind], kind)
        self.reply = QPlainTextEdit(objectName="toolReplyEdit")
        self.reply.setFont(mono)
        self.reply.setMaximumHeight(120)
        self.problems = QLabel(objectName="toolEditorProblems", wordWrap=True)
        self.problems.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        buttons = QDialogButtonBox()
        self.save_button = buttons.addButton("Save", QDialogButtonBox.ButtonRole.AcceptRole)
        self.save_button.setObjectName("toolSaveButton")
        cancel = buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        cancel.setObjectName("toolCancelButton")
        self.save_button.clicked.connect(self._on_save)
        cancel.clicked.connect(self.reject)

        form = QFormLayout()
        form.addRow("Name", self.name)
        form.addRow("Description", self.description)
        form.addRow("Parameters (JSON Schema)", self.schema)
        form.addRow("Reply", self.reply_kind)
        form.addRow("", self.reply)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.problems)
        layout.addWidget(buttons)

        if definition is None:
            self.schema.setPlainText(json.dumps(NEW_SCHEMA, indent=2))
            self.reply_kind.setCurrentIndex(self.reply_kind.findData("template"))
        else:
            self.name.setText(definition.name)
            self.description.setText(definition.description)
            self.schema.setPlainText(json.dumps(definition.parameters, indent=2, ensure_ascii=False))
            self.reply_kind.setCurrentIndex(self.reply_kind.findData(definition.reply_kind))
            reply = definition.reply
            self.reply.setPlainText(json.dumps(reply, indent=2, ensure_ascii=False)
                                    if definition.reply_kind == "json" else reply)
        for signal in (self.name.textChanged, self.description.textChanged, self.schema.textChanged,
                       self.reply.textChanged, self.reply_kind.currentIndexChanged):
            signal.connect(self._edited)
        self._check()

    def _edited(self, *_args: object) -> None:
        self._touched = True
        self._check()

    def _check(self) -> None:
        """Re-read the form: list every problem by its key, or say where the tool will be saved."""
        kind = self.reply_kind.currentData()
        self.reply.setPlaceholderText(REPLY_HINTS[kind])
        self._definition, problems = canned_tool_from_form(
            self.name.text(), self.description.text(), self.schema.toPlainText(), kind, self.reply.toPlainText(),
            taken=self._taken)
        self.save_button.setEnabled(self._definition is not None or not self._touched)
        if problems and not self._touched:
            self._show_problem("")
        elif problems:
            self._show_problem("\n".join(f"• {p.joined('')}" for p in problems))
        else:
            self._show_problem("")
            self.problems.setText(f"Saves as {self._directory / (self._definition.name + '.json')}")

    def _on_save(self) -> None:
        if self._definition is None:  # pressed on an untouched form: say what is missing
            self._touched = True
            self._check()
            return
        try:
            self.saved = self._save(self._definition)
        except LLMError as exc:  # e.g. the folder is not writable: say so and keep the form
            self._show_problem(str(exc))
            return
        self.accept()

    def _show_problem(self, text: str) -> None:
        self.problems.setText(text)
        show_bad(self.problems, bool(text))


class ToolFileButtons(QWidget):
    """New tool… / Edit… / Delete under the tool list; Edit and Delete only for the selected tool without code."""

    tools_changed = Signal()

    def __init__(self, ctx: AppContext, tool_list: QListWidget,
                 make_item: Callable[[Tool, bool], QListWidgetItem], parent: QWidget | None = None) -> None:
        super().__init__(parent, objectName="toolFileButtons")
        self.ctx = ctx
        self.tool_list = tool_list
        self._make_item = make_item
        self.new_button = QPushButton("New tool…", objectName="newToolButton")
        self.new_button.setToolTip("Define a tool without code: a JSON Schema and a canned reply")
        self.edit_button = QPushButton("Edit…", objectName="editToolButton")
        self.delete_button = QPushButton("Delete", objectName="deleteToolButton")
        self.problem = QLabel(objectName="toolFileProblem", wordWrap=True, visible=False)
        row = QHBoxLayout()
        for button in (self.new_button, self.edit_button, self.delete_button):
            row.addWidget(button)
        row.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(row)
        layout.addWidget(self.problem)
        self.new_button.clicked.connect(lambda: self.open_editor(None))
        self.edit_button.clicked.connect(lambda: self.open_editor(self._selected()))
        self.delete_button.clicked.connect(self._on_delete)
        tool_list.currentItemChanged.connect(lambda *_: self._enable())
        self._enable()

    @property
    def directory(self) -> Path:
        return self.ctx.runtime.tools_dir or default_tools_dir()

    def open_editor(self, tool: Tool | None) -> ToolEditor:
        """Open the editor for a new tool (None) or a tool without code; returns the open dialog."""
        registry = self.ctx.runtime.tools
        replacing = tool.name if tool is not None else None
        checked = tool is None or tool.name in self._checked_names()

        def save(definition: CannedTool) -> Tool:
            saved = registry.save_canned(definition, self.directory, replacing=replacing)
            self._show(saved, replacing, checked)
            return saved

        dialog = ToolEditor(self.window(), directory=self.directory, save=save,
                            taken=[n for n in registry.names() if n != replacing],
                            definition=tool.canned if tool is not None else None)
        dialog.open()
        return dialog

    def _show(self, tool: Tool, replacing: str | None, checked: bool) -> None:
        """Put the saved tool in the list: in place of the edited one, else at the end; selected."""
        item = self._make_item(tool, checked)
        row = self._row(replacing) if replacing is not None else -1
        if row >= 0:
            self.tool_list.takeItem(row)
            self.tool_list.insertItem(row, item)
        else:
            self.tool_list.addItem(item)
        self.tool_list.setCurrentItem(item)
        self.tools_changed.emit()

    def _on_delete(self) -> None:
        tool = self._selected()
        if tool is not None:
            self.ctx.tasks.spawn(self._delete(tool), name=f"delete tool {tool.name}")

    async def _delete(self, tool: Tool) -> None:
        self.setEnabled(False)
        self.problem.setVisible(False)
        try:
            path = self.directory / f"{tool.name}.json"
            if not await self.ctx.interaction.confirm_delete_tool(self.window(), tool.name, path):
                return
            try:
                self.ctx.runtime.tools.delete_canned(tool.name, self.directory)
            except LLMError as exc:
                self.problem.setText(str(exc))
                show_bad(self.problem, True)
                self.problem.setVisible(True)
                return
            row = self._row(tool.name)
            if row >= 0:
                self.tool_list.takeItem(row)
            self.tools_changed.emit()
        finally:
            self.setEnabled(True)
            self._enable()

    def _selected(self) -> Tool | None:
        """The current item's tool, if it is a tool without code (a Python tool is edited in its file)."""
        item = self.tool_list.currentItem()
        name = item.data(Qt.ItemDataRole.UserRole) if item is not None else None
        tools = self.ctx.runtime.tools
        tool = tools.get(name) if name in tools else None
        return tool if tool is not None and tool.canned is not None else None

    def _enable(self) -> None:
        editable = self._selected() is not None
        self.edit_button.setEnabled(editable)
        self.delete_button.setEnabled(editable)

    def _row(self, name: str) -> int:
        for row in range(self.tool_list.count()):
            if self.tool_list.item(row).data(Qt.ItemDataRole.UserRole) == name:
                return row
        return -1

    def _checked_names(self) -> set[str]:
        return {self.tool_list.item(r).data(Qt.ItemDataRole.UserRole) for r in range(self.tool_list.count())
                if self.tool_list.item(r).checkState() == Qt.CheckState.Checked}


def show_bad(label: QLabel, bad: bool) -> None:
    """Colour a label's text as an error, in the shade readable on the palette it is drawn on (light or dark)."""
    # The window's palette: a label's own one can lag behind a palette set on its dialog.
    palette = label.window().palette()
    label.setStyleSheet(f"color: {tone('bad', palette, QPalette.ColorRole.Window).name()};" if bad else "")
