"""The main window: model selector on top, chat and tool chat pages, config reloads, orderly shutdown."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from PySide6.QtCore import QEvent, QObject, QSize, Qt, QTimer
from PySide6.QtGui import QAction, QCloseEvent, QKeyEvent, QKeySequence, QShortcut, QShowEvent
from PySide6.QtWidgets import QMainWindow, QScrollArea, QSizePolicy, QSplitter, QTabWidget, QVBoxLayout, QWidget

from LLM.core import BackendsConfig, LLMError, load_backends
from LLM.core.mcp import McpEvent, McpState
from LLM.core.models import read_machine
from LLM.core.servers import ServerEvent, ServerState, probe_reachability
from LLM.core.session import describe_error

from .about import about_question, engine_text, shortcuts_question
from .config_watcher import ConfigWatcher
from .context import AppContext
from .history_controller import HistoryController
from .interaction import SwitchDecision
from .pages.chat_page import ChatPage
from .pages.endpoint_page import EndpointPage
from .pages.eval_page import EvalPage
from .pages.models_page import ModelsPage
from .pages.tool_chat_page import ToolChatPage
from .qt_bridge import ServerEventBridge
from .style import stylesheet
from .widgets.conversation_list import SEARCH_SHORTCUT, ConversationSidebar
from .widgets.elided_label import ElidedLabel
from .widgets.log_viewer import show_log
from .widgets.mcp_panel import McpPanel
from .widgets.model_selector import MODEL_SHORTCUT, ModelSelector, report_lines
from .widgets.report_cards import best_runs, score_badge, score_tip

log = logging.getLogger(__name__)
STATUS_MESSAGE_MS = 12_000  # passing news (a reload, a switch); results of file actions stay (show_result)
SIDEBAR_SHORTCUT = "Ctrl+B"
SETTINGS_SHORTCUT = "Ctrl+Shift+B"
# Keys bound inside widgets rather than by the window, for Help ▸ Keyboard shortcuts.
WIDGET_KEYS = [
    ("Enter", "Send the prompt (Shift+Enter: a new line)"),
    ("Esc", "Stop the answer, or cancel editing a message"),
    ("F2", "Rename the chat selected in the sidebar (Enter saves, Esc cancels)"),
    ("Delete", "Delete the chat selected in the sidebar (Undo brings it back)"),
    ("Ctrl+Enter", "Confirm an edit dialog"),
]


class MainWindow(QMainWindow):
    def __init__(self, ctx: AppContext, initial_model: str | None = None) -> None:
        super().__init__()
        self.ctx = ctx
        self.setObjectName("mainWindow")
        self.setWindowTitle("LLM Workbench")
        self.setStyleSheet(stylesheet(self.palette()))

        self.selector = ModelSelector()
        self.chat_page = ChatPage(ctx)
        self.tool_chat_page = ToolChatPage(ctx)
        self.tabs = QTabWidget(objectName="pageTabs")
        self.tabs.setDocumentMode(True)
        self.eval_page = EvalPage(ctx)
        self.tabs.addTab(self.chat_page, "Chat")
        self.tabs.addTab(self.tool_chat_page, "Tool chat")
        self.tabs.addTab(self.eval_page, "Tool eval")
        self.mcp_panel = McpPanel(ctx)  # MCP servers start once the window is shown (see showEvent)
        self.tabs.addTab(self.mcp_panel, "MCP servers")
        self.models_page = ModelsPage(ctx)
        self.tabs.addTab(self.models_page, "Models")
        self.endpoint_page = EndpointPage(ctx)
        self.tabs.addTab(self.endpoint_page, "Endpoint")
        self.models_page.config_written.connect(self._on_config_written)
        self.models_page.use_model.connect(self._use_model)
        self.eval_page.report_cards_changed.connect(self.refresh_scores)
        self.mcp_panel.bridge.event.connect(self._on_mcp_event)
        self._mcp_started = False
        self.tabs.currentChanged.connect(lambda _index: self._size_by_current_page())
        self._size_by_current_page()

        central = QWidget(objectName="central")
        layout = QVBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        header = QWidget(objectName="header")
        header_layout = QVBoxLayout(header)
        header_layout.setContentsMargins(16, 10, 16, 10)
        header_layout.addWidget(self.selector)
        layout.addWidget(header)
        self.sidebar = ConversationSidebar()
        body = QSplitter(Qt.Orientation.Horizontal, objectName="bodySplitter")
        body.addWidget(self.sidebar)
        body.addWidget(self.tabs)
        body.setStretchFactor(0, 0)
        body.setStretchFactor(1, 1)
        body.setSizes([240, 940])
        body.setChildrenCollapsible(False)  # hidden from View instead: a dragged-away panel is hard to find
        layout.addWidget(body, 1)
        self.setCentralWidget(central)
        # The last file action's result (or error) stays readable here until the next one; a passing message
        # covers it for a while, then it shows again.
        self.result_label = ElidedLabel(name="statusResult")
        self.statusBar().addWidget(self.result_label, 1)
        self._shortcut_rows: list[tuple[str, str]] = []
        self.history = HistoryController(
            ctx, self.sidebar, self.pages(), self.current_page, self.tabs.setCurrentWidget, self.show_result, self)
        self.sidebar.new_chat_requested.connect(self.new_chat)
        self.tabs.currentChanged.connect(lambda _index: self.history.refresh())
        self.tabs.currentChanged.connect(lambda _index: self.focus_prompt())
        self.sidebar.search_left.connect(self.focus_prompt)
        self.history.opened.connect(lambda _id: self._opened())
        self._build_menu()
        self._build_shortcuts()

        self.bridge = ServerEventBridge(ctx.servers, self)
        self.bridge.event.connect(self.selector.on_server_event)
        self.bridge.event.connect(self._on_server_event_for_reports)
        self.selector.model_selected.connect(self._on_model_selected)
        self.selector.retry_requested.connect(self.start_server)
        self.selector.open_log_requested.connect(self._open_log)
        self.selector.unload_requested.connect(self._unload)
        self.selector.load_requested.connect(self.start_server)
        self.selector.combo.activated.connect(lambda _index: self.focus_prompt())  # a choice, not a reload
        self._picker_escape = _EscapeFilter(self.focus_prompt, self)  # Esc in the model list: back to the prompt
        self.selector.combo.view().installEventFilter(self._picker_escape)
        self.selector.combo.installEventFilter(self._picker_escape)
        if ctx.servers is not None:
            ctx.servers.confirm_unload = lambda victim, starting: ctx.interaction.confirm_unload(self, victim, starting)
        self._switch_seq = 0
        self._probe_seq: dict[str, int] = {}
        self._report_seq: dict[str, int] = {}
        self.watcher = ConfigWatcher(ctx.config_path, self)
        self.watcher.changed.connect(self._on_config_file_changed)

        self._reload_seq = 0
        self._idle_pages = asyncio.Event()  # set when a page stops being busy
        for page in self.pages():
            page.busy_changed.connect(lambda busy: None if busy else self._idle_pages.set())
        self._closing: asyncio.Task[None] | None = None
        self._closed = asyncio.Event()
        self._close_accepted = False
        self.selector.set_config(ctx.config, self._statuses(), select=self._initial(ctx.config, initial_model))
        self.refresh_scores()
        self._report_config_problems(ctx.config)

    def sizeHint(self) -> QSize:
        return QSize(1320, 800)

    def _size_by_current_page(self) -> None:
        """The tabs ask for the room of the page shown, not the widest page's: a stacked layout's minimum is the
        largest of all its pages', so a hidden page's long path used to widen the window past 1000 px."""
        current = self.tabs.currentWidget()
        for index in range(self.tabs.count()):
            page = self.tabs.widget(index)
            policy = QSizePolicy.Policy.Preferred if page is current else QSizePolicy.Policy.Ignored
            page.setSizePolicy(policy, policy)

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if not event.spontaneous():
            self.focus_prompt()  # else the model dropdown, first in the tab order, gets the keys
        if not self._mcp_started:  # in the background, after the window is up: a slow server never delays it
            self._mcp_started = True
            self.mcp_panel.start_servers()
            self.refresh_model_reports()

    def _on_mcp_event(self, event: McpEvent) -> None:
        self.tool_chat_page.refresh_tools()
        status = event.status
        if status is not None and event.kind == "state" and status.state is McpState.FAILED:
            # The detail is the typed error, which names the server already.
            what = status.detail if f"'{status.name}'" in status.detail else f"MCP server '{status.name}' failed: " \
                f"{status.detail}"
            self.statusBar().showMessage(f"{what} (see the MCP servers tab)", STATUS_MESSAGE_MS)

    def show_result(self, text: str) -> None:
        """The result of a file action (exported, imported, cannot ...): kept until the next one."""
        self.statusBar().clearMessage()
        self.result_label.setText(text)

    def _build_menu(self) -> None:
        menu = self.menuBar().addMenu("&File")
        spawn = self.history.spawn
        for text, shortcut, slot in (
            ("&New chat", QKeySequence.StandardKey.New, self.new_chat),
            ("Export chat as &Markdown…", QKeySequence("Ctrl+Shift+E"),
             lambda: spawn(self.history.export(None, "md"), "export")),
            ("Export chat as &JSON…", None, lambda: spawn(self.history.export(None, "json"), "export")),
            ("&Import chat…", QKeySequence("Ctrl+Shift+I"), lambda: spawn(self.history.import_file(), "import")),
            ("&Reload llm_backends.yaml", QKeySequence("Ctrl+Shift+R"), self._on_config_file_changed),
            ("&Quit", QKeySequence.StandardKey.Quit, self.close),
        ):
            self._add_action(menu, text, shortcut, slot)
        view = self.menuBar().addMenu("&View")
        self.sidebar_action = self._add_action(view, "Chats &sidebar", SIDEBAR_SHORTCUT, self.show_sidebar,
                                               checkable=True)
        self.settings_action = self._add_action(view, "&Settings panel", SETTINGS_SHORTCUT, self.show_settings,
                                                checkable=True)
        help_menu = self.menuBar().addMenu("&Help")
        self._add_action(help_menu, "&Keyboard shortcuts", QKeySequence.StandardKey.HelpContents,
                         lambda: spawn(self.show_shortcuts(), "shortcuts"))
        self._add_action(help_menu, "&About LLM Workbench", None, lambda: spawn(self.show_about(), "about"))

    def _add_action(self, menu, text: str, shortcut, slot, checkable: bool = False) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(shortcut)
            self._shortcut_rows.append((action.shortcut().toString(QKeySequence.SequenceFormat.NativeText),
                                        text.replace("&", "").rstrip("…")))
        if checkable:
            action.setCheckable(True)
            action.setChecked(True)
            action.toggled.connect(slot)
        else:
            action.triggered.connect(slot)
        menu.addAction(action)
        return action

    # ----- View: the panels beside the chat -----
    def show_sidebar(self, shown: bool) -> None:
        self.sidebar.setVisible(shown)
        self.sidebar_action.setChecked(shown)
        if not shown and self.sidebar.isAncestorOf(self.focusWidget()):
            self.focus_prompt()  # the keys must not stay in a hidden list

    def show_settings(self, shown: bool) -> None:
        focused = self.focusWidget()
        panels = [page.findChild(QScrollArea, "sidePanel") for page in self.pages()]
        for panel in panels:
            panel.setVisible(shown)
        self.settings_action.setChecked(shown)
        if not shown and focused is not None and any(panel.isAncestorOf(focused) for panel in panels):
            self.focus_prompt()  # as for the sidebar: the keys must not stay in a hidden panel

    def search_chats(self) -> None:
        """Ctrl+F: the search is reachable with the sidebar hidden too (it shows again)."""
        self.show_sidebar(True)
        self.sidebar.focus_search()

    # ----- Help -----
    async def show_about(self) -> None:
        engine = await engine_text(self.ctx, self.selector.current_model_id())
        await self.ctx.interaction.inform(self, about_question(self.ctx, engine))

    def shortcut_rows(self) -> list[tuple[str, str]]:
        """Every key the window binds (menus and shortcuts), then those bound inside widgets."""
        return [*self._shortcut_rows, *WIDGET_KEYS]

    async def show_shortcuts(self) -> None:
        await self.ctx.interaction.inform(self, shortcuts_question(self.shortcut_rows()))

    def _build_shortcuts(self) -> None:
        """Keyboard first: the pages by number or in turn, the chat search and the model picker."""
        def shortcut(key: QKeySequence | str, slot, what: str | None = None) -> None:
            QShortcut(QKeySequence(key), self, activated=slot)
            if what:
                self._shortcut_rows.append((str(key), what))

        for number in range(1, self.tabs.count() + 1):
            shortcut(f"Ctrl+{number}", lambda index=number - 1: self.tabs.setCurrentIndex(index))
        self._shortcut_rows.append((f"Ctrl+1 … Ctrl+{self.tabs.count()}", "Go to a tab (Chat, Tool chat, …)"))
        shortcut("Ctrl+PgDown", lambda: self.tabs.setCurrentIndex((self.tabs.currentIndex() + 1) % self.tabs.count()),
                 "Next tab")
        shortcut("Ctrl+PgUp", lambda: self.tabs.setCurrentIndex((self.tabs.currentIndex() - 1) % self.tabs.count()),
                 "Previous tab")
        shortcut(SEARCH_SHORTCUT, self.search_chats, "Search the chats (Enter opens the first, Esc clears)")
        shortcut(MODEL_SHORTCUT, self.selector.open_picker, "Choose a model (arrows and Enter; Esc goes back)")
        shortcut("Ctrl+,", lambda: self.show_settings(not self.settings_action.isChecked()),
                 "Show or hide the settings panel (as Ctrl+Shift+B)")

    def new_chat(self) -> None:
        """A base model's text lives only in its editor: New chat asks before clearing it. (An instruct chat is
        saved in the history already, so it just starts a new one.)"""
        page = self.current_page()
        if page.base_mode and page.completion_editor.toPlainText().strip():
            self.history.spawn(self._new_chat_after_asking(page), "new-chat")
        else:
            page.new_chat()

    async def _new_chat_after_asking(self, page: ChatPage) -> None:
        if await self.ctx.interaction.confirm_discard_text(self, self._label(page.model_id or "")):
            page.new_chat()

    def _opened(self) -> None:
        """A chat opened from the sidebar while a base model is chosen is open but not shown (the page shows the
        base model's editor): say so, and where it shows again."""
        page = self.current_page()
        if page.base_mode:
            page.activity.setText(f"Opened “{page.conversation.title}”: it shows, ready to continue, when you "
                                  "choose an instruct model (a base model only continues the text in the editor)")
        self.focus_prompt()

    def focus_prompt(self) -> None:
        """Where the keys go after a tab switch, a model choice or a search: the page's prompt (or, for a
        base model, its text). Other tabs keep Qt's own focus."""
        page = self.tabs.currentWidget()
        if isinstance(page, ChatPage):
            target = page.completion_editor if page.base_mode else page.prompt
            target.setFocus(Qt.FocusReason.OtherFocusReason)

    @staticmethod
    def _initial(config: BackendsConfig, wanted: str | None) -> str | None:
        for candidate in (wanted, "default"):
            if candidate and candidate in config.models:
                return candidate
        return next(iter(config.models), None)

    def pages(self) -> list[ChatPage]:
        return [self.chat_page, self.tool_chat_page]

    def current_page(self) -> ChatPage:
        page = self.tabs.currentWidget()
        return page if isinstance(page, ChatPage) else self.chat_page

    # ----- models and servers -----
    def _statuses(self):
        return self.ctx.servers.status() if self.ctx.servers is not None else []

    def refresh_model_reports(self, model_ids: list[str] | None = None) -> None:
        """Judge the models (files, yaml, engine, machine) in the background and badge the dropdown with what
        each can do; only the latest request per model is shown."""
        ids = list(self.ctx.config.models) if model_ids is None else model_ids
        for model_id in ids:
            self._report_seq[model_id] = self._report_seq.get(model_id, 0) + 1
        self.ctx.tasks.spawn_if_open(self._load_reports([(m, self._report_seq[m]) for m in ids]), name="reports")

    async def _load_reports(self, wanted: list[tuple[str, int]]) -> None:
        machine = await asyncio.to_thread(read_machine)  # once for all of them (nvidia-smi may be slow)
        for model_id, seq in wanted:
            try:
                report = await self.ctx.runtime.model_report(model_id, machine)
            except LLMError:
                continue  # removed by a reload meanwhile
            if self._report_seq.get(model_id) == seq and model_id in self.ctx.config.models:
                self.selector.set_report(model_id, report.badges(), report_lines(report))

    def refresh_scores(self) -> None:
        """Each configured model's best BFCL report card, as a badge in the dropdown and on the Models page (at the
        start, after a reload and after each BFCL run)."""
        best = best_runs(self.ctx.evals, self.ctx.config)
        self.selector.set_scores({model_id: (score_badge(run), score_tip(run)) for model_id, run in best.items()})
        self.models_page.set_scores(best)

    def _on_server_event_for_reports(self, event: ServerEvent) -> None:
        """A server became ready: its engine's own report (template caps, modalities) joins the answer."""
        config = self.ctx.config
        if event.state is ServerState.READY and event.model_id in config.models:
            entry = config.models[event.model_id]
            ids = config.group_of(event.model_id).model_ids if entry.launchable else (event.model_id,)
            self.refresh_model_reports(list(ids))

    def _on_model_selected(self, model_id: str) -> None:
        """A deliberate choice. While an answer is being written, ask first: it is never silently killed."""
        self._switch_seq += 1
        busy = [p for p in self.pages() if p.busy and p.model_id not in (None, model_id)]
        if not busy:
            self._switch_to(model_id)
        elif not self.ctx.tasks.closed:
            self.ctx.tasks.spawn(self._switch_after_asking(model_id, busy[0].model_id, self._switch_seq),
                                 name=f"switch-{model_id}")

    def _switch_to(self, model_id: str) -> None:
        for page in self.pages():
            page.set_model(model_id)
        self.eval_page.set_model(model_id)
        self.start_server(model_id)

    async def _switch_after_asking(self, model_id: str, current: str, seq: int) -> None:
        decision = await self.ctx.interaction.confirm_switch(self, self._label(current), self._label(model_id))
        if seq != self._switch_seq:
            return  # the user chose again meanwhile: the latest choice wins
        if decision is SwitchDecision.CANCEL:
            self.selector.show_model(current)
            return
        if decision is SwitchDecision.FINISH:
            self.statusBar().showMessage(f"Switching to {self._label(model_id)} when the answer is finished")
            while any(p.busy for p in self.pages()):
                await self._idle_pages.wait()
                self._idle_pages.clear()
            if seq != self._switch_seq:
                return
            self.statusBar().clearMessage()
        self._switch_to(model_id)

    def _label(self, model_id: str) -> str:
        entry = self.ctx.config.models.get(model_id)
        return entry.label if entry is not None else model_id

    def _unload(self, model_id: str) -> None:
        if self.ctx.servers is not None and not self.ctx.tasks.closed:
            self.ctx.tasks.spawn(self._stop_server(model_id), name=f"unload-{model_id}")

    async def _stop_server(self, model_id: str) -> None:
        self.statusBar().showMessage(f"Unloading {self._label(model_id)}…")
        await self.ctx.servers.stop(model_id)
        self.statusBar().showMessage(f"Unloaded {self._label(model_id)}; Load in the header starts it again",
                                     STATUS_MESSAGE_MS)

    def start_server(self, model_id: str) -> None:
        """Start (or retry) the model's server in the background: warm by the time the user sends."""
        entry = self.ctx.config.models.get(model_id)
        if entry is not None and not entry.launchable and not self.ctx.tasks.closed:
            self.ctx.tasks.spawn(self._probe(model_id), name=f"probe-{model_id}")  # a remote model: is it there?
            return
        if entry is None or not entry.launchable or self.ctx.servers is None or self.ctx.tasks.closed:
            return
        self.ctx.tasks.spawn(self._ensure_ready(model_id), name=f"start-{model_id}")

    async def _probe(self, model_id: str) -> None:
        # Only the latest probe of a model is shown: a slow one begun before Retry or a reload must not overwrite
        # what the newer one found.
        mine = self._probe_seq[model_id] = self._probe_seq.get(model_id, 0) + 1
        status = self.selector.status
        status.show_reachability(model_id, None)  # checking…
        result = await probe_reachability(self.ctx.config.models[model_id])
        if self._probe_seq[model_id] == mine:
            status.show_reachability(model_id, result)

    async def _ensure_ready(self, model_id: str) -> None:
        try:
            await self.ctx.servers.ensure_ready(model_id)
        except LLMError as exc:
            # The FAILED event already shows it in the selector; this covers errors before a server exists.
            self.statusBar().showMessage(describe_error(exc, self._label(model_id)), STATUS_MESSAGE_MS)

    def _open_log(self, model_id: str) -> None:
        # Shown in the window: a desktop without a handler for .log files (minimal Linux, WSL) opens nothing.
        if self.ctx.servers is not None:
            entry = self.ctx.config.models.get(model_id)
            show_log(self, self.ctx.servers.log_path(model_id), f"Server log: {entry.label if entry else model_id}",
                     self.ctx.interaction.open_path)

    # ----- llm_backends.yaml -----
    def _on_config_written(self, path: str) -> None:
        """The Models page added or removed an entry. The first model added while the shipped file was in use
        created the user's own file: from now on that one is read and watched."""
        if Path(path) != Path(self.ctx.config_path):
            self.ctx.config_path = Path(path)
            self.watcher.stop()
            self.watcher = ConfigWatcher(self.ctx.config_path, self)
            self.watcher.changed.connect(self._on_config_file_changed)
        self._on_config_file_changed()

    def _use_model(self, model_id: str) -> None:
        """"Use" on the Models page: choose the model as the dropdown would, and go to the chat."""
        if self.selector.select(model_id):
            self.tabs.setCurrentWidget(self.chat_page)

    def _on_config_file_changed(self) -> None:
        if not self.ctx.tasks.closed:
            self.ctx.tasks.spawn(self.reload_config(), name="reload-config")

    async def reload_config(self) -> list[str]:
        """Adopt the edited file; returns the models whose servers restart because load settings changed.

        The latest edit wins: a read that finishes after a newer one started is dropped."""
        self._reload_seq += 1
        mine = self._reload_seq
        try:
            config = await asyncio.to_thread(load_backends, self.ctx.config_path)
        except LLMError as exc:
            self.statusBar().showMessage(f"Cannot reload: {exc}", STATUS_MESSAGE_MS)
            return []
        if mine != self._reload_seq:
            return []
        broken = [p for p in config.problems if not p.path]
        if broken or (not config.models and self.ctx.config.models):
            # A half-typed edit must not stop every running server: keep the last good config.
            why = broken[0] if broken else "no valid models"
            self.statusBar().showMessage(f"Not reloaded, keeping the previous models: {why}", STATUS_MESSAGE_MS)
            return []
        current = self.selector.current_model_id()
        before = self.ctx.config.models.get(current or "")
        restarted = await self.ctx.runtime.reload(config)
        if mine != self._reload_seq:
            return []  # a newer edit is being adopted; it updates the window
        self.selector.set_config(config, self._statuses())
        self.refresh_model_reports()
        self.refresh_scores()  # a model's adapter may have changed: its card is the adapter's
        for page in self.pages():
            page.refresh_config()
        self.models_page.refresh_config()
        message = "Reloaded llm_backends.yaml"
        if restarted:
            message += f"; restarting {', '.join(repr(m) for m in restarted)} (load settings changed)"
        if config.problems:
            message += f"; {len(config.problems)} problem(s), first: {config.problems[0]}"
        self.statusBar().showMessage(message, STATUS_MESSAGE_MS)
        current = self.selector.current_model_id()
        entry = config.models.get(current or "")
        if current in restarted or (entry is not None and not entry.launchable and entry != before):
            self.start_server(current)  # a remote model's address or key changed: ask it again
        return restarted

    def _report_config_problems(self, config: BackendsConfig) -> None:
        if config.problems:
            more = f" (and {len(config.problems) - 1} more)" if len(config.problems) > 1 else ""
            self.statusBar().showMessage(f"{config.problems[0]}{more}", STATUS_MESSAGE_MS)
        elif not config.models:
            self.statusBar().showMessage(f"No models in {config.source}")

    # ----- closing -----
    async def shutdown(self) -> None:
        """Cancel in-flight answers and background work, then stop the servers this window started."""
        if self._closing is None:
            self._closing = asyncio.ensure_future(self._shutdown())
        await asyncio.shield(self._closing)

    async def _shutdown(self) -> None:
        try:
            for page in self.pages():
                page.stop("window closed")
            self.models_page.stop("window closed")  # downloads cancelled; their partial files resume later
            self.watcher.stop()
            if self.mcp_panel.watcher is not None:
                self.mcp_panel.watcher.stop()
            await self.ctx.tasks.cancel_all()  # a start of the endpoint under way included
            if self.ctx.endpoint is not None:
                await self.ctx.endpoint.stop()  # before the runtime: no app starts a model while it closes
            await self.ctx.runtime.aclose()  # stops servers per keep_alive (session servers only)
            if self.ctx.history is not None:
                self.ctx.history.close()  # after the pages saved their stopped answers
            if self.ctx.evals is not None:
                self.ctx.evals.close()  # after the eval tab's run was cancelled (it writes each task's result)
        except Exception:
            log.exception("error while shutting down")
        finally:
            self._closed.set()

    async def wait_closed(self) -> None:
        await self._closed.wait()

    def closeEvent(self, event: QCloseEvent) -> None:
        if self._close_accepted or self._closed.is_set():
            event.accept()
            return
        # Servers must be stopped before the window goes away: hide now, close when done.
        event.ignore()
        self.hide()
        task = asyncio.ensure_future(self.shutdown())
        task.add_done_callback(lambda _t: self._accept_close())

    def _accept_close(self) -> None:
        self._close_accepted = True
        self.close()


class _EscapeFilter(QObject):
    """Calls ``then`` after an Esc in the watched widget (the model list): the keys go back to the prompt instead
    of staying on the dropdown."""

    def __init__(self, then, parent: QObject) -> None:
        super().__init__(parent)
        self._then = then

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.KeyPress and isinstance(event, QKeyEvent) \
                and event.key() == Qt.Key.Key_Escape:
            QTimer.singleShot(0, self._then)  # after the list has closed and handed the focus back to the box
        return False
