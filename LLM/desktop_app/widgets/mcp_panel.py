"""The MCP panel: each server of mcp.json with its state, an enable toggle, its tools (each with a toggle),
the error and stderr tail of a failed one, and Restart; plus Open mcp.json and Import from other apps."""

from __future__ import annotations

from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QMenu,
    QPlainTextEdit,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from LLM.core import LLMError
from LLM.core.mcp import McpEvent, McpManager, McpServerStatus, McpState, present_sources

from ..config_watcher import ConfigWatcher
from ..context import AppContext
from .elided_label import ElidedLabel
from .server_status import state_icon

ROLE_SERVER = Qt.ItemDataRole.UserRole
ROLE_TOOL = Qt.ItemDataRole.UserRole + 1


class McpEventBridge(QObject):
    """Re-emits the manager's McpEvents as a Qt signal (listeners then run on the GUI thread)."""

    event = Signal(object)

    def __init__(self, manager: McpManager | None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._manager = manager
        if manager is not None:
            manager.add_listener(self._forward)

    def _forward(self, event: McpEvent) -> None:
        self.event.emit(event)

    def detach(self) -> None:
        if self._manager is not None:
            self._manager.remove_listener(self._forward)


class McpPanel(QWidget):
    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("mcpPanel")
        self.ctx = ctx
        self.manager: McpManager | None = ctx.runtime.mcp
        layout = QVBoxLayout(self)
        path = str(self.manager.path) if self.manager is not None else "(MCP is off)"
        top = QHBoxLayout()
        # Cut in the middle (both ends of a path tell it apart); a long one widened the panel past the window.
        self.path_label = ElidedLabel(f"MCP servers from {path}", name="mcpConfigPath",
                                      mode=Qt.TextElideMode.ElideMiddle)
        self.path_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        top.addWidget(self.path_label, 1)
        self.open_button = QPushButton("Open mcp.json", objectName="mcpOpenConfig")
        self.open_button.clicked.connect(self._open_config)
        top.addWidget(self.open_button)
        self.reload_button = QPushButton("Reload", objectName="mcpReload")
        self.reload_button.setToolTip("Read mcp.json again (edits are also picked up on their own): changed servers "
                                      "restart, new ones start, removed ones stop")
        self.reload_button.clicked.connect(self.reload)
        top.addWidget(self.reload_button)
        self.import_button = QPushButton("Import…", objectName="mcpImport")
        self.import_button.setToolTip("Copy the servers of Claude Desktop, Cursor or LM Studio into mcp.json")
        self.import_menu = QMenu(self.import_button)
        self.import_menu.aboutToShow.connect(self._fill_import_menu)
        self.import_button.setMenu(self.import_menu)
        top.addWidget(self.import_button)
        layout.addLayout(top)
        self.problem = QLabel("", objectName="mcpConfigProblem")
        self.problem.setWordWrap(True)
        layout.addWidget(self.problem)
        self.tree = QTreeWidget(objectName="mcpServerTree")
        self.tree.setHeaderLabels(["Server / tool", "State", "Details"])
        self.tree.setColumnWidth(0, 300)
        self.tree.setColumnWidth(1, 90)
        self.tree.itemChanged.connect(self._on_item_changed)
        self.tree.currentItemChanged.connect(lambda *_: self._show_selected())
        layout.addWidget(self.tree, 2)
        row = QHBoxLayout()
        self.restart_button = QPushButton("Restart", objectName="mcpRestartButton")
        self.restart_button.setToolTip("Stop and start the selected server (a failed one gets a fresh start)")
        self.restart_button.clicked.connect(self._restart_selected)
        row.addWidget(self.restart_button)
        self.log_button = QPushButton("Open log", objectName="mcpOpenLog")
        self.log_button.setToolTip("Everything the selected server wrote to stderr")
        self.log_button.clicked.connect(self._open_log)
        row.addWidget(self.log_button)
        self.status_line = QLabel("", objectName="mcpStatusLine")
        self.status_line.setWordWrap(True)
        row.addWidget(self.status_line, 1)
        layout.addLayout(row)
        self.stderr = QPlainTextEdit(objectName="mcpStderr")
        self.stderr.setReadOnly(True)
        self.stderr.setPlaceholderText("The selected server's error and the last lines it wrote to stderr")
        layout.addWidget(self.stderr, 1)
        self.bridge = McpEventBridge(self.manager, self)
        self.bridge.event.connect(lambda _event: self.schedule_refresh())
        self.watcher = ConfigWatcher(self.manager.path, self) if self.manager is not None else None
        if self.watcher is not None:
            self.watcher.changed.connect(self.reload)
        self._filling = False
        self._refresh_pending = False
        self.refresh()

    def schedule_refresh(self) -> None:
        """Refresh once control is back in the loop: a change may come from inside a signal of an item that the
        refresh deletes (a toggled checkbox), and a burst of events needs one rebuild only."""
        if not self._refresh_pending:
            self._refresh_pending = True
            QTimer.singleShot(0, self.refresh)

    # ----- showing -----
    def refresh(self) -> None:
        """Rebuild the tree from the manager (keeps the selection)."""
        self._refresh_pending = False
        manager = self.manager
        selected = self.selected_server()
        self._filling = True
        try:
            self.tree.clear()
            if manager is None:
                return
            problems = [manager.config_problem] if manager.config_problem else []
            self.problem.setText("\n".join(problems + manager.collisions))
            self.problem.setVisible(bool(problems or manager.collisions))
            for status in manager.statuses():
                self.tree.addTopLevelItem(self._server_item(status))
            for name, errors in manager.config.invalid.items():
                item = QTreeWidgetItem([name, "invalid", errors[0]])
                item.setToolTip(2, "\n".join(errors))
                item.setIcon(0, state_icon("invalid"))
                item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEnabled)
                self.tree.addTopLevelItem(item)
            if not manager.has_servers and not manager.config.invalid and not problems:
                self.problem.setText(f"No MCP servers yet: add them to {manager.path} (the \"mcpServers\" block other "
                                     "apps use), or Import… them from another app.")
                self.problem.setVisible(True)
            self.tree.expandAll()
            for i in range(self.tree.topLevelItemCount()):
                if self.tree.topLevelItem(i).data(0, ROLE_SERVER) == selected:
                    self.tree.setCurrentItem(self.tree.topLevelItem(i))
        finally:
            self._filling = False
        self._show_selected()

    def _server_item(self, status: McpServerStatus) -> QTreeWidgetItem:
        state = status.state.value if status.enabled else "disabled"
        detail = status.detail
        if status.state is McpState.READY and status.restarts:
            detail += f" · restarted {status.restarts}× after crashes"
        item = QTreeWidgetItem([status.name, state, detail])
        item.setData(0, ROLE_SERVER, status.name)
        item.setIcon(0, state_icon(status.state.value if status.enabled else "stopped"))
        item.setToolTip(0, f"{status.transport}: {status.target}")
        item.setToolTip(2, status.error or detail)
        item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
        item.setCheckState(0, Qt.CheckState.Checked if status.enabled else Qt.CheckState.Unchecked)
        for spec in status.tools:
            child = QTreeWidgetItem([spec.name, "", spec.description.strip().splitlines()[0] if spec.description.strip()
                                     else ""])
            child.setData(0, ROLE_SERVER, status.name)
            child.setData(0, ROLE_TOOL, spec.tool)
            child.setToolTip(0, f"{spec.tool} on {status.name}" + (" · called without asking (autoApprove)"
                                                                    if spec.auto_approved else " · asks before each call"))
            child.setToolTip(2, spec.description)
            child.setText(1, "auto" if spec.auto_approved else "asks")
            child.setFlags(child.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            child.setCheckState(0, Qt.CheckState.Checked if spec.enabled else Qt.CheckState.Unchecked)
            item.addChild(child)
        return item

    def selected_server(self) -> str | None:
        item = self.tree.currentItem()
        return item.data(0, ROLE_SERVER) if item is not None else None

    def server_item(self, name: str) -> QTreeWidgetItem | None:
        for i in range(self.tree.topLevelItemCount()):
            item = self.tree.topLevelItem(i)
            if item.data(0, ROLE_SERVER) == name:
                return item
        return None

    def _show_selected(self) -> None:
        name = self.selected_server()
        self.restart_button.setEnabled(name is not None)
        log = self.manager.log_path(name) if name is not None and self.manager is not None else None
        self.log_button.setEnabled(log is not None and log.exists())
        if name is None or self.manager is None:
            self.stderr.setPlainText("")
            return
        status = self.manager.status(name)
        lines = [status.detail] if status.error else []  # the reason; its stderr lines follow once
        if status.stderr_tail:
            lines += ["", "stderr (last lines):", *status.stderr_tail]
        self.stderr.setPlainText("\n".join(lines))

    # ----- the user's actions -----
    def reload(self) -> None:
        """Adopt mcp.json as it is on disk now (the manager serializes reloads; the latest wins)."""
        if self.manager is not None:
            self.ctx.tasks.spawn_if_open(self._reload(), name="mcp-reload")

    async def _reload(self) -> None:
        touched = await self.manager.reload()
        if self.manager.config_problem:
            self.status_line.setText(f"Not reloaded: {self.manager.config_problem}")
        elif touched:
            self.status_line.setText(f"Reloaded mcp.json: {', '.join(touched)} changed")
        self.schedule_refresh()

    def start_servers(self) -> None:
        """Start the enabled servers in the background (the window calls this once it is shown)."""
        if self.manager is not None and self.manager.has_servers:
            self.ctx.tasks.spawn_if_open(self.manager.start_all(), name="mcp-start-all")

    def _on_item_changed(self, item: QTreeWidgetItem, column: int) -> None:
        if self._filling or column != 0 or self.manager is None:
            return
        server = item.data(0, ROLE_SERVER)
        checked = item.checkState(0) == Qt.CheckState.Checked
        tool = item.data(0, ROLE_TOOL)
        if tool is not None:
            self._guarded(lambda: self.manager.set_tool_enabled(server, tool, checked))
        else:
            self.ctx.tasks.spawn_if_open(self._set_enabled(server, checked), name=f"mcp-enable-{server}")

    async def _set_enabled(self, server: str, enabled: bool) -> None:
        try:
            await self.manager.set_enabled(server, enabled)
        except LLMError as exc:
            self.status_line.setText(str(exc))
        self.schedule_refresh()

    def _restart_selected(self) -> None:
        name = self.selected_server()
        if name is not None and self.manager is not None:
            self.status_line.setText(f"Restarting {name}…")
            self.ctx.tasks.spawn_if_open(self._restart(name), name=f"mcp-restart-{name}")

    async def _restart(self, name: str) -> None:
        self.restart_button.setEnabled(False)
        try:
            await self.manager.restart(name)
            self.status_line.setText("")
        finally:
            self.restart_button.setEnabled(self.selected_server() is not None)

    def _guarded(self, action) -> None:
        try:
            action()
            self.status_line.setText("")
        except LLMError as exc:
            self.status_line.setText(str(exc))
            self.schedule_refresh()

    def _open_log(self) -> None:
        name = self.selected_server()
        log = self.manager.log_path(name) if name is not None and self.manager is not None else None
        if log is not None:
            self.ctx.interaction.open_path(log)

    def _open_config(self) -> None:
        if self.manager is not None:
            self.ctx.interaction.open_path(self.manager.path)

    def _fill_import_menu(self) -> None:
        self.import_menu.clear()
        sources = present_sources()
        if not sources:
            action = self.import_menu.addAction("No Claude Desktop, Cursor or LM Studio config found")
            action.setEnabled(False)
        for source in sources:
            action = self.import_menu.addAction(f"From {source.label} ({source.path})")
            action.triggered.connect(lambda _checked=False, s=source: self.import_from(s))

    def import_from(self, source) -> None:
        if self.manager is None:
            return
        try:
            added, skipped = self.manager.import_from(source)
        except LLMError as exc:
            self.status_line.setText(str(exc))
            return
        text = f"Imported from {source.label}: {', '.join(added) or 'nothing new'}"
        if skipped:
            text += f" (already there: {', '.join(skipped)})"
        self.status_line.setText(text)
        self.reload()  # the imported servers start now
