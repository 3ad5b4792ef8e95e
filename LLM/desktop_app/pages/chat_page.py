"""The chat page: renders a ``ChatSession`` (transcript, prompt box, per-chat settings) and asks it to act.

Everything that happens to the conversation happens in core's session; this page turns the user's clicks
into its actions and its changes (a Qt signal) into what the window shows. Files attached to the message being
written wait in ``pending`` (pending_files.py) until Send.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import QWidget

from LLM.core import AnswerSaver, Conversation, LLMError, Message
from LLM.core.attachments import Attachment
from LLM.core.session import ChangeKind, ChatSession, SessionChange

from ..context import AppContext
from ..interaction import approval_asker
from ..widgets.attachment_chips import ThumbnailCache
from ..widgets.chat_view import ChatView
from ..widgets.settings_panel import settings_from_entry
from ..widgets.waiting_label import APPROVAL_PHASE, PROMPT_PHASE, starting_phase
from .pending_files import PendingFiles


EDITING_NOTE = "Editing a message: Send answers the new version (the old one stays as a branch); Esc cancels."
EDIT_WITH_FILES = ("An edit keeps the files of the message it edits: remove the attached files to send the edit, or "
                   "press Esc and send them with a new message.")
ATTACH_FILTER = ("Images and documents (*.png *.jpg *.jpeg *.gif *.webp *.pdf *.txt *.md *.csv *.tsv *.json *.jsonl "
                 "*.py *.js *.ts *.html *.css *.xml *.yaml *.yml *.toml *.sh *.c *.h *.cpp *.rs *.go *.java *.rb "
                 "*.sql *.ini *.log *.rst *.tex *.ipynb);;All files (*)")


def first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


class ChatPage(QWidget):
    busy_changed = Signal(bool)
    # A conversation was saved (new, answered, title changed): the sidebar may need to show it.
    conversation_saved = Signal(str)
    session_changed = Signal(object)  # the session's SessionChange, on the window's thread
    page_name = "chatPage"
    kind = "chat"
    replayable = False  # tool chat: finished answers offer edit-and-replay of their steps

    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName(self.page_name)
        self.ctx = ctx
        self.session = ChatSession(
            ctx.runtime, kind=self.kind, saver=AnswerSaver(ctx.history) if ctx.history is not None else None,
            on_change=self.session_changed.emit, spawn=ctx.tasks.spawn,
            # Asked over this page; "always" for an MCP tool is also saved in its server's autoApprove.
            ask_approval=approval_asker(ctx.interaction, self, ctx.runtime), save_always=self._save_always)
        self.session_changed.connect(self._render)
        self._settings_edited = False
        self._editing: str | None = None  # the user message being edited (Send makes a new branch)
        self.base_mode = False  # base models (model_type: base) continue a text in the completion editor
        # A send with files asks the session about them first (vision); a second Send meanwhile does nothing.
        self._sending: asyncio.Task | None = None
        self._build()
        self._set_busy(False)

    def _build(self) -> None:
        view = ChatView(self, replayable=self.replayable)
        self.transcript, self.completion_editor, self.views, self.panel, self.composer = (
            view.transcript, view.completion_editor, view.views, view.panel, view.composer)
        self.prompt, self.send_button, self.stop_button = (
            self.composer.prompt, self.composer.send_button, self.composer.stop_button)
        self.activity, self.context_meter = self.composer.activity, self.composer.context_meter
        self.attach_button = self.composer.attach_button
        self.pending = PendingFiles(self.composer, self.ctx.tasks.spawn_if_open, self)
        self.pending.changed.connect(lambda: self.composer.show_file_tokens(self.pending.tokens()))
        self.attach_button.clicked.connect(
            lambda: self.ctx.tasks.spawn_if_open(self.choose_files(), "attach-dialog"))
        self.prompt.files_given.connect(self.pending.add_paths)
        self.prompt.image_pasted.connect(self.pending.add_image)
        # Sent images in the transcript: thumbnails of the stored bytes, made off the GUI thread, once per file.
        self.thumbnails = ThumbnailCache(lambda: self.session.blobs, self.ctx.tasks.spawn_if_open, self)
        self.transcript.thumbnails = self.thumbnails
        self.transcript.waiting_phase = self._waiting_phase
        self.transcript.token_limit = self.session.token_limit
        self.transcript.continuable = self.kind == "chat"  # (a tool chat re-runs a step instead)
        self.transcript.continue_requested.connect(lambda _id: self.continue_answer())
        self.transcript.regenerate_requested.connect(lambda _id: self.regenerate())
        self.transcript.edit_requested.connect(self.begin_edit)
        self.transcript.branch_requested.connect(self.switch_branch)
        self.prompt.submitted.connect(self.send)
        self.send_button.clicked.connect(self.send)
        self.stop_button.clicked.connect(lambda: self.stop())
        self.panel.edited.connect(self._on_settings_edited)
        self.panel.reset_requested.connect(self._reset_settings)
        escape = QShortcut(QKeySequence(Qt.Key.Key_Escape), self)
        escape.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        escape.activated.connect(self._escape)

    # ----- what the session works on -----
    @property
    def conversation(self) -> Conversation:
        return self.session.conversation

    @property
    def model_id(self) -> str | None:
        return self.session.model_id

    @property
    def busy(self) -> bool:
        return self.session.busy

    @property
    def editing(self) -> str | None:
        return self._editing

    def set_model(self, model_id: str | None) -> None:
        """A model switch makes the current answer stale: the session stops it (the partial text is kept)."""
        if model_id == self.model_id:
            return
        self.session.set_model(model_id)
        # What the status line said was about the previous model (its metrics, "This is a base model…").
        self.activity.setText(EDITING_NOTE if self._editing else "")
        self.refresh_config()

    def refresh_config(self) -> None:
        """llm_backends.yaml changed (or the model did): pick up new defaults unless this chat has its own."""
        self.panel.show_model_defaults(self._entry())
        if not self._settings_edited:
            self._load_model_defaults()
        self._show_model_kind()
        self._show_context()

    def _entry(self):
        return self.ctx.config.models.get(self.model_id) if self.model_id is not None else None

    def _load_model_defaults(self) -> None:
        self.conversation.settings = settings_from_entry(self._entry())
        self.panel.load(self.conversation.settings)

    def _on_settings_edited(self) -> None:
        self._settings_edited = True
        self.conversation.settings = self.panel.settings()

    def _reset_settings(self) -> None:
        self._settings_edited = False
        self._load_model_defaults()

    def _show_model_kind(self) -> None:
        """Chat view for instruct models, the completion editor for base models."""
        entry = self._entry()
        self.base_mode = entry is not None and entry.model_type == "base"
        self.views.setCurrentWidget(self.completion_editor if self.base_mode else self.transcript)
        self.composer.set_prompt_shown(not self.base_mode)
        self.send_button.setText("Continue" if self.base_mode else "Send")

    def _show_context(self) -> None:
        entry = self._entry()
        usable = entry.effective_usable_context if entry is not None and not self.base_mode else None
        self.composer.show_context(self.session.context_used, usable)
        self.composer.show_file_tokens(self.pending.tokens())

    # ----- the user's actions -----
    def run_action(self, action: Callable[..., object], *args: object) -> bool:
        """Run a session action with the panel's settings; what stops it is said on the status line. True if it
        ran."""
        if self.model_id is None:
            self.activity.setText("Choose a model first.")
            return False
        self.conversation.settings = self.panel.settings()
        try:
            action(*args)
        except LLMError as exc:
            self.composer.show_error(first_line(exc))
            return False
        return True

    def send(self) -> None:
        if self.base_mode:
            self.continue_text()
            return
        text = self.prompt.toPlainText().strip()
        if self.busy or self._sending is not None or not (text or self.pending.files):
            return
        if self.pending.files:
            if self._editing:
                self.activity.setText(EDIT_WITH_FILES)
                return
            loading = self.pending.loading()
            if self.model_id is None:
                self.activity.setText("Choose a model first.")
            elif loading:
                self.activity.setText(f"A moment: {', '.join(f.name for f in loading)} "
                                      f"{'is' if len(loading) == 1 else 'are'} still being read.")
            else:
                self._sending = self.ctx.tasks.spawn_if_open(self._send_with_files(text), "send-with-files")
            return
        editing, self._editing = self._editing, None
        started = self.run_action(self.session.edit_and_resend, editing, text) if editing else \
            self.run_action(self.session.send, text)
        if started:
            self.prompt.clear()
        else:
            self._editing = editing

    async def _send_with_files(self, text: str) -> None:
        """Check the files against the model before anything is sent: a refusal (an image for a model without
        vision) leaves the text and the chips in the composer, with the reason on the status line."""
        sent = self.pending.ready()
        files = [loaded.attachment for _key, loaded in sent]
        self.send_button.setEnabled(False)
        try:
            model = None
            while model != self.model_id:  # (again if the model was switched while it was asked)
                model = self.model_id
                await self.session.check_files(files)
            # The bytes go to the store (a file beside the history) here, off the GUI thread: send() finds them
            # there and only refers to them.
            await asyncio.to_thread(self._store, files)
            kept = {f.key for f in self.pending.files}  # (a chip removed meanwhile is not sent)
            sent = [(key, loaded) for key, loaded in sent if key in kept]
            files = [loaded.attachment for _key, loaded in sent]
            if not (text or files):
                return
            for _key, loaded in sent:
                if loaded.thumbnail is not None:
                    self.thumbnails.put(loaded.attachment.sha256, loaded.thumbnail)
            if self.run_action(self.session.send, text, files):
                self.prompt.clear()
                self.pending.discard([key for key, _loaded in sent])
        except LLMError as exc:
            self.composer.show_error(first_line(exc))
        finally:
            self._sending = None
            self.send_button.setEnabled(not self.busy)

    def _store(self, files: list[Attachment]) -> None:
        for attachment in files:
            self.session.blobs.put(attachment)

    async def choose_files(self) -> None:
        """Attach files chosen in a dialog."""
        paths = await self.ctx.interaction.choose_open_paths(self, "Attach files", ATTACH_FILTER, kind="attach")
        self.attach_files(paths)

    def attach_files(self, paths: list[Path]) -> None:
        self.pending.add_paths(paths)
        self.prompt.setFocus()

    def regenerate(self) -> None:
        if not self.busy and self.conversation.last_assistant() is not None:
            self.run_action(self.session.regenerate)

    def continue_answer(self) -> None:
        """The last answer, cut at the token limit, written on from where it stopped (a new version of it)."""
        if not self.busy:
            self.run_action(self.session.continue_answer)

    def continue_text(self) -> None:
        """Base models: the editor's text is the prompt; the model's continuation is appended to it."""
        if self.busy or self.model_id is None:
            return
        if self.run_action(self.session.continue_text, self.completion_editor.toPlainText()):
            self.activity.setText("Writing…")

    def stop(self, reason: str | None = None) -> None:
        self.session.stop(reason)

    def begin_edit(self, message_id: str) -> None:
        """Put a user message back in the prompt box; Send makes the edit a new branch, Esc cancels."""
        message = self.conversation.nodes.get(message_id)
        if message is None or message.role != "user":
            return
        if self.busy:
            self.activity.setText("Stop the answer first (Esc) to edit a message.")
            return
        self._editing = message_id
        self.prompt.setPlainText(message.content)
        self.prompt.setFocus()
        self.activity.setText(EDITING_NOTE)

    def cancel_edit(self) -> None:
        if self._editing is not None:
            self._editing = None
            self.prompt.clear()
            self.activity.setText("")

    def _escape(self) -> None:
        if self.busy:
            self.stop()
        else:
            self.cancel_edit()

    def switch_branch(self, message_id: str, step: int) -> None:
        """Show another version of a message (and the conversation that followed it)."""
        if self.busy:
            self.activity.setText("Stop the answer first (Esc) to switch versions.")
            return
        if message_id in self.conversation.nodes:
            self.cancel_edit()
            self.session.switch_branch(message_id, step)

    def new_chat(self) -> None:
        self.cancel_edit()
        self._settings_edited = False
        self.session.new_chat()
        self.completion_editor.clear()
        self._load_model_defaults()
        self.prompt.setFocus()

    def open_conversation(self, conversation: Conversation) -> None:
        """Show a saved conversation; the next message continues its active branch."""
        self.cancel_edit()
        self._settings_edited = True  # the chat keeps the settings it was written with
        self.session.open(conversation)
        self.panel.load(conversation.settings)
        self.prompt.setFocus()

    def _save_always(self, server: str, tool: str) -> None:
        if self.ctx.runtime.mcp is not None:  # (an MCP tool's "always" comes only while MCP runs)
            self.ctx.runtime.mcp.always_allow(server, tool)

    # ----- rendering the session's changes -----
    def _render(self, change: SessionChange) -> None:
        kind, message = change.kind, change.message
        if kind is ChangeKind.SHOWN:
            self.transcript.show_messages(self.conversation.messages, self._author)
            self._show_branches()
            self._show_context()
        elif kind is ChangeKind.ADDED and message is not None:
            self.transcript.add_message(message, self._author(message))
            self._show_branches()
        elif kind is ChangeKind.STREAMED and message is not None:
            self._render_streamed(change, message)
        elif kind is ChangeKind.WAITING and message is not None:
            self.activity.setText(change.text)
            self.transcript.render_now(message)
        elif kind is ChangeKind.FINISHED and message is not None:
            if message.id not in self.conversation.nodes:  # a base model's continuation
                if message.model_id != self.model_id:
                    return  # stopped by a switch: its metrics are not the chosen model's
                self.activity.setText(message.error.splitlines()[0] if message.error else message.metrics.summary())
            else:
                self.transcript.render_now(message)
        elif kind is ChangeKind.BUSY:
            self._set_busy(self.busy)
        elif kind is ChangeKind.SAVED:
            self.conversation_saved.emit(change.text)
        elif kind is ChangeKind.NOT_SAVED:
            self.activity.setText(f"Not saved: {change.text}" if change.text else "Not saved")
        elif kind is ChangeKind.NOTE:
            self.activity.setText(change.text)

    def _render_streamed(self, change: SessionChange, message: Message) -> None:
        if change.what in ("usage", "step"):
            self._show_context()
        if message.id not in self.conversation.nodes:  # a base model's continuation: the editor shows it
            if change.what == "text":
                cursor = self.completion_editor.textCursor()
                cursor.movePosition(cursor.MoveOperation.End)
                cursor.insertText(change.event.text)  # type: ignore[union-attr]
        elif change.visible:
            self.transcript.schedule(message)

    def _waiting_phase(self, message: Message) -> str:
        """What an answer that has not begun waits for, in words (asked once a second)."""
        waiting = self.session.waiting_for(message)
        if waiting == "starting":
            entry = self.ctx.config.models.get(message.model_id or "")
            return starting_phase(entry.label if entry is not None else message.model_id or "the model")
        return APPROVAL_PHASE if waiting == "approval" else PROMPT_PHASE

    def _show_branches(self) -> None:
        for widget in self.transcript.message_widgets():
            message = self.conversation.nodes.get(widget.message_id)
            if message is not None:
                widget.set_branch(*self.conversation.branch_position(message))

    def _author(self, message: Message) -> str:
        if message.role == "user":
            return "You"
        entry = self.ctx.config.models.get(message.model_id or "")
        return entry.label if entry is not None else (message.model_id or "Assistant")

    def _set_busy(self, busy: bool) -> None:
        self.send_button.setEnabled(not busy)
        self.stop_button.setEnabled(busy)
        if not busy and not self.base_mode:
            self.activity.setText("")
        self.busy_changed.emit(busy)
