"""One model turn parsed with what is known of its prompt (TurnParser): where reasoning ends and which calls count."""

from __future__ import annotations

import pytest

from LLM.core.events import ReasoningDelta, TextDelta, ToolCall
from LLM.core.tools.parsing import TurnParser
from LLM.tests.fakes.replies import CALL_TEXT


def turn(text: str, opens: bool | None, reasoning_first: bool = False, truncated: bool = False, step: int = 1):
    """Feed ``text`` to a TurnParser ``step`` characters at a time; (result, every event)."""
    parser = TurnParser(None, opens)
    if reasoning_first:
        parser.reasoning_arrived()
    events = [e for i in range(0, len(text), step) for e in parser.feed(text[i : i + step])]
    result = parser.finish(truncated=truncated)
    return result, events + parser.final_events


DRAFT = f"Let me think. Maybe {CALL_TEXT} but no."
TURN_CASES = [
    # (text, prompt opens <think>, reasoning arrived apart first, truncated) -> (calls, content, reasoning has)
    pytest.param(f"{DRAFT}</think>The answer is 42.", True, False, False, [], "The answer is 42.", "Maybe",
                 id="prompt-opens-think-draft-is-reasoning"),
    pytest.param(f"{DRAFT}</think>The answer is 42.", None, False, False, [], "The answer is 42.", "Maybe",
                 id="unknown-prompt-lone-close-makes-draft-reasoning"),
    pytest.param(f"{DRAFT}</think>The answer is 42.", False, False, False, [],
                 "Let me think. Maybe  but no.The answer is 42.", "<tool_call>",
                 id="prompt-without-think-lone-close-still-voids-the-call"),
    pytest.param(f"{DRAFT}</think>{CALL_TEXT}", True, False, False, ["calculator"], "", "Maybe",
                 id="call-after-the-reasoning-runs"),
    pytest.param(f"Computing. {CALL_TEXT}", True, True, False, ["calculator"], "Computing.", "",
                 id="server-sent-reasoning-apart-content-is-the-answer"),
    pytest.param(f"Computing. {CALL_TEXT}", True, False, False, ["calculator"], "Computing.", "",
                 id="server-took-an-empty-reasoning-away"),
    pytest.param(f"Let me try {CALL_TEXT} and then", True, False, True, [], "", "Let me try",
                 id="cut-off-inside-the-opened-reasoning"),
    pytest.param(f"Computing. {CALL_TEXT}", False, False, False, ["calculator"], "Computing.", "",
                 id="no-think-anywhere-call-runs"),
    pytest.param(f"Computing. {CALL_TEXT}", None, False, False, ["calculator"], "Computing.", "",
                 id="unknown-prompt-no-think-call-runs"),
    pytest.param(f"<think>{DRAFT}</think>Done.", False, False, False, [], "Done.", "Maybe",
                 id="explicit-think-block-is-reasoning"),
]


@pytest.mark.parametrize("text, opens, reasoning_first, truncated, calls, content, reasoning", TURN_CASES)
@pytest.mark.parametrize("step", [1, 7, 10_000], ids=["by-char", "by-7", "whole"])
def test_turn_parser_reasoning_and_calls(text, opens, reasoning_first, truncated, calls, content, reasoning, step):
    """Regression (tool path fixes, bug 1): a call drafted inside reasoning was run when the prompt itself opened
    ``<think>`` (QwQ-style templates), so the raw text started inside reasoning with no tag to say so."""
    result, events = turn(text, opens, reasoning_first, truncated, step)
    assert [c.name for c in result.calls] == calls
    assert result.content == content
    assert reasoning in result.reasoning
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == result.content
    assert [e for e in events if isinstance(e, ToolCall)] == result.calls


def test_turn_parser_streams_content_at_once_when_the_prompt_does_not_open_reasoning():
    """Known prompt: content is not held back until a think tag or the end (only calls wait)."""
    parser = TurnParser(None, False)
    assert parser.feed("Hello there. ") == [TextDelta("Hello there.")]
    held = TurnParser(None, None)
    assert held.feed("Hello there. ") == []  # unknown prompt: the policy's wait for a lone </think>


def test_turn_parser_streams_reasoning_at_once_when_the_prompt_opens_it():
    parser = TurnParser(None, True)
    assert parser.feed("planning") == [ReasoningDelta("planning")]
