"""``GET /v1/models``: every configured model and adapter as an OpenAI model object, with what the workbench
knows of it (pure: the caller gathers states, capabilities and reachability).

OpenAI's fields (id, object, created, owned_by) come first, so every client lists them; the rest are extra
fields, which clients ignore: the display name, the backend, the base model an adapter rides on, whether it
is loaded, its context and each capability the app is sure enough of to act on.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..config import BackendsConfig, ModelEntry
from ..models.capabilities import Capability
from ..models.report import CONFIDENT

OWNER = "llm-workbench"
LOADED_STATES = frozenset({"ready", "running"})


def model_card(entry: ModelEntry, state: str, capabilities: Mapping[str, Capability] | None = None,
               reachable: str | None = None) -> dict[str, Any]:
    """``state``: the server state (``ServerStatus.state``; "external" for attached models)."""
    card: dict[str, Any] = {
        "id": entry.id,
        "object": "model",
        "created": 0,
        "owned_by": OWNER,
        "name": entry.display_name or entry.id,
        "backend": entry.backend,
        "state": state,
        "loaded": state in LOADED_STATES if state != "external" else None,
        "context_length": entry.context_size if entry.launchable else None,
    }
    if entry.adapter_dir:
        card["adapter"] = entry.adapter_name
    if reachable is not None:
        card["health"] = reachable
    if capabilities:
        card["capabilities"] = sorted(name for name, cap in capabilities.items()
                                      if cap.value and cap.confidence >= CONFIDENT)
    return card


def model_list(config: BackendsConfig, states: Mapping[str, str],
               capabilities: Mapping[str, Mapping[str, Capability]],
               reachable: Mapping[str, str] | None = None) -> dict[str, Any]:
    reachable = reachable or {}
    return {"object": "list", "data": [
        model_card(entry, states.get(model_id, "stopped"), capabilities.get(model_id), reachable.get(model_id))
        for model_id, entry in config.models.items()
    ]}


def unknown_model_message(model: object, config: BackendsConfig) -> str:
    known = ", ".join(config.models) or "none"
    return f"model '{model}' is not configured here; the models are: {known} (GET /v1/models lists them)"
