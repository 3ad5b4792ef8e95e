"""What a running engine says about itself (llama-server's ``GET /props``), decoded into EngineProps (pure)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class EngineProps:
    """Capabilities read from the engine, not guessed: context size, chat template and what it supports."""

    context_size: int | None = None
    supports_tools: bool | None = None  # None: the engine did not say
    supports_system_role: bool | None = None
    supports_parallel_tool_calls: bool | None = None
    modalities: tuple[str, ...] = ()  # e.g. ("vision",); text is always there
    total_slots: int | None = None
    build: str | None = None  # e.g. "b0-0c1e570"
    chat_template: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def summary(self) -> str:
        """One line for a tooltip or `llmctl models`: ctx 2048 · tools: no · vision."""
        parts = []
        if self.context_size:
            parts.append(f"ctx {self.context_size}")
        if self.supports_tools is not None:
            parts.append(f"template tools: {'yes' if self.supports_tools else 'no'}")
        parts += list(self.modalities)
        if self.build:
            parts.append(f"llama.cpp {self.build}")
        return " · ".join(parts)


def parse_props(body: Any) -> EngineProps | None:
    """llama-server's /props body; None when it is not one (another engine answering the path)."""
    if not isinstance(body, dict) or not isinstance(body.get("default_generation_settings"), dict):
        return None
    settings = body["default_generation_settings"]
    caps = body.get("chat_template_caps") if isinstance(body.get("chat_template_caps"), dict) else {}
    modalities = body.get("modalities") if isinstance(body.get("modalities"), dict) else {}
    n_ctx = settings.get("n_ctx")
    slots = body.get("total_slots")
    template = body.get("chat_template")
    build = body.get("build_info")
    return EngineProps(
        context_size=n_ctx if isinstance(n_ctx, int) and n_ctx > 0 else None,
        supports_tools=_flag(caps, "supports_tools"),
        supports_system_role=_flag(caps, "supports_system_role"),
        supports_parallel_tool_calls=_flag(caps, "supports_parallel_tool_calls"),
        modalities=tuple(sorted(name for name, on in modalities.items() if on is True)),
        total_slots=slots if isinstance(slots, int) else None,
        build=build if isinstance(build, str) else None,
        chat_template=template if isinstance(template, str) else None,
        raw=body,
    )


def _flag(caps: dict[str, Any], key: str) -> bool | None:
    value = caps.get(key)
    return value if isinstance(value, bool) else None
