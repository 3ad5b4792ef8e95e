"""The chat page's widgets, laid out: the transcript (or a base model's completion editor) over the composer,
the per-chat settings beside them in a splitter."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QPlainTextEdit, QScrollArea, QSplitter, QStackedWidget, QVBoxLayout, QWidget

from .composer import Composer
from .settings_panel import GenerationPanel
from .transcript import TranscriptView


class ChatView:
    """Builds the widgets into ``parent`` (the page) and names them; the page wires them to its session."""

    def __init__(self, parent: QWidget, *, replayable: bool) -> None:
        self.transcript = TranscriptView(replayable=replayable)
        self.composer = Composer()
        self.completion_editor = QPlainTextEdit(objectName="completionEditor")
        self.completion_editor.setPlaceholderText(
            "This is a base model: write the beginning of a text and press Continue; the model writes on.")

        chat = QWidget(objectName="chatColumn")
        column = QVBoxLayout(chat)
        column.setContentsMargins(0, 0, 0, 8)
        column.setSpacing(8)
        self.views = QStackedWidget(objectName="chatViews")
        self.views.addWidget(self.transcript)
        self.views.addWidget(self.completion_editor)
        column.addWidget(self.views, 1)
        column.addWidget(self.composer)

        self.panel = GenerationPanel()
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
        layout = QVBoxLayout(parent)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(splitter)
