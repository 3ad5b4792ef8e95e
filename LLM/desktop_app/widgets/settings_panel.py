"""The side panel of per-chat generation settings: system prompt, temperature, top_p, max tokens, stops."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QDoubleSpinBox,
    QFormLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from LLM.core import GenerationSettings, ModelEntry
from LLM.core.chat import max_new_tokens

DEFAULT_LABEL = "model default"


def settings_from_entry(entry: ModelEntry | None) -> GenerationSettings:
    """A new chat's settings: the model's default_params and system prompt from llm_backends.yaml."""
    if entry is None:
        return GenerationSettings()
    params = entry.default_params
    return GenerationSettings(
        system_prompt=entry.system_prompt,
        temperature=params.temperature,
        top_p=params.top_p,
        max_new_tokens=params.max_new_tokens,
        stop=list(params.stop or []),
    )


class _OptionalDouble(QDoubleSpinBox):
    """A spin box whose lowest value means "not set" (Qt's special-value idiom)."""

    def __init__(self, maximum: float, step: float) -> None:
        super().__init__()
        self.setDecimals(2)
        self.setRange(-step, maximum)
        self.setSingleStep(step)
        self.setSpecialValueText(DEFAULT_LABEL)

    def value_or_none(self) -> float | None:
        return None if self.value() < 0 else round(self.value(), 2)

    def set_value_or_none(self, value: float | None) -> None:
        self.setValue(self.minimum() if value is None else value)


class GenerationPanel(QWidget):
    edited = Signal()  # the user changed a setting (not a programmatic load)
    reset_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("generationPanel")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 12, 12, 12)
        layout.setSpacing(8)
        title = QLabel("Chat settings", objectName="panelTitle")
        layout.addWidget(title)

        layout.addWidget(QLabel("System prompt"))
        self.system_prompt = QPlainTextEdit(objectName="systemPromptEdit")
        self.system_prompt.setPlaceholderText("None (the model's own behaviour)")
        self.system_prompt.setTabChangesFocus(True)
        self.system_prompt.setMaximumHeight(110)
        layout.addWidget(self.system_prompt)

        form = QFormLayout()
        form.setContentsMargins(0, 4, 0, 0)
        # A narrow column puts a field under its label rather than scrolling the panel sideways.
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        self.temperature = _OptionalDouble(2.0, 0.05)
        self.temperature.setObjectName("temperatureSpin")
        self.top_p = _OptionalDouble(1.0, 0.05)
        self.top_p.setObjectName("topPSpin")
        self.max_tokens = QSpinBox(objectName="maxTokensSpin")
        self.max_tokens.setRange(0, 1_000_000)
        self.max_tokens.setSingleStep(64)
        self.show_model_defaults(None)
        form.addRow("Temperature", self.temperature)
        form.addRow("Top p", self.top_p)
        form.addRow("Max tokens", self.max_tokens)
        layout.addLayout(form)

        layout.addWidget(QLabel("Stop sequences (one per line)"))
        self.stop = QPlainTextEdit(objectName="stopEdit")
        self.stop.setTabChangesFocus(True)
        self.stop.setMaximumHeight(60)
        layout.addWidget(self.stop)

        self.reset_button = QPushButton("Reset to model defaults", objectName="resetSettingsButton")
        self.reset_button.clicked.connect(self.reset_requested)
        layout.addWidget(self.reset_button)
        self.extra = QVBoxLayout()  # the tool page adds its own section here
        self.extra.setSpacing(8)
        layout.addLayout(self.extra)
        layout.addStretch(1)

        self._loading = False
        for signal in (self.system_prompt.textChanged, self.stop.textChanged, self.temperature.valueChanged,
                       self.top_p.valueChanged, self.max_tokens.valueChanged):
            signal.connect(self._changed)

    def _changed(self, *_args: object) -> None:
        if not self._loading:
            self.edited.emit()

    def show_model_defaults(self, entry: ModelEntry | None) -> None:
        """Say what "model default" means where it is known: the max tokens a request sends (the model's
        default_params, else core's own default), so "model default" never hides a limit that cuts answers."""
        self.max_tokens.setSpecialValueText(f"{DEFAULT_LABEL} ({max_new_tokens(None, entry)})")

    def load(self, settings: GenerationSettings) -> None:
        self._loading = True
        try:
            self.system_prompt.setPlainText(settings.system_prompt or "")
            self.temperature.set_value_or_none(settings.temperature)
            self.top_p.set_value_or_none(settings.top_p)
            self.max_tokens.setValue(settings.max_new_tokens or 0)
            self.stop.setPlainText("\n".join(settings.stop))
        finally:
            self._loading = False

    def settings(self) -> GenerationSettings:
        stops = [line for line in self.stop.toPlainText().split("\n") if line]
        return GenerationSettings(
            system_prompt=self.system_prompt.toPlainText(),
            temperature=self.temperature.value_or_none(),
            top_p=self.top_p.value_or_none(),
            max_new_tokens=self.max_tokens.value() or None,
            stop=stops,
        )
