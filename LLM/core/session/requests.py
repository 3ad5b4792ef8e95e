"""The request a session sends for an answer: the conversation's history and settings, plus a tool chat's
options (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..chat.conversation import Conversation, GenerationSettings, Message, answer_turns
from ..chat.params import InferenceConfig, ToolEnabledInferenceConfig, max_new_tokens
from ..config import ModelEntry

# What a saved answer records of the request that produced it.
RECORDED_PARAMS = {"system_prompt", "temperature", "top_p", "max_new_tokens", "stop", "seed", "tools", "tool_mode",
                   "tool_choice", "max_iterations"}


@dataclass
class ToolOptions:
    """What a tool chat's requests may call, and how (``ToolEnabledInferenceConfig``'s fields)."""

    tools: list[str] | None = None  # None: the safe built-ins
    max_iterations: int = 8
    tool_mode: str | None = None  # None: the model's own (llm_backends.yaml, or what this process learned)
    tool_choice: str = "auto"


def generation(settings: GenerationSettings, seed: int | None, entry: ModelEntry | None, *,
               system: bool = True) -> dict[str, Any]:
    """The request fields a chat's settings set (None: the model's default)."""
    values: dict[str, Any] = {"temperature": settings.temperature, "top_p": settings.top_p,
                              "max_new_tokens": settings.max_new_tokens, "stop": settings.stop or None, "seed": seed}
    if system:  # a base model has no system turn
        # "" clears the model's own system prompt; where it has none, "" and None both mean none: say None, so an
        # answer records its settings the same whichever front end wrote it.
        cleared = settings.system_prompt == "" and not (entry is not None and entry.system_prompt)
        values["system_prompt"] = None if cleared else settings.system_prompt
    return values


def request_config(conversation: Conversation, message: Message, model_id: str | None, entry: ModelEntry | None,
                   tools: ToolOptions | None, seed: int | None) -> InferenceConfig:
    """The request writing ``message``: the history before it, with a tool chat's options when ``tools``.

    A continued answer (``message`` already holds the text of a cut one) goes last as the assistant's own
    unfinished turn: the engine prefills it and writes on from its last token (llama-server's default
    ``--prefill-assistant``; the built-in transformers server renders it with ``continue_final_message``)."""
    history = conversation.history(upto=message)
    fields = generation(conversation.settings, seed, entry)
    if tools is None:
        partial = message.streamed_text
        if partial:
            history = [*history, {"role": "assistant", "content": partial}]
        return InferenceConfig(model_id=model_id, messages=history, **fields)
    return ToolEnabledInferenceConfig(
        model_id=model_id,
        # A replayed answer starts with the steps it keeps: they go back as the model made them.
        messages=history + answer_turns(message), enable_tools=True, tools=tools.tools,
        max_iterations=tools.max_iterations, tool_mode=tools.tool_mode, tool_choice=tools.tool_choice, **fields)


def token_limit(message: Message, entry: ModelEntry | None) -> int | None:
    """The max_tokens that cut ``message`` short (its own setting, else the model's default), or None when it was
    not cut by the limit."""
    if message.metrics is None or message.metrics.finish_reason != "length":
        return None
    return max_new_tokens((message.params or {}).get("max_new_tokens"), entry)
