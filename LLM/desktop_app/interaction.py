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

from LLM.core import ApprovalDecision, Runtime, Tool, ToolCall
from LLM.core.tools import WORKSPACE_TOOLS

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

    async def approve_tool(self, parent: Parent | None, call: ToolCall, tool: Tool,
                           where: str = "") -> ApprovalDecision:
        """May ``call`` run? ``where``: where the tool acts, for people (see :func:`tool_place`)."""

    async def confirm_switch(self, parent: Parent | None, current: str, new: str) -> SwitchDecision: ...

    async def confirm_unload(self, parent: Parent | None, victim: str, starting: str) -> bool: ...

    async def confirm_delete_tool(self, parent: Parent | None, name: str, path: Path) -> bool: ...

    async def confirm_remove_model(self, parent: Parent | None, model_id: str, path: Path) -> bool:
        """Remove a model's entry from ``path`` (its files stay)? True to remove."""

    async def confirm_discard_text(self, parent: Parent | None, model: str) -> bool:
        """New chat with a base model's text in the editor: True to clear it (it is not saved anywhere)."""

    async def confirm_new_token(self, parent: Parent | None) -> bool:
        """Replace the endpoint's token (apps using the old one are refused from then on)? True to replace it."""

    def open_path(self, path: Path) -> None: ...

    async def choose_save_path(self, parent: Parent | None, title: str, suggested: str,
                               file_filter: str, kind: str = "file") -> Path | None:
        """A file to write. ``kind`` (export, import, suite, ...): the dialog opens where the last one of that
        kind was chosen (see :class:`FolderMemory`)."""

    async def choose_open_path(self, parent: Parent | None, title: str, file_filter: str,
                               kind: str = "file") -> Path | None: ...

    async def choose_open_paths(self, parent: Parent | None, title: str, file_filter: str,
                                kind: str = "file") -> list[Path]:
        """Existing files to read (one or more: files to attach); empty when cancelled."""

    async def choose_folder(self, parent: Parent | None, title: str, kind: str = "folder") -> Path | None:
        """An existing folder (an HF model folder, say); None when cancelled."""

    async def inform(self, parent: Parent | None, question: Question) -> None:
        """Show something to read (About, the keyboard shortcuts); returns when it is closed."""

    async def ask_text(self, parent: Parent | None, title: str, label: str, text: str,
                       multiline: bool = False, validate: Validator | None = None) -> str | None:
        """The edited text, or None when cancelled. With ``validate``, only text it finds fine (it returns
        None) is confirmed; otherwise the question stays open showing the message it returned."""


def approval_asker(interaction: Interaction, parent: Parent | None,
                   runtime: Runtime | None = None) -> Callable[[ToolCall, Tool], Awaitable[ApprovalDecision]]:
    """Core's way to ask whether a call may run (an ``Asker``: ``ChatSession(ask_approval=...)``,
    ``ApprovalPolicy.decide``): ``interaction``'s approval question, over ``parent``, saying where the tool acts
    in ``runtime`` (its workspace, its MCP servers)."""

    async def ask(call: ToolCall, tool: Tool) -> ApprovalDecision:
        return await interaction.approve_tool(parent, call, tool, runtime_place(tool, runtime))

    return ask


def runtime_place(tool: Tool, runtime: Runtime | None) -> str:
    """:func:`tool_place` with what ``runtime`` knows: its workspace and its MCP servers' targets."""
    if runtime is None:
        return tool_place(tool, None)
    target = None
    if tool.server is not None and runtime.mcp is not None:
        server = runtime.mcp.config.servers.get(tool.server)
        target = server.target if server is not None else None  # masked: never the env, headers or URL secrets
    return tool_place(tool, runtime.workspace, target)


def tool_place(tool: Tool, workspace: Path | None, server_target: str | None = None) -> str:
    """Where a tool acts, in words: an MCP tool's server (and what it runs or connects to, as mcp.json shows it),
    or, for a local tool, this computer and, for the built-in file tools, the workspace folder they are confined
    to (a Python tool of the user's own may act anywhere, and the question says so)."""
    if tool.server is not None:
        return f"MCP server “{tool.server}”" + (f": {server_target}" if server_target else "")
    if tool.canned is not None:
        return "This computer: a tool without code, it only answers from its definition"
    if tool.name not in WORKSPACE_TOOLS:  # a Python tool from the tools folder: nothing confines it
        return "This computer, with your permissions (a tool of your own, not confined to the workspace)"
    if workspace is None:
        return "This computer"
    return f"This computer, in the workspace folder {workspace}"


class FolderMemory:
    """The folder each kind of file dialog last chose in (export, import, suite, ...), so the next one of that kind
    opens there instead of the home folder. Kept for the session (the window keeps no settings file)."""

    def __init__(self, home: Path | None = None) -> None:
        self._home = home or Path.home()
        self._folders: dict[str, Path] = {}

    def start(self, kind: str) -> Path:
        """Where a dialog of ``kind`` opens: the last folder chosen for it while it still exists, else home."""
        folder = self._folders.get(kind)
        return folder if folder is not None and folder.is_dir() else self._home

    def remember(self, kind: str, chosen: Path) -> None:
        self._folders[kind] = chosen.parent


@dataclass(frozen=True)
class Question:
    """The words of a question, as a message box shows them; the buttons are the dialog's."""

    title: str
    text: str  # rich text: names in bold
    informative: str
    detail: str = ""  # shown on request: a tool call's full arguments


def approval_question(call: ToolCall, tool: Tool) -> Question:
    """May a tool run? The same words for a local and an MCP tool (widgets/approval_dialog.py shows them, with
    where the tool acts); ``detail`` is the full arguments."""
    if tool.server is not None:
        renamed = tool.server_tool and tool.server_tool != call.name
        own = f" (its tool ‘{_escape(tool.server_tool or '')}’)" if renamed else ""
        text = (f"The model wants to run <b>{_escape(call.name)}</b>{own} of the MCP server "
                f"<b>{_escape(tool.server)}</b>.")
    else:
        text = f"The model wants to run <b>{_escape(call.name)}</b>."
    return Question(f"Allow {call.name}?", text, tool.description or "(no description)",
                    json.dumps(call.arguments, indent=2, ensure_ascii=False))


def switch_question(current: str, new: str) -> Question:
    return Question("Switch model?", f"<b>{current}</b> is still writing an answer.",
                    f"Switch to {new} now, or let the answer finish first?")


def unload_question(victim: str, starting: str) -> Question:
    return Question("Unload a model kept forever?", f"Starting <b>{starting}</b> needs room, and "
                    f"<b>{victim}</b> is set to stay loaded (keep_alive: forever).", f"Unload {victim} for now?")


def discard_text_question(model: str) -> Question:
    return Question("Start a new text?", f"The text <b>{_escape(model)}</b> continued is not saved anywhere.",
                    "Clear the editor and start anew? (Copy the text first to keep it.)")


def delete_tool_question(name: str, path: Path) -> Question:
    return Question("Delete tool?", f"Delete the tool <b>{name}</b>?", f"Its file {path} is removed.")


def remove_model_question(model_id: str, path: Path) -> Question:
    return Question("Remove model?", f"Remove <b>{_escape(model_id)}</b> from your models?",
                    f"Its entry is deleted from {path}; the model's files stay where they are.")


def new_token_question() -> Question:
    return Question("Make a new token?", "Apps that use the current token are refused from now on.",
                    "Give them the new one (Copy, beside it) after this.")


def _escape(text: str) -> str:
    """``text`` as plain words inside rich text."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
