"""Report cards in the history database: a run per (model, adapter, mode, engine build, data version), a row per task.

A task's row is written the moment it is scored, in its own short transaction, so a killed run keeps every
finished task and the next run of the same key skips them (``done_task_ids``). Accuracy per category is the
share of its tasks that passed; a run's overall figure is the unweighted mean over its categories, as BFCL
averages categories (so a category of 1000 tasks does not drown one of 50).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...errors import EvalRunNotFoundError, HistoryError
from ...history.opening import open_checked
from ...history.paths import default_history_path
from .data import CATEGORIES


@dataclass(frozen=True)
class RunKey:
    """What makes two runs the same run: the same answers would be computed again."""

    suite: str
    model_id: str
    adapter: str
    mode: str
    engine: str
    data_version: str


@dataclass(frozen=True)
class TaskResult:
    task_id: str
    category: str
    passed: bool
    error_type: str = ""
    reason: str = ""
    calls: list[dict[str, Any]] = field(default_factory=list)  # [{bfcl function name: {arg: value}}]
    raw_output: str = ""
    request: dict[str, Any] = field(default_factory=dict)
    latency_ms: float | None = None
    finished: float = 0.0


@dataclass(frozen=True)
class CategoryScore:
    tasks: int
    passed: int

    @property
    def accuracy(self) -> float:
        return self.passed / self.tasks if self.tasks else 0.0


@dataclass(frozen=True)
class RunSummary:
    id: int
    key: RunKey
    settings: dict[str, Any]
    created: float
    updated: float
    categories: dict[str, CategoryScore]

    @property
    def tasks(self) -> int:
        return sum(c.tasks for c in self.categories.values())

    @property
    def overall(self) -> float | None:
        """The unweighted mean of the categories' accuracies; None before any task finished."""
        if not self.categories:
            return None
        return sum(c.accuracy for c in self.categories.values()) / len(self.categories)

    def to_dict(self) -> dict[str, Any]:
        return {"run": self.id, "model": self.key.model_id, "adapter": self.key.adapter or None,
                "mode": self.key.mode, "engine": self.key.engine, "data_version": self.key.data_version,
                "suite": self.key.suite, "created": self.created, "updated": self.updated, "settings": self.settings,
                "overall": self.overall,
                "categories": {name: {"tasks": c.tasks, "accuracy": c.accuracy}
                               for name, c in self.categories.items()}}


class EvalStore:
    """Runs and task results in the history file. Use from one thread (the window's or the CLI's loop)."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else default_history_path()
        self._db = open_checked(self.path)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> EvalStore:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _write(self, sql: str, args: tuple[Any, ...]) -> sqlite3.Cursor:
        try:
            with self._db:  # one short transaction
                self._db.execute("BEGIN IMMEDIATE")
                return self._db.execute(sql, args)
        except sqlite3.Error as exc:
            raise HistoryError(f"{self.path}: {exc}") from exc

    def _read(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        try:
            return self._db.execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            raise HistoryError(f"{self.path}: {exc}") from exc

    # ----- writing -----
    def open_run(self, key: RunKey, settings: dict[str, Any]) -> int:
        """The run of ``key`` (created if new); its settings are those of the latest start."""
        now = time.time()
        self._write("""INSERT INTO eval_runs (suite, model_id, adapter, mode, engine, data_version, settings, created,
                         updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                       ON CONFLICT (suite, model_id, adapter, mode, engine, data_version)
                       DO UPDATE SET settings = excluded.settings, updated = excluded.updated""",
                    (key.suite, key.model_id, key.adapter, key.mode, key.engine, key.data_version,
                     json.dumps(settings, sort_keys=True), now, now))
        rows = self._read("""SELECT id FROM eval_runs WHERE suite = ? AND model_id = ? AND adapter = ? AND mode = ?
                             AND engine = ? AND data_version = ?""",
                          (key.suite, key.model_id, key.adapter, key.mode, key.engine, key.data_version))
        return int(rows[0][0])

    def add_result(self, run_id: int, result: TaskResult) -> None:
        finished = result.finished or time.time()
        self._write("""INSERT OR REPLACE INTO eval_results (run_id, task_id, category, passed, error_type, reason,
                         calls, raw_output, request, latency_ms, finished) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                    (run_id, result.task_id, result.category, int(result.passed), result.error_type, result.reason,
                     json.dumps(result.calls, ensure_ascii=False), result.raw_output,
                     json.dumps(result.request, ensure_ascii=False), result.latency_ms, finished))
        self._write("UPDATE eval_runs SET updated = ? WHERE id = ?", (finished, run_id))

    def clear(self, run_id: int) -> None:
        """Forget a run's results (a run asked to be computed again)."""
        self._write("DELETE FROM eval_results WHERE run_id = ?", (run_id,))

    def delete_run(self, run_id: int) -> None:
        self.run(run_id)  # a typed error for an unknown id
        self._write("DELETE FROM eval_runs WHERE id = ?", (run_id,))

    # ----- reading -----
    def done_task_ids(self, run_id: int) -> set[str]:
        return {row[0] for row in self._read("SELECT task_id FROM eval_results WHERE run_id = ?", (run_id,))}

    def runs(self, model_id: str | None = None, suite: str = "bfcl") -> list[RunSummary]:
        """Every run of ``suite`` (of one model when given), newest first."""
        where, args = ("AND model_id = ?", (suite, model_id)) if model_id is not None else ("", (suite,))
        rows = self._read(f"""SELECT id, suite, model_id, adapter, mode, engine, data_version, settings, created, updated
                              FROM eval_runs WHERE suite = ? {where} ORDER BY updated DESC, id DESC""", args)
        scores = self._category_scores([row[0] for row in rows])
        return [_summary(row, scores.get(row[0], {})) for row in rows]

    def run(self, run_id: int, only: Collection[str] | None = None) -> RunSummary:
        """One run; with ``only``, its figures over those task ids alone (what one invocation asked for)."""
        rows = self._read("""SELECT id, suite, model_id, adapter, mode, engine, data_version, settings, created, updated
                             FROM eval_runs WHERE id = ?""", (run_id,))
        if not rows:
            raise EvalRunNotFoundError(run_id)
        if only is None:
            return _summary(rows[0], self._category_scores([run_id]).get(run_id, {}))
        wanted = set(only)
        counts: dict[str, tuple[int, int]] = {}
        for task_id, category, passed in self._read(
                "SELECT task_id, category, passed FROM eval_results WHERE run_id = ?", (run_id,)):
            if task_id in wanted:
                tasks, good = counts.get(category, (0, 0))
                counts[category] = (tasks + 1, good + passed)
        return _summary(rows[0], {name: CategoryScore(*pair) for name, pair in counts.items()})

    def results(self, run_id: int, *, failed_only: bool = False) -> list[TaskResult]:
        """The run's task results in task order within each category (BFCL ids end in their line number)."""
        self.run(run_id)
        rows = self._read(f"""SELECT task_id, category, passed, error_type, reason, calls, raw_output, request,
                                     latency_ms, finished FROM eval_results WHERE run_id = ?
                                     {'AND passed = 0' if failed_only else ''}""", (run_id,))
        results = [TaskResult(r[0], r[1], bool(r[2]), r[3], r[4], json.loads(r[5]), r[6], json.loads(r[7]), r[8], r[9])
                   for r in rows]
        return sorted(results, key=lambda r: (r.category, _natural(r.task_id)))

    def best_scores(self, suite: str = "bfcl") -> dict[tuple[str, str], RunSummary]:
        """(model id, adapter) -> its run with the best overall figure among its runs over the most tasks (ties:
        the newest): a quick run of two tasks at 100% does not outrank a full card at 60%."""
        runs: dict[tuple[str, str], list[RunSummary]] = {}
        for run in self.runs(suite=suite):
            if run.overall is not None:
                runs.setdefault((run.key.model_id, run.key.adapter), []).append(run)
        best = {}
        for slot, candidates in runs.items():
            most = max(run.tasks for run in candidates)
            best[slot] = max((run for run in candidates if run.tasks == most), key=lambda run: run.overall or 0.0)
        return best

    def _category_scores(self, run_ids: list[int]) -> dict[int, dict[str, CategoryScore]]:
        if not run_ids:
            return {}
        marks = ", ".join("?" * len(run_ids))
        rows = self._read(f"""SELECT run_id, category, COUNT(*), SUM(passed) FROM eval_results
                              WHERE run_id IN ({marks}) GROUP BY run_id, category""", tuple(run_ids))
        scores: dict[int, dict[str, CategoryScore]] = {}
        for run_id, category, tasks, passed in rows:
            scores.setdefault(run_id, {})[category] = CategoryScore(int(tasks), int(passed or 0))
        return scores


def _summary(row: tuple[Any, ...], categories: dict[str, CategoryScore]) -> RunSummary:
    order = {name: i for i, name in enumerate(CATEGORIES)}
    ordered = dict(sorted(categories.items(), key=lambda item: (order.get(item[0], len(order)), item[0])))
    return RunSummary(row[0], RunKey(*row[1:7]), json.loads(row[7]), row[8], row[9], ordered)


def _natural(task_id: str) -> tuple[str, int]:
    head, _, tail = task_id.rpartition("_")
    return (head, int(tail)) if tail.isdigit() else (task_id, -1)
