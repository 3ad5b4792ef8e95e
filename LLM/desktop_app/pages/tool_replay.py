"""Experiments in the tool chat: inspect a step's raw exchange, edit a call or a result and go on, re-run a step.

Every replay is a new version of the answer (``ChatSession.replay``): the answer as it was stays one click
away in the ``‹ 1/2 ›`` switcher.
"""

from __future__ import annotations

from typing import Any

from LLM.core import LLMError, ToolCard, key_file_expression
from LLM.core.attachments import DEFAULT_MAX_SIDE
from LLM.core.session import parse_edited_arguments

from ..widgets.step_inspector import StepInspector
from .chat_page import ChatPage


class ToolReplay:
    """The tool chat page's experiment actions: the raw exchange of a step, and the questions an edit asks
    before the session makes the new version."""

    def __init__(self, page: ChatPage) -> None:
        self.page = page
        self.inspectors: list[StepInspector] = []

    # ----- the raw exchange -----
    def inspect(self, message_id: str, index: int) -> StepInspector | None:
        message = self.page.conversation.nodes.get(message_id)
        if message is None or not 0 <= index < len(message.steps):
            return None
        entry = self.page.ctx.config.models.get(message.model_id or "")
        dialog = StepInspector(message.steps[index], self._key_expression(message.model_id), self.page,
                               blobs=self.page.session.blobs, spawn=self.page.ctx.tasks.spawn_if_open,
                               max_side=entry.image_max_side if entry is not None else DEFAULT_MAX_SIDE)
        self.inspectors.append(dialog)
        dialog.finished.connect(lambda _code: self.inspectors.remove(dialog) if dialog in self.inspectors else None)
        dialog.show()
        return dialog

    def _key_expression(self, model_id: str | None) -> str | None:
        """How the copied curl gets the server's key: its key file, or the environment variable the entry names."""
        ctx = self.page.ctx
        entry = ctx.config.models.get(model_id or "")
        if entry is None:
            return None
        if entry.launchable and ctx.servers is not None:
            return key_file_expression(str(ctx.servers.keys_dir / f"{entry.id}.key"))
        return f"${entry.api_key_env}" if entry.api_key_env else None

    # ----- edit and replay -----
    def act(self, message_id: str, card_index: int, action: str) -> None:
        self.page.ctx.tasks.spawn_if_open(self.replay(message_id, card_index, action), name=f"replay-{action}")

    async def replay(self, message_id: str, card_index: int, action: str) -> bool:
        """edit_arguments | edit_result | rerun_step on the ``card_index``-th call of an answer: the edit is
        asked for here, the new version is the session's. True if it started."""
        page = self.page
        message = page.conversation.nodes.get(message_id)
        if message is None or not 0 <= card_index < len(message.tool_cards):
            return False
        if page.busy or page.model_id is None:
            page.activity.setText("Stop the answer first (Esc)." if page.busy else "Choose a model first.")
            return False
        edit = None
        if action != "rerun_step":
            edit = await self._ask_edit(message.tool_cards[card_index], action)
            if edit is None or page.busy:
                return False
        page.cancel_edit()
        return page.run_action(page.session.replay, message_id, card_index, action, edit)

    async def _ask_edit(self, card: ToolCard, action: str) -> Any:
        """The new arguments (a JSON object) or result text; None when cancelled. Arguments that do not parse
        keep the dialog open with the reason under the field, so the edit is never lost."""
        page = self.page
        if action == "edit_arguments":
            text = await page.ctx.interaction.ask_text(page, "Edit the call", f"Arguments of {card.name} (a JSON "
                                                       "object); it runs again with them:", card.arguments_json,
                                                       multiline=True, validate=_arguments_problem)
            return None if text is None else parse_edited_arguments(text)
        shown = card.output if card.ok else (card.error or "")
        return await page.ctx.interaction.ask_text(page, "Edit the result", f"What {card.name} returned; the model "
                                                   "goes on from it:", shown, multiline=True)


def _arguments_problem(text: str) -> str | None:
    """Why edited arguments cannot be sent (the session's own parse), or None when they can."""
    try:
        parse_edited_arguments(text)
    except LLMError as exc:
        return str(exc)
    return None
