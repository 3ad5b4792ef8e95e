"""The Endpoint tab: serve this window's models to other apps on one OpenAI-compatible URL (core's
``ModelEndpoint``), with its URL and token to copy, the apps that called it and each recent request to inspect.

The endpoint is the context's (the composition root makes it over the window's runtime); the window stops it when
closing. Its Activity tells this page of each request as it starts and ends, possibly hundreds of times a second:
the page only marks itself stale then, and redraws once per short interval.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

from PySide6.QtCore import QItemSelection, Qt, QTimer
from PySide6.QtGui import QGuiApplication, QPalette, QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QSplitter,
    QTableView,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from LLM.core import LLMError
from LLM.core.router import ClientSummary, ModelEndpoint, RoutedRequest

from ..context import AppContext
from ..widgets.endpoint_activity import RequestInspector, RequestTableModel, clock
from ..widgets.tones import tone
from ..widgets.transcript import mono_font

log = logging.getLogger(__name__)
# At most one redraw per this many ms however many requests start and end meanwhile.
REDRAW_MS = 100
CLIENT_HEADERS = ("Address", "User agent", "Requests", "In flight", "Last seen", "Last model")
APPS = "Open WebUI, continue.dev, the openai SDK and other OpenAI-compatible apps"


def reach_hint(host: str, local_only: bool) -> str:
    if local_only:
        return f"Base URL and API key for {APPS}; only this machine can connect."
    return (f"Base URL and API key for {APPS}; listening on {host}, so other machines on the network can connect "
            "too (each still needs the token).")


class EndpointPage(QWidget):
    page_name = "endpointPage"

    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName(self.page_name)
        self.ctx = ctx
        self.endpoint: ModelEndpoint | None = ctx.endpoint
        self.redraws = 0  # how many times the activity was drawn (a test checks the bursts are coalesced)

        self.switch = QCheckBox("Serve models to other apps", objectName="endpointSwitch")
        self.switch.setToolTip("One OpenAI-compatible URL over every configured model; a model is started when an "
                               "app asks for it, within this window's memory budget")
        self.switch.clicked.connect(self._on_switch)  # clicked, not toggled: only the user's clicks start or stop
        self.state = QLabel(objectName="endpointState")
        self.problem = QLabel(objectName="endpointProblem")
        self.problem.setTextFormat(Qt.TextFormat.PlainText)
        self.problem.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.problem.setWordWrap(True)
        self._colour(self.problem, "bad")
        self.problem.hide()
        top = QHBoxLayout()
        top.addWidget(self.switch)
        top.addSpacing(12)
        top.addWidget(self.state, 1)

        self.connection = self._connection_box()

        self.clients = QTableWidget(0, len(CLIENT_HEADERS), objectName="endpointClients")
        self.clients.setHorizontalHeaderLabels(CLIENT_HEADERS)
        self.clients.verticalHeader().hide()
        self.clients.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.clients.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.clients.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.clients.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)  # the user agent
        self.clients.setMaximumHeight(120)

        self.requests_model = RequestTableModel(self.palette(), self)
        self.requests = QTableView(objectName="endpointRequests")
        self.requests.setModel(self.requests_model)
        self.requests.verticalHeader().hide()
        self.requests.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.requests.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.requests.setWordWrap(False)
        header = self.requests.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)  # the path
        self.requests.selectionModel().selectionChanged.connect(self._on_selection)
        self.inspector = RequestInspector()

        requests_box = QWidget()
        requests_layout = QVBoxLayout(requests_box)
        requests_layout.setContentsMargins(0, 0, 0, 0)
        requests_layout.addWidget(QLabel("Recent requests (newest first)", objectName="panelTitle"))
        requests_layout.addWidget(self.requests, 1)
        split = QSplitter(Qt.Orientation.Horizontal, objectName="endpointSplit")
        split.addWidget(requests_box)
        split.addWidget(self.inspector)
        split.setSizes([560, 440])
        split.setChildrenCollapsible(False)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(16, 12, 16, 12)
        layout.addLayout(top)
        layout.addWidget(self.problem)
        layout.addWidget(self.connection)
        layout.addWidget(QLabel("Apps that called", objectName="panelTitle"))
        layout.addWidget(self.clients)
        layout.addWidget(split, 1)

        self._redraw_timer = QTimer(self, singleShot=True, interval=REDRAW_MS)
        self._redraw_timer.timeout.connect(self.redraw)
        if self.endpoint is not None:
            self.endpoint.activity.add_listener(self._on_activity)
        else:
            self.switch.setEnabled(False)
        self._busy = False
        self._show_state()

    def _connection_box(self) -> QFrame:
        box = QFrame(objectName="endpointConnection")
        box.setFrameShape(QFrame.Shape.StyledPanel)
        self.url = QLineEdit(objectName="endpointUrl", readOnly=True)
        self.url.setFont(mono_font())
        self.copy_url = QPushButton("Copy", objectName="endpointCopyUrl")
        self.copy_url.setToolTip("Copy the base URL")
        self.copy_url.clicked.connect(lambda: QGuiApplication.clipboard().setText(self.url.text()))
        self.token = QLineEdit(objectName="endpointToken", readOnly=True)
        self.token.setFont(mono_font())
        self.token.setEchoMode(QLineEdit.EchoMode.Password)
        self.show_token = QPushButton("Show", objectName="endpointShowToken", checkable=True)
        self.show_token.toggled.connect(self._on_show_token)
        self.copy_token = QPushButton("Copy", objectName="endpointCopyToken")
        self.copy_token.setToolTip("Copy the token (the API key other apps send)")
        self.copy_token.clicked.connect(lambda: QGuiApplication.clipboard().setText(self.token.text()))
        self.new_token = QPushButton("New token…", objectName="endpointNewToken")
        self.new_token.setToolTip("Replace the token: apps that use the current one are refused from then on")
        self.new_token.clicked.connect(lambda: self._spawn(self.replace_token(), "endpoint-new-token"))
        self.hint = QLabel(objectName="endpointHint")
        self.hint.setWordWrap(True)
        self._colour(self.hint, None)
        grid = QGridLayout(box)
        grid.addWidget(QLabel("Base URL"), 0, 0)
        grid.addWidget(self.url, 0, 1)
        grid.addWidget(self.copy_url, 0, 2, Qt.AlignmentFlag.AlignLeft)
        grid.addWidget(QLabel("API key"), 1, 0)
        grid.addWidget(self.token, 1, 1)
        keys = QHBoxLayout()
        keys.setSpacing(4)
        for button in (self.show_token, self.copy_token, self.new_token):
            keys.addWidget(button)
        grid.addLayout(keys, 1, 2)
        grid.addWidget(self.hint, 2, 0, 1, 3)
        grid.setColumnStretch(1, 1)
        return box

    def _colour(self, label: QLabel, kind: str | None) -> None:
        """A tone readable on this palette (``kind``), or None for the quiet placeholder colour."""
        palette = label.palette()
        colour = (tone(kind, self.palette(), QPalette.ColorRole.Window) if kind
                  else self.palette().color(QPalette.ColorRole.PlaceholderText))
        palette.setColor(QPalette.ColorRole.WindowText, colour)
        label.setPalette(palette)

    # ----- on and off -----
    def _on_switch(self, on: bool) -> None:
        self._busy = True
        task = self._spawn(self._start() if on else self._stop(), "endpoint-start" if on else "endpoint-stop")
        if task is None:  # the window is closing
            self._busy = False
        self._show_state()

    async def _start(self) -> None:
        self.problem.hide()
        try:
            await self.endpoint.start()
        except LLMError as exc:  # EndpointError: the port taken, the token unreadable
            self._show_problem(str(exc))
        except Exception as exc:  # a bug must not leave the switch saying on
            log.exception("the endpoint failed to start")
            self._show_problem(f"internal error: {exc!r}")
        finally:
            self._busy = False
            self._show_state()

    async def _stop(self) -> None:
        try:
            await self.endpoint.stop()  # an answer still streaming gets a short grace, then is cut
        finally:
            self._busy = False
            self._show_state()

    def _show_problem(self, text: str) -> None:
        self.problem.setText(f"Cannot serve: {text.splitlines()[0] if text else 'unknown error'}")
        self.problem.show()

    def _show_state(self) -> None:
        """Every control from the endpoint's own state, so the switch never says on when nothing listens."""
        endpoint = self.endpoint
        running = endpoint is not None and endpoint.running
        self.switch.setChecked(running if not self._busy else self.switch.isChecked())
        self.switch.setEnabled(endpoint is not None and not self._busy)
        self.connection.setVisible(running)
        if endpoint is None:
            self.state.setText("Not available in this window.")
        elif self._busy:
            self.state.setText("Starting…" if self.switch.isChecked() else "Stopping…")
        elif running:
            count = len(self.ctx.config.models)
            self.state.setText(f"On: {count} model{'s' if count != 1 else ''}, each started when an app asks.")
            self.url.setText(endpoint.url)
            self.hint.setText(reach_hint(endpoint.host, endpoint.local_only))
            self._show_token()
        else:
            self.state.setText("Off: other apps cannot reach your models through this window.")

    def _show_token(self) -> None:
        try:
            self.token.setText(self.endpoint.token())  # read again: `llmctl serve token --rotate` may have run
        except LLMError as exc:
            self.token.clear()
            self._show_problem(str(exc))

    def _on_show_token(self, shown: bool) -> None:
        self.token.setEchoMode(QLineEdit.EchoMode.Normal if shown else QLineEdit.EchoMode.Password)
        self.show_token.setText("Hide" if shown else "Show")

    async def replace_token(self) -> None:
        self.new_token.setEnabled(False)
        try:
            if not await self.ctx.interaction.confirm_new_token(self):
                return
            try:
                token = self.endpoint.rotate_token()  # read on each request: the old one is refused at once
            except LLMError as exc:
                self._show_problem(str(exc))
                return
            self.problem.hide()
            self.token.setText(token)
            self.state.setText("A new token is in use: give it to the apps that called before.")
        finally:
            self.new_token.setEnabled(True)

    # ----- activity -----
    def _on_activity(self, _record: RoutedRequest) -> None:
        """Called by core for each request starting or ending: one redraw per REDRAW_MS, however many come."""
        if not self._redraw_timer.isActive():
            self._redraw_timer.start()

    def redraw(self) -> None:
        self.redraws += 1
        activity = self.endpoint.activity
        self.requests_model.update(activity.recent())
        self._fill_clients(activity.clients())
        self._on_selection()
        if not self._busy and self.endpoint.running != self.switch.isChecked():
            self._show_state()

    def _fill_clients(self, clients: list[ClientSummary]) -> None:
        self.clients.setRowCount(len(clients))
        for row, client in enumerate(clients):
            cells = (client.address, client.user_agent or "(none said)", str(client.requests), str(client.in_flight),
                     clock(client.last_seen), client.last_model or "—")
            for column, text in enumerate(cells):
                item = self.clients.item(row, column)
                if item is None:
                    item = QTableWidgetItem()
                    self.clients.setItem(row, column, item)
                item.setText(text)
                item.setToolTip(text)

    def selected_record(self) -> RoutedRequest | None:
        rows = self.requests.selectionModel().selectedRows()
        return self.requests_model.record(rows[0].row()) if rows else None

    def select_request(self, record_id: int) -> None:
        row = self.requests_model.row_of(record_id)
        if row is not None:
            self.requests.selectRow(row)

    def _on_selection(self, *_: QItemSelection) -> None:
        self.inspector.show_record(self.selected_record())

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if self.endpoint is not None and not self._busy:
            self._show_state()  # the token may have been replaced from a terminal meanwhile

    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any] | None:
        return self.ctx.tasks.spawn_if_open(coro, name=name)
