"""The tool chat page: the chat plus tool selection, tool-call cards, loop notices and approvals."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QFormLayout, QLabel, QListWidget, QListWidgetItem, QSpinBox, QWidget

from LLM.core import (
    DEFAULT_TOOLS,
    Approval,
    ApprovalDecision,
    ApprovalPolicy,
    answer_turns,
    InferenceConfig,
    LoopFinished,
    LoopNotice,
    Message,
    Notice,
    StepFinished,
    StepStarted,
    Tool,
    ToolCall,
    ToolCallEvent,
    ToolCard,
    ToolEnabledInferenceConfig,
    ToolResultEvent,
)

from ..context import AppContext
from ..widgets.tool_editor import ToolFileButtons
from .chat_page import ActiveRequest, ChatPage
from .tool_replay import ToolReplay, step_record

TOOL_MODES = ("auto", "native", "fallback")


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
        self._max_iterations_of_request = 8
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

    def _on_new_chat(self) -> None:
        # "Always allow" lasts while the chat is open here: a reopened chat asks again.
        self.conversation.always_allowed.clear()

    def _show_model_kind(self) -> None:
        """Base models have no chat template, so no tool prompt: the tool chat is for instruct models."""
        super()._show_model_kind()
        if self.base_mode:
            self.views.setCurrentWidget(self.transcript)
            self.prompt.setVisible(True)
            self.send_button.setText("Send")
            self.activity.setText("This is a base model (no chat template): tools need an instruct model. "
                                  "Use the Chat tab to continue text.")

    def send(self) -> None:
        if self.base_mode:
            return
        super().send()

    # ----- one request -----
    def _request_config(self, message: Message) -> InferenceConfig:
        return ToolEnabledInferenceConfig(
            model_id=self.model_id,
            # A replayed answer starts with the steps it keeps: they go back as the model made them.
            messages=self.conversation.history(upto=message) + answer_turns(message),
            enable_tools=True,
            tools=self.enabled_tools(),
            max_iterations=self.max_iterations.value(),
            tool_mode=self.tool_mode.currentData(),
            tool_choice=self.tool_choice.currentData() or "auto",
            **self._generation_kwargs(),
        )

    def _events(self, cfg: InferenceConfig) -> AsyncIterator[Any]:
        assert isinstance(cfg, ToolEnabledInferenceConfig)
        request_id = cfg.request_id
        max_iterations = cfg.max_iterations

        # The core policy decides; "always" is kept in this chat (by server and tool for an MCP tool) and, for an
        # MCP tool, saved in its server's autoApprove.
        mcp = self.ctx.runtime.mcp
        policy = ApprovalPolicy(self.conversation.always_allowed,
                                save_always=mcp.always_allow if mcp is not None else None)

        async def ask(call: ToolCall, tool: Tool) -> ApprovalDecision:
            return await self._ask(request_id, call, tool)

        async def before_call(call: ToolCall, tool: Tool) -> Approval:
            if self._active is None or self._active.request_id != request_id:
                return Approval.DENY
            verdict = await policy.decide(call, tool, ask)
            if policy.problem is not None:
                self.activity.setText(policy.problem)
                policy.problem = None
            return verdict

        self._max_iterations_of_request = max_iterations
        return self.replay.events(cfg, before_call)

    async def _ask(self, request_id: str, call: ToolCall, tool: Tool) -> ApprovalDecision:
        """Ask the user through the interaction facade, showing on the call's card that it waits."""
        if self._active is None or self._active.request_id != request_id:
            return ApprovalDecision.DENY
        self.activity.setText(f"Waiting for your approval to run {tool.name}…")
        message = self._active.message
        card = next((c for c in reversed(message.tool_cards) if c.call_id == call.id), None)
        if card is not None:
            card.output = "waiting for your approval…"
            self.transcript.render_now(message)
        try:
            return await self.ctx.interaction.approve_tool(self, call, tool)
        finally:
            if self._active is not None and self._active.request_id == request_id:
                self.activity.setText("")

    def _apply(self, active: ActiveRequest, event: Any) -> None:
        message = active.message
        offset = self.replay.offset  # a replayed answer's loop counts its steps after the kept ones
        if isinstance(event, StepStarted):
            message.iteration = event.iteration + offset
            tools = "tools sent" if event.tools_sent else "no tools sent"
            forced = ""
            if event.tool_choice != "auto":
                forced = f"  ·  tool_choice {event.tool_choice}" + (" (grammar)" if event.constrained else "")
            self.activity.setText(f"Step {event.iteration + offset} of {self._max_iterations_of_request + offset}"
                                  f"  ·  {event.mode} "
                                  f"mode  ·  {tools}{forced}")
        elif isinstance(event, ToolCallEvent):
            message.parts.append(ToolCard(event.iteration + offset, event.call.name, dict(event.call.arguments),
                                          event.source, call_id=event.call.id))
            message.status = "streaming"
            self.transcript.schedule(message)
        elif isinstance(event, ToolResultEvent):
            card = next((c for c in reversed(message.tool_cards) if c.call_id == event.call.id), None)
            if card is not None:
                result = event.result
                card.ok, card.output, card.error, card.duration_ms = (
                    result.ok, result.output, result.error, result.duration_ms)
            self.transcript.schedule(message)
        elif isinstance(event, StepFinished):
            active.meter.usage(event.prompt_tokens, event.completion_tokens, event.duration_ms)
            self._note_context(event.prompt_tokens, event.completion_tokens)
            if event.step is not None:
                message.steps.append(step_record(event.step, offset))
                self.transcript.schedule(message)
        elif isinstance(event, LoopNotice):
            message.parts.append(Notice(event.kind, event.message))
            self.transcript.schedule(message)
        elif isinstance(event, LoopFinished):
            active.finish_reason = event.result.stopped_by or event.result.finish_reason
        else:
            super()._apply(active, event)
