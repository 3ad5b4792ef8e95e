"""The tool chat page: the chat plus tool selection, tool-call cards, loop notices and approvals."""

from __future__ import annotations

import json
from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QFormLayout, QLabel, QListWidget, QListWidgetItem, QSpinBox, QWidget

from LLM.core import DEFAULT_TOOLS, Message, StepStarted, Tool
from LLM.core.session import SessionChange

from ..context import AppContext
from ..widgets.tool_editor import ToolFileButtons
from .chat_page import ChatPage
from .tool_replay import ToolReplay

TOOL_MODES = ("auto", "native", "fallback")
BASE_MODEL_NOTE = ("This is a base model (no chat template): tools need an instruct model. Use the Chat tab to "
                   "continue text.")


def tool_tooltip(tool: Tool) -> str:
    schema = json.dumps(tool.parameters, indent=2, ensure_ascii=False)
    approval = "\n\nAsks for your approval before each call." if tool.needs_approval else ""
    source = f"From the MCP server '{tool.server}'.\n\n" if tool.server is not None else ""
    return f"{source}{tool.description}{approval}\n\nParameters (JSON Schema):\n{schema}"


def tool_label(tool: Tool) -> str:
    marks = ([f"MCP: {tool.server}"] if tool.server is not None else []) + (["asks first"] if tool.needs_approval
                                                                            else [])
    return f"{tool.name}  ({', '.join(marks)})" if marks else tool.name


def tool_item(tool: Tool, checked: bool) -> QListWidgetItem:
    """A checkable entry of the tool list; its data is the tool's name."""
    item = QListWidgetItem(tool_label(tool))
    item.setData(Qt.ItemDataRole.UserRole, tool.name)
    item.setToolTip(tool_tooltip(tool))
    item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
    item.setCheckState(Qt.CheckState.Checked if checked else Qt.CheckState.Unchecked)
    return item


class ToolChatPage(ChatPage):
    page_name = "toolChatPage"
    kind = "tools"
    replayable = True

    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        self._unchecked_gone: set[str] = set()  # MCP tools unchecked here whose server went away
        super().__init__(ctx, parent)
        panel = self.panel.extra
        panel.addWidget(QLabel("Tools", objectName="panelTitle"))
        self.tool_list = QListWidget(objectName="toolList")
        self.tool_list.setMinimumHeight(140)
        for tool in ctx.runtime.tools:
            self.tool_list.addItem(tool_item(tool, tool.name in DEFAULT_TOOLS))
        panel.addWidget(self.tool_list)
        self.tool_files = ToolFileButtons(ctx, self.tool_list, tool_item)  # tools without code: new, edit, delete
        panel.addWidget(self.tool_files)
        for problem in ctx.runtime.tool_load_problems:
            warning = QLabel(problem, objectName="toolLoadProblem")
            warning.setWordWrap(True)
            panel.addWidget(warning)

        form = QFormLayout()
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)  # the column narrow: a field under its label
        self.max_iterations = QSpinBox(objectName="maxIterationsSpin")
        self.max_iterations.setRange(1, 100)
        self.max_iterations.setValue(8)
        self.max_iterations.setToolTip("Requests the loop may make before it asks for a final answer without tools")
        self.tool_mode = QComboBox(objectName="toolModeCombo")
        self.tool_mode.setToolTip(
            "native: the server's tool_calls;  fallback: tool list in the prompt, <tool_call> parsed from text;  "
            "auto: native, parsing text when no native call comes"
        )
        self.tool_choice = QComboBox(objectName="toolChoiceCombo")
        self.tool_choice.setToolTip(
            "auto: the model decides;  required: the first step must call a tool;  none: no calls;  a tool: that "
            "tool must be called. In fallback mode on llama-server a forced call is held to a grammar of the "
            "tools' schemas, so even a small model emits a valid call.")
        for combo in (self.tool_mode, self.tool_choice):  # a long tool name must not widen the panel
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(12)
        form.addRow("Max iterations", self.max_iterations)
        form.addRow("Tool mode", self.tool_mode)
        form.addRow("Tool choice", self.tool_choice)
        panel.addLayout(form)
        self._fill_tool_modes()
        self._fill_tool_choices()
        self.tool_list.itemChanged.connect(lambda _item: self._fill_tool_choices())
        self.tool_files.tools_changed.connect(self._fill_tool_choices)
        self.replay = ToolReplay(self)
        self.transcript.inspect_requested.connect(self.replay.inspect)
        self.transcript.card_action_requested.connect(self.replay.act)

    # ----- settings -----
    def set_model(self, model_id: str | None) -> None:
        super().set_model(model_id)
        self._fill_tool_modes()

    def refresh_config(self) -> None:
        super().refresh_config()
        self._fill_tool_modes()

    def _fill_tool_modes(self) -> None:
        """First entry: the model's own mode from llm_backends.yaml (or what this session learned)."""
        chosen = self.tool_mode.currentData() if self.tool_mode.currentIndex() > 0 else None
        entry = self._entry()
        learned = self.ctx.runtime.learned_tool_modes.get(self.model_id or "")
        default = learned or (entry.tools if entry is not None else "auto")
        self.tool_mode.blockSignals(True)
        self.tool_mode.clear()
        self.tool_mode.addItem(f"model default ({default})", None)
        for mode in TOOL_MODES:
            self.tool_mode.addItem(mode, mode)
        index = self.tool_mode.findData(chosen) if chosen else 0
        self.tool_mode.setCurrentIndex(max(index, 0))
        self.tool_mode.blockSignals(False)

    def _fill_tool_choices(self) -> None:
        """auto / required / none, then each enabled tool by name; keeps the choice while it stays possible."""
        chosen = self.tool_choice.currentData()
        self.tool_choice.blockSignals(True)
        self.tool_choice.clear()
        for choice in ("auto", "required", "none"):
            self.tool_choice.addItem(choice, choice)
        for name in self.enabled_tools():
            self.tool_choice.addItem(f"call {name}", name)
        index = self.tool_choice.findData(chosen) if chosen else 0
        self.tool_choice.setCurrentIndex(max(index, 0))
        self.tool_choice.blockSignals(False)

    def enabled_tools(self) -> list[str]:
        names = []
        for row in range(self.tool_list.count()):
            item = self.tool_list.item(row)
            if item.checkState() == Qt.CheckState.Checked:
                names.append(item.data(Qt.ItemDataRole.UserRole))
        return names

    def refresh_tools(self) -> None:
        """Follow the registry as MCP servers come and go: their tools appear (checked: the user added the server
        to use it; every call still asks) and disappear; the other entries keep their state."""
        registry = self.ctx.runtime.tools
        listed = set()
        self.tool_list.blockSignals(True)
        try:
            for row in reversed(range(self.tool_list.count())):
                item = self.tool_list.item(row)
                name = item.data(Qt.ItemDataRole.UserRole)
                if name not in registry:
                    if item.checkState() != Qt.CheckState.Checked:
                        self._unchecked_gone.add(name)  # unchecked stays unchecked when its server is back
                    self.tool_list.takeItem(row)
                    continue
                listed.add(name)
                tool = registry.get(name)
                if tool.server is not None:  # "always allow" changes what it says
                    item.setText(tool_label(tool))
                    item.setToolTip(tool_tooltip(tool))
            for tool in registry:
                if tool.name not in listed and tool.server is not None:
                    self.tool_list.addItem(tool_item(tool, tool.name not in self._unchecked_gone))
                    self._unchecked_gone.discard(tool.name)
        finally:
            self.tool_list.blockSignals(False)
        self._fill_tool_choices()

    def set_tool_enabled(self, name: str, enabled: bool) -> None:
        for row in range(self.tool_list.count()):
            item = self.tool_list.item(row)
            if item.data(Qt.ItemDataRole.UserRole) == name:
                item.setCheckState(Qt.CheckState.Checked if enabled else Qt.CheckState.Unchecked)

    def _show_model_kind(self) -> None:
        """Base models have no chat template, so no tool prompt: the tool chat is for instruct models."""
        super()._show_model_kind()
        if self.base_mode:
            self.views.setCurrentWidget(self.transcript)
            self.composer.set_prompt_shown(True)
            self.send_button.setText("Send")
            self.activity.setText(BASE_MODEL_NOTE)
        elif self.activity.text() == BASE_MODEL_NOTE:  # the model became an instruct one (llm_backends.yaml)
            self.activity.setText("")

    def send(self) -> None:
        if self.base_mode:
            return
        super().send()

    # ----- what the session's requests use -----
    def run_action(self, action: Callable[..., object], *args: object) -> bool:
        options = self.session.tool_options
        options.tools, options.max_iterations = self.enabled_tools(), self.max_iterations.value()
        options.tool_mode, options.tool_choice = self.tool_mode.currentData(), self.tool_choice.currentData() or "auto"
        return super().run_action(action, *args)

    def _render_streamed(self, change: SessionChange, message: Message) -> None:
        if change.what == "step_started":
            self.activity.setText(self._progress(change.event))  # type: ignore[arg-type]
        super()._render_streamed(change, message)

    def _progress(self, event: StepStarted) -> str:
        request = self.session.current
        offset = request.recorder.offset if request is not None else 0
        return progress_line(event, offset=offset, max_iterations=self.session.tool_options.max_iterations)


# How each mode's step reaches the model, in words (fallback's "no tools sent" read like a bug).
MODE_WORDS = {
    "fallback": "fallback mode: tools described in the prompt, calls read from the text",
    "off": "tools off for this step",
}


def progress_line(event: StepStarted, *, offset: int, max_iterations: int) -> str:
    """The status line while the loop runs: its step (after a replay's kept ones), how tools reach the model, and
    any forcing."""
    sent = "tools sent" if event.tools_sent else "no tools sent"
    how = MODE_WORDS.get(event.mode) or f"{event.mode} mode  ·  {sent}"
    forced = ""
    if event.tool_choice != "auto":
        forced = f"  ·  tool_choice {event.tool_choice}" + (" (grammar)" if event.constrained else "")
    return f"Step {event.iteration + offset} of {max_iterations + offset}  ·  {how}{forced}"
