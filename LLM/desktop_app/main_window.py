"""The main window: model selector on top, chat and tool chat pages, config reloads, orderly shutdown."""

from __future__ import annotations

import asyncio
import logging

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence, QShortcut, QShowEvent
from PySide6.QtWidgets import QMainWindow, QSizePolicy, QSplitter, QTabWidget, QVBoxLayout, QWidget

from LLM.core import BackendsConfig, LLMError, load_backends
from LLM.core.mcp import McpEvent, McpState

from .config_watcher import ConfigWatcher
from .context import AppContext
from .history_controller import HistoryController
from .interaction import SwitchDecision
from .pages.chat_page import ChatPage
from .pages.eval_page import EvalPage
from .pages.tool_chat_page import ToolChatPage
from .qt_bridge import ServerEventBridge
from .style import stylesheet
from .widgets.conversation_list import SEARCH_SHORTCUT, ConversationSidebar
from .widgets.log_viewer import show_log
from .widgets.mcp_panel import McpPanel
from .widgets.model_selector import MODEL_SHORTCUT, ModelSelector

log = logging.getLogger(__name__)
STATUS_MESSAGE_MS = 12_000


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
        body.setChildrenCollapsible(False)
        layout.addWidget(body, 1)
        self.setCentralWidget(central)
        self.history = HistoryController(
            ctx, self.sidebar, self.pages(), self.current_page, self.tabs.setCurrentWidget,
            lambda text: self.statusBar().showMessage(text, STATUS_MESSAGE_MS), self)
        self.sidebar.new_chat_requested.connect(lambda: self.current_page().new_chat())
        self.tabs.currentChanged.connect(lambda _index: self.history.refresh())
        self.tabs.currentChanged.connect(lambda _index: self.focus_prompt())
        self.sidebar.search_left.connect(self.focus_prompt)
        self.sidebar.open_requested.connect(lambda _id: self.focus_prompt())  # after the controller opened it
        self._build_menu()
        self._build_shortcuts()

        self.bridge = ServerEventBridge(ctx.servers, self)
        self.bridge.event.connect(self.selector.on_server_event)
        self.selector.model_selected.connect(self._on_model_selected)
        self.selector.retry_requested.connect(self.start_server)
        self.selector.open_log_requested.connect(self._open_log)
        self.selector.unload_requested.connect(self._unload)
        self.selector.load_requested.connect(self.start_server)
        self.selector.combo.activated.connect(lambda _index: self.focus_prompt())  # a choice, not a reload
        if ctx.servers is not None:
            ctx.servers.confirm_unload = lambda victim, starting: ctx.interaction.confirm_unload(self, victim, starting)
        self._switch_seq = 0
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

    def _on_mcp_event(self, event: McpEvent) -> None:
        self.tool_chat_page.refresh_tools()
        status = event.status
        if status is not None and event.kind == "state" and status.state is McpState.FAILED:
            # The detail is the typed error, which names the server already.
            what = status.detail if f"'{status.name}'" in status.detail else f"MCP server '{status.name}' failed: " \
                f"{status.detail}"
            self.statusBar().showMessage(f"{what} (see the MCP servers tab)", STATUS_MESSAGE_MS)

    def _build_menu(self) -> None:
        menu = self.menuBar().addMenu("&File")
        spawn = self.history.spawn
        for text, shortcut, slot in (
            ("&New chat", QKeySequence.StandardKey.New, lambda: self.current_page().new_chat()),
            ("Export chat as &Markdown…", QKeySequence("Ctrl+Shift+E"),
             lambda: spawn(self.history.export(None, "md"), "export")),
            ("Export chat as &JSON…", None, lambda: spawn(self.history.export(None, "json"), "export")),
            ("&Import chat…", QKeySequence("Ctrl+Shift+I"), lambda: spawn(self.history.import_file(), "import")),
            ("&Reload llm_backends.yaml", QKeySequence("Ctrl+Shift+R"), self._on_config_file_changed),
            ("&Quit", QKeySequence.StandardKey.Quit, self.close),
        ):
            action = QAction(text, self)
            if shortcut is not None:
                action.setShortcut(shortcut)
            action.triggered.connect(slot)
            menu.addAction(action)

    def _build_shortcuts(self) -> None:
        """Keyboard first: the pages by number or in turn, the chat search and the model picker."""
        def shortcut(key: QKeySequence | str, slot) -> None:
            QShortcut(QKeySequence(key), self, activated=slot)

        for number in range(1, self.tabs.count() + 1):
            shortcut(f"Ctrl+{number}", lambda index=number - 1: self.tabs.setCurrentIndex(index))
        shortcut("Ctrl+PgDown", lambda: self.tabs.setCurrentIndex((self.tabs.currentIndex() + 1) % self.tabs.count()))
        shortcut("Ctrl+PgUp", lambda: self.tabs.setCurrentIndex((self.tabs.currentIndex() - 1) % self.tabs.count()))
        shortcut(SEARCH_SHORTCUT, self.sidebar.focus_search)
        shortcut(MODEL_SHORTCUT, self.selector.open_picker)

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
        if entry is None or not entry.launchable or self.ctx.servers is None or self.ctx.tasks.closed:
            return
        self.ctx.tasks.spawn(self._ensure_ready(model_id), name=f"start-{model_id}")

    async def _ensure_ready(self, model_id: str) -> None:
        try:
            await self.ctx.servers.ensure_ready(model_id)
        except LLMError as exc:
            # The FAILED event already shows it in the selector; this covers errors before a server exists.
            self.statusBar().showMessage(f"{model_id}: {type(exc).__name__}: {str(exc).splitlines()[0]}",
                                         STATUS_MESSAGE_MS)

    def _open_log(self, model_id: str) -> None:
        # Shown in the window: a desktop without a handler for .log files (minimal Linux, WSL) opens nothing.
        if self.ctx.servers is not None:
            entry = self.ctx.config.models.get(model_id)
            show_log(self, self.ctx.servers.log_path(model_id), f"Server log: {entry.label if entry else model_id}",
                     self.ctx.interaction.open_path)

    # ----- llm_backends.yaml -----
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
        restarted = await self.ctx.runtime.reload(config)
        if mine != self._reload_seq:
            return []  # a newer edit is being adopted; it updates the window
        self.selector.set_config(config, self._statuses())
        for page in self.pages():
            page.refresh_config()
        message = "Reloaded llm_backends.yaml"
        if restarted:
            message += f"; restarting {', '.join(repr(m) for m in restarted)} (load settings changed)"
        if config.problems:
            message += f"; {len(config.problems)} problem(s), first: {config.problems[0]}"
        self.statusBar().showMessage(message, STATUS_MESSAGE_MS)
        current = self.selector.current_model_id()
        if current in restarted:
            self.start_server(current)
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
            self.watcher.stop()
            if self.mcp_panel.watcher is not None:
                self.mcp_panel.watcher.stop()
            await self.ctx.tasks.cancel_all()
            await self.ctx.runtime.aclose()  # stops servers per keep_alive (session servers only)
            if self.ctx.history is not None:
                self.ctx.history.close()  # after the pages saved their stopped answers
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
