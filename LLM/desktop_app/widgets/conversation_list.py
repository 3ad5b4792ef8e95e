"""The sidebar of saved conversations: search, the list (newest first), rename in place, delete with undo."""

from __future__ import annotations

import time

from PySide6.QtCore import QPoint, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QKeyEvent, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QPushButton,
    QStyleOptionViewItem,
    QVBoxLayout,
    QWidget,
)

from LLM.core.history import UNKNOWN_TIME, ConversationSummary, local_datetime

from .conversation_item import ENTRY_ROLE, ConversationDelegate, Entry, count_text, match_segments

SEARCH_DELAY_MS = 150  # search as the user types, once they pause
UNDO_SHOWN_MS = 10_000
KIND_TEXT = {"chat": "Chat", "tools": "Tool chat"}
SEARCH_SHORTCUT = "Ctrl+F"  # the window binds it; said here, in the box's placeholder


def when(timestamp: float, now: float | None = None) -> str:
    """Today: the time; this year: day and month; else the date. A stored time that is not one (an old
    import's milliseconds or Infinity) reads UNKNOWN_TIME: one such chat must not keep the list from showing."""
    moment = local_datetime(timestamp)
    today = local_datetime(now if now is not None else time.time())
    if moment is None or today is None:
        return UNKNOWN_TIME
    if moment.date() == today.date():
        return moment.strftime("%H:%M")
    return moment.strftime("%d %b" if moment.year == today.year else "%Y-%m-%d")


class SearchBox(QLineEdit):
    """The search field, driven from the keyboard: Esc clears it, a second Esc leaves it; Enter opens the
    first result and Down moves into the list."""

    cleared_empty = Signal()  # Esc on an empty box: the user is done searching
    enter_pressed = Signal()
    down_pressed = Signal()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        key = event.key()
        if key == Qt.Key.Key_Escape:
            if self.text():
                self.clear()
            else:
                self.cleared_empty.emit()
        elif key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self.enter_pressed.emit()
        elif key == Qt.Key.Key_Down:
            self.down_pressed.emit()
        else:
            super().keyPressEvent(event)


class ConversationSidebar(QWidget):
    """Shows what the window gives it (``show_conversations``) and says what the user asked for."""

    open_requested = Signal(str)
    rename_requested = Signal(str, str)  # id, the new title (edited in place; never empty)
    delete_requested = Signal(str)
    export_requested = Signal(str, str)  # id, "md" | "json"
    undo_requested = Signal(str)
    search_changed = Signal(str)
    search_left = Signal()  # Esc on the empty search box: the window puts the focus back in the prompt
    new_chat_requested = Signal()
    import_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("conversationSidebar")
        self.search = SearchBox(objectName="historySearch")
        self.search.setPlaceholderText(f"Search chats…  ({SEARCH_SHORTCUT})")
        self.search.setToolTip(f"Search titles and messages ({SEARCH_SHORTCUT}); Enter opens the first match, "
                               "Down goes to the list, Esc clears, Esc again goes back to the prompt")
        self.search.cleared_empty.connect(self.search_left)
        self.search.enter_pressed.connect(self._open_first)
        self.search.down_pressed.connect(self._enter_list)
        self.search.setClearButtonEnabled(True)
        self._search_timer = QTimer(self, singleShot=True, interval=SEARCH_DELAY_MS)
        self._search_timer.timeout.connect(lambda: self.search_changed.emit(self.search.text()))
        self.search.textChanged.connect(lambda _text: self._search_timer.start())
        self.new_button = QPushButton("New chat", objectName="sidebarNewChat")
        self.new_button.setToolTip("Start a new chat in the tab shown (Ctrl+N)")
        self.new_button.clicked.connect(self.new_chat_requested)
        self.import_button = QPushButton("Import…", objectName="importButton")
        self.import_button.setToolTip("Import a conversation exported as JSON")
        self.import_button.clicked.connect(self.import_requested)

        self.list = QListWidget(objectName="conversationList")
        # Rows are drawn to the list's width (titles cut with "…", whole in the tooltip): never sideways scrolling.
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.list.setHorizontalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.list.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.list.setEditTriggers(QAbstractItemView.EditTrigger.DoubleClicked
                                  | QAbstractItemView.EditTrigger.EditKeyPressed)  # F2, as in file managers
        self.delegate = ConversationDelegate(self.list)
        self.delegate.renamed.connect(self._renamed)
        self.delegate.refused.connect(self.show_notice)
        self.delegate.closeEditor.connect(self._editor_closed)
        self._pending: tuple[list[ConversationSummary], str | None] | None = None
        self.list.setItemDelegate(self.delegate)
        self.list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.list.customContextMenuRequested.connect(self._menu)
        self.list.itemActivated.connect(self._activated)
        self.list.itemClicked.connect(self._activated)
        self.empty = QLabel("No saved chats yet.", objectName="historyEmpty")
        self.empty.setWordWrap(True)
        self.problem = QLabel(objectName="historyProblem")
        self.problem.setWordWrap(True)
        self.problem.hide()
        self.notice = QLabel(objectName="sidebarNotice")  # why an edit was refused
        self.notice.setWordWrap(True)
        self.notice.hide()

        self.undo_bar = QWidget(objectName="undoBar")
        self.undo_text = QLabel(objectName="undoText")
        self.undo_text.setWordWrap(True)
        self.undo_button = QPushButton("Undo", objectName="undoDeleteButton")
        self.undo_button.clicked.connect(self._undo)
        undo_row = QHBoxLayout(self.undo_bar)
        undo_row.setContentsMargins(0, 0, 0, 0)
        undo_row.addWidget(self.undo_text, 1)
        undo_row.addWidget(self.undo_button)
        self.undo_bar.hide()
        self._undo_id: str | None = None
        self._undo_timer = QTimer(self, singleShot=True, interval=UNDO_SHOWN_MS)
        self._undo_timer.timeout.connect(self._hide_undo)

        buttons = QHBoxLayout()
        buttons.addWidget(self.new_button)
        buttons.addWidget(self.import_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 10, 6, 10)
        layout.setSpacing(6)
        layout.addLayout(buttons)
        layout.addWidget(self.search)
        layout.addWidget(self.problem)
        layout.addWidget(self.empty)
        layout.addWidget(self.list, 1)
        layout.addWidget(self.notice)
        layout.addWidget(self.undo_bar)

        delete = QAction("Delete", self.list)
        delete.setShortcut(QKeySequence(QKeySequence.StandardKey.Delete))
        delete.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
        delete.triggered.connect(lambda _checked=False: self._for_current(self.delete_requested))
        self.list.addAction(delete)

    # ----- showing -----
    def show_conversations(self, summaries: list[ConversationSummary], current_id: str | None) -> None:
        if self.list.state() == QAbstractItemView.State.EditingState:
            # A title is being typed (or is being saved right now): rebuilding the rows would destroy its editor.
            # Shown once the editor has closed.
            self._pending = (summaries, current_id)
            return
        self._pending = None
        searching = bool(self.search.text().strip())
        self.list.blockSignals(True)
        self.list.clear()
        now = time.time()
        for summary in summaries:
            facts = (f"{when(summary.updated, now)}  ·  {KIND_TEXT.get(summary.kind, summary.kind)}"
                     f"  ·  {count_text(summary.messages)}")
            entry = Entry(summary.title, facts, tuple(match_segments(summary.snippet or "")))
            # The plain lines are the row's text for screen readers (the delegate draws it).
            item = QListWidgetItem("\n".join(line for line in (entry.title, facts, entry.snippet) if line))
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsEditable)
            item.setData(Qt.ItemDataRole.UserRole, summary.id)
            item.setData(ENTRY_ROLE, entry)
            item.setToolTip(f"{summary.title}\n{count_text(summary.messages)} in the versions shown "
                            "(other versions of a regenerated or edited message are not counted)")
            self.list.addItem(item)
            if summary.id == current_id:
                self.list.setCurrentItem(item)
        self.list.blockSignals(False)
        self.empty.setText("No chat matches." if searching else "No saved chats yet.")
        self.empty.setVisible(not summaries)

    def show_problem(self, text: str | None) -> None:
        self.problem.setText(text or "")
        self.problem.setVisible(bool(text))

    def show_notice(self, text: str | None) -> None:
        self.notice.setText(text or "")
        self.notice.setVisible(bool(text))

    def shown_title(self, row: int) -> str:
        """The title as row ``row`` draws it (cut with "…" when the list is narrower than it)."""
        item = self.list.item(row)
        option = QStyleOptionViewItem()
        option.initFrom(self.list)
        option.rect = self.list.visualItemRect(item)
        return self.delegate.shown_title(item.data(ENTRY_ROLE), option)

    def mark_current(self, conversation_id: str) -> bool:
        """Select the chat's row (no signals); False if it is not listed."""
        ids = self.ids()
        if conversation_id not in ids:
            return False
        self.list.blockSignals(True)
        self.list.setCurrentRow(ids.index(conversation_id))
        self.list.blockSignals(False)
        return True

    def start_rename(self, conversation_id: str) -> bool:
        """Edit the chat's title in its row: Enter saves, Esc cancels. False if the chat is not listed."""
        if conversation_id not in self.ids():
            return False
        item = self.list.item(self.ids().index(conversation_id))
        self.list.setCurrentItem(item)
        self.list.scrollToItem(item)
        self.list.setFocus(Qt.FocusReason.OtherFocusReason)
        self.list.editItem(item)
        return True

    def ids(self) -> list[str]:
        return [self.list.item(row).data(Qt.ItemDataRole.UserRole) for row in range(self.list.count())]

    def offer_undo(self, conversation_id: str, title: str) -> None:
        self._undo_id = conversation_id
        self.undo_text.setText(f"Deleted “{title}”")
        self.undo_bar.show()
        self._undo_timer.start()

    # ----- user actions -----
    def focus_search(self) -> None:
        self.search.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.search.selectAll()  # typing replaces the last search

    def _open_first(self) -> None:
        self._search_timer.stop()  # Enter right after typing: search now, so the first match is this text's
        self.search_changed.emit(self.search.text())
        if self.list.count():
            self._activated(self.list.item(0))

    def _enter_list(self) -> None:
        if self.list.count():
            if self.list.currentRow() < 0:
                self.list.setCurrentRow(0)
            self.list.setFocus(Qt.FocusReason.TabFocusReason)

    def _activated(self, item: QListWidgetItem) -> None:
        if self.list.state() == QAbstractItemView.State.EditingState:
            return  # the release of a double-click that began editing: opening would take the focus away
        self.open_requested.emit(item.data(Qt.ItemDataRole.UserRole))

    def _editor_closed(self, *_args: object) -> None:
        self.show_notice(None)
        # After Qt has finished closing the editor (the view leaves EditingState after this signal).
        QTimer.singleShot(0, self._show_pending)

    def _show_pending(self) -> None:
        if self._pending is not None:
            self.show_conversations(*self._pending)

    def _renamed(self, conversation_id: str, title: str) -> None:
        self.show_notice(None)
        self.rename_requested.emit(conversation_id, title)

    def _for_current(self, signal) -> None:
        item = self.list.currentItem()
        if item is not None:
            signal.emit(item.data(Qt.ItemDataRole.UserRole))

    def _menu(self, pos: QPoint) -> None:
        item = self.list.itemAt(pos)
        if item is None:
            return
        conversation_id = item.data(Qt.ItemDataRole.UserRole)
        menu = QMenu(self)
        menu.addAction("Open", lambda: self.open_requested.emit(conversation_id))
        menu.addAction("Rename\tF2", lambda: self.start_rename(conversation_id))
        menu.addAction("Export as Markdown…", lambda: self.export_requested.emit(conversation_id, "md"))
        menu.addAction("Export as JSON…", lambda: self.export_requested.emit(conversation_id, "json"))
        menu.addSeparator()
        menu.addAction("Delete", lambda: self.delete_requested.emit(conversation_id))
        menu.popup(self.list.viewport().mapToGlobal(pos))

    def _undo(self) -> None:
        if self._undo_id is not None:
            self.undo_requested.emit(self._undo_id)
        self._hide_undo()

    def _hide_undo(self) -> None:
        self._undo_id = None
        self._undo_timer.stop()
        self.undo_bar.hide()
