"""Under the transcript: the attached files' chips, the prompt box with Attach, Send and Stop, then the status line
and the context meter (New chat is the sidebar's, and Ctrl+N)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QFontMetrics
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QSizePolicy, QVBoxLayout, QWidget

from .attachment_chips import ChipStrip
from .elided_label import ElidedLabel
from .prompt_edit import PromptEdit

PAPERCLIP = "\N{PAPERCLIP}"
CONTEXT_TIP = ("Tokens of this chat the model saw on the last answer (prompt + answer, as the engine counted them) / "
               "the tokens of history a request may use (usable_context); older turns are left out beyond it")
FILES_TIP = ("\n\nWith files attached: plus their estimate (~), counted before sending; a document longer than "
             "what is left is cut to fit, and the answer says so")


class StatusLine(ElidedLabel):
    """The composer's status line: what is going on, in the muted colour; an error (``show_error``) in red until
    the next text."""

    def setText(self, text: str) -> None:
        super().setText(text)
        self._mark(False)

    def show_error(self, text: str) -> None:
        super().setText(text)
        self._mark(True)

    @property
    def is_error(self) -> bool:
        return self.property("error") is True

    def _mark(self, error: bool) -> None:
        if self.property("error") is not error:
            self.setProperty("error", error)
            self.style().unpolish(self)
            self.style().polish(self)


class Composer(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("composer")
        self.chips = ChipStrip()
        self.prompt = PromptEdit()
        self.attach_button = QPushButton(objectName="attachButton")
        has_clip = QFontMetrics(self.attach_button.font()).inFontUcs4(ord(PAPERCLIP))
        self.attach_button.setText(PAPERCLIP if has_clip else "Attach…")  # (no emoji font: words, not a box)
        self.attach_button.setToolTip("Attach files… (images, text, code, PDF); or drop them on the message box, "
                                      "or paste an image")
        self.attach_button.setAccessibleName("Attach files…")
        self.send_button = QPushButton("Send", objectName="sendButton")
        self.send_button.setDefault(True)
        self.stop_button = QPushButton("Stop", objectName="stopButton")
        self.stop_button.setToolTip("Stop the answer (Esc)")
        # The status line elides (whole text in its tooltip) and its text never sizes the footer: a long status
        # used to push Send, Stop and the settings out of the window, and each new one moved the panels.
        self.activity = StatusLine(name="activityLabel")
        self.activity.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.context_meter = QLabel(objectName="contextMeter")
        self.context_meter.setToolTip(CONTEXT_TIP)
        self._context: tuple[int | None, int | None] = (None, None)
        self._file_tokens = 0

        for fixed in (self.send_button, self.stop_button, self.attach_button):  # their size, also when the prompt
            fixed.setSizePolicy(QSizePolicy.Policy.Maximum, QSizePolicy.Policy.Fixed)  # box is hidden
        buttons = QVBoxLayout()
        buttons.setSpacing(6)
        buttons.addWidget(self.send_button)
        buttons.addWidget(self.stop_button)
        buttons.addStretch(1)
        input_row = QHBoxLayout()
        input_row.setSpacing(8)
        input_row.addStretch(0)  # takes the room only while the prompt box is hidden (base models)
        input_row.addWidget(self.attach_button, 0, Qt.AlignmentFlag.AlignTop)
        input_row.addWidget(self.prompt, 1)
        input_row.addLayout(buttons)
        footer = QHBoxLayout()
        footer.addWidget(self.activity, 1)
        footer.addWidget(self.context_meter)
        inputs = QVBoxLayout(self)
        inputs.setContentsMargins(16, 0, 16, 0)
        inputs.setSpacing(6)
        inputs.addWidget(self.chips)
        inputs.addLayout(input_row)
        inputs.addLayout(footer)

    def set_prompt_shown(self, shown: bool) -> None:
        """The prompt box and what goes with it (Attach, the chips); a base model's page hides them."""
        self.prompt.setVisible(shown)
        self.attach_button.setVisible(shown)
        if not shown:
            self.chips.hide()
        elif self.chips.chips():
            self.chips.show()

    def show_error(self, text: str) -> None:
        self.activity.show_error(text)

    def show_context(self, used: int | None, usable: int | None) -> None:
        """``used`` of ``usable`` tokens; nothing when there is no usable context to show (no model, base model)."""
        self._context = (used, usable)
        self._show_meter()

    def show_file_tokens(self, tokens: int) -> None:
        """The attached files' estimate, counted on the meter until they are sent."""
        self._file_tokens = tokens
        self._show_meter()

    def _show_meter(self) -> None:
        used, usable = self._context
        files = self._file_tokens
        if usable is None:
            self.context_meter.setText("")
            return
        if files:
            total = (used or 0) + files
            self.context_meter.setText(f"Context ~{total:,} / {usable:,} tokens (files ~{files:,})")
        else:
            total = used
            self.context_meter.setText(f"Context {'—' if used is None else f'{used:,}'} / {usable:,} tokens")
        self.context_meter.setToolTip(CONTEXT_TIP + (FILES_TIP if files else ""))
        self.context_meter.setProperty("full", total is not None and total > 0.9 * usable)
        self.context_meter.style().unpolish(self.context_meter)
        self.context_meter.style().polish(self.context_meter)
