"""The Qt dialogs behind the interaction facade (interaction.py): what the window shows when it asks."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QDesktopServices, QKeySequence, QPalette, QShortcut
from PySide6.QtWidgets import (
    QAbstractButton,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPlainTextEdit,
    QVBoxLayout,
    QWidget,
)

from LLM.core import ApprovalDecision, Tool, ToolCall

from .interaction import (
    FolderMemory,
    Parent,
    Question,
    SwitchDecision,
    Validator,
    delete_tool_question,
    discard_text_question,
    new_token_question,
    remove_model_question,
    switch_question,
    unload_question,
)
from .widgets.approval_dialog import ALWAYS, DENY_AND_STOP, ONCE, ApprovalDialog
from .widgets.tones import tone

T = TypeVar("T")


class QtInteraction:
    """Real dialogs (an :class:`~.interaction.Interaction`). Window-modal and opened with ``open()``, never
    ``exec()``: a nested Qt loop would re-enter qasync and freeze every other stream while the dialog is up."""

    def __init__(self, folders: FolderMemory | None = None) -> None:
        self.folders = folders or FolderMemory()

    async def approve_tool(self, parent: Parent | None, call: ToolCall, tool: Tool,
                           where: str = "") -> ApprovalDecision:
        code = await _shown(ApprovalDialog(_widget(parent), call, tool, where), lambda c: c)
        return {ONCE: ApprovalDecision.ONCE, ALWAYS: ApprovalDecision.ALWAYS,
                DENY_AND_STOP: ApprovalDecision.DENY_AND_STOP}.get(code, ApprovalDecision.DENY)

    async def confirm_switch(self, parent: Parent | None, current: str, new: str) -> SwitchDecision:
        box = _question(parent, switch_question(current, new))
        stop = box.addButton("Stop it and switch", QMessageBox.ButtonRole.DestructiveRole)
        finish = box.addButton("Finish, then switch", QMessageBox.ButtonRole.AcceptRole)
        cancel = box.addButton("Cancel", QMessageBox.ButtonRole.RejectRole)
        box.setDefaultButton(finish)
        box.setEscapeButton(cancel)
        clicked = await _answer(box)
        if clicked is stop:
            return SwitchDecision.STOP
        return SwitchDecision.FINISH if clicked is finish else SwitchDecision.CANCEL

    async def confirm_unload(self, parent: Parent | None, victim: str, starting: str) -> bool:
        return await _confirmed(parent, unload_question(victim, starting), "Unload it", "Keep it",
                                QMessageBox.ButtonRole.AcceptRole)

    async def confirm_delete_tool(self, parent: Parent | None, name: str, path: Path) -> bool:
        return await _confirmed(parent, delete_tool_question(name, path), "Delete", "Keep it")

    async def confirm_remove_model(self, parent: Parent | None, model_id: str, path: Path) -> bool:
        return await _confirmed(parent, remove_model_question(model_id, path), "Remove", "Keep it")

    async def confirm_discard_text(self, parent: Parent | None, model: str) -> bool:
        return await _confirmed(parent, discard_text_question(model), "Clear it", "Keep the text")

    async def confirm_new_token(self, parent: Parent | None) -> bool:
        return await _confirmed(parent, new_token_question(), "Make a new token", "Keep the current one")

    def open_path(self, path: Path) -> None:
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(path)))

    async def choose_save_path(self, parent: Parent | None, title: str, suggested: str,
                               file_filter: str, kind: str = "file") -> Path | None:
        dialog = QFileDialog(_widget(parent), title, str(self.folders.start(kind) / suggested), file_filter)
        dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
        return self._remembered(kind, await _chosen_path(dialog))

    async def choose_open_path(self, parent: Parent | None, title: str, file_filter: str,
                               kind: str = "file") -> Path | None:
        dialog = QFileDialog(_widget(parent), title, str(self.folders.start(kind)), file_filter)
        dialog.setFileMode(QFileDialog.FileMode.ExistingFile)
        return self._remembered(kind, await _chosen_path(dialog))

    async def choose_open_paths(self, parent: Parent | None, title: str, file_filter: str,
                                kind: str = "file") -> list[Path]:
        dialog = QFileDialog(_widget(parent), title, str(self.folders.start(kind)), file_filter)
        dialog.setFileMode(QFileDialog.FileMode.ExistingFiles)
        accepted = await _finished(dialog)
        paths = [Path(f) for f in dialog.selectedFiles()] if accepted else []
        if paths:
            self.folders.remember(kind, paths[0])
        return paths

    async def choose_folder(self, parent: Parent | None, title: str, kind: str = "folder") -> Path | None:
        dialog = QFileDialog(_widget(parent), title, str(self.folders.start(kind)))
        dialog.setFileMode(QFileDialog.FileMode.Directory)
        dialog.setOption(QFileDialog.Option.ShowDirsOnly, True)
        folder = await _chosen_path(dialog)
        if folder is not None:
            self.folders.remember(kind, folder)  # the next dialog opens beside it, among its siblings
        return folder

    def _remembered(self, kind: str, path: Path | None) -> Path | None:
        if path is not None:
            self.folders.remember(kind, path)
        return path

    async def inform(self, parent: Parent | None, question: Question) -> None:
        box = _question(parent, question)
        box.setIcon(QMessageBox.Icon.Information)
        box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)  # paths can be copied
        box.setStandardButtons(QMessageBox.StandardButton.Close)
        await _answer(box)

    async def ask_text(self, parent: Parent | None, title: str, label: str, text: str,
                       multiline: bool = False, validate: Validator | None = None) -> str | None:
        dialog = TextDialog(_widget(parent), title, label, text, multiline, validate)
        accepted = await _finished(dialog)
        return dialog.text() if accepted else None


class TextDialog(QDialog):
    """A text to edit. OK (or Ctrl+Enter, anywhere in it) confirms only text that ``validate`` finds fine:
    otherwise the dialog stays open with the reason under the field, and the edit is kept."""

    def __init__(self, parent: QWidget | None, title: str, label: str, text: str, multiline: bool,
                 validate: Validator | None) -> None:
        super().__init__(parent, objectName="textDialog")
        self.setWindowTitle(title)
        self._validate = validate
        prompt = QLabel(label, objectName="textLabel")
        prompt.setWordWrap(True)
        if multiline:
            self.editor: QPlainTextEdit | QLineEdit = QPlainTextEdit(text, objectName="textEditor")
            self.editor.setTabChangesFocus(True)  # Tab leaves the field, as in every other form
            self.resize(560, 360)
        else:
            self.editor = QLineEdit(text, objectName="textEditor")
            self.editor.selectAll()
            self.setMinimumWidth(360)
        prompt.setBuddy(self.editor)
        self.error = QLabel(objectName="textError")
        self.error.setWordWrap(True)
        self.error.setTextFormat(Qt.TextFormat.PlainText)
        self.error.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        colours = self.error.palette()
        colours.setColor(QPalette.ColorRole.WindowText, tone("bad", self.palette(), QPalette.ColorRole.Window))
        self.error.setPalette(colours)
        self.error.hide()
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        ok = buttons.button(QDialogButtonBox.StandardButton.Ok)
        ok.setToolTip("Confirm (Ctrl+Enter)")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        for keys in ("Ctrl+Return", "Ctrl+Enter"):
            QShortcut(QKeySequence(keys), self, self.accept, context=Qt.ShortcutContext.WindowShortcut)
        layout = QVBoxLayout(self)
        layout.addWidget(prompt)
        layout.addWidget(self.editor, 1)
        layout.addWidget(self.error)
        layout.addWidget(buttons)
        self.editor.setFocus()

    def text(self) -> str:
        editor = self.editor
        return editor.toPlainText() if isinstance(editor, QPlainTextEdit) else editor.text()

    def accept(self) -> None:
        problem = self._validate(self.text()) if self._validate is not None else None
        if problem:
            self.error.setText(problem)
            self.error.show()
            self.editor.setFocus()
            return
        self.error.hide()
        super().accept()


def _widget(parent: Parent | None) -> QWidget | None:
    """The facade's parent as Qt needs it; anything but a widget is a caller's mistake."""
    if parent is None or isinstance(parent, QWidget):
        return parent
    raise TypeError(f"a dialog's parent must be a QWidget or None, not {type(parent).__name__}")


async def _chosen_path(dialog: QFileDialog) -> Path | None:
    accepted = await _finished(dialog)
    files = dialog.selectedFiles()
    return Path(files[0]) if accepted and files else None


async def _finished(dialog: QDialog) -> bool:
    """True when the dialog was accepted."""
    return await _shown(dialog, lambda code: code == QDialog.DialogCode.Accepted.value)


def _question(parent: Parent | None, question: Question) -> QMessageBox:
    box = QMessageBox(_widget(parent))
    box.setIcon(QMessageBox.Icon.Question)
    box.setWindowTitle(question.title)
    box.setText(question.text)
    box.setInformativeText(question.informative)
    if question.detail:
        box.setDetailedText(question.detail)
    return box


async def _confirmed(parent: Parent | None, question: Question, yes: str, keep: str,
                     role: QMessageBox.ButtonRole = QMessageBox.ButtonRole.DestructiveRole) -> bool:
    """A yes/keep question whose safe answer (keep) is the default and what Esc gives."""
    box = _question(parent, question)
    confirm = box.addButton(yes, role)
    keep_button = box.addButton(keep, QMessageBox.ButtonRole.RejectRole)
    box.setDefaultButton(keep_button)
    box.setEscapeButton(keep_button)
    return await _answer(box) is confirm


async def _answer(box: QMessageBox) -> QAbstractButton | None:
    """The button the user clicked."""
    return await _shown(box, lambda _code: box.clickedButton())


async def _shown(dialog: QDialog, outcome: Callable[[int], T]) -> T:
    """Open ``dialog`` without a nested loop and wait for ``outcome`` of its result code. If the awaiting
    task is cancelled (Stop, window closed), the dialog goes away with it."""
    answer: asyncio.Future[T] = asyncio.get_running_loop().create_future()

    def finished(code: int) -> None:
        if not answer.done():
            answer.set_result(outcome(code))

    dialog.finished.connect(finished)
    dialog.open()
    try:
        return await answer
    finally:
        dialog.finished.disconnect(finished)
        dialog.close()
        dialog.deleteLater()
