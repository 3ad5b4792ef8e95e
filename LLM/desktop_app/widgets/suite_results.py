"""A JSONL suite's results on the Tool eval tab: a row per mode (the five metrics), a row per task run (PASS and FAIL
coloured for the palette), and the selected task's whole exchange (the request's steps, the calls, the problems)."""

from __future__ import annotations

import json
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QPlainTextEdit,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from LLM.core.evaluation import ModeSummary, TaskOutcome

from .tones import tone
from .transcript import mono_font

METRICS = ("valid_call_rate", "tool_accuracy", "argument_accuracy", "abstention_accuracy", "median_latency_ms")
HEADERS = ("mode", "tasks", "valid calls", "right tool", "right arguments", "right abstention", "median latency")


def shown_metric(name: str, value: Any) -> str:
    if value is None:
        return "—"
    return f"{value:.0f} ms" if name == "median_latency_ms" else f"{value:.0%}"


class SuiteResults(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.outcomes: list[TaskOutcome] = []  # in the order they finished: the task table's rows
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
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.summary_table)
        layout.addWidget(split, 1)

    def clear(self) -> None:
        self.outcomes = []
        self.summary_table.setRowCount(0)
        self.task_table.setRowCount(0)
        self.details.clear()

    def add_summary(self, summary: ModeSummary, partial: bool = False) -> None:
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

    def add_outcome(self, outcome: TaskOutcome) -> None:
        self.outcomes.append(outcome)
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
