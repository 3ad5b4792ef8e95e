"""The transcript view: one widget per message, re-rendering only the streaming one, throttled."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from PySide6.QtCore import QTimer, Qt, Signal
from PySide6.QtGui import QFont, QFontDatabase, QGuiApplication
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from LLM.core import Message, Notice, TextPart, ToolCard
from LLM.core.session import edited_cards

from .attachment_chips import FilesRow, ThumbnailCache
from .code_block import preload_lexers
from .elided_label import ElidedLabel
from .markdown_view import PlainTextView
from .segmented_markdown import SegmentedMarkdown
from .waiting_label import APPROVAL_PHASE, WaitingLabel

RENDER_INTERVAL_MS = 40  # at most ~25 refreshes a second, however fast tokens arrive
# A saved conversation opens with its newest messages; older ones render on demand, so a chat of
# thousands of messages opens as fast as a short one.
SHOWN_AT_ONCE = 40
MAX_TOOL_OUTPUT_SHOWN = 4000  # a tool may return 100k characters; the card shows the start

STATUS_TEXT = {
    "pending": "waiting…",
    "streaming": "writing…",
    "done": "",
    "stopped": "stopped",
    "failed": "failed",
}


def mono_font() -> QFont:
    return QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)


def _label(text: str = "", *, name: str | None = None, selectable: bool = False, mono: bool = False) -> QLabel:
    label = QLabel(text)
    label.setWordWrap(True)
    label.setTextFormat(Qt.TextFormat.PlainText)
    if name:
        label.setObjectName(name)
    if selectable:
        label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    if mono:
        label.setFont(mono_font())
    return label


def link_button(text: str, name: str, tip: str = "", *, checkable: bool = False) -> QToolButton:
    """A card's action (Copy, Regenerate, step 2, Edit arguments…): drawn as a link (the palette's link colour, a
    frame on hover and on focus, by the window's stylesheet), with a pointing hand, and reached with Tab."""
    button = QToolButton(text=text, objectName=name, autoRaise=True, checkable=checkable)
    button.setProperty("link", True)
    button.setCursor(Qt.CursorShape.PointingHandCursor)
    button.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
    if tip:
        button.setToolTip(tip)
    return button


def _restyle(widget: QWidget) -> None:
    # Dynamic properties drive the stylesheet; Qt only re-reads them on an explicit polish.
    style = widget.style()
    style.unpolish(widget)
    style.polish(widget)


class ToolCardWidget(QFrame):
    """A tool call: name, source, arguments as JSON, then the result or error and its duration; once the
    answer is finished, the experimenter's actions (edit the call or its result and go on, re-run the step)."""

    action_requested = Signal(str)  # edit_arguments | edit_result | rerun_step

    def __init__(self, card: ToolCard, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("toolCard")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 8, 10, 8)
        layout.setSpacing(4)
        self.title = _label(name="toolCardTitle")
        # A replay's edit of this call (its arguments or its result): said on the card, the original one hover away.
        self.edited_tag = _label(name="editedTag")
        self.edited_tag.setWordWrap(False)
        self.edited_tag.hide()
        title_row = QHBoxLayout()
        title_row.setContentsMargins(0, 0, 0, 0)
        title_row.addWidget(self.title, 1)
        title_row.addWidget(self.edited_tag, 0, Qt.AlignmentFlag.AlignTop)
        # Arguments and results are often one unbreakable run (a URL, an expression, a base64 blob): they wrap anywhere.
        self.arguments = PlainTextView(name="toolCardArguments", font=mono_font())
        self.result = PlainTextView(name="toolCardResult", font=mono_font())
        # What a grammar-forced call was held to beyond the schema (strings capped): from the call's step.
        self.note = _label(name="toolCardNote")
        self.note.hide()
        layout.addLayout(title_row)
        for widget in (self.note, self.arguments, self.result):
            layout.addWidget(widget)
        self.actions = QWidget(objectName="toolCardActions")
        row = QHBoxLayout(self.actions)
        row.setContentsMargins(0, 0, 0, 0)
        for action, name, text, tip in (
            ("edit_arguments", "editArgumentsButton", "Edit arguments…", "Change this call's arguments, run it "
             "again and let the model go on from there (the answer as it was stays a branch)"),
            ("edit_result", "editResultButton", "Edit result…", "Change what the tool returned and let the model "
             "go on from there"),
            ("rerun_step", "rerunStepButton", "Re-run step", "Ask the model again for this step, with the model, "
             "tool mode and tool choice chosen now"),
        ):
            button = link_button(text, name, tip)
            button.clicked.connect(lambda _checked=False, a=action: self.action_requested.emit(a))
            row.addWidget(button)
        row.addStretch(1)
        self.actions.hide()
        layout.addWidget(self.actions)
        self._shown: tuple | None = None
        self.update_from(card)

    def update_from(self, card: ToolCard, note: str = "") -> None:
        key = (card.ok, card.output, card.error, card.duration_ms, note)
        if key == self._shown:
            return
        self._shown = key
        self.note.setText(note)
        self.note.setVisible(bool(note))
        source = "native call" if card.source == "native" else "parsed from text (fallback)"
        if card.ok is None:
            state, outcome = "running…", "pending"
        elif card.ok:
            state, outcome = "ok", "ok"
        else:
            state, outcome = "error", "error"
        duration = f"  ·  {card.duration_ms:.1f} ms" if card.duration_ms is not None else ""
        self.title.setText(f"{card.name}  ·  step {card.iteration}  ·  {source}  ·  {state}{duration}")
        self.arguments.setText(card.arguments_json)
        if card.ok is None:
            self.result.setText(card.output or "…")
        elif card.ok:
            output = card.output
            if len(output) > MAX_TOOL_OUTPUT_SHOWN:
                hidden = len(output) - MAX_TOOL_OUTPUT_SHOWN
                output = output[:MAX_TOOL_OUTPUT_SHOWN] + f"\n… ({hidden} more characters)"
            self.result.setText(f"→ {output}")
        else:
            self.result.setText(f"✗ {card.error}")
        self.setProperty("outcome", outcome)
        _restyle(self)

    def set_edited(self, what: str, original: str) -> None:
        """``what`` the user edited in a replay (``arguments``, ``result``; "" for nothing), and where the original
        is."""
        self.edited_tag.setText(f"edited {what}" if what else "")
        self.edited_tag.setToolTip(original)
        self.edited_tag.setVisible(bool(what))

    def text(self) -> str:
        note = [self.note.text()] if self.note.text() else []
        return "\n".join((self.title.text(), *note, self.arguments.text(), self.result.text()))


def _original(message: Message, index: int, what: str) -> str:
    """Where the original of an edited call or result is, for the tag's tooltip."""
    card = message.tool_cards[index]
    notes = []
    if "arguments" in what:
        step = next((s for s in message.steps if s.iteration == card.iteration), None)
        calls = [c for c in step.calls if c.get("name") == card.name] if step is not None else []
        model = f"\n{json.dumps(calls[0].get('arguments'), ensure_ascii=False)}" if len(calls) == 1 else ""
        notes.append(f"You changed the arguments the model sent.{model}\nThe model's own call is in step "
                     f"{card.iteration}'s raw exchange (Parsed).")
    if "result" in what:
        notes.append("You changed what the tool returned; the previous version of this answer (‹) has the tool's "
                     "own result.")
    return "\n".join(notes)


class ReasoningBox(QFrame):
    """An answer's reasoning, opened: labelled, indented behind a rule, smaller, italic and in the palette's muted
    text colour, so it never reads as the answer."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("reasoningBox")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 2, 0, 2)  # (the rule is the stylesheet's left border)
        layout.setSpacing(2)
        layout.addWidget(_label("Reasoning", name="reasoningLabel"))
        self.view = SegmentedMarkdown(self, markdown=False)
        self.view.setObjectName("reasoningView")
        font = self.view.font()
        font.setItalic(True)
        font.setPointSizeF(font.pointSizeF() * 0.9)
        self.view.setFont(font)  # (inherited by the views the text is shown in; their colour is the stylesheet's)
        layout.addWidget(self.view)


class NoticeWidget(QLabel):
    def __init__(self, notice: Notice, parent: QWidget | None = None) -> None:
        super().__init__(f"{notice.kind.replace('_', ' ')}: {notice.message}", parent)
        self.setObjectName("loopNotice")
        self.setWordWrap(True)
        self.setTextFormat(Qt.TextFormat.PlainText)

    def text_for_tests(self) -> str:
        return self.text()


class MessageWidget(QFrame):
    """One message. ``update_from`` is incremental: only what changed since the last call is redrawn."""

    copy_requested = Signal(str)
    regenerate_requested = Signal(str)
    edit_requested = Signal(str)
    branch_requested = Signal(str, int)  # message id, -1 (previous version) or +1 (next)
    inspect_requested = Signal(str, int)  # message id, step index
    card_action_requested = Signal(str, int, str)  # message id, tool card index, action
    continue_requested = Signal(str)  # message id (an answer cut at the token limit)

    def __init__(self, message: Message, author: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.message_id = message.id
        self.setObjectName("message")
        self.setProperty("role", message.role)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 8, 12, 8)
        layout.setSpacing(4)

        header = QHBoxLayout()
        header.setSpacing(8)
        # The name and the status give way (elided) so that the buttons at the right always fit the card.
        self.author = ElidedLabel(author, name="messageAuthor")
        self.badge = ElidedLabel(name="messageStatus")
        self.copy_button = link_button("Copy", "copyButton", "Copy this message as Markdown")
        self.regenerate_button = link_button(
            "Regenerate", "regenerateButton", "Answer the last message again (the old answer is kept as a branch)")
        self.regenerate_button.hide()
        self.edit_button = link_button("Edit", "editButton",
                                       "Edit and send again (the conversation so far is kept as a branch)")
        if message.role != "user":
            self.edit_button.hide()  # (never setVisible(True) before the layout parents it: a stray window)
        # The branch switcher: ‹ 2/3 › when edits or regenerations made other versions of this message.
        self.branch_prev = link_button("‹", "branchPrev", "Previous version")
        self.branch_label = _label(name="branchLabel")
        self.branch_label.setWordWrap(False)
        self.branch_next = link_button("›", "branchNext", "Next version")
        header.addWidget(self.author)
        header.addWidget(self.badge)
        header.addStretch(1)
        for widget in (self.branch_prev, self.branch_label, self.branch_next):
            widget.hide()
            header.addWidget(widget)
        header.addWidget(self.edit_button)
        header.addWidget(self.copy_button)
        header.addWidget(self.regenerate_button)
        layout.addLayout(header)

        # Reasoning is collapsed: a toggle plus a view that is only filled while it is open.
        self.reasoning_toggle = link_button("", "reasoningToggle", "Show or hide how the model reasoned",
                                            checkable=True)
        self.reasoning_toggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.reasoning_toggle.setArrowType(Qt.ArrowType.RightArrow)
        self.reasoning_toggle.hide()
        self.reasoning_box = ReasoningBox(self)
        self.reasoning_view = self.reasoning_box.view
        self.reasoning_box.hide()
        self.reasoning_toggle.toggled.connect(self._toggle_reasoning)
        layout.addWidget(self.reasoning_toggle, 0, Qt.AlignmentFlag.AlignLeft)
        layout.addWidget(self.reasoning_box)

        # A user message's files (thumbnails, document chips): above its text, set once by ``show_files``.
        self.files_row: FilesRow | None = None
        self._files_at = layout.count()
        self._parts_layout = QVBoxLayout()
        self._parts_layout.setSpacing(6)
        layout.addLayout(self._parts_layout)
        self._part_widgets: list[QWidget] = []

        # What an answer that has not begun waits for, and how long; the page knows the phase (``phase_of``).
        self.phase_of: Callable[[Message], str] = lambda _message: ""
        self.waiting = WaitingLabel()
        self.waiting.phase = lambda: self.phase_of(self._message)
        self.waiting.hide()
        layout.addWidget(self.waiting)
        self.error = PlainTextView(name="messageError", font=mono_font())  # may name a long path: wraps anywhere
        self.error.hide()
        layout.addWidget(self.error)
        self.metrics = _label(name="messageMetrics")
        self.metrics.hide()
        layout.addWidget(self.metrics)
        # An answer the token limit cut short says so, naming the limit; the last one offers to go on.
        self.token_limit: Callable[[Message], int | None] = lambda _message: None  # the page knows the limit
        self.cut_row = QWidget(objectName="cutRow")
        cut_layout = QHBoxLayout(self.cut_row)
        cut_layout.setContentsMargins(0, 0, 0, 0)
        self.cut_note = _label(name="cutNote")
        self.continue_button = QPushButton("Continue", objectName="continueButton")
        self.continue_button.setToolTip("Write on from where the answer was cut (the cut answer is kept as a branch)")
        self.continue_button.hide()
        cut_layout.addWidget(self.cut_note, 1)
        cut_layout.addWidget(self.continue_button, 0, Qt.AlignmentFlag.AlignTop)
        self.cut_row.hide()
        layout.addWidget(self.cut_row)
        self._continuable = False  # the last answer of a page that can continue one
        # Tool chat: one button per request of the loop, opening its raw exchange.
        self.steps_row = QWidget(objectName="stepsRow")
        self._steps_layout = QHBoxLayout(self.steps_row)
        self._steps_layout.setContentsMargins(0, 0, 0, 0)
        self._steps_layout.addWidget(_label("Raw exchange:", name="stepsLabel"))
        self._steps_layout.addStretch(1)
        self._step_buttons: list[QToolButton] = []
        self.steps_row.hide()
        layout.addWidget(self.steps_row)
        self._replayable = False

        self._message = message
        self.continue_button.clicked.connect(lambda: self.continue_requested.emit(self.message_id))
        self.copy_button.clicked.connect(lambda: self.copy_requested.emit(self.message_id))
        self.regenerate_button.clicked.connect(lambda: self.regenerate_requested.emit(self.message_id))
        self.edit_button.clicked.connect(lambda: self.edit_requested.emit(self.message_id))
        self.branch_prev.clicked.connect(lambda: self.branch_requested.emit(self.message_id, -1))
        self.branch_next.clicked.connect(lambda: self.branch_requested.emit(self.message_id, 1))
        self._status: str | None = None
        self._reasoning_len = -1
        self.update_from(message)

    # ----- rendering -----
    def show_files(self, cache: ThumbnailCache | None) -> None:
        """The message's attached files (images from ``cache``, made off the GUI thread), if it has any."""
        if self.files_row is None and self._message.files:
            self.files_row = FilesRow(self._message.files, cache, self)
            layout = self.layout()
            assert isinstance(layout, QVBoxLayout)
            layout.insertWidget(self._files_at, self.files_row)

    def update_from(self, message: Message) -> None:
        self._message = message
        # A user message's files are shown by ``show_files``, not as parts.
        parts = [p for p in message.parts if isinstance(p, (TextPart, ToolCard, Notice))]
        for index, part in enumerate(parts):
            if index == len(self._part_widgets):
                self._part_widgets.append(self._make_part(part))
                self._parts_layout.addWidget(self._part_widgets[-1])
            widget = self._part_widgets[index]
            if isinstance(part, TextPart):
                widget.set_text(part.text)  # type: ignore[attr-defined]
            elif isinstance(part, ToolCard):
                note = next((s.constraint_note for s in message.steps if s.iteration == part.iteration), "")
                widget.update_from(part, note)  # type: ignore[attr-defined]
        if message.final:  # an answer that ended inside a code fence still colours that block to its end
            for widget in self._part_widgets:
                if isinstance(widget, SegmentedMarkdown):
                    widget.finish()
        self._update_reasoning(message)
        if message.status != self._status:
            self._status = message.status
            self.setProperty("status", message.status)
            badge = STATUS_TEXT.get(message.status, message.status)
            if message.status == "stopped" and message.stop_reason:
                badge += f" ({message.stop_reason})"
            self.badge.setText(badge)
            self.badge.setVisible(bool(self.badge.text()))
            _restyle(self)
            _restyle(self.badge)
        self.waiting.set_waiting(message.role == "assistant" and not message.final and (
            message.status == "pending" or self.phase_of(message) == APPROVAL_PHASE))
        self.error.setVisible(bool(message.error))
        if message.error and self.error.text() != message.error:
            self.error.setText(message.error)
        summary = message.metrics.summary() if message.metrics else ""
        self.metrics.setVisible(bool(summary))
        if summary != self.metrics.text():
            self.metrics.setText(summary)
        self.update_cut(message)
        self._update_steps(message)
        replayable = self._replayable and message.final
        for card in self.tool_cards():
            card.actions.setVisible(replayable)

    def update_cut(self, message: Message) -> None:
        limit = self.token_limit(message) if message.final else None
        self.cut_row.setVisible(limit is not None)
        if limit is not None:
            self.cut_note.setText(f"Cut at the token limit ({limit} tokens, Max tokens in the settings)."
                                  + (" Continue writes on from here." if self._continuable else ""))
        self.continue_button.setVisible(limit is not None and self._continuable)

    def _update_steps(self, message: Message) -> None:
        while len(self._step_buttons) < len(message.steps):
            index = len(self._step_buttons)
            button = link_button(f"step {index + 1}", "stepButton")
            button.clicked.connect(lambda _checked=False, i=index: self.inspect_requested.emit(self.message_id, i))
            self._steps_layout.insertWidget(self._steps_layout.count() - 1, button)
            self._step_buttons.append(button)
        edited = edited_cards(message) if message.steps else {}
        edited_steps = {message.tool_cards[index].iteration for index in edited}
        for number, (button, step) in enumerate(zip(self._step_buttons, message.steps), start=1):
            mark = step.iteration in edited_steps
            button.setText(f"step {number} (edited)" if mark else f"step {number}")
            button.setToolTip(f"{step.mode} mode, tool_choice {step.tool_choice}"
                              f"{' (grammar)' if step.constrained else ''}: the request, the raw output, the parse"
                              + ("; a call of this step was edited afterwards" if mark else ""))
        for index, card in enumerate(self.tool_cards()):
            what = edited.get(index, "")
            card.set_edited(what, _original(message, index, what))
        self.steps_row.setVisible(bool(message.steps))

    def set_replayable(self, replayable: bool) -> None:
        """Tool chat: finished answers offer edit-and-replay on their tool cards."""
        self._replayable = replayable
        self.update_from(self._message)

    def _make_part(self, part) -> QWidget:
        if isinstance(part, TextPart):
            return SegmentedMarkdown(self, markdown=self._message.role == "assistant")
        if isinstance(part, ToolCard):
            widget = ToolCardWidget(part, self)
            index = len(self.tool_cards())
            widget.action_requested.connect(
                lambda action, i=index: self.card_action_requested.emit(self.message_id, i, action))
            return widget
        return NoticeWidget(part, self)

    def _update_reasoning(self, message: Message) -> None:
        length = len(message.reasoning)
        if length == self._reasoning_len:
            return
        self._reasoning_len = length
        self.reasoning_toggle.setVisible(bool(length))
        words = len(message.reasoning.split())
        thinking = "Thinking…" if message.status == "streaming" and not message.content else "Reasoning"
        self.reasoning_toggle.setText(f"{thinking} ({words} words)")
        if self.reasoning_toggle.isChecked():
            self.reasoning_view.set_text(message.reasoning)

    def _toggle_reasoning(self, shown: bool) -> None:
        self.reasoning_toggle.setArrowType(Qt.ArrowType.DownArrow if shown else Qt.ArrowType.RightArrow)
        self.reasoning_box.setVisible(shown)
        if shown:  # (once shown: a text set while hidden left the box's layout with the empty view's height)
            self.reasoning_view.set_text(self._message.reasoning)

    def set_regenerate_visible(self, visible: bool) -> None:
        self.regenerate_button.setVisible(visible)

    def set_continuable(self, continuable: bool) -> None:
        """Whether this answer, if cut at the token limit, may be continued (the last one of a plain chat)."""
        if continuable != self._continuable:
            self._continuable = continuable
            self.update_cut(self._message)

    def set_branch(self, position: int, count: int) -> None:
        for widget in (self.branch_prev, self.branch_label, self.branch_next):
            widget.setVisible(count > 1)
        self.branch_label.setText(f"{position}/{count}")

    def branch_text(self) -> str:
        return "" if self.branch_label.isHidden() else self.branch_label.text()

    def plain_text(self) -> str:
        """What a reader sees of the answer (reasoning only when expanded)."""
        pieces = [self.author.text()]
        if self.files_row is not None:
            pieces.append(self.files_row.plain_text())
        if self.reasoning_box.isVisible():
            pieces.append(self.reasoning_view.plain_text())
        for widget in self._part_widgets:
            pieces.append(widget.plain_text() if isinstance(widget, SegmentedMarkdown) else
                          widget.text() if isinstance(widget, (ToolCardWidget, QLabel)) else "")
        if self.error.isVisible():
            pieces.append(self.error.text())
        return "\n".join(p for p in pieces if p)

    def tool_cards(self) -> list[ToolCardWidget]:
        return [w for w in self._part_widgets if isinstance(w, ToolCardWidget)]

    def notices(self) -> list[NoticeWidget]:
        return [w for w in self._part_widgets if isinstance(w, NoticeWidget)]


class TranscriptView(QScrollArea):
    """Messages top to bottom; follows the newest text unless the user has scrolled up to read."""

    regenerate_requested = Signal(str)
    edit_requested = Signal(str)
    branch_requested = Signal(str, int)
    inspect_requested = Signal(str, int)
    card_action_requested = Signal(str, int, str)
    continue_requested = Signal(str)
    rendered = Signal(str)  # message id, after its widget caught up with the model

    def __init__(self, parent: QWidget | None = None, *, replayable: bool = False) -> None:
        super().__init__(parent)
        self.setObjectName("transcript")
        self.replayable = replayable
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        body = QWidget(objectName="transcriptBody")
        # The body is exactly as wide as the viewport, never wider: with a minimum width of its own (a long model
        # name beside the buttons, an unbreakable word in a label), the scroll area made it wider than the view
        # once the scroll bar took its share, and every card's right-hand buttons were cut off (#19).
        body.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self._layout = QVBoxLayout(body)
        self._layout.setContentsMargins(16, 16, 16, 16)
        self._layout.setSpacing(10)
        self.earlier_button = QPushButton(objectName="showEarlierButton")
        self.earlier_button.clicked.connect(self.show_earlier)
        self.earlier_button.hide()
        self._layout.addWidget(self.earlier_button, 0, Qt.AlignmentFlag.AlignHCenter)
        self.placeholder = _label("Ask anything. Enter sends, Shift+Enter starts a new line, Esc stops.",
                                  name="transcriptPlaceholder")
        self.placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._layout.addWidget(self.placeholder)
        self._layout.addStretch(1)
        self.setWidget(body)
        self._widgets: dict[str, MessageWidget] = {}
        self._messages: dict[str, Message] = {}
        self._hidden: list[Message] = []  # older messages of the path, not rendered yet (oldest first)
        self._author: Callable[[Message], str] = lambda m: "You" if m.role == "user" else "Assistant"
        self.waiting_phase: Callable[[Message], str] = lambda _message: ""  # what an answer waits for (the page)
        # The max_tokens that cut an answer short, None if none did (the page); whether the last may be continued.
        self.token_limit: Callable[[Message], int | None] = lambda _message: None
        self.continuable = False
        self.thumbnails: ThumbnailCache | None = None  # sent images' thumbnails (the page's)
        self._dirty: set[str] = set()
        self._timer = QTimer(self, singleShot=True, interval=RENDER_INTERVAL_MS)
        self._timer.timeout.connect(self.flush)
        self.render_times: dict[str, tuple[float, int]] = {}  # id -> (perf_counter, chars shown)
        self._follow = True
        bar = self.verticalScrollBar()
        bar.valueChanged.connect(self._track_follow)
        bar.rangeChanged.connect(self._keep_following)
        preload_lexers()

    # ----- building -----
    def add_message(self, message: Message, author: str) -> MessageWidget:
        widget = self._make(message, author)
        self._layout.insertWidget(self._layout.count() - 1, widget)
        self._widgets[message.id] = widget
        self._messages[message.id] = message
        self.placeholder.hide()
        self._follow = True
        self._mark_last_answer()
        return widget

    def _make(self, message: Message, author: str) -> MessageWidget:
        widget = MessageWidget(message, author)
        widget.phase_of = lambda m: self.waiting_phase(m)
        widget.waiting.refresh()
        widget.copy_requested.connect(self._copy)
        widget.regenerate_requested.connect(self.regenerate_requested)
        widget.edit_requested.connect(self.edit_requested)
        widget.branch_requested.connect(self.branch_requested)
        widget.inspect_requested.connect(self.inspect_requested)
        widget.card_action_requested.connect(self.card_action_requested)
        widget.continue_requested.connect(self.continue_requested)
        widget.token_limit = lambda m: self.token_limit(m)
        widget.update_cut(message)  # (now that it knows the limit)
        widget.show_files(self.thumbnails)
        if self.replayable:
            widget.set_replayable(True)
        return widget

    def show_messages(self, messages: list[Message], author: Callable[[Message], str]) -> None:
        """Replace the transcript with ``messages`` (a conversation's active path): the newest are
        rendered now, the rest when the user asks for them."""
        self.clear()
        self._author = author
        self._hidden = list(messages[:-SHOWN_AT_ONCE]) if len(messages) > SHOWN_AT_ONCE else []
        for message in messages[len(self._hidden):]:
            self.add_message(message, author(message))
        self._show_earlier_button()

    def show_earlier(self) -> None:
        """Render the next older messages above the shown ones, keeping the reader's place."""
        batch, self._hidden = self._hidden[-SHOWN_AT_ONCE:], self._hidden[:-SHOWN_AT_ONCE]
        bar = self.verticalScrollBar()
        from_bottom = bar.maximum() - bar.value()
        self._follow = False
        first = self._layout.indexOf(self.placeholder) + 1
        added = {}
        for offset, message in enumerate(batch):
            widget = self._make(message, self._author(message))
            self._layout.insertWidget(first + offset, widget)
            added[message.id] = widget
            self._messages[message.id] = message
        self._widgets = {**added, **self._widgets}
        self._show_earlier_button()
        self.widget().adjustSize()
        bar.setValue(bar.maximum() - from_bottom)

    def _show_earlier_button(self) -> None:
        count = len(self._hidden)
        self.earlier_button.setText(f"Show {min(count, SHOWN_AT_ONCE)} earlier messages ({count} not shown)")
        self.earlier_button.setVisible(bool(count))

    def hidden_count(self) -> int:
        return len(self._hidden)

    def remove_message(self, message_id: str) -> None:
        widget = self._widgets.pop(message_id, None)
        self._messages.pop(message_id, None)
        self._dirty.discard(message_id)
        if widget is not None:
            widget.setParent(None)
            widget.deleteLater()
        self._mark_last_answer()

    def clear(self) -> None:
        for message_id in list(self._widgets):
            self.remove_message(message_id)
        self._hidden = []
        self._show_earlier_button()
        self.placeholder.show()

    def _mark_last_answer(self) -> None:
        ids = list(self._widgets)
        for message_id, widget in self._widgets.items():
            last = message_id == (ids[-1] if ids else None)
            widget.set_regenerate_visible(last and self._messages[message_id].role == "assistant"
                                          and self._messages[message_id].final)
            widget.set_continuable(last and self.continuable)

    # ----- updating -----
    def schedule(self, message: Message) -> None:
        """Note that a message changed; it is redrawn at the next tick, not once per token."""
        self._dirty.add(message.id)
        if not self._timer.isActive():
            self._timer.start()

    def render_now(self, message: Message) -> None:
        self._dirty.add(message.id)
        self.flush()

    def flush(self) -> None:
        dirty, self._dirty = self._dirty, set()
        for message_id in dirty:
            widget = self._widgets.get(message_id)
            if widget is None:
                continue
            message = self._messages[message_id]
            widget.update_from(message)
            self.render_times[message_id] = (time.perf_counter(), len(message.content))
            self.rendered.emit(message_id)
        if dirty:
            self._mark_last_answer()

    # ----- reading (tests, accessibility) -----
    def widget_for(self, message_id: str) -> MessageWidget | None:
        return self._widgets.get(message_id)

    def message_widgets(self) -> list[MessageWidget]:
        return list(self._widgets.values())

    def plain_text(self) -> str:
        return "\n\n".join(widget.plain_text() for widget in self._widgets.values())

    # ----- behaviour -----
    def _copy(self, message_id: str) -> None:
        message = self._messages.get(message_id)
        if message is not None:
            QGuiApplication.clipboard().setText(message.content)

    def _track_follow(self, value: int) -> None:
        bar = self.verticalScrollBar()
        self._follow = value >= bar.maximum() - 24

    def _keep_following(self, _minimum: int, maximum: int) -> None:
        if self._follow:
            self.verticalScrollBar().setValue(maximum)

