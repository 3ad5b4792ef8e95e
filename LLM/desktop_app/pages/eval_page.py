"""The tool eval tab: run a suite of tool-use tasks on the selected model, per mode, and read the results.

The same runner as ``llmctl eval tools``: a table per mode (the five metrics), one row per task run,
and the selected task's whole exchange (the request's steps, the calls, the problems found).
"""

from __future__ import annotations

import asyncio
import json
import logging
from contextlib import aclosing
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from LLM.core import LLMError
from LLM.core.evaluation import (
    EVAL_MODES,
    EvalFinished,
    ModeFinished,
    ModeSummary,
    TaskFinished,
    TaskOutcome,
    TaskStarted,
    default_suite_path,
    load_suite,
    run_eval,
    summarize,
)

from ..context import AppContext
from ..widgets.tones import tone
from ..widgets.transcript import mono_font

log = logging.getLogger(__name__)
METRICS = ("valid_call_rate", "tool_accuracy", "argument_accuracy", "abstention_accuracy", "median_latency_ms")
HEADERS = ("mode", "tasks", "valid calls", "right tool", "right arguments", "right abstention", "median latency")


def shown_metric(name: str, value: Any) -> str:
    if value is None:
        return "—"
    return f"{value:.0f} ms" if name == "median_latency_ms" else f"{value:.0%}"


class EvalPage(QWidget):
    busy_changed = Signal(bool)
    page_name = "evalPage"

    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName(self.page_name)
        self.ctx = ctx
        self.model_id: str | None = None
        self.suite_path: Path = default_suite_path()
        self._task: asyncio.Task[Any] | None = None
        self.outcomes: list[TaskOutcome] = []
        self.summaries: dict[str, ModeSummary] = {}

        self.mode_boxes = {}
        controls = QHBoxLayout()
        controls.addWidget(QLabel("Modes:"))
        for mode in EVAL_MODES:
            box = QCheckBox(mode, objectName=f"evalMode_{mode}")
            box.setChecked(True)
            self.mode_boxes[mode] = box
            controls.addWidget(box)
        self.suite_label = QLabel(objectName="evalSuiteLabel")
        self.suite_button = QPushButton("Suite…", objectName="evalSuiteButton")
        self.suite_button.setToolTip("Choose a suite of tasks (JSONL); the default ships with the workbench")
        self.suite_button.clicked.connect(lambda: self._spawn(self.choose_suite(), "eval-suite"))
        self.run_button = QPushButton("Run", objectName="evalRunButton")
        self.run_button.clicked.connect(lambda: self.run())
        self.stop_button = QPushButton("Stop", objectName="evalStopButton")
        self.stop_button.clicked.connect(lambda: self.stop())
        controls.addSpacing(12)
        controls.addWidget(self.suite_label, 1)
        controls.addWidget(self.suite_button)
        controls.addWidget(self.run_button)
        controls.addWidget(self.stop_button)

        # The bar and the status line count the same thing: task runs (each task once per mode) over the whole
        # eval; the bar the finished ones, the status line the one running now.
        self.progress = QProgressBar(objectName="evalProgress")
        self.progress.setFormat("%v of %m task runs done")
        self.status = QLabel(objectName="evalStatus")
        self.status.setWordWrap(True)
        self.summary_table = QTableWidget(0, len(HEADERS), objectName="evalSummaryTable")
        self.summary_table.setHorizontalHeaderLabels(HEADERS)
        self.summary_table.verticalHeader().hide()
        self.summary_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.summary_table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.summary_table.setMaximumHeight(130)
        self.task_table = QTableWidget(0, 5, objectName="evalTaskTable")
        self.task_table.setHorizontalHeaderLabels(("mode", "task", "result", "what happened", "latency"))
        self.task_table.verticalHeader().hide()
        self.task_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.task_table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.task_table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.task_table.horizontalHeader().setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)
        self.task_table.itemSelectionChanged.connect(self._show_selected)
        self.details = QPlainTextEdit(objectName="evalTaskDetails")
        self.details.setReadOnly(True)
        self.details.setFont(mono_font())
        self.details.setPlaceholderText("Select a task to see its exchange: the steps, the calls, what was wrong.")

        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.task_table)
        split.addWidget(self.details)
        split.setSizes([320, 220])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(16, 12, 16, 12)
        layout.addLayout(controls)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addWidget(self.summary_table)
        layout.addWidget(split, 1)
        self._show_suite()
        self._set_busy(False)

    # ----- settings -----
    def set_model(self, model_id: str | None) -> None:
        if model_id != self.model_id and self.busy:
            self.stop("the model was switched")
        self.model_id = model_id
        self._show_idle_status()

    def modes(self) -> list[str]:
        return [mode for mode, box in self.mode_boxes.items() if box.isChecked()]

    async def choose_suite(self) -> None:
        path = await self.ctx.interaction.choose_open_path(self, "Choose an eval suite", "Eval suite (*.jsonl)",
                                                           kind="suite")
        if path is not None:
            self.suite_path = path
            self._show_suite()

    def _show_suite(self) -> None:
        default = self.suite_path == default_suite_path()
        self.suite_label.setText(f"Suite: {'the default suite' if default else self.suite_path}")
        self.suite_label.setToolTip(str(self.suite_path))

    def _show_idle_status(self) -> None:
        if not self.busy and not self.outcomes:
            who = self.model_id or "no model chosen"
            self.status.setText(f"Scores {who}'s tool calling: each task is asked once per mode, greedily.")

    # ----- running -----
    @property
    def busy(self) -> bool:
        return self._task is not None

    def run(self) -> None:
        if self.busy:
            return
        if self.model_id is None:
            self.status.setText("Choose a model first.")
            return
        modes = self.modes()
        if not modes:
            self.status.setText("Choose at least one mode.")
            return
        try:
            suite = load_suite(self.suite_path)
        except (LLMError, OSError) as exc:
            self.status.setText(f"Cannot read the suite: {exc}")
            return
        self.outcomes, self.summaries = [], {}
        self.summary_table.setRowCount(0)
        self.task_table.setRowCount(0)
        self.details.clear()
        self.progress.setRange(0, len(suite.tasks) * len(modes))
        self.progress.setValue(0)
        self.status.setText(f"Starting {self.model_id}…")
        self._task = self._spawn(self._run(self.model_id, suite, modes), "eval-run")
        self._set_busy(self._task is not None)

    def stop(self, why: str = "stopped") -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            partial = self._summarize_unfinished_modes()
            done = f"{len(self.outcomes)} of {self.progress.maximum()} task runs"
            kept = (f"the summary of {', '.join(partial)} covers the tasks finished so far (partial)" if partial
                    else "the results so far are kept")
            self.status.setText(f"Eval {why} after {done}; {kept}.")
        self._set_busy(False)

    def _summarize_unfinished_modes(self) -> list[str]:
        """Add a partial summary row for each mode that has finished tasks but no summary yet (a stopped or
        failed run); returns those modes."""
        partial = []
        for mode in dict.fromkeys(o.mode for o in self.outcomes):
            if mode not in self.summaries:
                self._add_summary_row(summarize(mode, [o for o in self.outcomes if o.mode == mode]), partial=True)
                partial.append(mode)
        return partial

    async def _run(self, model_id: str, suite, modes: list[str]) -> None:
        mine = asyncio.current_task()
        try:
            async with aclosing(run_eval(self.ctx.runtime, model_id, suite, modes)) as events:
                async for event in events:
                    if self._task is not mine:
                        return
                    self._apply(event)
        except LLMError as exc:
            if self._task is mine:
                self._summarize_unfinished_modes()
                self.status.setText(f"Eval failed: {type(exc).__name__}: {str(exc).splitlines()[0]}")
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug must still leave the tab usable
            log.exception("eval failed")
            if self._task is mine:
                self._summarize_unfinished_modes()
                self.status.setText(f"Eval failed: internal error: {exc!r}")
        finally:
            if self._task is mine:
                self._task = None
                self._set_busy(False)

    def _apply(self, event: Any) -> None:
        if isinstance(event, TaskStarted):
            self.status.setText(f"Task run {len(self.outcomes) + 1} of {self.progress.maximum()}: "
                                f"{event.task_id} in {event.mode} mode")
        elif isinstance(event, TaskFinished):
            self.outcomes.append(event.outcome)
            self._add_task_row(event.outcome)
            self.progress.setValue(len(self.outcomes))
        elif isinstance(event, ModeFinished):
            self.summaries[event.summary.mode] = event.summary
            self._add_summary_row(event.summary)
        elif isinstance(event, EvalFinished):
            passed = sum(o.score.passed for o in self.outcomes)
            self.status.setText(f"Done: {passed} of {len(self.outcomes)} task runs passed on {event.report.model}.")

    def _add_summary_row(self, summary: ModeSummary, partial: bool = False) -> None:
        row = self.summary_table.rowCount()
        self.summary_table.insertRow(row)
        data = summary.to_dict()
        mode = f"{summary.mode} (partial)" if partial else summary.mode
        cells = [mode, str(summary.tasks)] + [shown_metric(name, data[name]) for name in METRICS]
        for column, text in enumerate(cells):
            item = QTableWidgetItem(text)
            if partial:
                item.setToolTip(f"Stopped early: over the {summary.tasks} {summary.mode} tasks finished so far")
            self.summary_table.setItem(row, column, item)

    def _add_task_row(self, outcome: TaskOutcome) -> None:
        row = self.task_table.rowCount()
        self.task_table.insertRow(row)
        what = outcome.error or "; ".join(outcome.score.problems) or (
            "no call, as expected" if not outcome.task.expects_call else "the expected call")
        cells = (outcome.mode, outcome.task.id, "pass" if outcome.score.passed else "FAIL", what,
                 f"{outcome.latency_ms:.0f} ms")
        for column, text in enumerate(cells):
            item = QTableWidgetItem(text)
            item.setToolTip(text)
            if column == 2:  # the verdict, in colours picked for the table's palette (light or dark)
                item.setForeground(tone("good" if outcome.score.passed else "bad", self.task_table.palette()))
                if not outcome.score.passed:
                    font = item.font()
                    font.setBold(True)
                    item.setFont(font)
            self.task_table.setItem(row, column, item)

    def _show_selected(self) -> None:
        rows = {index.row() for index in self.task_table.selectedIndexes()}
        if len(rows) == 1:
            outcome = self.outcomes[rows.pop()]
            self.details.setPlainText(json.dumps(outcome.to_dict(), indent=2, ensure_ascii=False))

    def _set_busy(self, busy: bool) -> None:
        self.run_button.setEnabled(not busy)
        self.stop_button.setEnabled(busy)
        self.suite_button.setEnabled(not busy)
        for box in self.mode_boxes.values():
            box.setEnabled(not busy)
        self.busy_changed.emit(busy)

    def _spawn(self, coro, name: str) -> asyncio.Task[Any] | None:
        return self.ctx.tasks.spawn_if_open(coro, name=name)
