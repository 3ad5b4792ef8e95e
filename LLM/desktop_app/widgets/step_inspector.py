"""The inspector of one tool-loop step: the exact request, the model's raw output, what the parser made of it.

Attached files show as short placeholders in the request (name, type, size, sha256, how it was sent); Copy as curl
renders them again from the stored files, off the GUI thread, so the command sends what the model got.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Coroutine
from typing import Any

from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QDialog,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from LLM.core import LLMError, StepRecord
from LLM.core.attachments import DEFAULT_MAX_SIDE, Blobs, expand
from LLM.core.protocol import curl_command

from .transcript import mono_font


def step_summary(step: StepRecord) -> str:
    parts = [f"Step {step.iteration}", f"{step.mode} mode"]
    if step.tool_choice != "auto":
        parts.append(f"tool_choice {step.tool_choice}" + (" (grammar)" if step.constrained else ""))
    if step.prompt_tokens is not None or step.completion_tokens is not None:
        parts.append(f"{step.prompt_tokens or 0} prompt + {step.completion_tokens or 0} completion tokens")
    parts.append(f"{step.request_ms:.0f} ms")
    if step.finish_reason:
        parts.append(f"finish: {step.finish_reason}")
    summary = "  ·  ".join(parts)
    return f"{summary}\n{step.constraint_note}" if step.constraint_note else summary


def parsed_view(step: StepRecord) -> dict[str, Any]:
    """What the loop made of the output, as the Parsed tab shows it."""
    return {"calls": step.calls, "native_tool_calls": step.native_calls, "visible_text": step.text,
            "reasoning": step.reasoning, "parse_errors": step.parse_errors}


def _text_view(name: str, text: str) -> QPlainTextEdit:
    view = QPlainTextEdit(objectName=name)
    view.setReadOnly(True)
    view.setFont(mono_font())
    view.setPlainText(text)
    return view


class StepInspector(QDialog):
    """Non-modal: several steps can be open side by side while the chat goes on."""

    def __init__(self, step: StepRecord, key_expression: str | None = None, parent: QWidget | None = None, *,
                 blobs: Blobs | None = None, max_side: int = DEFAULT_MAX_SIDE,
                 spawn: Callable[[Coroutine[Any, Any, Any], str], object] | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("stepInspector")
        self.setWindowTitle(f"Step {step.iteration}: the raw exchange")
        self.resize(780, 620)
        self.step = step
        self._key_expression = key_expression
        self._blobs, self._max_side, self._spawn = blobs, max_side, spawn  # where attached files are, for curl
        self.summary = QLabel(step_summary(step), objectName="stepSummary")
        self.summary.setWordWrap(True)
        url = QLabel(f"POST {step.url}", objectName="stepUrl")
        url.setFont(mono_font())
        self.tabs = QTabWidget(objectName="stepTabs")
        self.request_view = _text_view("stepRequest", json.dumps(step.request, indent=2, ensure_ascii=False))
        self.raw_view = _text_view("stepRawOutput", step.raw_output or "(no text: the answer was native tool calls "
                                   "only; see Parsed)")
        self.parsed_view = _text_view("stepParsed", json.dumps(parsed_view(step), indent=2, ensure_ascii=False))
        self.tabs.addTab(self.request_view, "Request")
        self.tabs.addTab(self.raw_view, "Raw output")
        self.tabs.addTab(self.parsed_view, "Parsed")

        copy_json = QPushButton("Copy as JSON", objectName="copyRequestJson")
        copy_json.setToolTip("The request body, exactly as sent (attached files as their placeholders)")
        copy_json.clicked.connect(lambda: QGuiApplication.clipboard().setText(self.request_json()))
        copy_curl = QPushButton("Copy as curl", objectName="copyRequestCurl")
        copy_curl.setToolTip("A shell command that sends the same request, attached files included (the API key is "
                             "read from its file, never copied)")
        copy_curl.clicked.connect(self._copy_curl)
        self.copy_curl_button = copy_curl
        # What Copy as curl did with the files (copied, or which one could not be read again).
        self.note = QLabel(objectName="inspectorNote")
        self.note.setWordWrap(True)
        self.note.hide()
        close = QPushButton("Close", objectName="closeInspector")
        close.clicked.connect(self.close)
        buttons = QHBoxLayout()
        buttons.addWidget(copy_json)
        buttons.addWidget(copy_curl)
        buttons.addStretch(1)
        buttons.addWidget(close)
        layout = QVBoxLayout(self)
        layout.addWidget(self.summary)
        layout.addWidget(url)
        layout.addWidget(self.tabs, 1)
        layout.addWidget(self.note)
        layout.addLayout(buttons)

    def request_json(self) -> str:
        return json.dumps(self.step.request, indent=2, ensure_ascii=False)

    def curl(self) -> str:
        """The command as recorded: attached files as their placeholders (see ``curl_with_files``)."""
        return curl_command(self.step.url, self.step.request, self._key_expression)

    @property
    def has_files(self) -> bool:
        return "[attachment " in json.dumps(self.step.request, ensure_ascii=False)

    async def curl_with_files(self) -> str:
        """The command that sends what the model got: each placeholder rendered again from the stored file (images
        downscaled as they were sent, documents cut as they were), off the GUI thread."""
        if self._blobs is None or not self.has_files:
            return self.curl()
        body = await asyncio.to_thread(expand, self.step.request, self._blobs, self._max_side)
        return curl_command(self.step.url, body, self._key_expression)

    def _copy_curl(self) -> None:
        if self._spawn is None or self._blobs is None or not self.has_files:
            QGuiApplication.clipboard().setText(self.curl())
            return
        self.copy_curl_button.setEnabled(False)
        self._spawn(self._copy_curl_with_files(), "copy-curl")

    async def _copy_curl_with_files(self) -> None:
        try:
            QGuiApplication.clipboard().setText(await self.curl_with_files())
            self._say("Copied, with the attached files as they were sent.")
        except LLMError as exc:  # a stored file gone since: said, and nothing half-rendered is copied
            self._say(f"Not copied: {exc}")
        finally:
            self.copy_curl_button.setEnabled(True)

    def _say(self, text: str) -> None:
        self.note.setText(text)
        self.note.show()
