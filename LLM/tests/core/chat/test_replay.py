"""Replaying a tool-chat answer from one of its steps: what the new version starts with (pure)."""

from __future__ import annotations

import pytest

from LLM.core.chat.conversation import Conversation, Notice, StepRecord, TextPart, ToolCard
from LLM.core.chat.turns import answer_turns


def tool_answer() -> tuple[Conversation, str]:
    """Step 1: text + two calls; step 2: one call; then the final text."""
    conversation = Conversation(kind="tools")
    conversation.add_user("Compute things")
    answer = conversation.add_assistant("m")
    answer.parts = [TextPart("Let me see."), ToolCard(1, "calculator", {"expression": "1+1"}, "native", "a", True, "2"),
                    ToolCard(1, "calculator", {"expression": "2+2"}, "native", "b", True, "4"),
                    Notice("repeated_call", "careful"), TextPart("Now the next."),
                    ToolCard(2, "calculator", {"expression": "3+3"}, "native", "c", True, "6"), TextPart("Done: 2, 4, 6.")]
    answer.steps = [StepRecord(1, "native"), StepRecord(2, "native"), StepRecord(3, "native")]
    answer.status = "done"
    return conversation, answer.id


@pytest.mark.parametrize(
    "iteration, keep_step, cards, steps, texts",
    [
        pytest.param(1, False, [], 0, [], id="rerun-step-1-starts-empty"),
        pytest.param(1, True, ["a", "b"], 1, ["Let me see."], id="edit-in-step-1-keeps-its-calls"),
        pytest.param(2, False, ["a", "b"], 1, ["Let me see."], id="rerun-step-2-keeps-step-1"),
        pytest.param(2, True, ["a", "b", "c"], 2, ["Let me see.", "Now the next."], id="edit-in-step-2"),
        pytest.param(3, False, ["a", "b", "c"], 2, ["Let me see.", "Now the next."], id="rerun-the-final-answer"),
    ],
)
def test_replay_prefix(iteration, keep_step, cards, steps, texts):
    conversation, old_id = tool_answer()
    new = conversation.replay_from(old_id, iteration, keep_step=keep_step, model_id="m2")
    assert [c.call_id for c in new.tool_cards] == cards
    assert len(new.steps) == steps
    assert [p.text for p in new.parts if isinstance(p, TextPart)] == texts
    assert new.status == "pending" and new.model_id == "m2" and new.parent_id == conversation.nodes[old_id].parent_id
    assert conversation.head == new.id and [m.id for m in conversation.siblings(new)] == [old_id, new.id]


def test_replay_copies_so_edits_leave_the_original_alone():
    conversation, old_id = tool_answer()
    new = conversation.replay_from(old_id, 1, keep_step=True, model_id="m")
    new.tool_cards[0].output = "edited"
    assert conversation.nodes[old_id].tool_cards[0].output == "2"


def test_replay_history_ends_with_the_kept_calls_and_results():
    conversation, old_id = tool_answer()
    new = conversation.replay_from(old_id, 2, keep_step=True, model_id="m")
    new.tool_cards[2].output = "sixty"
    turns = conversation.history(upto=new) + answer_turns(new)
    assert [t["role"] for t in turns] == ["user", "assistant", "tool", "tool", "assistant", "tool"]
    assert turns[-1] == {"role": "tool", "tool_call_id": "c", "name": "calculator", "content": "sixty"}
    assert turns[4]["content"] == "Now the next."


def test_replay_of_a_user_message_is_refused():
    conversation, _ = tool_answer()
    with pytest.raises(ValueError):
        conversation.replay_from(conversation.messages[0].id, 1, keep_step=False, model_id="m")
