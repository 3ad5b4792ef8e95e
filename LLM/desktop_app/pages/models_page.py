"""The Models page: this machine, the curated catalog ranked for a task (download with progress and cancel, then
add), and your models: the configured ones with what they can do and whether they fit, and downloaded files no
entry uses yet. Nothing here starts a model server; every judgement is read from files without loading them.

The window wires two signals: ``config_written(path)`` after an entry was added or removed (reload from that
file), ``use_model(id)`` (select that model); and calls ``refresh_config()`` after each reload,
``set_scores(best runs)`` with each model's best BFCL report card (its score shows beside the model, and for
tools your models are ranked by it) and ``stop(why)`` when closing.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QCloseEvent, QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSplitter,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from LLM.core import LLMError, ModelEntry, get_model_recommendations
from LLM.core.evaluation import RunSummary
from LLM.core.models import (
    CONFIDENT,
    TASKS,
    Catalog,
    DownloadCancelled,
    DownloadError,
    Machine,
    ModelReport,
    Recommendation,
    default_models_dir,
    download_file,
    missing_cpu_features,
    read_machine,
    recommend,
    remove_entry,
    user_config_file,
    writable_config_path,
)

from ..context import AppContext
from ..widgets.add_model_dialog import AddModelDialog, first_sentence
from ..widgets.catalog_row import CatalogRow, LatestProgress
from ..widgets.elided_label import ElidedLabel
from ..widgets.report_cards import score_badge, score_tip
from ..widgets.tones import tone

log = logging.getLogger(__name__)

DEFAULT_TASK = "tools"
ROLE_KIND = Qt.ItemDataRole.UserRole  # "model" or "file"
ROLE_VALUE = Qt.ItemDataRole.UserRole + 1  # the model id or the file's path
SCORE_COLUMN = 3  # a configured model's best BFCL report card
ADD_COLUMN = 4  # an unused file's Add… button

ChoosePath = Callable[[QWidget], Awaitable[Path | None]]

PAGE_STYLE = """
QFrame#catalogRow { border: none; border-bottom: 1px solid palette(midlight); }
#catalogName { font-weight: 600; }
#catalogFacts, #catalogReason, #catalogProgressText, #modelsTarget { color: palette(placeholder-text); }
QLabel#badge { border: 1px solid palette(mid); border-radius: 7px; padding: 0px 6px; }
QLabel#badge[tone="good"] { color: %(good)s; border-color: %(good)s; }
QLabel#badge[tone="bad"] { color: %(bad)s; border-color: %(bad)s; }
QLabel#badge[tone="warn"] { color: %(warn)s; border-color: %(warn)s; }
#catalogError { color: %(bad)s; }
#catalogNote { color: %(warn)s; }
#modelsCpuWarning { color: %(warn)s; font-weight: 600; }
#modelsSectionTitle { font-weight: 600; }
#modelsMachine { font-weight: 600; }
"""


def gib1(size: int | None) -> str:
    return "unknown" if size is None else f"{size / 2**30:.1f} GiB"


def machine_line(machine: Machine) -> str:
    """``This machine: 23.5 GiB free of 31.3 GiB · 2 cores · GPU: none``."""
    if machine.available_memory is None:
        free = "free memory unknown"
    else:
        free = f"{gib1(machine.available_memory)} free" + (
            f" of {gib1(machine.total_memory)}" if machine.total_memory else "")
    gpu = f"GPU: {gib1(machine.gpu_memory)} free" if machine.gpu_memory else "GPU: none"
    cores = f"{machine.cores} core" + ("s" if machine.cores != 1 else "") if machine.cores else "cores unknown"
    return f"This machine: {free} · {cores} · {gpu}"


def cpu_warning(machine: Machine) -> str:
    missing = missing_cpu_features(machine.cpu_flags)
    if not missing:
        return ""
    return (f"This CPU lacks {', '.join(f.upper() for f in missing)}: the bundled llama.cpp engine will not run here; "
            "build llama-server for this CPU (llama_server_bin) or use a model on another server.")


class ModelsPage(QWidget):
    """See the module docstring. Seams for tests: ``catalog`` (ranked with ``machine``, without the user's
    choices; None: the shipped catalog with them), ``machine`` (None: read in the background), ``models_dir``
    (None: the config's, else the default), ``choose_path`` (Add model…; default: the interaction's file
    dialog)."""

    config_written = Signal(str)  # the yaml file an entry was added to or removed from
    use_model = Signal(str)
    page_name = "modelsPage"

    def __init__(self, ctx: AppContext, parent: QWidget | None = None, *, catalog: Catalog | None = None,
                 machine: Machine | None = None, models_dir: Path | None = None,
                 choose_path: ChoosePath | None = None) -> None:
        super().__init__(parent)
        self.setObjectName(self.page_name)
        self.ctx = ctx
        self.machine = machine
        self._catalog = catalog
        self._models_dir = models_dir
        self._choose_path = choose_path or self._choose_with_dialog
        self.recommendations: list[Recommendation] = []
        self.rows: dict[str, CatalogRow] = {}  # kept across tasks: a download goes on while another task shows
        self.reports: dict[str, ModelReport] = {}  # configured model id -> its report, as they arrive
        self.scores: dict[str, RunSummary] = {}  # configured model id -> its best BFCL report card
        self.unused_files: list[Path] = []
        self.add_dialog: AddModelDialog | None = None
        self._rank_seq = 0
        self._models_seq = 0
        self._busy_adding = False
        self.configured_group: QTreeWidgetItem | None = None
        self.files_group: QTreeWidgetItem | None = None

        self.machine_label = QLabel("This machine: reading…", objectName="modelsMachine")
        self.cpu_warning = QLabel(objectName="modelsCpuWarning")
        self.cpu_warning.setWordWrap(True)
        self.cpu_warning.hide()
        self.task_combo = QComboBox(objectName="modelsTask")
        self.task_combo.addItems(TASKS)
        self.task_combo.setCurrentText(DEFAULT_TASK)
        self.task_combo.setToolTip("What the model is for: the catalog is ranked for it on this machine")
        self.task_combo.currentTextChanged.connect(lambda _task: self._spawn(self._rank(), "models-rank"))
        self.task_combo.currentTextChanged.connect(lambda _task: self._order_models())
        top = QHBoxLayout()
        top.addWidget(self.machine_label, 1)
        task_label = QLabel("Best for:")
        task_label.setBuddy(self.task_combo)
        top.addWidget(task_label)
        top.addWidget(self.task_combo)

        self.catalog_status = QLabel(objectName="modelsCatalogStatus")
        self.catalog_status.setWordWrap(True)
        self.catalog_status.hide()
        self.rows_box = QWidget(objectName="catalogRows")
        self.rows_layout = QVBoxLayout(self.rows_box)
        self.rows_layout.setContentsMargins(0, 0, 0, 0)
        self.rows_layout.setSpacing(0)
        self.rows_layout.addStretch(1)
        self.catalog_scroll = QScrollArea(objectName="catalogScroll")
        self.catalog_scroll.setWidgetResizable(True)
        self.catalog_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.catalog_scroll.setWidget(self.rows_box)
        catalog_box = QWidget()
        catalog_layout = QVBoxLayout(catalog_box)
        catalog_layout.setContentsMargins(0, 0, 0, 0)
        catalog_title = QLabel("Catalog", objectName="modelsSectionTitle")
        catalog_layout.addWidget(catalog_title)
        catalog_layout.addWidget(self.catalog_status)
        catalog_layout.addWidget(self.catalog_scroll, 1)

        self.tree = QTreeWidget(objectName="modelsTree")
        self.tree.setHeaderLabels(["Model", "Can do", "Fit", "Tool calling", ""])
        self.tree.headerItem().setToolTip(SCORE_COLUMN, "The best BFCL report card of the model (the Tool eval tab "
                                                        "runs them); for tools, your models are ranked by it")
        self.tree.setRootIsDecorated(False)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        header = self.tree.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(SCORE_COLUMN, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(ADD_COLUMN, QHeaderView.ResizeMode.ResizeToContents)
        self.tree.setColumnWidth(0, 330)
        self.tree.setColumnWidth(1, 150)
        self.tree.currentItemChanged.connect(lambda *_: self._update_buttons())
        self.tree.itemDoubleClicked.connect(lambda item, _c: self._use(item))
        self.add_button = QPushButton("Add model…", objectName="modelsAddButton")
        self.add_button.setToolTip("Add a GGUF file on this computer to your models")
        self.add_button.clicked.connect(lambda: self._spawn(self._add_chosen(), "models-add"))
        self.add_folder_button = QPushButton("Add folder…", objectName="modelsAddFolderButton")
        self.add_folder_button.setToolTip("Add a Hugging Face model folder (config.json and safetensors) to your "
                                          "models; it is served by the built-in transformers server")
        self.add_folder_button.clicked.connect(lambda: self._spawn(self._add_chosen(folder=True), "models-add"))
        self.use_button = QPushButton("Use", objectName="modelsUseButton")
        self.use_button.setToolTip("Chat with the selected model")
        self.use_button.clicked.connect(lambda: self._use(self.tree.currentItem()))
        self.remove_button = QPushButton("Remove", objectName="modelsRemoveButton")
        self.remove_button.setToolTip("Delete the selected model's entry from llm_backends.yaml (its files stay)")
        self.remove_button.clicked.connect(self._remove_selected)
        self.status = QLabel(objectName="modelsStatus")
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.status.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        buttons = QHBoxLayout()
        buttons.addWidget(self.add_button)
        buttons.addWidget(self.add_folder_button)
        buttons.addWidget(self.use_button)
        buttons.addWidget(self.remove_button)
        buttons.addWidget(self.status, 1)
        yours = QWidget()
        yours_layout = QVBoxLayout(yours)
        yours_layout.setContentsMargins(0, 0, 0, 0)
        yours_title = QHBoxLayout()
        yours_title.addWidget(QLabel("Your models", objectName="modelsSectionTitle"))
        self.target_label = ElidedLabel(name="modelsTarget", mode=Qt.TextElideMode.ElideMiddle)
        yours_title.addWidget(self.target_label, 1)
        yours_layout.addLayout(yours_title)
        yours_layout.addWidget(self.tree, 1)
        yours_layout.addLayout(buttons)

        split = QSplitter(Qt.Orientation.Vertical, objectName="modelsSplit")
        split.addWidget(catalog_box)
        split.addWidget(yours)
        split.setChildrenCollapsible(False)
        split.setStretchFactor(0, 3)  # the catalog is what one scrolls; a few models of one's own need less
        split.setStretchFactor(1, 2)
        split.setSizes([420, 200])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(16, 12, 16, 12)
        layout.addLayout(top)
        layout.addWidget(self.cpu_warning)
        layout.addWidget(split, 1)
        self._apply_style()
        self._update_buttons()
        self._started = False  # the machine, the catalog and the models are read when the page is first shown

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if not self._started:  # not at the window's start: most sessions never open this tab
            self._started = True
            self._spawn(self._start(), "models-start")

    # ----- public: for the window -----
    def task(self) -> str:
        return self.task_combo.currentText()

    def set_task(self, task: str) -> None:
        self.task_combo.setCurrentText(task)

    @property
    def models_dir(self) -> Path:
        return self._models_dir or self.ctx.runtime.config.models_dir or default_models_dir()

    def config_target(self) -> Path:
        """The file added models go to: the one in use, or the user's own when that is the shipped one."""
        return writable_config_path(self.ctx.config_path, user_config_file())

    def refresh_config(self) -> None:
        """The config was reloaded: show its models again (the window calls this after each reload)."""
        if self._started:
            self.refresh_models()

    def stop(self, why: str = "stopped") -> None:
        """Cancel every download (the worker threads stop at their next chunk; partial files stay for a resume)."""
        for row in self.rows.values():
            if row.cancel is not None:
                row.cancel.set()
        if self.add_dialog is not None:
            self.add_dialog.reject()

    def closeEvent(self, event: QCloseEvent) -> None:
        self.stop("closed")
        super().closeEvent(event)

    # ----- machine and catalog -----
    async def _start(self) -> None:
        await self._machine()
        await self._rank()
        self.refresh_models()

    async def _machine(self) -> Machine:
        if self.machine is None:
            self.machine = await asyncio.to_thread(read_machine)  # nvidia-smi may take a moment
        self.machine_label.setText(machine_line(self.machine))
        warning = cpu_warning(self.machine)
        self.cpu_warning.setText(warning)
        self.cpu_warning.setVisible(bool(warning))
        return self.machine

    def _recommend(self, task: str, machine: Machine) -> list[Recommendation]:
        if self._catalog is not None:
            return recommend(task, self._catalog, machine)
        return get_model_recommendations(task)  # the shipped catalog, the user's own choices first

    async def _rank(self) -> None:
        """Rank the catalog for the task chosen now; a ranking finished after a newer one began is dropped."""
        self._rank_seq += 1
        mine = self._rank_seq
        task = self.task()
        machine = await self._machine()
        try:
            recommendations = await asyncio.to_thread(self._recommend, task, machine)
        except LLMError as exc:
            if mine == self._rank_seq:
                self._show_catalog_problem(f"The catalog cannot be read: {first_sentence(exc)}")
            return
        if mine != self._rank_seq:
            return
        self.recommendations = recommendations
        self._show_recommendations(recommendations)

    def _show_catalog_problem(self, text: str) -> None:
        self.catalog_status.setText(text)
        self.catalog_status.setVisible(bool(text))

    def _show_recommendations(self, recommendations: list[Recommendation]) -> None:
        for row in self.rows.values():
            self.rows_layout.removeWidget(row)
            row.hide()
        for index, rec in enumerate(recommendations):
            row = self.rows.get(rec.entry.id)
            if row is None:
                row = CatalogRow(rec, self.rows_box)
                row.action.clicked.connect(lambda _checked=False, r=row: self._row_action(r))
                self.rows[rec.entry.id] = row
            elif row.state != "downloading":
                row.set_recommendation(rec)  # a download in flight keeps the file it is fetching
            self.rows_layout.insertWidget(index, row)
            row.show()
        self._show_catalog_problem("" if recommendations else f"No model in the catalog is meant for {self.task()}.")

    def catalog_order(self) -> list[str]:
        """The ids of the catalog rows shown, top first."""
        return [rec.entry.id for rec in self.recommendations]

    # ----- downloads -----
    def _row_action(self, row: CatalogRow) -> None:
        if row.state == "done" and row.path is not None:
            self._spawn(self.add_path(row.path, row.mmproj, row), "models-add")
        elif row.state in ("idle", "failed", "cancelled"):
            self.download(row.rec.entry.id)

    def download(self, entry_id: str) -> None:
        """Download the model's file (and its projector) shown in its row; the row shows how it goes."""
        row = self.rows[entry_id]
        if row.state == "downloading":
            return
        row.cancel = threading.Event()
        row.show_downloading()
        self._spawn(self._download(row, row.cancel), f"models-download-{entry_id}")

    async def _download(self, row: CatalogRow, cancel: threading.Event) -> None:
        rec = row.rec
        entry = rec.entry
        progress = LatestProgress(asyncio.get_running_loop(), row.show_progress)
        folder = self.models_dir
        try:
            path = await asyncio.to_thread(download_file, entry.repo, rec.file.file, folder, on_progress=progress,
                                           cancel=cancel)
            mmproj = None
            if entry.mmproj is not None:
                mmproj = await asyncio.to_thread(download_file, entry.repo, entry.mmproj.file, folder,
                                                 on_progress=progress, cancel=cancel)
        except DownloadCancelled as exc:
            row.show_failed(first_sentence(exc), cancelled=True)
        except DownloadError as exc:  # offline, gated, not found, damaged, disk full: each says what to do
            row.show_failed(first_sentence(exc))
        except asyncio.CancelledError:
            cancel.set()  # the page is closing: the worker thread stops at its next chunk
            raise
        except Exception as exc:  # a bug must still leave the row usable
            log.exception("download failed")
            row.show_failed(f"Download failed: internal error: {exc!r}")
        else:
            row.show_done(path, mmproj)
            self.status.setText(f"Downloaded {path.name} to {path.parent}.")
            self.refresh_models()
        finally:
            row.cancel = None
            if row.state == "downloading":  # cancelled from outside (closing): leave no spinner behind
                row.show_failed("Download stopped.", cancelled=True)

    # ----- your models -----
    def refresh_models(self) -> None:
        """List the configured models now and judge them in the background, one by one; the files of the models
        folder that no entry uses follow. A refresh begun later makes this one's late answers void."""
        self._models_seq += 1
        mine = self._models_seq
        selected = self._selected()
        config = self.ctx.runtime.config
        self.target_label.setText(f"added models go to {self.config_target()}")
        self.tree.clear()
        self.reports = {}
        self.unused_files = []
        self.configured_group = QTreeWidgetItem([f"Configured ({len(config.models)})"])
        self.files_group = QTreeWidgetItem(["Downloaded, not configured"])
        for group in (self.configured_group, self.files_group):
            group.setFlags(Qt.ItemFlag.ItemIsEnabled)
            font = group.font(0)
            font.setBold(True)
            group.setFont(0, font)
            group.setFirstColumnSpanned(False)
            self.tree.addTopLevelItem(group)
        for entry in config.models.values():
            item = QTreeWidgetItem([_entry_title(entry), "…", "…"])
            item.setData(0, ROLE_KIND, "model")
            item.setData(0, ROLE_VALUE, entry.id)
            item.setToolTip(0, entry.base_model or entry.server_url or "")
            self.configured_group.addChild(item)
            self._show_score(item)
            if (("model", entry.id)) == selected:
                self.tree.setCurrentItem(item)
        self._order_models()
        self.tree.expandAll()
        self._update_buttons()
        self._spawn(self._judge_models(mine, list(config.models.values())), "models-judge")

    async def _judge_models(self, mine: int, entries: list[ModelEntry]) -> None:
        used = {_resolved(p) for e in entries for p in (e.base_model, e.mmproj, e.adapter_dir) if p}
        folder = self.models_dir
        files = await asyncio.to_thread(_model_files, folder)
        if mine != self._models_seq:
            return
        self._show_files(folder, [f for f in files if _resolved(str(f)) not in used])
        for entry in entries:
            try:
                report = await self.ctx.runtime.model_report(entry.id)
            except (LLMError, OSError) as exc:
                report = None
                problem = first_sentence(exc)
            if mine != self._models_seq:
                return
            item = self._model_item(entry.id)
            if item is None:
                continue
            if report is None:
                item.setText(1, "")
                item.setText(2, problem)
                continue
            self.reports[entry.id] = report
            _show_report(item, entry, report, self.tree)

    def set_scores(self, scores: dict[str, RunSummary]) -> None:
        """Each configured model's best BFCL report card (the window passes them at the start and after each run)."""
        self.scores = dict(scores)
        group = self.configured_group
        for i in range(group.childCount() if group is not None else 0):
            self._show_score(group.child(i))
        self._order_models()

    def _show_score(self, item: QTreeWidgetItem) -> None:
        run = self.scores.get(item.data(0, ROLE_VALUE))
        item.setText(SCORE_COLUMN, score_badge(run) if run is not None else "")
        item.setToolTip(SCORE_COLUMN, score_tip(run) if run is not None else "No BFCL report card yet (Tool eval tab)")

    def _ranked_by_score(self) -> bool:
        """Whether your models are in the order of their BFCL scores: for tools, once one of them has a score."""
        return self.task() == "tools" and any(model_id in self.ctx.runtime.config.models for model_id in self.scores)

    def _order_models(self) -> None:
        """For tools, your models with a BFCL report card come first, the best score first; otherwise, and after
        them, the file's order. The selection stays."""
        group = self.configured_group
        if group is None:
            return
        config = self.ctx.runtime.config
        order = {model_id: place for place, model_id in enumerate(config.models)}
        ranked = self._ranked_by_score()

        def place(item: QTreeWidgetItem) -> tuple[bool, float, int]:
            model_id = item.data(0, ROLE_VALUE)
            run = self.scores.get(model_id) if ranked else None
            return run is None, -(run.overall or 0.0) if run is not None else 0.0, order.get(model_id, len(order))

        selected = self._selected()
        group.addChildren(sorted(group.takeChildren(), key=place))
        group.setText(0, f"Configured ({len(config.models)})" + (", best BFCL score first" if ranked else ""))
        group.setExpanded(True)
        if selected is not None and selected[0] == "model":
            self.select_model(selected[1])

    def _show_files(self, folder: Path, files: list[Path]) -> None:
        self.unused_files = files
        self.files_group.setText(0, f"Downloaded, not configured ({len(files)})")
        self.files_group.setToolTip(0, f"Model files in {folder} that no entry uses")
        if not files:
            hint = QTreeWidgetItem(["none", "", f"downloads go to {folder}"])
            hint.setFlags(Qt.ItemFlag.NoItemFlags)
            self.files_group.addChild(hint)
        for path in files:
            item = QTreeWidgetItem([path.name, "", str(path.parent)])
            item.setData(0, ROLE_KIND, "file")
            item.setData(0, ROLE_VALUE, str(path))
            item.setToolTip(0, str(path))
            item.setToolTip(2, str(path))
            self.files_group.addChild(item)
            button = QPushButton("Add…", objectName="modelsAddFile")
            button.setToolTip(f"Add {path.name} to your models")
            button.clicked.connect(lambda _checked=False, p=path: self._spawn(self.add_path(p), "models-add"))
            self.tree.setItemWidget(item, ADD_COLUMN, button)
        self.files_group.setExpanded(True)

    def _model_item(self, model_id: str) -> QTreeWidgetItem | None:
        group = self.configured_group
        for i in range(group.childCount() if group is not None else 0):
            if group.child(i).data(0, ROLE_VALUE) == model_id:
                return group.child(i)
        return None

    def file_add_button(self, path: Path) -> QPushButton | None:
        """The Add… button of an unused file's row (for tests and keyboard users' shortcuts)."""
        group = self.files_group
        for i in range(group.childCount() if group is not None else 0):
            item = group.child(i)
            if item.data(0, ROLE_VALUE) == str(path):
                widget = self.tree.itemWidget(item, ADD_COLUMN)
                return widget if isinstance(widget, QPushButton) else None
        return None

    def select_model(self, model_id: str) -> None:
        item = self._model_item(model_id)
        if item is not None:
            self.tree.setCurrentItem(item)

    def _selected(self) -> tuple[str, str] | None:
        item = self.tree.currentItem()
        if item is None or item.data(0, ROLE_KIND) is None:
            return None
        return item.data(0, ROLE_KIND), item.data(0, ROLE_VALUE)

    def _update_buttons(self) -> None:
        selected = self._selected()
        model = selected is not None and selected[0] == "model"
        self.use_button.setEnabled(model)
        self.remove_button.setEnabled(model)
        self.add_button.setEnabled(not self._busy_adding)
        self.add_folder_button.setEnabled(not self._busy_adding)

    def _use(self, item: QTreeWidgetItem | None) -> None:
        if item is None:
            return
        if item.data(0, ROLE_KIND) == "model":
            self.use_model.emit(item.data(0, ROLE_VALUE))
        elif item.data(0, ROLE_KIND) == "file":
            self._spawn(self.add_path(Path(item.data(0, ROLE_VALUE))), "models-add")

    # ----- adding and removing -----
    async def _choose_with_dialog(self, parent: QWidget) -> Path | None:
        return await self.ctx.interaction.choose_open_path(parent, "Add a model", "GGUF models (*.gguf);;All files (*)",
                                                           kind="model")

    async def _add_chosen(self, folder: bool = False) -> None:
        self.add_button.setEnabled(False)
        self.add_folder_button.setEnabled(False)
        try:
            if folder:
                path = await self.ctx.interaction.choose_folder(self, "Add a model folder", kind="model")
            else:
                path = await self._choose_path(self)
        finally:
            self._update_buttons()
        if path is not None:
            await self.add_path(path)

    async def add_path(self, path: Path, mmproj: Path | None = None, row: CatalogRow | None = None) -> None:
        """Inspect ``path`` (in the background) and open the add-model dialog for it."""
        if self._busy_adding:
            return
        self._busy_adding = True
        self._update_buttons()
        self.status.setText(f"Inspecting {Path(path).name}…")
        try:
            report = await self.ctx.runtime.path_report(Path(path))
        except (LLMError, OSError) as exc:  # InspectionError: not a model
            self.status.setText(first_sentence(exc))
            return
        finally:
            self._busy_adding = False
            self._update_buttons()
        self.status.setText("")
        if self.add_dialog is not None:
            self.add_dialog.reject()
        dialog = AddModelDialog(
            self, report, config=self.ctx.runtime.config, machine=self.machine, target=self.config_target(),
            reinspect=lambda context: self.ctx.runtime.path_report(Path(path), context),
            spawn=lambda coro: self._spawn(coro, "models-add-dialog"),
            choose_mmproj=lambda: self.ctx.interaction.choose_open_path(
                self.add_dialog, "Choose the projector (mmproj)", "GGUF files (*.gguf)", kind="model"),
            mmproj=mmproj, id_hint=row.rec.entry.id if row else None,
            name_hint=f"{row.rec.entry.name} ({row.rec.quant})" if row else None)
        dialog.added.connect(lambda written, model_id: self._added(written, model_id, row))
        dialog.finished.connect(lambda _code, d=dialog: self._dialog_closed(d))
        self.add_dialog = dialog
        dialog.open()

    def _dialog_closed(self, dialog: AddModelDialog) -> None:
        if self.add_dialog is dialog:
            self.add_dialog = None
        dialog.deleteLater()

    def _added(self, written: str, model_id: str, row: CatalogRow | None) -> None:
        if row is not None:
            row.show_added(model_id)
        self.status.setText(f"Added {model_id} to {written}.")
        self.config_written.emit(written)

    def _remove_selected(self) -> None:
        selected = self._selected()
        if selected is not None and selected[0] == "model":
            self._spawn(self.remove(selected[1]), "models-remove")

    async def remove(self, model_id: str) -> None:
        """Ask, then delete the model's entry from the config file (its files stay)."""
        target = self.config_target()
        if _resolved(str(target)) != _resolved(str(self.ctx.config_path)):
            self.status.setText(f"{model_id} comes with the workbench (the shipped config is never changed); "
                                f"models you add go to {target} and can be removed there.")
            return
        self.remove_button.setEnabled(False)
        try:
            if not await self.ctx.interaction.confirm_remove_model(self, model_id, target):
                return
            await asyncio.to_thread(remove_entry, target, model_id)
        except LLMError as exc:
            self.status.setText(first_sentence(exc))
            return
        finally:
            self._update_buttons()
        self.status.setText(f"Removed {model_id} from {target}.")
        self.config_written.emit(str(target))

    # ----- plumbing -----
    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any] | None:
        return self.ctx.tasks.spawn_if_open(coro, name=name)

    def _apply_style(self) -> None:
        palette = self.palette()
        self.setStyleSheet(PAGE_STYLE % {name: tone(name, palette).name() for name in ("good", "bad", "warn")})


def _entry_title(entry: ModelEntry) -> str:
    return entry.label if entry.label == entry.id else f"{entry.label} · {entry.id}"


def _show_report(item: QTreeWidgetItem, entry: ModelEntry, report: ModelReport, tree: QTreeWidget) -> None:
    badges = report.badges()
    item.setText(1, "  ".join(badges) if badges else "chat")
    item.setToolTip(1, "\n".join(
        f"{name}: {'yes' if cap.value else 'no'}{'' if cap.confidence >= CONFIDENT else '?'} "
        f"({cap.confidence:.0%}, {cap.source})" for name, cap in report.capabilities.items()))
    palette = tree.palette()
    if report.problem:
        item.setText(2, report.problem.splitlines()[0])
        item.setForeground(2, tone("bad", palette))
    elif report.fit is not None:
        item.setText(2, ("fits: " if report.fit.fits else "too big: ") + report.fit.describe())
        item.setForeground(2, tone("good" if report.fit.fits else "bad", palette))
    elif not entry.launchable:
        item.setText(2, f"served elsewhere ({entry.server_url or entry.backend})")
    else:
        item.setText(2, "unknown")
    item.setToolTip(2, item.text(2) + (f"\n{report.memory.describe()}" if report.memory is not None else ""))


def _resolved(path: str) -> str:
    try:
        return str(Path(path).expanduser().resolve())
    except (OSError, RuntimeError):
        return path


def _model_files(folder: Path) -> list[Path]:
    """The model files a models folder holds: GGUF files (the first part of a split one; no projectors, no
    unfinished downloads) and Hugging Face model folders (a config.json beside weights)."""
    if not folder.is_dir():
        return []
    found: list[Path] = []
    try:
        for path in sorted(folder.rglob("*")):
            parts = path.relative_to(folder).parts
            if any(part.startswith(".") for part in parts):  # .download/: partial files and records
                continue
            name = path.name.lower()
            if path.is_file() and name.endswith(".gguf"):
                split = "-of-" in name and name.rsplit("-of-", 1)[0][-5:].isdigit()
                if "mmproj" in name or (split and not name.rsplit("-of-", 1)[0].endswith("00001")):
                    continue
                found.append(path)
            elif path.is_dir() and (path / "config.json").is_file() and any(
                    p.suffix in (".safetensors", ".bin") for p in path.iterdir()):
                found.append(path)
    except OSError:
        pass
    return found
