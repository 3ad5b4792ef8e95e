"""Experiments in the tool chat: inspect a step's raw exchange, edit a call or a result and go on, re-run a step.

Every replay is a new version of the answer (a branch, through the conversation tree): the answer as
it was stays one click away in the ``‹ 1/2 ›`` switcher.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from LLM.core import (
    ApprovalHook,
    StepRecord,
    ToolCall,
    ToolCard,
    ToolEnabledInferenceConfig,
    ToolResult,
    ToolStep,
    answer_turns,
    approve_call,
    key_file_expression,
    stream_tool_inference,
)

from ..widgets.step_inspector import StepInspector
from .chat_page import ChatPage


def step_record(step: ToolStep, offset: int = 0) -> StepRecord:
    """The loop's account of one request, as the answer keeps it (steps numbered after ``offset`` kept ones)."""
    return StepRecord(
        iteration=step.iteration + offset, mode=step.mode, tool_choice=step.tool_choice, constrained=step.constrained,
        constraint_note=step.constraint_note,
        url=step.url, request=step.request_body, raw_output=step.raw_text, native_calls=step.native_calls,
        calls=[{"name": call.name, "arguments": call.arguments, "id": call.id, "source": source}
               for call, source in step.calls],
        parse_errors=list(step.parse_errors), text=step.text, reasoning=step.reasoning,
        finish_reason=step.finish_reason, prompt_tokens=step.prompt_tokens, completion_tokens=step.completion_tokens,
        request_ms=step.request_ms, duration_ms=step.duration_ms,
    )


class ToolReplay:
    """The tool chat page's experiment actions. The page owns the conversation and the request; this
    builds the new version of an answer and runs what has to run before the loop goes on."""

    def __init__(self, page: ChatPage) -> None:
        self.page = page
        self.offset = 0  # steps the answer being written kept from the version it replays
        self.inspectors: list[StepInspector] = []

    # ----- the raw exchange -----
    def inspect(self, message_id: str, index: int) -> StepInspector | None:
        message = self.page.conversation.nodes.get(message_id)
        if message is None or not 0 <= index < len(message.steps):
            return None
        dialog = StepInspector(message.steps[index], self._key_expression(message.model_id), self.page)
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
        """edit_arguments | edit_result | rerun_step on the ``card_index``-th call of an answer. True if a
        new version started."""
        page = self.page
        message = page.conversation.nodes.get(message_id)
        if message is None or not 0 <= card_index < len(message.tool_cards):
            return False
        if page.busy or page.model_id is None:
            page.activity.setText("Stop the answer first (Esc)." if page.busy else "Choose a model first.")
            return False
        card = message.tool_cards[card_index]
        if action == "rerun_step":
            new = page.conversation.replay_from(message_id, card.iteration, keep_step=False, model_id=page.model_id)
        else:
            edit = await self._ask_edit(card, action)
            if edit is None or page.busy:
                return False
            new = page.conversation.replay_from(message_id, card.iteration, keep_step=True, model_id=page.model_id)
            edited = new.tool_cards[card_index]
            if action == "edit_arguments":
                edited.arguments = edit
                edited.ok, edited.output, edited.error, edited.duration_ms = None, "", None, None  # runs again
            else:
                edited.ok, edited.output, edited.error, edited.duration_ms = True, edit, None, None
        page.start_replay(new)
        return True

    async def _ask_edit(self, card: ToolCard, action: str) -> Any:
        """The new arguments (a JSON object) or result text; None when cancelled or not valid."""
        page = self.page
        if action == "edit_arguments":
            text = await page.ctx.interaction.ask_text(page, "Edit the call", f"Arguments of {card.name} (a JSON "
                                                       "object); it runs again with them:", card.arguments_json,
                                                       multiline=True)
            if text is None:
                return None
            try:
                arguments = json.loads(text)
            except ValueError as exc:
                page.activity.setText(f"Not replayed: the arguments are not JSON ({exc})")
                return None
            if not isinstance(arguments, dict):
                page.activity.setText("Not replayed: the arguments must be a JSON object ({...})")
                return None
            return arguments
        shown = card.output if card.ok else (card.error or "")
        return await page.ctx.interaction.ask_text(page, "Edit the result", f"What {card.name} returned; the model "
                                                   "goes on from it:", shown, multiline=True)

    async def events(self, cfg: ToolEnabledInferenceConfig, before_call: ApprovalHook) -> AsyncIterator[Any]:
        """The loop's events for the answer being written. A replayed answer first runs its edited calls
        (asking approval where the tool needs it), then the loop continues from its kept steps."""
        page = self.page
        active = page._active
        message = active.message if active is not None else None
        self.offset = len(message.steps) if message is not None else 0
        pending = [card for card in message.tool_cards if card.ok is None] if message is not None else []
        if pending:
            for card in pending:
                await self._run(card, before_call)
                page.transcript.schedule(message)
            cfg = cfg.model_copy(update={"messages": page.conversation.history(upto=message) + answer_turns(message)})
        async for event in stream_tool_inference(cfg, page.ctx.runtime, before_call):
            yield event

    async def _run(self, card: ToolCard, before_call: ApprovalHook) -> None:
        tools = self.page.ctx.runtime.tools
        if card.name in tools:  # as the loop does: arguments checked, then approval where the tool needs it
            call = ToolCall(card.name, dict(card.arguments), id=card.call_id) if card.call_id else \
                ToolCall(card.name, dict(card.arguments))
            verdict = await approve_call(tools.get(card.name), call, before_call)
            if isinstance(verdict, ToolResult):
                card.ok, card.error, card.duration_ms = False, verdict.error, 0.0
                return
            if not verdict:
                card.ok, card.error, card.duration_ms = False, f"the user denied the call to '{card.name}'", 0.0
                return
        result = await tools.execute(card.name, card.arguments)
        card.ok, card.output, card.error, card.duration_ms = result.ok, result.output, result.error, result.duration_ms
