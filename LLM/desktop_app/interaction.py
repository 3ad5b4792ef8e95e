"""The dialogs the window asks the user through, behind a small facade tests can answer without a display."""

from __future__ import annotations

import asyncio
import enum
import json
from pathlib import Path
from typing import Protocol

from PySide6.QtCore import QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QMessageBox, QWidget

from LLM.core import Tool, ToolCall


class ApprovalDecision(str, enum.Enum):
    ONCE = "once"
    ALWAYS = "always"  # for the rest of this chat
    DENY = "deny"


class Interaction(Protocol):
    async def approve_tool(self, parent: QWidget | None, call: ToolCall, tool: Tool) -> ApprovalDecision: ...

    def open_path(self, path: Path) -> None: ...


class QtInteraction:
    """Real dialogs. Window-modal and opened with ``open()``, never ``exec()``: a nested Qt loop
    would re-enter qasync and freeze every other stream while the dialog is up."""

    async def approve_tool(self, parent: QWidget | None, call: ToolCall, tool: Tool) -> ApprovalDecision:
        box = QMessageBox(parent)
        box.setIcon(QMessageBox.Icon.Question)
        box.setWindowTitle("Allow tool call?")
        box.setText(f"The model wants to run <b>{tool.name}</b>.")
        box.setInformativeText(tool.description)
        box.setDetailedText(json.dumps(call.arguments, indent=2, ensure_ascii=False))
        once = box.addButton("Allow once", QMessageBox.ButtonRole.AcceptRole)
        always = box.addButton("Always allow in this chat", QMessageBox.ButtonRole.YesRole)
        deny = box.addButton("Deny", QMessageBox.ButtonRole.RejectRole)
        box.setDefaultButton(deny)
        box.setEscapeButton(deny)
        answer: asyncio.Future[ApprovalDecision] = asyncio.get_running_loop().create_future()

        def finished(_code: int) -> None:
            clicked = box.clickedButton()
            decision = (
                ApprovalDecision.ONCE if clicked is once
                else ApprovalDecision.ALWAYS if clicked is always
                else ApprovalDecision.DENY
            )
            if not answer.done():
                answer.set_result(decision)

        box.finished.connect(finished)
        box.open()
        try:
            return await answer
        finally:
            # Stop or window close cancels the request: take the question away with it.
            box.finished.disconnect(finished)
            box.close()
            box.deleteLater()

    def open_path(self, path: Path) -> None:
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(path)))
