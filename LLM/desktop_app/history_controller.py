"""Saved conversations in the window: the sidebar's requests carried out against the store and the pages."""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from collections.abc import Callable
from copy import deepcopy
from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QWidget

from LLM.core import Conversation, HistoryError, LLMError
from LLM.core.attachments import Blobs
from LLM.core.history import from_json_file, to_json, to_markdown

from .context import AppContext
from .pages.chat_page import ChatPage
from .widgets.conversation_list import ConversationSidebar

log = logging.getLogger(__name__)
EXPORT_FILTERS = {"md": "Markdown (*.md)", "json": "Conversation JSON (*.json)"}


def file_name(title: str, extension: str) -> str:
    """A file name from a chat's title: letters, digits, dashes."""
    stem = re.sub(r"[^\w-]+", "-", title.lower()).strip("-")[:50] or "chat"
    return f"{stem}.{extension}"


class HistoryController(QObject):
    """Owns the sidebar's view of the store: what it lists, which chat a page shows, rename, delete/undo,
    export and import. Dialogs go through the interaction facade, so tests answer them."""

    opened = Signal(str)  # a chat is shown (not when opening it was refused or failed)

    def __init__(self, ctx: AppContext, sidebar: ConversationSidebar, pages: list[ChatPage],
                 current_page: Callable[[], ChatPage], show_page: Callable[[ChatPage], None],
                 status: Callable[[str], None], parent: QWidget) -> None:
        super().__init__(parent)
        self.ctx, self.sidebar, self.pages = ctx, sidebar, pages
        self.current_page = current_page
        self._show_page, self._status, self._parent = show_page, status, parent
        self._search = ""
        sidebar.open_requested.connect(self.open)
        sidebar.rename_requested.connect(self.rename)
        sidebar.delete_requested.connect(self.delete)
        sidebar.undo_requested.connect(self.undo_delete)
        sidebar.export_requested.connect(lambda cid, fmt: self.spawn(self.export(cid, fmt), "export"))
        sidebar.import_requested.connect(lambda: self.spawn(self.import_file(), "import"))
        sidebar.search_changed.connect(self.search)
        for page in pages:
            page.conversation_saved.connect(lambda _cid: self.refresh())
        sidebar.show_problem(ctx.history_problem)
        self.refresh()

    @property
    def store(self):
        return self.ctx.history

    def spawn(self, coro, name: str) -> None:
        self.ctx.tasks.spawn_if_open(coro, name=f"history-{name}")

    # ----- the list -----
    def refresh(self) -> None:
        if self.store is None:
            self.sidebar.show_conversations([], None)
            return
        try:  # a blank search box is no search; one of only punctuation finds nothing
            summaries = self.store.list(search=self._search if self._search.strip() else None)
        except HistoryError as exc:
            self.sidebar.show_problem(str(exc))
            return
        self.sidebar.show_conversations(summaries, self.current_page().conversation.id)

    def search(self, text: str) -> None:
        self._search = text
        self.refresh()

    # ----- opening -----
    def open(self, conversation_id: str) -> None:
        for page in self.pages:
            if page.conversation.id == conversation_id:
                self._show_page(page)
                self.opened.emit(conversation_id)
                return
        if self.store is None:
            return
        try:
            conversation = self.store.load(conversation_id)
        except HistoryError as exc:
            self._status(f"Cannot open the chat: {exc}")
            return
        page = self._page_for(conversation)
        if page.busy:
            self._status("That tab is still writing an answer: stop it (Esc) or wait, then open the chat.")
            return
        page.open_conversation(conversation)
        self._show_page(page)
        # Only the current row changes: rebuilding the list under a click would lose a double-click's press.
        if not self.sidebar.mark_current(conversation_id):
            self.refresh()
        self.opened.emit(conversation_id)

    def _page_for(self, conversation: Conversation) -> ChatPage:
        return next((p for p in self.pages if p.kind == conversation.kind), self.pages[0])

    # ----- rename, delete, undo -----
    def rename(self, conversation_id: str, title: str) -> bool:
        """Save the title the user typed in the sidebar (an empty one never gets here: the row refuses it)."""
        title = title.strip()
        if self.store is None or not title:
            return False
        try:
            self.store.rename(conversation_id, title)
        except HistoryError as exc:
            self._status(f"Cannot rename: {exc}")
            return False
        for page in self.pages:
            if page.conversation.id == conversation_id:
                page.conversation.title = title
        self.refresh()
        return True

    def delete(self, conversation_id: str) -> None:
        if self.store is None:
            return
        try:
            title = self.store.load(conversation_id).title
            self.store.delete(conversation_id)
        except HistoryError as exc:
            self._status(f"Cannot delete: {exc}")
            return
        for page in self.pages:
            if page.conversation.id == conversation_id:
                page.new_chat()  # further messages must not go into a deleted chat
        self.sidebar.offer_undo(conversation_id, title)
        self.refresh()

    def undo_delete(self, conversation_id: str) -> None:
        if self.store is None:
            return
        try:
            self.store.restore(conversation_id)
        except HistoryError as exc:
            self._status(f"Cannot undo: {exc}")
            return
        self.open(conversation_id)
        self.refresh()

    # ----- export and import -----
    async def export(self, conversation_id: str | None, fmt: str) -> Path | None:
        """Markdown: the branch on screen; JSON: the whole tree. ``None``: the current page's chat."""
        conversation = self._conversation(conversation_id)
        if conversation is None:
            return None
        if not conversation.nodes:
            self._status("Nothing to export yet: this chat has no messages.")
            return None
        path = await self.ctx.interaction.choose_save_path(
            self._parent, "Export chat", file_name(conversation.title, fmt), EXPORT_FILTERS[fmt], kind="export")
        if path is None:
            return None
        files = self._files(conversation)
        snapshot = deepcopy(conversation)  # rendered off the window's thread, while the page may change it
        try:  # reads the attached files (Markdown: copies them beside the file)
            text = await asyncio.to_thread(
                lambda: to_markdown(snapshot, files, path) if fmt == "md" else to_json(snapshot, files))
            await asyncio.to_thread(path.write_text, text, encoding="utf-8")
        except OSError as exc:
            self._status(f"Cannot export to {path}: {exc.strerror or exc}")
            return None
        except LLMError as exc:
            self._status(f"Cannot export: {exc}")
            return None
        self._status(f"Exported “{conversation.title}” to {path}")
        return path

    def _files(self, conversation: Conversation) -> Blobs | None:
        """Where a conversation's attached files are: its page's (the store's, or memory's when chats are not
        saved), else the store's."""
        for page in self.pages:
            if page.conversation is conversation:
                return page.session.blobs
        return self.store.attachments if self.store is not None else None

    def _conversation(self, conversation_id: str | None) -> Conversation | None:
        if conversation_id is None:
            return self.current_page().conversation
        for page in self.pages:
            if page.conversation.id == conversation_id:
                return page.conversation
        if self.store is None:
            return None
        try:
            return self.store.load(conversation_id)
        except HistoryError as exc:
            self._status(f"Cannot export: {exc}")
            return None

    async def import_file(self) -> str | None:
        """Import an exported JSON file; a chat already in the history comes in as a copy (a new id)."""
        if self.store is None:
            self._status(self.ctx.history_problem or "Chats are not being saved: nothing to import into.")
            return None
        path = await self.ctx.interaction.choose_open_path(self._parent, "Import chat", EXPORT_FILTERS["json"],
                                                           kind="import")
        if path is None:
            return None
        try:
            # Reading and checking a file of up to 64 MiB takes a while: off the window's thread.
            conversation = await asyncio.to_thread(from_json_file, path, self.store.attachments)  # files first
            copy = self.store.exists(conversation.id)
            if copy:
                conversation.id = uuid.uuid4().hex
            self.store.save_all(conversation)
        except LLMError as exc:
            self._status(f"Cannot import: {exc}")
            return None
        self.refresh()
        self.open(conversation.id)
        self._status(f"Imported “{conversation.title}”" + (" as a copy (it was already in the history)" if copy else ""))
        return conversation.id
