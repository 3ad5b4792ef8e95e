"""A BFCL report card run from the Tool eval tab: what it runs on (categories, tasks per category, where the data
is, whether to compute again what the history has), getting that data off the event loop, and its events folded
into the words the tab shows.

The window's twin of ``llmctl eval tools --suite bfcl --categories ... --limit N --bfcl-dir DIR --rerun``, in the
same words (LLM/cli/report_cards.py).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtGui import QAction, QMouseEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMenu,
    QPushButton,
    QSpinBox,
    QWidget,
)

from LLM.core.evaluation import (
    BFCL_CATEGORIES,
    BFCL_REPO,
    BfclData,
    BfclDataError,
    BfclEvent,
    BfclModeDone,
    BfclModeStarted,
    BfclTaskDone,
    BfclTaskError,
    RunSummary,
    cached_bfcl_dir,
    fetch_bfcl,
    load_bfcl,
)
from LLM.core.models import DownloadError, DownloadProgress

from ..context import AppContext
from .report_cards import pct


@dataclass(frozen=True)
class BfclChoice:
    categories: tuple[str, ...] | None  # None: every category (BFCL's all when fetched; all a local folder has)
    limit: int | None  # the first N tasks of each category; None: all
    folder: Path | None  # a local copy of BFCL's data; None: fetched from the Hub once, then cached
    rerun: bool  # compute again the tasks the history already has for this model, engine and data


async def bfcl_data(choice: BfclChoice, on_progress: Callable[[DownloadProgress], None] | None = None,
                    cancel: threading.Event | None = None) -> BfclData:
    """The tasks ``choice`` asks for: its folder read, or the data fetched into the cache first (both in a
    thread: the files are megabytes). Raises BfclDataError (see :func:`data_problem`) or DownloadCancelled."""
    folder = choice.folder
    if folder is None:
        folder = await asyncio.to_thread(fetch_bfcl, choice.categories or BFCL_CATEGORIES, on_progress=on_progress,
                                         cancel=cancel)
    return await asyncio.to_thread(load_bfcl, folder, choice.categories, choice.limit)


def data_problem(exc: BfclDataError, choice: BfclChoice) -> str:
    """One line for the tab. Core's how-to after a failed fetch names the CLI's flag; the window's way is Browse…."""
    cause = exc.__cause__
    if choice.folder is None and isinstance(cause, DownloadError):
        reason = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
        return (f"BFCL's data is not here and could not be fetched ({reason}): choose a copy of its data folder "
                "with Browse…, or run once online to fetch it")
    return str(exc).strip().splitlines()[0]


class BfclTally:
    """``run_bfcl``'s events folded into what the tab shows: tasks done over every mode (for the bar), the status
    line, and the runs' summaries; the words are the CLI's."""

    def __init__(self, model_id: str) -> None:
        self.model_id = model_id
        self.done: dict[str, int] = {}  # mode -> its tasks done, those already in the history included
        self.computed = 0  # tasks answered by this run
        self.errors = 0
        self.run_ids: list[int] = []
        self.summaries: list[RunSummary] = []

    @property
    def tasks_done(self) -> int:
        return sum(self.done.values())

    def apply(self, event: BfclEvent) -> str | None:
        """The status line after ``event``, if it changes."""
        if isinstance(event, BfclModeStarted):
            self.done[event.mode] = event.skipped
            self.run_ids.append(event.run_id)
            kept = f", {event.skipped} already in the history" if event.skipped else ""
            return f"[{event.mode}] run {event.run_id}: {event.total} tasks{kept}"
        if isinstance(event, BfclTaskDone):
            self.done[event.mode] = event.done
            self.computed += 1
            verdict = "pass" if event.result.passed else f"fail ({event.result.error_type})"
            return f"[{event.mode} {event.done}/{event.total}] {event.result.task_id} {verdict}"
        if isinstance(event, BfclTaskError):
            self.errors += 1
            return (f"[{event.mode}] {event.task_id} error, not kept (the next run retries it): "
                    f"{event.error.splitlines()[0]}")
        if isinstance(event, BfclModeDone):
            self.summaries.append(event.summary)
        return None

    def finished(self) -> str:
        scores = ", ".join(f"{s.key.mode} {pct(s.overall)}" for s in self.summaries)
        runs = ", ".join(str(s.id) for s in self.summaries)
        text = f"Done: {self.model_id} scored {scores} overall (run {runs}; the report cards are below)."
        if self.errors:
            text += f" {self.errors} tasks failed with errors and were not kept: Run again to retry them."
        elif not self.computed:
            text += " Every task was in the history already: tick Run again to compute them anew."
        return text

    def stopped(self, why: str, total: int) -> str:
        if not total:
            return f"BFCL run {why} before any task ran."
        return (f"BFCL run {why} after {self.tasks_done} of {total} tasks; those finished are kept in the history, "
                "and Run goes on from there.")


class _StayOpenMenu(QMenu):
    """A menu of check boxes that stays open while they are ticked (Esc or a click outside closes it)."""

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        action = self.activeAction()
        if action is not None and action.isCheckable() and action.isEnabled():
            action.trigger()
            return
        super().mouseReleaseEvent(event)


class BfclOptions(QWidget):
    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("bfclOptions")
        self.ctx = ctx
        self.category_actions: dict[str, QAction] = {}
        menu = _StayOpenMenu(self)
        every = menu.addAction("All categories")
        every.triggered.connect(lambda: self.set_categories(None))
        menu.addSeparator()
        for name in BFCL_CATEGORIES:
            action = menu.addAction(name)
            action.setCheckable(True)
            action.setChecked(True)
            action.toggled.connect(lambda _on: self._show_categories())
            self.category_actions[name] = action
        self.categories_button = QPushButton(objectName="bfclCategories")
        self.categories_button.setMenu(menu)
        self.categories_button.setToolTip("BFCL's single-turn categories to run; all: every one there is (a local "
                                          "folder: those it has)")
        self.limit = QSpinBox(objectName="bfclLimit")
        self.limit.setRange(0, 100_000)
        self.limit.setSpecialValueText("all")
        self.limit.setToolTip("The first N tasks of each category, in file order (0: all of them)")
        self.folder = QLineEdit(objectName="bfclFolder")
        self.folder.setPlaceholderText("fetched from the Hugging Face Hub once, then cached")
        self.folder.setClearButtonEnabled(True)
        self.folder.setToolTip(f"A local copy of BFCL's data (its bfcl_eval/data folder, from "
                               f"github.com/ShishirPatil/gorilla). Empty: the dataset {BFCL_REPO} is fetched once "
                               f"and kept in {cached_bfcl_dir()}")
        self.browse = QPushButton("Browse…", objectName="bfclBrowse")
        self.browse.setToolTip("Choose a folder holding BFCL_v<N>_<category>.json files and possible_answer/")
        self.browse.clicked.connect(lambda: self.ctx.tasks.spawn_if_open(self.choose_folder(), name="bfcl-folder"))
        self.rerun = QCheckBox("Run again", objectName="bfclRerun")
        self.rerun.setToolTip("Compute again the tasks the history already has for this model, mode, engine and data "
                              "(otherwise they are kept and only the missing ones run)")

        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.categories_button)
        limit_label = QLabel("Tasks per category:")
        limit_label.setBuddy(self.limit)
        row.addWidget(limit_label)
        row.addWidget(self.limit)
        data_label = QLabel("Data:")
        data_label.setBuddy(self.folder)
        row.addSpacing(8)
        row.addWidget(data_label)
        row.addWidget(self.folder, 1)
        row.addWidget(self.browse)
        row.addWidget(self.rerun)
        self._show_categories()

    def set_categories(self, names: tuple[str, ...] | None) -> None:
        """Tick these categories (None: all)."""
        for name, action in self.category_actions.items():
            action.blockSignals(True)
            action.setChecked(names is None or name in names)
            action.blockSignals(False)
        self._show_categories()

    def checked_categories(self) -> tuple[str, ...]:
        return tuple(name for name, action in self.category_actions.items() if action.isChecked())

    def _show_categories(self) -> None:
        checked = self.checked_categories()
        if len(checked) == len(BFCL_CATEGORIES):
            text = "Categories: all"
        elif len(checked) == 1:
            text = f"Categories: {checked[0]}"
        else:
            text = f"Categories: {len(checked)} of {len(BFCL_CATEGORIES)}"
        self.categories_button.setText(text)

    async def choose_folder(self) -> None:
        path = await self.ctx.interaction.choose_folder(self, "Choose BFCL's data folder", kind="bfcl")
        if path is not None:
            self.folder.setText(str(path))

    def choice(self) -> BfclChoice | str:
        """What to run, or why it cannot run (one line)."""
        checked = self.checked_categories()
        if not checked:
            return "Choose at least one BFCL category."
        text = self.folder.text().strip()
        return BfclChoice(categories=None if len(checked) == len(BFCL_CATEGORIES) else checked,
                          limit=self.limit.value() or None,
                          folder=Path(text).expanduser() if text else None,
                          rerun=self.rerun.isChecked())
