"""The one approval dialog for every tool call, local or MCP: the tool, where it acts, its description, the full
arguments, and four answers in a fixed order with Deny the default."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QFontDatabase, QTextOption
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

from ..interaction import approval_question

# The dialog's result codes (QDialog's own are 0 and 1), one per answer.
ONCE, ALWAYS, DENY, DENY_AND_STOP = 10, 11, 12, 13

# (text, object name, result code), in the order shown: the same for every tool.
ANSWERS = (("Allow once", "approvalAllowOnce", ONCE),
           ("Always allow", "approvalAllowAlways", ALWAYS),
           ("Deny", "approvalDeny", DENY),
           ("Deny and stop", "approvalDenyAndStop", DENY_AND_STOP))


class ApprovalDialog(QDialog):
    """Window-modal; opened with ``open()`` by the interaction facade, never ``exec()``. Esc denies; Enter answers
    the focused button, which is Deny when the dialog opens."""

    def __init__(self, parent: QWidget | None, call: ToolCall, tool: Tool, where: str) -> None:
        super().__init__(parent)
        question = approval_question(call, tool)
        self.setObjectName("approvalDialog")
        self.setWindowTitle(question.title)
        self.resize(620, 460)
        layout = QVBoxLayout(self)
        head = QLabel(question.text, objectName="approvalHead")
        head.setTextFormat(Qt.TextFormat.RichText)
        head.setWordWrap(True)
        layout.addWidget(head)
        self.where = _plain(f"Where it acts: {where}" if where else "", "approvalWhere")
        self.where.setVisible(bool(where))
        layout.addWidget(self.where)
        layout.addWidget(_plain(question.informative, "approvalDescription"))
        layout.addWidget(QLabel("Arguments, in full:"))
        self.arguments = QPlainTextEdit(question.detail, objectName="approvalArguments")
        self.arguments.setReadOnly(True)
        self.arguments.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        # A long unbroken value wraps anywhere: nothing is cut, and the box only ever scrolls down.
        self.arguments.setWordWrapMode(QTextOption.WrapMode.WrapAtWordBoundaryOrAnywhere)
        layout.addWidget(self.arguments, 1)
        scope = ("\u201cAlways allow\u201d is saved in this server's autoApprove list in mcp.json."
                 if tool.server is not None else "\u201cAlways allow\u201d lasts for this chat.")
        layout.addWidget(_plain(f"{scope} If you deny, the model is told; \u201cDeny and stop\u201d also ends "
                                "the answer.", "approvalScope"))
        buttons = QDialogButtonBox()
        self.buttons: dict[str, QPushButton] = {}
        for text, name, code in ANSWERS:
            button = QPushButton(text, objectName=name)
            # Auto-default: Enter answers the button that has the focus (Tab to it, then Enter); Deny stays the
            # default while the focus is elsewhere, such as in the arguments.
            button.setAutoDefault(True)
            button.clicked.connect(lambda _checked=False, c=code: self.done(c))
            buttons.addButton(button, QDialogButtonBox.ButtonRole.ActionRole)
            self.buttons[name] = button
        self.buttons["approvalAllowAlways"].setToolTip(scope)
        deny = self.buttons["approvalDeny"]
        deny.setDefault(True)
        layout.addWidget(buttons)
        deny.setFocus()

    def reject(self) -> None:  # Esc or the close button: a denial
        self.done(DENY)


def _plain(text: str, name: str) -> QLabel:
    """A label for words that come from elsewhere (a tool's description, a path): never read as rich text."""
    label = QLabel(text, objectName=name)
    label.setTextFormat(Qt.TextFormat.PlainText)
    label.setWordWrap(True)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return label
