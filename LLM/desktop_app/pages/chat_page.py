"""The chat page: a transcript, a prompt box and the per-chat settings; streams answers from core."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeyEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSplitter,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from LLM.core import (
    AnswerSaver,
    Conversation,
    Done,
    InferenceConfig,
    LLMError,
    Message,
    MetricsMeter,
    ReasoningDelta,
    ServerExitedError,
    TextDelta,
    Usage,
    stop_generation,
    stream_inference,
)

from ..context import AppContext
from ..widgets.settings_panel import GenerationPanel, settings_from_entry
from ..widgets.transcript import TranscriptView

log = logging.getLogger(__name__)
# When the server is faster than the window, buffered events arrive without the stream ever
# suspending, so one task step could drain thousands of them while Qt waits. The consumer
# hands the loop back after this much work: input, timers and painting stay smooth.
STEP_BUDGET_S = 0.003
# What a saved answer records of the request that produced it.
RECORDED_PARAMS = {"system_prompt", "temperature", "top_p", "max_new_tokens", "stop", "seed", "tools", "tool_mode",
                   "tool_choice", "max_iterations"}


class PromptEdit(QPlainTextEdit):
    """Enter sends, Shift+Enter inserts a new line."""

    submitted = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("promptEdit")
        self.setPlaceholderText("Message the model…  (Enter to send, Shift+Enter for a new line)")
        self.setTabChangesFocus(True)
        self.setFixedHeight(76)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and not (
            event.modifiers() & Qt.KeyboardModifier.ShiftModifier
        ):
            self.submitted.emit()
            return
        super().keyPressEvent(event)


def describe_error(exc: BaseException) -> str:
    """An error as the answer shows it: type, message (with the server's log tail), what to do."""
    text = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, ServerExitedError):
        text += "\n\nThe server will be restarted when you send the next message."
    return text


@dataclass
class ActiveRequest:
    """The one request a page treats as current; events of any other are ignored."""

    request_id: str
    message: Message
    conversation: Conversation | None = None  # None for a base model's continuation (not a chat turn)
    meter: MetricsMeter = field(default_factory=MetricsMeter)
    finish_reason: str | None = None
    task: asyncio.Task[Any] | None = None


class ChatPage(QWidget):
    busy_changed = Signal(bool)
    # A conversation was saved (new, answered, title changed): the sidebar may need to show it.
    conversation_saved = Signal(str)
    page_name = "chatPage"
    kind = "chat"
    replayable = False  # tool chat: finished answers offer edit-and-replay of their steps

    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName(self.page_name)
        self.ctx = ctx
        self.model_id: str | None = None
        self.conversation = Conversation(kind=self.kind)
        self.saver = AnswerSaver(ctx.history) if ctx.history is not None else None
        self._active: ActiveRequest | None = None
        self._settings_edited = False
        self._editing: str | None = None  # the user message being edited (Send makes a new branch)

        self.transcript = TranscriptView(replayable=self.replayable)
        self.transcript.regenerate_requested.connect(lambda _id: self.regenerate())
        self.transcript.edit_requested.connect(self.begin_edit)
        self.transcript.branch_requested.connect(self.switch_branch)
        self.prompt = PromptEdit()
        self.prompt.submitted.connect(self.send)
        self.send_button = QPushButton("Send", objectName="sendButton")
        self.send_button.setDefault(True)
        self.send_button.clicked.connect(self.send)
        self.stop_button = QPushButton("Stop", objectName="stopButton")
        self.stop_button.setToolTip("Stop the answer (Esc)")
        self.stop_button.clicked.connect(lambda: self.stop())
        self.new_chat_button = QPushButton("New chat", objectName="newChatButton")
        self.new_chat_button.clicked.connect(self.new_chat)
        self.activity = QLabel(objectName="activityLabel")
        self.context_meter = QLabel(objectName="contextMeter")
        self.context_meter.setToolTip("Tokens of this chat the model saw on the last answer (prompt + answer, as "
                                      "the engine counted them) / the tokens of history a request may use "
                                      "(usable_context); older turns are left out beyond it")
        self._context_used: int | None = None
        # Base models (model_type: base) have no chat template: they continue a text, shown here instead.
        self.completion_editor = QPlainTextEdit(objectName="completionEditor")
        self.completion_editor.setPlaceholderText(
            "This is a base model: write the beginning of a text and press Continue; the model writes on.")
        self.base_mode = False

        for fixed in (self.send_button, self.stop_button):  # their size, also when the prompt box is hidden
            fixed.setSizePolicy(QSizePolicy.Policy.Maximum, QSizePolicy.Policy.Fixed)
        buttons = QVBoxLayout()
        buttons.setSpacing(6)
        buttons.addWidget(self.send_button)
        buttons.addWidget(self.stop_button)
        buttons.addStretch(1)
        input_row = QHBoxLayout()
        input_row.setSpacing(8)
        input_row.addStretch(0)  # takes the room only while the prompt box is hidden (base models)
        input_row.addWidget(self.prompt, 1)
        input_row.addLayout(buttons)
        footer = QHBoxLayout()
        footer.addWidget(self.new_chat_button)
        footer.addWidget(self.activity, 1)
        footer.addWidget(self.context_meter)

        chat = QWidget(objectName="chatColumn")
        column = QVBoxLayout(chat)
        column.setContentsMargins(0, 0, 0, 8)
        column.setSpacing(8)
        self.views = QStackedWidget(objectName="chatViews")
        self.views.addWidget(self.transcript)
        self.views.addWidget(self.completion_editor)
        column.addWidget(self.views, 1)
        inputs = QVBoxLayout()
        inputs.setContentsMargins(16, 0, 16, 0)
        inputs.setSpacing(6)
        inputs.addLayout(input_row)
        inputs.addLayout(footer)
        column.addLayout(inputs)

        self.panel = GenerationPanel()
        self.panel.edited.connect(self._on_settings_edited)
        self.panel.reset_requested.connect(self._reset_settings)
        side = QScrollArea(objectName="sidePanel")
        side.setWidget(self.panel)
        side.setWidgetResizable(True)
        side.setMinimumWidth(240)

        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(chat)
        splitter.addWidget(side)
        splitter.setStretchFactor(0, 1)
        splitter.setStretchFactor(1, 0)
        splitter.setSizes([820, 280])
        splitter.setChildrenCollapsible(False)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(splitter)

        escape = QShortcut(QKeySequence(Qt.Key.Key_Escape), self)
        escape.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        escape.activated.connect(self._escape)
        self._set_busy(False)

    # ----- model and settings -----
    def set_model(self, model_id: str | None) -> None:
        """A model switch makes the current answer stale: stop it (the partial text is kept)."""
        if model_id == self.model_id:
            return
        if self._active is not None:
            self.stop("model switched")
        self.model_id = model_id
        if not self._settings_edited:
            self._load_model_defaults()
        self._show_model_kind()
        self._show_context()

    def _entry(self):
        if self.model_id is None:
            return None
        return self.ctx.config.models.get(self.model_id)

    def _load_model_defaults(self) -> None:
        self.conversation.settings = settings_from_entry(self._entry())
        self.panel.load(self.conversation.settings)

    def _on_settings_edited(self) -> None:
        self._settings_edited = True
        self.conversation.settings = self.panel.settings()

    def _reset_settings(self) -> None:
        self._settings_edited = False
        self._load_model_defaults()

    def refresh_config(self) -> None:
        """llm_backends.yaml changed: pick up new defaults unless this chat has its own."""
        if not self._settings_edited:
            self._load_model_defaults()
        self._show_model_kind()
        self._show_context()

    def _show_model_kind(self) -> None:
        """Chat view for instruct models, the completion editor for base models."""
        entry = self._entry()
        self.base_mode = entry is not None and entry.model_type == "base"
        self.views.setCurrentWidget(self.completion_editor if self.base_mode else self.transcript)
        self.prompt.setVisible(not self.base_mode)
        self.send_button.setText("Continue" if self.base_mode else "Send")

    def _show_context(self) -> None:
        entry = self._entry()
        if entry is None or self.base_mode:
            self.context_meter.setText("")
            return
        usable = entry.effective_usable_context
        used = "—" if self._context_used is None else f"{self._context_used:,}"
        self.context_meter.setText(f"Context {used} / {usable:,} tokens")
        full = self._context_used is not None and self._context_used > 0.9 * usable
        self.context_meter.setProperty("full", full)
        self.context_meter.style().unpolish(self.context_meter)
        self.context_meter.style().polish(self.context_meter)

    # ----- actions -----
    @property
    def busy(self) -> bool:
        return self._active is not None

    def send(self) -> None:
        if self.base_mode:
            self.continue_text()
            return
        text = self.prompt.toPlainText().strip()
        if self.busy or not text:
            return
        if self.model_id is None:
            self.activity.setText("Choose a model first.")
            return
        self.prompt.clear()
        if self._editing is not None:
            user = self.conversation.edit(self._editing, text)
            self._editing = None
            self._show_path()
        else:
            user = self.conversation.add_user(text)
            self.transcript.add_message(user, "You")
        self._save(self.conversation, user)
        self._start(self.conversation.add_assistant(self.model_id))

    def regenerate(self) -> None:
        if self.busy or self.model_id is None or self.conversation.last_assistant() is None:
            return
        old = self.conversation.last_assistant()
        assert old is not None
        self.transcript.remove_message(old.id)
        self._start(self.conversation.regenerate(self.model_id))

    # ----- branches and saved conversations -----
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
        self.activity.setText("Editing a message: Send answers the new version (the old one stays as a branch); "
                              "Esc cancels.")

    def cancel_edit(self) -> None:
        if self._editing is not None:
            self._editing = None
            self.prompt.clear()
            self.activity.setText("")

    @property
    def editing(self) -> str | None:
        return self._editing

    def _escape(self) -> None:
        if self.busy:
            self.stop()
        else:
            self.cancel_edit()

    def switch_branch(self, message_id: str, step: int) -> None:
        """Show another version of a message (and the conversation that followed it)."""
        if message_id not in self.conversation.nodes:
            return
        if self.busy:
            self.activity.setText("Stop the answer first (Esc) to switch versions.")
            return
        self.cancel_edit()
        self.conversation.switch_branch(message_id, step)
        if self.ctx.history is not None:
            try:
                self.ctx.history.save_conversation(self.conversation)
            except LLMError as exc:
                self.activity.setText(f"Not saved: {str(exc).splitlines()[0]}")
        self._show_path()

    def open_conversation(self, conversation: Conversation) -> None:
        """Show a saved conversation; the next message continues its active branch."""
        if self._active is not None:
            self.stop("opened another chat")
        self.cancel_edit()
        self.conversation = conversation
        self._on_new_chat()
        self._context_used = None
        self._show_context()
        self._settings_edited = True  # the chat keeps the settings it was written with
        self.panel.load(conversation.settings)
        self._show_path()
        self.prompt.setFocus()

    def _show_path(self) -> None:
        self.transcript.show_messages(self.conversation.messages, self._author)
        self._show_branches()

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

    def _save(self, conversation: Conversation, message: Message, *, announce: bool = True) -> None:
        if self.saver is None:
            return
        if not self.saver.save(conversation, message):
            problem = self.saver.problem
            self.activity.setText(f"Not saved: {str(problem).splitlines()[0]}" if problem else "Not saved")
        elif announce:
            self.conversation_saved.emit(conversation.id)

    def continue_text(self) -> None:
        """Base models: the editor's text is the prompt; the model's continuation is appended to it."""
        text = self.completion_editor.toPlainText()
        if self.busy or self.model_id is None:
            return
        if not text.strip():
            self.activity.setText("Write the beginning of a text first.")
            return
        message = Message("assistant", status="pending", model_id=self.model_id)
        try:
            kwargs = self._generation_kwargs()
            kwargs.pop("system_prompt")  # a base model has no system turn
            cfg = InferenceConfig(model_id=self.model_id, prompt=text, **kwargs)
        except LLMError as exc:
            self.activity.setText(describe_error(exc).splitlines()[0])
            return
        active = ActiveRequest(cfg.request_id, message)
        self._active = active
        self._set_busy(True)
        self.activity.setText("Writing…")
        active.task = self.ctx.tasks.spawn(self._consume(active, cfg), name=f"complete-{cfg.request_id}")

    def new_chat(self) -> None:
        if self._active is not None:
            self.stop("new chat")
        self.cancel_edit()
        self.conversation = Conversation(kind=self.kind)
        self._context_used = None
        self._show_context()
        self.completion_editor.clear()
        self.transcript.clear()
        self._settings_edited = False
        self._load_model_defaults()
        self._on_new_chat()
        self.prompt.setFocus()

    def _on_new_chat(self) -> None:
        """Hook for subclasses (the tool page resets its per-chat approvals)."""

    def stop(self, reason: str | None = None) -> None:
        """Cancel the current request now: its task (and so its HTTP stream) is cancelled, the
        partial answer is kept, marked stopped (with ``reason`` when it was not the user's Stop)
        and finished as "cancelled", and the page is usable at once."""
        active = self._active
        if active is None:
            return
        self._active = None
        if active.task is not None:
            stop_generation(active.task)
        active.message.stop_reason = reason
        self._finish(active, "stopped", "cancelled")
        self._set_busy(False)

    # ----- one request -----
    def start_replay(self, message: Message) -> None:
        """Answer with ``message``, a new version that already holds what it keeps of the old one."""
        self.cancel_edit()
        self._show_path()
        self._start(message, shown=True)

    def _start(self, message: Message, *, shown: bool = False) -> None:
        entry = self._entry()
        conversation = self.conversation
        if not shown:
            self.transcript.add_message(message, self._author(message))
        self._show_branches()
        if entry is not None:
            message.backend, message.adapter = entry.backend, entry.adapter_dir
        try:
            cfg = self._request_config(message)
        except LLMError as exc:  # e.g. a parameter the model's defaults make invalid
            message.status, message.error = "failed", describe_error(exc)
            self.transcript.render_now(message)
            self._save(conversation, message)
            return
        message.params = cfg.model_dump(include=RECORDED_PARAMS, exclude_none=True)
        self._save(conversation, message, announce=False)
        active = ActiveRequest(cfg.request_id, message, conversation)
        self._active = active
        self._set_busy(True)
        active.task = self.ctx.tasks.spawn(self._consume(active, cfg), name=f"answer-{cfg.request_id}")

    def _request_config(self, message: Message) -> InferenceConfig:
        return InferenceConfig(model_id=self.model_id, messages=self.conversation.history(upto=message),
                               **self._generation_kwargs())

    def _generation_kwargs(self) -> dict[str, Any]:
        settings = self.panel.settings()
        self.conversation.settings = settings
        return {
            "system_prompt": settings.system_prompt,
            "temperature": settings.temperature,
            "top_p": settings.top_p,
            "max_new_tokens": settings.max_new_tokens,
            "stop": settings.stop or None,
        }

    def _events(self, cfg: InferenceConfig) -> AsyncIterator[Any]:
        return stream_inference(cfg, self.ctx.runtime)

    async def _consume(self, active: ActiveRequest, cfg: InferenceConfig) -> None:
        try:
            async with aclosing(self._events(cfg)) as events:
                yield_at = time.perf_counter() + STEP_BUDGET_S
                async for event in events:
                    if self._active is not active:
                        return  # stale: stopped or switched while this event was in flight
                    self._apply(active, event)
                    if self.saver is not None and active.conversation is not None:
                        self.saver.changed(active.conversation, active.message)  # about once a second
                    if time.perf_counter() > yield_at:
                        await asyncio.sleep(0)
                        yield_at = time.perf_counter() + STEP_BUDGET_S
            if self._active is active:
                self._finish(active, "done", active.finish_reason or "stop")
        except LLMError as exc:
            if self._active is active:
                self._finish(active, "failed", "error", describe_error(exc))
        except asyncio.CancelledError:
            raise  # stop() already recorded the partial answer
        except Exception as exc:  # a bug here must still leave the page usable
            log.exception("answer %s failed", active.request_id)
            if self._active is active:
                self._finish(active, "failed", "error", f"internal error: {exc!r}")
        finally:
            if self._active is active:
                self._active = None
                self._set_busy(False)

    def _apply(self, active: ActiveRequest, event: Any) -> None:
        message = active.message
        if isinstance(event, TextDelta):
            active.meter.delta()
            message.append_text(event.text)
            message.status = "streaming"
            if self.base_mode:
                cursor = self.completion_editor.textCursor()
                cursor.movePosition(cursor.MoveOperation.End)
                cursor.insertText(event.text)
            else:
                self.transcript.schedule(message)
        elif isinstance(event, ReasoningDelta):
            active.meter.delta()
            message.reasoning += event.text
            message.status = "streaming"
            self.transcript.schedule(message)
        elif isinstance(event, Usage):
            active.meter.usage(event.prompt_tokens, event.completion_tokens, tokens_per_second=event.tokens_per_second)
            self._note_context(event.prompt_tokens, event.completion_tokens)
        elif isinstance(event, Done):
            active.finish_reason = event.finish_reason

    def _note_context(self, prompt_tokens: int | None, completion_tokens: int | None) -> None:
        if prompt_tokens is not None:
            self._context_used = prompt_tokens + (completion_tokens or 0)
            self._show_context()

    def _finish(self, active: ActiveRequest, status: str, finish_reason: str, error: str | None = None) -> None:
        message = active.message
        message.status = status  # type: ignore[assignment]
        message.error = error
        message.metrics = active.meter.snapshot(finish_reason)
        if active.conversation is not None:
            self._save(active.conversation, message)
        if self.base_mode:
            summary = error.splitlines()[0] if error else message.metrics.summary()
            self.activity.setText(summary)
            return
        self.transcript.render_now(message)

    def _set_busy(self, busy: bool) -> None:
        self.send_button.setEnabled(not busy)
        self.stop_button.setEnabled(busy)
        self.new_chat_button.setEnabled(True)
        if not busy and not self.base_mode:
            self.activity.setText("")
        self.busy_changed.emit(busy)
