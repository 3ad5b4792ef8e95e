"""The message list a request sends: the request's history, or system + prompt; what a base model continues.

Fitting that list to the usable context is ``context_budget``'s.
"""

from __future__ import annotations

from typing import Any

from ..config import ModelEntry
from .params import InferenceConfig


def build_messages(cfg: InferenceConfig, entry: ModelEntry) -> list[dict[str, Any]]:
    """The message list to send: the request's history, or system + prompt (not yet fitted to the context)."""
    system = cfg.system_prompt if cfg.system_prompt is not None else entry.system_prompt
    if cfg.messages:
        messages = [dict(m) for m in cfg.messages]
        if system and messages[0].get("role") != "system":
            messages.insert(0, {"role": "system", "content": system})
        if cfg.prompt:
            messages.append({"role": "user", "content": cfg.prompt})
    else:
        messages = [{"role": "system", "content": system}] if system else []
        messages.append({"role": "user", "content": cfg.prompt or ""})
    return messages


def completion_prompt(cfg: InferenceConfig) -> str:
    """What a base model continues: the prompt as written (a history is joined as plain text, no template)."""
    if cfg.prompt is not None and not cfg.messages:
        return cfg.prompt
    parts = [str(m.get("content") or "") for m in cfg.messages or [] if m.get("role") != "system"]
    if cfg.prompt:
        parts.append(cfg.prompt)
    return "\n\n".join(parts)
