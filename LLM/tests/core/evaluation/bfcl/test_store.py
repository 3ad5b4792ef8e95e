"""Report cards in the history file: runs keyed by what produced them, results as they finish, best scores."""

from __future__ import annotations

from pathlib import Path

import pytest

from LLM.core.errors import EvalRunNotFoundError
from LLM.core.evaluation import EvalStore, RunKey, TaskResult
from LLM.core.history import HistoryStore


def key(mode: str = "native", model: str = "m", data: str = "d1") -> RunKey:
    return RunKey("bfcl", model, "", mode, "llama.cpp b1-abc", data)


def result(task_id: str, category: str, passed: bool) -> TaskResult:
    return TaskResult(task_id, category, passed, "" if passed else "value_error:others", "" if passed else "why",
                      [{"f": {"a": 1}}], "raw", {"messages": []}, 12.0)


def test_results_add_up_per_category_and_overall_is_the_unweighted_mean(tmp_path: Path):
    with EvalStore(tmp_path / "h.sqlite3") as store:
        run_id = store.open_run(key(), {"max_tokens": 256})
        for i, passed in enumerate([True, True, True, False]):
            store.add_result(run_id, result(f"simple_python_{i}", "simple_python", passed))
        store.add_result(run_id, result("irrelevance_0", "irrelevance", False))
        run = store.run(run_id)
        assert {c: (s.tasks, s.passed) for c, s in run.categories.items()} == {"simple_python": (4, 3),
                                                                              "irrelevance": (1, 0)}
        assert run.overall == pytest.approx((0.75 + 0.0) / 2)  # not 3/5: categories weigh the same
        assert list(run.categories) == ["simple_python", "irrelevance"]  # BFCL's order
        assert store.done_task_ids(run_id) == {"simple_python_0", "simple_python_1", "simple_python_2",
                                               "simple_python_3", "irrelevance_0"}
        assert store.run(run_id, only=["simple_python_0", "irrelevance_0"]).overall == 0.5
        failed = store.results(run_id, failed_only=True)
        assert [(r.task_id, r.error_type, r.calls) for r in failed] == [
            ("irrelevance_0", "value_error:others", [{"f": {"a": 1}}]),
            ("simple_python_3", "value_error:others", [{"f": {"a": 1}}])]


def test_the_same_key_is_the_same_run_and_a_new_engine_is_a_new_one(tmp_path: Path):
    with EvalStore(tmp_path / "h.sqlite3") as store:
        first = store.open_run(key(), {})
        assert store.open_run(key(), {"max_tokens": 64}) == first
        assert store.run(first).settings == {"max_tokens": 64}
        other = store.open_run(RunKey("bfcl", "m", "", "native", "llama.cpp b2-def", "d1"), {})
        assert other != first and len(store.runs()) == 2 and store.runs("nobody") == []


def test_best_scores_prefer_the_runs_over_the_most_tasks(tmp_path: Path):
    with EvalStore(tmp_path / "h.sqlite3") as store:
        quick = store.open_run(key("native", data="quick"), {})
        store.add_result(quick, result("simple_python_0", "simple_python", True))
        full_native = store.open_run(key("native"), {})
        full_constrained = store.open_run(key("constrained"), {})
        for i in range(4):
            store.add_result(full_native, result(f"simple_python_{i}", "simple_python", i < 1))
            store.add_result(full_constrained, result(f"simple_python_{i}", "simple_python", i < 3))
        best = store.best_scores()
        assert best[("m", "")].id == full_constrained and best[("m", "")].overall == 0.75


def test_the_tables_live_beside_the_conversations_and_unknown_runs_are_named(tmp_path: Path):
    path = tmp_path / "h.sqlite3"
    with HistoryStore(path):
        pass
    with EvalStore(path) as store:
        run_id = store.open_run(key(), {})
        store.add_result(run_id, result("multiple_0", "multiple", True))
        store.clear(run_id)
        assert store.run(run_id).overall is None
        with pytest.raises(EvalRunNotFoundError, match="no eval run 42"):
            store.run(42)
        store.delete_run(run_id)
        assert store.runs() == []
