"""The migration guide's model API in plain blocking calls: capabilities with confidence, recommendations per
task and the user's own recommendations (the async faces are Runtime.capabilities and LLM.core.models)."""

from __future__ import annotations

from .models.capabilities import Capability
from .models.catalog import Recommendation, default_overrides_path, load_catalog, load_overrides, recommend, \
    save_override
from .models.system import read_machine
from .runtime import default_portal

# The names the HuggingFace provider's guide uses, answered by ours.
CAPABILITY_ALIASES = {"text_generation": "chat", "function_calling": "tools", "image_to_text": "vision",
                      "speech_to_text": "audio", "feature_extraction": "embedding", "thinking": "reasoning"}


def get_capabilities(model_id: str) -> dict[str, Capability]:
    """What ``model_id`` of the config can do, each with ``.value``, ``.confidence`` (0-1) and ``.source``
    (declared, probe, engine, template, metadata, name), known without loading it. The guide's names
    (``caps["image_to_text"]``, ``caps["function_calling"]``) are answered too."""
    caps = default_portal.get().call(lambda runtime: runtime.capabilities(model_id))
    return {**caps, **{alias: caps[name] for alias, name in CAPABILITY_ALIASES.items() if name in caps}}


def get_model_recommendations(task: str, *, limit: int | None = None) -> list[Recommendation]:
    """Catalog models for ``task`` (chat, tools, code, vision, reasoning, embedding), best for this machine
    first, each with ``.fits`` and a one-line ``.reason``; the user's own choices for the task lead."""
    catalog = load_catalog()
    return recommend(task, catalog, read_machine(), overrides=load_overrides(default_overrides_path()),
                     limit=limit)


def update_model_recommendations(task: str, entries: list[str]) -> None:
    """Make ``entries`` (catalog ids, best first) the recommendations for ``task`` on this machine; an empty
    list returns the task to the catalog's own ranking. Kept in the user's recommendations.json."""
    save_override(default_overrides_path(), task, list(entries), load_catalog())
