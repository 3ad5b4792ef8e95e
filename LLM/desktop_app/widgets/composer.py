"""Under the transcript: the prompt box with Send and Stop, then the status line and the context meter (New chat is
the sidebar's, and Ctrl+N)."""

from __future__ import annotations

from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QSizePolicy, QVBoxLayout, QWidget

from .elided_label import ElidedLabel
from .prompt_edit import PromptEdit


class Composer(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("composer")
        self.prompt = PromptEdit()
        self.send_button = QPushButton("Send", objectName="sendButton")
        self.send_button.setDefault(True)
        self.stop_button = QPushButton("Stop", objectName="stopButton")
        self.stop_button.setToolTip("Stop the answer (Esc)")
        # The status line elides (whole text in its tooltip) and its text never sizes the footer: a long status
        # used to push Send, Stop and the settings out of the window, and each new one moved the panels.
        self.activity = ElidedLabel(name="activityLabel")
        self.activity.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.context_meter = QLabel(objectName="contextMeter")
        self.context_meter.setToolTip("Tokens of this chat the model saw on the last answer (prompt + answer, as "
                                      "the engine counted them) / the tokens of history a request may use "
                                      "(usable_context); older turns are left out beyond it")

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
        footer.addWidget(self.activity, 1)
        footer.addWidget(self.context_meter)
        inputs = QVBoxLayout(self)
        inputs.setContentsMargins(16, 0, 16, 0)
        inputs.setSpacing(6)
        inputs.addLayout(input_row)
        inputs.addLayout(footer)

    def show_context(self, used: int | None, usable: int | None) -> None:
        """``used`` of ``usable`` tokens; nothing when there is no usable context to show (no model, base model)."""
        if usable is None:
            self.context_meter.setText("")
            return
        self.context_meter.setText(f"Context {'—' if used is None else f'{used:,}'} / {usable:,} tokens")
        self.context_meter.setProperty("full", used is not None and used > 0.9 * usable)
        self.context_meter.style().unpolish(self.context_meter)
        self.context_meter.style().polish(self.context_meter)
