"""Experiments on a tool answer: edit a call's arguments or its result, or re-run a step, as a new version.

Every replay is a new version of the answer (a sibling in the conversation tree): the answer as it was stays
one branch switch away. The new version starts with the steps it keeps; an edited call runs again before the
loop goes on (:func:`run_pending`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from ..chat.conversation import Conversation, Message, ToolCard
from ..errors import SessionError
from ..events import ToolCall
from ..tools.approval import Approval, ApprovalHook, approve_call
from ..tools.registry import ToolRegistry, ToolResult

ReplayAction = Literal["edit_arguments", "edit_result", "rerun_step"]
REPLAY_ACTIONS = ("edit_arguments", "edit_result", "rerun_step")


def parse_edited_arguments(text: str) -> dict[str, Any]:
    """A call's arguments as the user edited them: a JSON object, else a SessionError saying what is wrong."""
    try:
        arguments = json.loads(text)
    except ValueError as exc:
        raise SessionError(f"the arguments are not JSON ({exc})") from None
    if not isinstance(arguments, dict):
        raise SessionError("the arguments must be a JSON object ({...})")
    return arguments


def new_version(conversation: Conversation, message_id: str, card_index: int, action: str, edit: Any,
                model_id: str | None) -> Message:
    """The new version of answer ``message_id`` for ``action`` on its ``card_index``-th call, made the head."""
    message = conversation.nodes.get(message_id)
    if message is None or message.role != "assistant":
        raise SessionError(f"message {message_id!r} is not an answer of this conversation")
    if not 0 <= card_index < len(message.tool_cards):
        raise SessionError(f"the answer has no tool call number {card_index + 1}")
    if action not in REPLAY_ACTIONS:
        raise SessionError(f"unknown replay action {action!r} (use {', '.join(REPLAY_ACTIONS)})")
    if action == "edit_arguments" and not isinstance(edit, dict):
        raise SessionError("edit_arguments needs the new arguments as a JSON object")
    if action == "edit_result" and not isinstance(edit, str):
        raise SessionError("edit_result needs the new result as text")
    card = message.tool_cards[card_index]
    new = conversation.replay_from(message_id, card.iteration, keep_step=action != "rerun_step", model_id=model_id)
    if action == "edit_arguments":
        edited = new.tool_cards[card_index]
        edited.arguments = edit
        edited.ok, edited.output, edited.error, edited.duration_ms = None, "", None, None  # runs again
    elif action == "edit_result":
        edited = new.tool_cards[card_index]
        edited.ok, edited.output, edited.error, edited.duration_ms = True, edit, None, None
    return new


def edited_cards(message: Message) -> dict[int, str]:
    """Which tool cards of an answer the user edited in a replay: card index -> ``arguments``, ``result`` or
    ``arguments and result`` (a replay of a replay).

    Read from what the answer already keeps, so saved chats show it too: edited arguments differ from the call
    its step recorded (the original stays in that step, which the inspector shows), and an edited result is the
    only successful one without a run time (:func:`new_version` leaves it unset; a tool's run always has one).
    """
    edited: dict[int, str] = {}
    for index, card in enumerate(message.tool_cards):
        step = next((s for s in message.steps if s.iteration == card.iteration), None)
        calls = step.calls if step is not None else []
        recorded = next((c for c in calls if card.call_id and c.get("id") == card.call_id), None)
        if recorded is None:  # (fallback calls may have no id: the card's place among its step's cards)
            position = [c for c in message.tool_cards if c.iteration == card.iteration].index(card)
            recorded = calls[position] if position < len(calls) else None
        what = [name for name, changed in (
            ("arguments", recorded is not None and recorded.get("arguments") != card.arguments),
            ("result", card.ok is True and card.duration_ms is None)) if changed]
        if what:
            edited[index] = " and ".join(what)
    return edited


@dataclass
class PendingRun:
    """What running an answer's pending calls did: whether any ran, and whether the user denied one and stopped
    the run (the model is then not asked again, as in the loop)."""

    ran: bool = False
    stopped: bool = False


async def run_pending(message: Message, tools: ToolRegistry, before_call: ApprovalHook) -> PendingRun:
    """Run the answer's calls that have no result yet (an edited call), as the loop would: arguments checked,
    approval asked where the tool needs it; after "deny and stop" the others are not run."""
    outcome = PendingRun()
    for card in [card for card in message.tool_cards if card.ok is None]:
        outcome.ran = True
        if outcome.stopped:
            card.ok, card.output, card.error, card.duration_ms = (
                False, "", f"not run: the user stopped the run before the call to '{card.name}'", 0.0)
            continue
        outcome.stopped = await _run(card, tools, before_call)
    return outcome


async def _run(card: ToolCard, tools: ToolRegistry, before_call: ApprovalHook) -> bool:
    """Run one edited call into its card; True when the user denied it and stopped the run."""
    if card.name in tools:
        call = ToolCall(card.name, dict(card.arguments), id=card.call_id) if card.call_id else \
            ToolCall(card.name, dict(card.arguments))
        verdict = await approve_call(tools.get(card.name), call, before_call)
        if isinstance(verdict, ToolResult):
            card.ok, card.output, card.error, card.duration_ms = False, "", verdict.error, 0.0
            return False
        if not verdict:  # (its output said it waited for approval)
            card.ok, card.output, card.error, card.duration_ms = (
                False, "", f"the user denied the call to '{card.name}'", 0.0)
            return verdict is Approval.DENY_AND_STOP
    result = await tools.execute(card.name, card.arguments)
    card.ok, card.output, card.error, card.duration_ms = result.ok, result.output, result.error, result.duration_ms
    return False
