"""The tool eval tab: run a suite of tool-use tasks on the selected model, per mode, and read the results.

Two suites, as ``llmctl eval tools`` runs them. The workbench's own (JSONL): a table per mode (the five
metrics), one row per task run, and the selected task's whole exchange (the request's steps, the calls, the
problems found). BFCL's: a report card per mode kept in the history (widgets/report_cards.py shows them);
``report_cards_changed`` tells the window when a run added to them, so it can refresh the score badges.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from contextlib import aclosing
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from LLM.core import LLMError
from LLM.core.evaluation import (
    EVAL_MODES,
    BfclDataError,
    BfclModeStarted,
    EvalFinished,
    ModeFinished,
    ModeSummary,
    TaskFinished,
    TaskOutcome,
    TaskStarted,
    default_suite_path,
    load_suite,
    run_bfcl,
    run_eval,
    summarize,
)
from LLM.core.models import DownloadProgress

from ..context import AppContext
from ..widgets.bfcl_run import BfclChoice, BfclOptions, BfclTally, bfcl_data, data_problem
from ..widgets.catalog_row import LatestProgress
from ..widgets.report_cards import ReportCardsView
from ..widgets.suite_results import SuiteResults

log = logging.getLogger(__name__)


class EvalPage(QWidget):
    busy_changed = Signal(bool)
    report_cards_changed = Signal()  # a BFCL run kept results in the history (the best scores may have changed)
    page_name = "evalPage"

    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName(self.page_name)
        self.ctx = ctx
        self.model_id: str | None = None
        self.suite_path: Path = default_suite_path()
        self._task: asyncio.Task[Any] | None = None
        self._running = "suite"  # which suite the run in flight (or the last one) is of
        self.summaries: dict[str, ModeSummary] = {}
        self.tally: BfclTally | None = None  # the BFCL run in flight, or the last one

        self.suite_choice = QComboBox(objectName="evalSuiteChoice")
        self.suite_choice.addItem("Tool eval suite", "suite")
        self.suite_choice.addItem("BFCL report card", "bfcl")
        self.suite_choice.setToolTip("The workbench's own tasks (or a JSONL suite of yours), or the Berkeley Function "
                                     "Calling Leaderboard's, scored as BFCL does and kept in the history as report "
                                     "cards")
        self.suite_choice.currentIndexChanged.connect(lambda _index: self._show_suite_kind())
        self.mode_boxes = {}
        controls = QHBoxLayout()
        suite_caption = QLabel("Suite:")
        suite_caption.setBuddy(self.suite_choice)
        controls.addWidget(suite_caption)
        controls.addWidget(self.suite_choice)
        controls.addSpacing(12)
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
        controls.addStretch(1)
        controls.addWidget(self.run_button)
        controls.addWidget(self.stop_button)
        suite_row = QWidget()
        suite_layout = QHBoxLayout(suite_row)
        suite_layout.setContentsMargins(0, 0, 0, 0)
        suite_layout.addWidget(self.suite_label, 1)
        suite_layout.addWidget(self.suite_button)
        self.bfcl_options = BfclOptions(ctx)
        self.options = QStackedWidget(objectName="evalOptions")
        self.options.addWidget(suite_row)
        self.options.addWidget(self.bfcl_options)

        # The bar and the status line count the same thing: task runs (each task once per mode) over the whole
        # eval; the bar the finished ones, the status line the one running now. (BFCL: the tasks of every mode,
        # those the history had already included.)
        self.progress = QProgressBar(objectName="evalProgress")
        self.progress.setFormat("%v of %m task runs done")
        self.status = QLabel(objectName="evalStatus")
        self.status.setWordWrap(True)
        self.suite_results = SuiteResults()
        # The tables, named as before the BFCL report cards joined the tab.
        self.summary_table = self.suite_results.summary_table
        self.task_table = self.suite_results.task_table
        self.details = self.suite_results.details
        self.report_cards = ReportCardsView(ctx.evals, ctx.evals_problem)
        self.results = QStackedWidget(objectName="evalResults")
        self.results.addWidget(self.suite_results)
        self.results.addWidget(self.report_cards)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(16, 12, 16, 12)
        layout.addLayout(controls)
        layout.addWidget(self.options)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addWidget(self.results, 1)
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

    def suite_kind(self) -> str:
        """``suite`` (a JSONL suite) or ``bfcl`` (a BFCL report card)."""
        return str(self.suite_choice.currentData())

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

    def _show_suite_kind(self) -> None:
        bfcl = self.suite_kind() == "bfcl"
        self.options.setCurrentIndex(1 if bfcl else 0)
        self.results.setCurrentIndex(1 if bfcl else 0)  # the cards read the history as they come into view
        self._show_idle_status()

    def _show_idle_status(self) -> None:
        if self.busy or self.outcomes or self.tally is not None:
            return
        who = self.model_id or "no model chosen"
        if self.suite_kind() == "bfcl":
            self.status.setText(f"Scores {who}'s tool calling on BFCL's tasks, each once per mode, greedily; the "
                                "results are kept in the history as report cards, and a run goes on where it stopped.")
        else:
            self.status.setText(f"Scores {who}'s tool calling: each task is asked once per mode, greedily.")

    # ----- running -----
    @property
    def outcomes(self) -> list[TaskOutcome]:
        """The JSONL suite's task runs finished, in order."""
        return self.suite_results.outcomes

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
        if self.suite_kind() == "bfcl":
            self._start_bfcl(self.model_id, modes)
            return
        try:
            suite = load_suite(self.suite_path)
        except (LLMError, OSError) as exc:
            self.status.setText(f"Cannot read the suite: {exc}")
            return
        self._running = "suite"
        self.summaries = {}
        self.suite_results.clear()
        self.progress.setFormat("%v of %m task runs done")
        self.progress.setRange(0, len(suite.tasks) * len(modes))
        self.progress.setValue(0)
        self.status.setText(f"Starting {self.model_id}…")
        self._task = self._spawn(self._run(self.model_id, suite, modes), "eval-run")
        self._set_busy(self._task is not None)

    def stop(self, why: str = "stopped") -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            if self._running == "bfcl" and self.tally is not None:
                self.status.setText(self.tally.stopped(why, self.progress.maximum()))
            else:
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
                summary = summarize(mode, [o for o in self.outcomes if o.mode == mode])
                self.suite_results.add_summary(summary, partial=True)
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
            self.suite_results.add_outcome(event.outcome)
            self.progress.setValue(len(self.outcomes))
        elif isinstance(event, ModeFinished):
            self.summaries[event.summary.mode] = event.summary
            self.suite_results.add_summary(event.summary)
        elif isinstance(event, EvalFinished):
            passed = sum(o.score.passed for o in self.outcomes)
            self.status.setText(f"Done: {passed} of {len(self.outcomes)} task runs passed on {event.report.model}.")

    # ----- BFCL report cards -----
    def _start_bfcl(self, model_id: str, modes: list[str]) -> None:
        choice = self.bfcl_options.choice()
        if isinstance(choice, str):
            self.status.setText(choice)
            return
        if self.ctx.evals is None:
            self.status.setText(self.ctx.evals_problem or "Report cards cannot be kept: the history cannot be opened.")
            return
        self._running, self.tally = "bfcl", BfclTally(model_id)
        self.progress.setFormat("%v of %m tasks done")
        self.progress.setRange(0, 0)  # busy until the data is read and its tasks counted
        self.status.setText("Reading BFCL's data…" if choice.folder else "Getting BFCL's data…")
        self._task = self._spawn(self._run_bfcl(model_id, choice, modes, self.tally), "eval-bfcl")
        self._set_busy(self._task is not None)

    async def _run_bfcl(self, model_id: str, choice: BfclChoice, modes: list[str], tally: BfclTally) -> None:
        mine = asyncio.current_task()
        cancel = threading.Event()  # stops a fetch's worker thread at its next chunk
        try:
            data = await bfcl_data(choice, LatestProgress(asyncio.get_running_loop(), self._show_fetch), cancel)
            if self._task is not mine:
                return
            self.progress.setRange(0, len(data.tasks) * len(modes))
            self.status.setText(f"Starting {model_id}: {len(data.tasks)} tasks in {len(data.categories())} "
                                f"categories, modes {', '.join(modes)}…")
            async with aclosing(run_bfcl(self.ctx.runtime, model_id, data, self.ctx.evals, modes,
                                         rerun=choice.rerun)) as events:
                async for event in events:
                    if self._task is not mine:
                        return
                    line = tally.apply(event)
                    self.status.setText(line or self.status.text())
                    self.progress.setValue(tally.tasks_done)
                    if isinstance(event, BfclModeStarted):
                        self.report_cards.refresh(select=[event.run_id])  # the run shows as it fills
            self.status.setText(tally.finished())
        except BfclDataError as exc:
            if self._task is mine:
                self.status.setText(data_problem(exc, choice))
        except LLMError as exc:
            if self._task is mine:
                self.status.setText(f"BFCL run failed: {str(exc).strip().splitlines()[0]}")
        except asyncio.CancelledError:
            cancel.set()
            raise
        except Exception as exc:  # a bug must still leave the tab usable
            log.exception("BFCL run failed")
            if self._task is mine:
                self.status.setText(f"BFCL run failed: internal error: {exc!r}")
        finally:
            latest = self._task in (mine, None)  # no newer run has begun since (a Stop leaves None)
            if latest and self.progress.maximum() == 0:  # no task was counted: the busy bar must not go on moving
                self.progress.setRange(0, 1)
                self.progress.setFormat("")
            if tally.run_ids and not self.ctx.tasks.closed:  # stopped too: each task finished is in the history
                self.report_cards.refresh(select=tally.run_ids if latest else None)
                self.report_cards_changed.emit()
            if self._task is mine:
                self._task = None
                self._set_busy(False)

    def _show_fetch(self, progress: DownloadProgress) -> None:
        if self.busy and self._running == "bfcl":
            self.status.setText(f"Fetching BFCL's data, {progress.filename}: {progress.describe()}")

    def _set_busy(self, busy: bool) -> None:
        self.run_button.setEnabled(not busy)
        self.stop_button.setEnabled(busy)
        self.suite_button.setEnabled(not busy)
        self.suite_choice.setEnabled(not busy)
        self.bfcl_options.setEnabled(not busy)
        for box in self.mode_boxes.values():
            box.setEnabled(not busy)
        self.busy_changed.emit(busy)

    def _spawn(self, coro, name: str) -> asyncio.Task[Any] | None:
        return self.ctx.tasks.spawn_if_open(coro, name=name)
