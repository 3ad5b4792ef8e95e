"""The loaded-model budget: which idle servers to unload so that one more model fits (pure).

Two limits: how many servers stay loaded (``max_loaded``) and the memory the new model needs
(weights + KV cache) against what is available. Servers are unloaded least recently used first,
and only those this process may unload: started by it (not re-attached), not answering, and not
``keep_alive: forever`` unless the user confirmed it for this start.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..models.fit import MemoryEstimate, gib


@dataclass(frozen=True)
class Loaded:
    """A server that holds a model now, as the budget sees it."""

    model_id: str
    last_used: float  # monotonic time of its last request (or start)
    memory: int | None  # resident bytes, None when unknown
    owned: bool = True  # started by this process (a re-attached one belongs to another)
    busy: bool = False  # answering a request
    forever: bool = False  # keep_alive: forever


@dataclass(frozen=True)
class Plan:
    unload: tuple[str, ...] = ()  # in this order, before the start
    problem: str | None = None  # why it cannot fit even then (nothing is unloaded)


def plan_room(
    model_id: str,
    need: MemoryEstimate | None,
    loaded: list[Loaded],
    max_loaded: int,
    available: int | None,
    confirmed_forever: frozenset[str] = frozenset(),
) -> Plan:
    """The fewest least-recently-used idle servers to unload so that ``model_id`` fits, or why it cannot."""
    others = [s for s in loaded if s.model_id != model_id]
    count, free = len(others), available
    unloadable = sorted((s for s in others if _may_unload(s, confirmed_forever)), key=lambda s: s.last_used)
    chosen: list[Loaded] = []

    def fits() -> bool:
        enough_memory = need is None or free is None or need.total <= free
        return count < max_loaded and enough_memory

    while not fits() and unloadable:
        victim = unloadable.pop(0)
        chosen.append(victim)
        count -= 1
        if free is not None:
            free += victim.memory or 0
    if fits():
        return Plan(tuple(s.model_id for s in chosen))
    return Plan(problem=_why(model_id, need, others, count, max_loaded, free, confirmed_forever))


def _may_unload(server: Loaded, confirmed_forever: frozenset[str]) -> bool:
    return server.owned and not server.busy and (not server.forever or server.model_id in confirmed_forever)


def _why(model_id: str, need: MemoryEstimate | None, others: list[Loaded], count: int, max_loaded: int,
         free: int | None, confirmed_forever: frozenset[str]) -> str:
    reasons = []
    if count >= max_loaded:
        reasons.append(f"{len(others)} model(s) are loaded (max_loaded: {max_loaded})")
    if need is not None and free is not None and need.total > free:
        reasons.append(f"it needs about {need.describe()} but only {gib(free)} would be free")
    kept = [f"'{s.model_id}' {_kept_because(s, confirmed_forever)}" for s in others
            if not _may_unload(s, confirmed_forever)]
    tail = f"; none can be unloaded: {', '.join(kept)}" if kept else ""
    return f"cannot start '{model_id}': {' and '.join(reasons)}{tail}"


def _kept_because(server: Loaded, confirmed_forever: frozenset[str]) -> str:
    if not server.owned:
        return "was started by another process"
    if server.busy:
        return "is answering"
    return "is kept forever (keep_alive: forever)"
