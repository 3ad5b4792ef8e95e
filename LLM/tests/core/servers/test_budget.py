"""The loaded-model budget's plan: which idle servers make room for one more model (pure, table-driven)."""

from __future__ import annotations

import pytest

from LLM.core.servers.budget import Loaded, Plan, plan_room
from LLM.core.models.fit import MemoryEstimate

GB = 2**30


def server(model_id: str, last_used: float, memory: float = 1, **flags: bool) -> Loaded:
    return Loaded(model_id, last_used, int(memory * GB), **flags)


@pytest.mark.parametrize(
    "loaded, max_loaded, need_gb, available_gb, expected",
    [
        pytest.param([], 2, 1, 8, Plan(), id="room-to-spare"),
        pytest.param([server("a", 1)], 2, 1, 8, Plan(), id="under-the-count"),
        pytest.param([server("a", 2), server("b", 1)], 2, 1, 8, Plan(("b",)), id="count-least-recent-goes"),
        pytest.param([server("a", 1, busy=True), server("b", 2)], 2, 1, 8, Plan(("b",)), id="busy-one-is-skipped"),
        pytest.param([server("a", 1, owned=False), server("b", 2)], 2, 1, 8, Plan(("b",)),
                     id="reattached-one-is-skipped"),
        pytest.param([server("a", 1, forever=True), server("b", 2)], 2, 1, 8, Plan(("b",)),
                     id="forever-one-is-skipped"),
        pytest.param([server("a", 1, memory=3), server("b", 2, memory=3)], 5, 5, 2, Plan(("a",)),
                     id="memory-frees-the-least-recent"),
        pytest.param([server("a", 1, memory=2), server("b", 2, memory=2)], 5, 5, 2, Plan(("a", "b")),
                     id="memory-needs-two"),
        pytest.param([server("a", 1)], 3, None, 0.1, Plan(), id="unknown-need-is-not-checked"),
        pytest.param([server("a", 1)], 3, 1, None, Plan(), id="unknown-memory-is-not-checked"),
    ],
)
def test_budget_plan(loaded, max_loaded, need_gb, available_gb, expected):
    need = MemoryEstimate(int(need_gb * GB)) if need_gb is not None else None
    available = int(available_gb * GB) if available_gb is not None else None
    assert plan_room("new", need, loaded, max_loaded, available) == expected


def test_budget_says_why_nothing_can_make_room():
    loaded = [server("chat", 1, busy=True), server("other", 2, owned=False), server("keep", 3, forever=True)]
    plan = plan_room("new", MemoryEstimate(4 * GB, GB), loaded, 3, 2 * GB)
    assert plan.unload == ()
    assert plan.problem == (
        "cannot start 'new': 3 model(s) are loaded (max_loaded: 3) and it needs about 5.00 GiB (weights 4.00 GiB "
        "+ KV cache 1.00 GiB) but only 2.00 GiB would be free; none can be unloaded: 'chat' is answering, 'other' "
        "was started by another process, 'keep' is kept forever (keep_alive: forever)")


def test_budget_a_confirmed_forever_server_may_go():
    loaded = [server("keep", 1, forever=True)]
    assert plan_room("new", None, loaded, 1, None).problem is not None
    assert plan_room("new", None, loaded, 1, None, frozenset({"keep"})) == Plan(("keep",))
