"""The approval dialog for an MCP tool call: server, tool, description and the full arguments; four answers."""

from __future__ import annotations

import json

from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from LLM.core import Tool, ToolCall

# The dialog's result codes (QDialog's own are 0 and 1), one per answer.
ONCE, ALWAYS, DENY, DENY_AND_STOP = 10, 11, 12, 13


class McpApprovalDialog(QDialog):
    """Window-modal; opened with ``open()`` by the interaction facade, never ``exec()``."""

    def __init__(self, parent: QWidget | None, call: ToolCall, tool: Tool) -> None:
        super().__init__(parent)
        self.setObjectName("mcpApprovalDialog")
        self.setWindowTitle("Allow MCP tool call?")
        self.resize(620, 460)
        layout = QVBoxLayout(self)
        own = f" (its tool '{_escape(tool.server_tool)}')" if tool.server_tool and tool.server_tool != call.name else ""
        head = QLabel(f"The model wants to call <b>{_escape(call.name)}</b> of the MCP server "
                      f"<b>{_escape(tool.server or '?')}</b>{own}.", objectName="mcpApprovalHead")
        head.setWordWrap(True)
        layout.addWidget(head)
        description = QLabel(tool.description or "(the server gives no description)", objectName="mcpApprovalDescription")
        description.setWordWrap(True)
        layout.addWidget(description)
        layout.addWidget(QLabel("Arguments, in full:"))
        self.arguments = QPlainTextEdit(json.dumps(call.arguments, indent=2, ensure_ascii=False),
                                        objectName="mcpApprovalArguments")
        self.arguments.setReadOnly(True)
        layout.addWidget(self.arguments, 1)
        note = QLabel("The server runs with your permissions. Deny if you do not expect this call; the model is told.")
        note.setWordWrap(True)
        layout.addWidget(note)
        buttons = QDialogButtonBox()
        self.buttons: dict[str, QPushButton] = {}
        for text, name, code in (("Allow once", "mcpAllowOnce", ONCE),
                                 ("Always allow this tool", "mcpAllowAlways", ALWAYS),
                                 ("Deny", "mcpDeny", DENY), ("Deny and stop", "mcpDenyAndStop", DENY_AND_STOP)):
            button = QPushButton(text, objectName=name)
            button.setAutoDefault(False)
            button.clicked.connect(lambda _checked=False, c=code: self.done(c))
            buttons.addButton(button, QDialogButtonBox.ButtonRole.ActionRole)
            self.buttons[name] = button
        self.buttons["mcpAllowAlways"].setToolTip(
            "Saved in this server's autoApprove list in mcp.json: this server's tool is no longer asked about")
        self.buttons["mcpDeny"].setDefault(True)
        layout.addWidget(buttons)

    def reject(self) -> None:  # Esc or the close button: a denial
        self.done(DENY)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
