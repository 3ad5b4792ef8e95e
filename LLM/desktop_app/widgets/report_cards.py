"""Report cards on the Tool eval tab: the BFCL runs kept in the history, the selected runs side by side, the
failed tasks of one with its request, raw output and the checker's reason; and the score badges other views show.

The same words and figures as ``llmctl eval list / show / compare``: a percentage with one decimal, a category's
cell as ``100.0% (2/2)``, the overall figure (the unweighted mean over the categories) last.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from PySide6.QtCore import QItemSelectionModel, Qt
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from LLM.core import BackendsConfig, HistoryError
from LLM.core.evaluation import EvalStore, RunKey, RunSummary, TaskResult

from .tones import tone
from .transcript import mono_font

log = logging.getLogger(__name__)
RUN_HEADERS = ("run", "date", "model", "mode", "tasks", "overall", "engine", "data")
NO_CARDS = "No report cards yet: choose BFCL above, then Run. Each run is kept in the history."


def pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def model_label(key: RunKey) -> str:
    """The model, and the adapter it ran with by its folder's name (the key holds the whole path)."""
    return key.model_id + (f" + {Path(key.adapter.removeprefix('pkg:')).name}" if key.adapter else "")


def run_heading(run: RunSummary) -> str:
    """A run's column in the card: its number and model, its mode under them."""
    return f"#{run.id} {model_label(run.key)}\n{run.key.mode}"


def score_badge(run: RunSummary) -> str:
    """What the model dropdown and the Models page show for a model's best report card: ``BFCL 42%``."""
    return f"BFCL {(run.overall or 0.0):.0%}"


def score_tip(run: RunSummary) -> str:
    return (f"BFCL report card: {pct(run.overall)} overall, the mean over {len(run.categories)} categories "
            f"({run.tasks} tasks); run {run.id}, {run.key.mode} mode, {run.key.engine}, data {run.key.data_version} "
            "(the best run kept; the Tool eval tab has them all)")


def best_runs(store: EvalStore | None, config: BackendsConfig) -> dict[str, RunSummary]:
    """Each configured model's best report card, by model id: the run of the model as configured now (its adapter,
    or none for a base model). A history that cannot be read gives none (the Tool eval tab says why)."""
    if store is None:
        return {}
    try:
        best = store.best_scores()
    except HistoryError:
        log.warning("report cards cannot be read", exc_info=True)
        return {}
    found = {}
    for model_id, entry in config.models.items():
        run = best.get((model_id, entry.adapter_dir or ""))
        if run is not None:
            found[model_id] = run
    return found


def card_rows(runs: list[RunSummary]) -> list[tuple[str, list[str]]]:
    """A row per category (in the order the runs have them), the overall figure last; a cell per run (pure)."""
    categories = list(dict.fromkeys(name for run in runs for name in run.categories))
    rows = []
    for name in categories:
        cells = []
        for run in runs:
            score = run.categories.get(name)
            cells.append("—" if score is None else f"{pct(score.accuracy)} ({score.passed}/{score.tasks})")
        rows.append((name, cells))
    rows.append(("overall", [pct(run.overall) for run in runs]))
    return rows


def modes_line(run: RunSummary, runs: list[RunSummary]) -> str:
    """Every mode's figure for the same model, adapter, engine and data as ``run``: ``native 100.0% · ...``."""
    same = [r for r in runs if (r.key.model_id, r.key.adapter, r.key.engine, r.key.data_version) ==
            (run.key.model_id, run.key.adapter, run.key.engine, run.key.data_version)]
    parts = [f"{r.key.mode} {pct(r.overall)} (run {r.id}, {r.tasks} tasks)" for r in sorted(same, key=lambda r: r.id)]
    return f"Per mode, {model_label(run.key)} on the same engine and data: " + " · ".join(parts)


def failure_text(result: TaskResult) -> str:
    """A failed task's exchange, for reading: the calls as scored, the model's raw output, the request as sent."""
    calls = json.dumps(result.calls, indent=2, ensure_ascii=False) if result.calls else "(none)"
    latency = f"{result.latency_ms:.0f} ms" if result.latency_ms is not None else "—"
    return (f"calls, as scored:\n{calls}\n\nraw output:\n{result.raw_output or '(empty)'}\n\n"
            f"request ({latency}):\n{json.dumps(result.request, indent=2, ensure_ascii=False)}\n")


def _table(name: str, headers: tuple[str, ...] | list[str]) -> QTableWidget:
    table = QTableWidget(0, len(headers), objectName=name)
    table.setHorizontalHeaderLabels(list(headers))
    table.verticalHeader().hide()
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setWordWrap(False)
    table.verticalHeader().setDefaultSectionSize(table.fontMetrics().height() + 6)  # a compact line per row
    return table


class ReportCardsView(QWidget):
    """The runs of ``store`` (None: report cards cannot be kept, ``problem`` says why). Select one run for its card
    and failed tasks, more for them side by side; the failures shown are the current row's run."""

    def __init__(self, store: EvalStore | None, problem: str | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("reportCards")
        self.store = store
        self.problem = problem
        self.runs: list[RunSummary] = []
        self.failed: list[TaskResult] = []

        self.note = QLabel(objectName="reportNote")
        self.note.setWordWrap(True)
        self.runs_table = _table("reportRuns", RUN_HEADERS)
        self.runs_table.setToolTip("Report cards kept in the history, newest first. Select two (Ctrl+click) to "
                                   "compare them.")
        self.runs_table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        header = self.runs_table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.runs_table.itemSelectionChanged.connect(self._show_selection)

        self.card_title = QLabel("Select a run to see its card; two to compare them.", objectName="reportCardTitle")
        self.card_title.setWordWrap(True)
        self.modes_label = QLabel(objectName="reportModes")
        self.modes_label.setWordWrap(True)
        self.card_table = _table("reportCard", ["category"])
        self.card_table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.card_table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)

        self.failures_title = QLabel("Failed tasks", objectName="reportFailuresTitle")
        self.failures = QListWidget(objectName="reportFailures")
        self.failures.currentRowChanged.connect(self._show_failure)
        self.failure_reason = QLabel(objectName="reportFailureReason")
        self.failure_reason.setWordWrap(True)
        self.failure_reason.setTextFormat(Qt.TextFormat.PlainText)
        self.failure_reason.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.failure_details = QPlainTextEdit(objectName="reportFailureDetails")
        self.failure_details.setReadOnly(True)
        self.failure_details.setFont(mono_font())
        self.failure_details.setPlaceholderText("Select a failed task: the checker's reason, the calls as scored, the "
                                                "raw output and the request as sent.")

        failures = QWidget()
        failures_layout = QVBoxLayout(failures)
        failures_layout.setContentsMargins(0, 0, 0, 0)
        failures_layout.addWidget(self.failures_title)
        failures_layout.addWidget(self.failures, 1)
        detail = QWidget()
        detail_layout = QVBoxLayout(detail)
        detail_layout.setContentsMargins(0, 0, 0, 0)
        detail_layout.addWidget(self.failure_reason)
        detail_layout.addWidget(self.failure_details, 1)
        failed = QSplitter(Qt.Orientation.Vertical, objectName="reportFailed")
        failed.addWidget(failures)
        failed.addWidget(detail)
        failed.setSizes([120, 280])
        failed.setChildrenCollapsible(False)
        below = self.below = QSplitter(Qt.Orientation.Horizontal, objectName="reportBelow")
        below.addWidget(self.card_table)
        below.addWidget(failed)
        below.setSizes([330, 520])
        below.setChildrenCollapsible(False)
        self._card_width = 0  # the card's pane is fitted to its columns when the room they need changes
        # Under the runs: what is selected (the title and each mode's figure span the width), then its card beside
        # its failed tasks.
        self.selection_box = QWidget(objectName="reportSelection")
        selection_layout = QVBoxLayout(self.selection_box)
        selection_layout.setContentsMargins(0, 4, 0, 0)
        selection_layout.addWidget(self.card_title)
        selection_layout.addWidget(self.modes_label)
        selection_layout.addWidget(below, 1)
        split = QSplitter(Qt.Orientation.Vertical, objectName="reportSplit")
        split.addWidget(self.runs_table)
        split.addWidget(self.selection_box)
        split.setSizes([120, 400])
        split.setChildrenCollapsible(False)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.note)
        layout.addWidget(split, 1)
        self._apply_tone()

    def showEvent(self, event: QShowEvent) -> None:
        """Read the runs whenever the cards come into view: ``llmctl eval tools`` may have added one meanwhile."""
        super().showEvent(event)
        if not event.spontaneous():
            self.refresh()

    # ----- contents -----
    def refresh(self, select: list[int] | None = None) -> None:
        """Read the runs again; select ``select`` (run ids, the first one current: its failed tasks show), else keep
        the selection, else the newest run."""
        current = self.current_run()
        keep = select or [*([current.id] if current else []), *(run.id for run in self.selected_runs())]
        runs, note = [], NO_CARDS
        if self.store is None:
            note = self.problem or "Report cards are not kept: the history cannot be opened."
        else:
            try:
                runs = self.store.runs()
            except HistoryError as exc:
                note = f"Report cards cannot be read: {str(exc).splitlines()[0]}"
        self.runs = runs
        self.note.setText("" if runs else note)
        self.note.setVisible(not runs)
        self.selection_box.setVisible(bool(runs))
        table = self.runs_table
        table.blockSignals(True)
        try:
            table.clearSelection()
            table.setRowCount(len(runs))
            for row, run in enumerate(runs):
                cells = (str(run.id), time.strftime("%Y-%m-%d %H:%M", time.localtime(run.updated)),
                         model_label(run.key), run.key.mode, str(run.tasks), pct(run.overall), run.key.engine,
                         run.key.data_version)
                for column, text in enumerate(cells):
                    item = QTableWidgetItem(text)
                    if column in (0, 4, 5):
                        item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                    item.setToolTip(run.key.adapter if column == 2 and run.key.adapter else text)
                    table.setItem(row, column, item)
            rows = {run.id: row for row, run in enumerate(runs)}
            wanted = [rows[run_id] for run_id in dict.fromkeys(keep) if run_id in rows] or ([0] if runs else [])
            selection = table.selectionModel()
            for row in wanted:
                selection.select(table.model().index(row, 0),
                                 QItemSelectionModel.SelectionFlag.Select | QItemSelectionModel.SelectionFlag.Rows)
            if wanted:
                selection.setCurrentIndex(table.model().index(wanted[0], 0), QItemSelectionModel.SelectionFlag.NoUpdate)
        finally:
            table.blockSignals(False)
        self._show_selection()

    def selected_runs(self) -> list[RunSummary]:
        """The runs selected, oldest first (the order of the comparison's columns)."""
        rows = {index.row() for index in self.runs_table.selectionModel().selectedRows()}
        return sorted((self.runs[row] for row in rows if row < len(self.runs)), key=lambda run: run.id)

    def current_run(self) -> RunSummary | None:
        """The run whose failed tasks show: the current row when it is selected, else the newest selected."""
        selected = self.selected_runs()
        row = self.runs_table.currentRow()
        if 0 <= row < len(self.runs) and self.runs[row] in selected:
            return self.runs[row]
        return selected[-1] if selected else None

    def _show_selection(self) -> None:
        runs = self.selected_runs()
        rows = card_rows(runs) if runs else []
        self.card_table.clear()
        self.card_table.setColumnCount(1 + len(runs))
        self.card_table.setHorizontalHeaderLabels(["category", *(run_heading(run) for run in runs)])
        self.card_table.setRowCount(len(rows))
        for row, (name, cells) in enumerate(rows):
            last = name == "overall"
            head = QTableWidgetItem(name)
            self._bold(head, last)
            self.card_table.setItem(row, 0, head)
            for column, text in enumerate(cells, start=1):
                item = QTableWidgetItem(text)
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self._bold(item, last)
                self.card_table.setItem(row, column, item)
        self._fit_card()
        if not runs:
            self.card_title.setText("Select a run to see its card; two to compare them." if self.runs else "")
        elif len(runs) == 1:
            run = runs[0]
            self.card_title.setText(f"Run {run.id}: {model_label(run.key)}, {run.key.mode} mode, {run.tasks} tasks, "
                                    f"{pct(run.overall)} overall (the mean over its categories)")
        else:
            self.card_title.setText(f"Runs {', '.join(str(run.id) for run in runs)} side by side")
        current = self.current_run()
        self.modes_label.setText(modes_line(current, self.runs) if current is not None else "")
        self.modes_label.setVisible(current is not None)
        self._show_failures(current)

    def _fit_card(self) -> None:
        """Room for every column of the card (up to 60% of the width) when the room they need changed (a run added to
        or taken from the side by side, figures filled in); otherwise the width the user dragged it to stays."""
        table = self.card_table
        header = table.horizontalHeader()
        needed = sum(max(table.sizeHintForColumn(c), header.sectionSizeHint(c)) for c in range(table.columnCount()))
        needed += 2 * table.frameWidth() + table.verticalScrollBar().sizeHint().width() + 4
        total = sum(self.below.sizes())
        if needed == self._card_width or total <= 0:
            return
        self._card_width = needed
        first = min(needed, int(total * 0.6))
        self.below.setSizes([first, total - first])

    def _show_failures(self, run: RunSummary | None) -> None:
        self.failures.blockSignals(True)
        self.failures.clear()
        self.failed = []
        title = "Failed tasks"
        if run is not None and self.store is not None:
            try:
                order = {name: place for place, name in enumerate(run.categories)}  # BFCL's order, as the card
                self.failed = sorted(self.store.results(run.id, failed_only=True),
                                     key=lambda result: order.get(result.category, len(order)))
                title = (f"Failed tasks of run {run.id}: {len(self.failed)} of {run.tasks}" if self.failed
                         else f"Run {run.id}: no failed task")
            except HistoryError as exc:
                title = f"Failed tasks cannot be read: {str(exc).splitlines()[0]}"
        self.failures_title.setText(title)
        for result in self.failed:
            item = QListWidgetItem(f"{result.task_id}   {result.error_type}")
            item.setToolTip(f"{result.error_type}: {result.reason}")
            self.failures.addItem(item)
        self.failures.blockSignals(False)
        self._show_failure(-1)
        if self.failed:
            self.failures.setCurrentRow(0)

    def _show_failure(self, row: int) -> None:
        if 0 <= row < len(self.failed):
            result = self.failed[row]
            self.failure_reason.setText(f"{result.task_id} ({result.category}): {result.error_type}: {result.reason}")
            self.failure_details.setPlainText(failure_text(result))
        else:
            self.failure_reason.setText("")
            self.failure_details.clear()
        self.failure_reason.setVisible(bool(self.failure_reason.text()))

    @staticmethod
    def _bold(item: QTableWidgetItem, bold: bool) -> None:
        if bold:
            font = item.font()
            font.setBold(True)
            item.setFont(font)

    def _apply_tone(self) -> None:
        self.failure_reason.setStyleSheet(f"color: {tone('bad', self.palette(), self.backgroundRole()).name()};")
