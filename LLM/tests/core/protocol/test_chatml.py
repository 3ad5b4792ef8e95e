"""ChatML, the prompt a server renders when the model has no chat template of its own (pure, table-driven)."""

from __future__ import annotations

from typing import Any

import pytest

from LLM.core.protocol.chatml import message_text, render_chatml


@pytest.mark.parametrize(
    ("messages", "expected"),
    [
        ([{"role": "user", "content": "hi"}], "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"),
        (
            [
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": [
                    {"type": "text", "text": "a"},
                    {"type": "image_url", "image_url": {"url": "x"}},
                    {"type": "text", "text": "b"},
                ]},
            ],
            "<|im_start|>system\nbe brief<|im_end|>\n<|im_start|>user\nab<|im_end|>\n<|im_start|>assistant\n",
        ),
        (
            [{"role": "assistant", "content": None}],
            "<|im_start|>assistant\n<|im_end|>\n<|im_start|>assistant\n",
        ),
    ],
    ids=["one-user-turn", "system-and-text-parts", "null-content"],
)
def test_chatml_render_is_the_fallback_without_a_chat_template(messages: list[dict[str, Any]], expected: str) -> None:
    assert render_chatml(messages) == expected


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        pytest.param("plain", "plain", id="string"),
        pytest.param(None, "", id="null"),
        pytest.param([{"type": "text", "text": "a"}, "stray", {"type": "image_url"}, {"type": "text", "text": "b"}], "ab",
                     id="only-text-parts"),
    ],
)
def test_chatml_message_text(content: Any, expected: str) -> None:
    assert message_text({"role": "user", "content": content}) == expected
