"""What the window asks the user, as a small Qt-free facade: tests answer it without a display (dialogs.py shows it).

The facade only asks. Whether a tool call needs asking, and what an answer allows, is core's one approval policy
(``ApprovalPolicy``, applied by the chat session); :func:`approval_asker` hands it the facade as its way to ask.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Protocol

from LLM.core import ApprovalDecision, Tool, ToolCall

# Whatever the dialogs open over: a widget for the Qt dialogs, anything (or nothing) for a test double. Typed
# loosely so that this module, and doubles that implement it, need no Qt.
Parent = object

# Checks an edited text: None when it is fine, else what is wrong (shown under the field).
Validator = Callable[[str], str | None]


class SwitchDecision(str, enum.Enum):
    STOP = "stop"  # stop the answer (the partial text stays) and switch now
    FINISH = "finish"  # let the answer finish, then switch
    CANCEL = "cancel"  # keep the current model


class Interaction(Protocol):
    """Every question the window asks. Each ``async`` one waits for the answer without a nested event loop; if
    the awaiting task is cancelled (Stop, the window closing), the question is withdrawn."""

    async def approve_tool(self, parent: Parent | None, call: ToolCall, tool: Tool) -> ApprovalDecision: ...

    async def confirm_switch(self, parent: Parent | None, current: str, new: str) -> SwitchDecision: ...

    async def confirm_unload(self, parent: Parent | None, victim: str, starting: str) -> bool: ...

    async def confirm_delete_tool(self, parent: Parent | None, name: str, path: Path) -> bool: ...

    def open_path(self, path: Path) -> None: ...

    async def choose_save_path(self, parent: Parent | None, title: str, suggested: str,
                               file_filter: str) -> Path | None: ...

    async def choose_open_path(self, parent: Parent | None, title: str, file_filter: str) -> Path | None: ...

    async def ask_text(self, parent: Parent | None, title: str, label: str, text: str,
                       multiline: bool = False, validate: Validator | None = None) -> str | None:
        """The edited text, or None when cancelled. With ``validate``, only text it finds fine (it returns
        None) is confirmed; otherwise the question stays open showing the message it returned."""


def approval_asker(interaction: Interaction, parent: Parent | None) -> Callable[[ToolCall, Tool],
                                                                               Awaitable[ApprovalDecision]]:
    """Core's way to ask whether a call may run (an ``Asker``: ``ChatSession(ask_approval=...)``,
    ``ApprovalPolicy.decide``): ``interaction``'s approval question, over ``parent``."""

    async def ask(call: ToolCall, tool: Tool) -> ApprovalDecision:
        return await interaction.approve_tool(parent, call, tool)

    return ask


@dataclass(frozen=True)
class Question:
    """The words of a question, as a message box shows them; the buttons are the dialog's."""

    title: str
    text: str  # rich text: names in bold
    informative: str
    detail: str = ""  # shown on request: a tool call's full arguments


def approval_question(call: ToolCall, tool: Tool) -> Question:
    """May a local tool run? (An MCP tool's call has its own dialog, widgets/approval_dialog.py.)"""
    return Question("Allow tool call?", f"The model wants to run <b>{tool.name}</b>.", tool.description,
                    json.dumps(call.arguments, indent=2, ensure_ascii=False))


def switch_question(current: str, new: str) -> Question:
    return Question("Switch model?", f"<b>{current}</b> is still writing an answer.",
                    f"Switch to {new} now, or let the answer finish first?")


def unload_question(victim: str, starting: str) -> Question:
    return Question("Unload a model kept forever?", f"Starting <b>{starting}</b> needs room, and "
                    f"<b>{victim}</b> is set to stay loaded (keep_alive: forever).", f"Unload {victim} for now?")


def delete_tool_question(name: str, path: Path) -> Question:
    return Question("Delete tool?", f"Delete the tool <b>{name}</b>?", f"Its file {path} is removed.")
