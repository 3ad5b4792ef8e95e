"""The dialogs the window asks the user through, behind a small facade tests can answer without a display."""

from __future__ import annotations

import asyncio
import enum
import json
from collections.abc import Callable
from pathlib import Path
from typing import Protocol, TypeVar

from PySide6.QtCore import QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QAbstractButton, QDialog, QFileDialog, QInputDialog, QMessageBox, QWidget

from LLM.core import ApprovalDecision, Tool, ToolCall  # ApprovalDecision: the core policy's answers, used here

from .widgets.approval_dialog import ALWAYS, DENY_AND_STOP, ONCE, McpApprovalDialog

T = TypeVar("T")


class SwitchDecision(str, enum.Enum):
    STOP = "stop"  # stop the answer (the partial text stays) and switch now
    FINISH = "finish"  # let the answer finish, then switch
    CANCEL = "cancel"  # keep the current model


class Interaction(Protocol):
    async def approve_tool(self, parent: QWidget | None, call: ToolCall, tool: Tool) -> ApprovalDecision: ...

    async def confirm_switch(self, parent: QWidget | None, current: str, new: str) -> SwitchDecision: ...

    async def confirm_unload(self, parent: QWidget | None, victim: str, starting: str) -> bool: ...

    async def confirm_delete_tool(self, parent: QWidget | None, name: str, path: Path) -> bool: ...

    def open_path(self, path: Path) -> None: ...

    async def choose_save_path(self, parent: QWidget | None, title: str, suggested: str,
                               file_filter: str) -> Path | None: ...

    async def choose_open_path(self, parent: QWidget | None, title: str, file_filter: str) -> Path | None: ...

    async def ask_text(self, parent: QWidget | None, title: str, label: str, text: str,
                       multiline: bool = False) -> str | None: ...


class QtInteraction:
    """Real dialogs. Window-modal and opened with ``open()``, never ``exec()``: a nested Qt loop
    would re-enter qasync and freeze every other stream while the dialog is up."""

    async def approve_tool(self, parent: QWidget | None, call: ToolCall, tool: Tool) -> ApprovalDecision:
        if tool.server is not None:  # an MCP tool: its own dialog (server, description, full arguments)
            code = await _shown(McpApprovalDialog(parent, call, tool), lambda c: c)
            return {ONCE: ApprovalDecision.ONCE, ALWAYS: ApprovalDecision.ALWAYS,
                    DENY_AND_STOP: ApprovalDecision.DENY_AND_STOP}.get(code, ApprovalDecision.DENY)
        box = _question(parent, "Allow tool call?", f"The model wants to run <b>{tool.name}</b>.", tool.description)
        box.setDetailedText(json.dumps(call.arguments, indent=2, ensure_ascii=False))
        once = box.addButton("Allow once", QMessageBox.ButtonRole.AcceptRole)
        always = box.addButton("Always allow in this chat", QMessageBox.ButtonRole.YesRole)
        deny = box.addButton("Deny", QMessageBox.ButtonRole.RejectRole)
        box.setDefaultButton(deny)
        box.setEscapeButton(deny)
        clicked = await _answer(box)
        if clicked is once:
            return ApprovalDecision.ONCE
        return ApprovalDecision.ALWAYS if clicked is always else ApprovalDecision.DENY

    async def confirm_switch(self, parent: QWidget | None, current: str, new: str) -> SwitchDecision:
        box = _question(parent, "Switch model?", f"<b>{current}</b> is still writing an answer.",
                        f"Switch to {new} now, or let the answer finish first?")
        stop = box.addButton("Stop it and switch", QMessageBox.ButtonRole.DestructiveRole)
        finish = box.addButton("Finish, then switch", QMessageBox.ButtonRole.AcceptRole)
        cancel = box.addButton("Cancel", QMessageBox.ButtonRole.RejectRole)
        box.setDefaultButton(finish)
        box.setEscapeButton(cancel)
        clicked = await _answer(box)
        if clicked is stop:
            return SwitchDecision.STOP
        return SwitchDecision.FINISH if clicked is finish else SwitchDecision.CANCEL

    async def confirm_unload(self, parent: QWidget | None, victim: str, starting: str) -> bool:
        box = _question(parent, "Unload a model kept forever?", f"Starting <b>{starting}</b> needs room, and "
                        f"<b>{victim}</b> is set to stay loaded (keep_alive: forever).", f"Unload {victim} for now?")
        unload = box.addButton("Unload it", QMessageBox.ButtonRole.AcceptRole)
        keep = box.addButton("Keep it", QMessageBox.ButtonRole.RejectRole)
        box.setDefaultButton(keep)
        box.setEscapeButton(keep)
        return await _answer(box) is unload

    async def confirm_delete_tool(self, parent: QWidget | None, name: str, path: Path) -> bool:
        box = _question(parent, "Delete tool?", f"Delete the tool <b>{name}</b>?", f"Its file {path} is removed.")
        delete = box.addButton("Delete", QMessageBox.ButtonRole.DestructiveRole)
        keep = box.addButton("Keep it", QMessageBox.ButtonRole.RejectRole)
        box.setDefaultButton(keep)
        box.setEscapeButton(keep)
        return await _answer(box) is delete

    def open_path(self, path: Path) -> None:
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(path)))

    async def choose_save_path(self, parent: QWidget | None, title: str, suggested: str,
                               file_filter: str) -> Path | None:
        dialog = QFileDialog(parent, title, str(Path.home() / suggested), file_filter)
        dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
        return await _chosen_path(dialog)

    async def choose_open_path(self, parent: QWidget | None, title: str, file_filter: str) -> Path | None:
        dialog = QFileDialog(parent, title, str(Path.home()), file_filter)
        dialog.setFileMode(QFileDialog.FileMode.ExistingFile)
        return await _chosen_path(dialog)

    async def ask_text(self, parent: QWidget | None, title: str, label: str, text: str,
                       multiline: bool = False) -> str | None:
        dialog = QInputDialog(parent)
        dialog.setWindowTitle(title)
        dialog.setLabelText(label)
        if multiline:
            dialog.setOption(QInputDialog.InputDialogOption.UsePlainTextEditForTextInput)
            dialog.resize(560, 360)
        dialog.setTextValue(text)
        accepted = await _finished(dialog)
        return dialog.textValue() if accepted else None


async def _chosen_path(dialog: QFileDialog) -> Path | None:
    accepted = await _finished(dialog)
    files = dialog.selectedFiles()
    return Path(files[0]) if accepted and files else None


async def _finished(dialog: QDialog) -> bool:
    """True when the dialog was accepted."""
    return await _shown(dialog, lambda code: code == QDialog.DialogCode.Accepted.value)


def _question(parent: QWidget | None, title: str, text: str, informative: str) -> QMessageBox:
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Question)
    box.setWindowTitle(title)
    box.setText(text)
    box.setInformativeText(informative)
    return box


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
