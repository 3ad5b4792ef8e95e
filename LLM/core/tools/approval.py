"""Whether a tool call may run: one approval policy for the window and ``llmctl``, kept per (server, tool).

Before a call that needs approval runs, its arguments are checked against the tool's schema (a call that
cannot run is sent back to the model, nobody is asked), then the policy answers without asking when it can:

- a tool that does not need approval runs (local tools; an MCP tool listed in its server's ``autoApprove`` in
  mcp.json arrives with ``needs_approval`` False);
- ``allow_all`` (``llmctl --yes``) runs everything;
- a tool the user chose "Always allow" for, in this chat (window) or this run (``llmctl``), runs.

Otherwise the front end asks, and :meth:`ApprovalPolicy.record` turns the answer into the loop's
:class:`Approval`. "Always allow" is remembered by :func:`approval_key`: a local tool by its name, an MCP tool by
its server and the server's own tool name, never by the function name the model sees, so it can never carry
over to another server's tool.
"""

from __future__ import annotations

import asyncio
import enum
import inspect
import json
from collections.abc import Awaitable, Callable, MutableSet
from typing import Any

from ..errors import LLMError
from ..events import ToolCall
from .registry import Tool, ToolArgumentsError, ToolResult


class Approval(enum.Enum):
    """What an approval hook may answer besides True (allow) and False (deny). Only ALLOW is truthy, so code that
    treats the answer as a bool never runs a denied call."""

    ALLOW = "allow"
    DENY = "deny"
    DENY_AND_STOP = "deny_and_stop"  # deny, skip the step's other calls, and end the run without asking the model

    def __bool__(self) -> bool:
        return self is Approval.ALLOW


ApprovalHook = Callable[[ToolCall, Tool], "bool | Approval | Awaitable[bool | Approval]"]


class ApprovalDecision(str, enum.Enum):
    """What the user answered when asked."""

    ONCE = "once"
    ALWAYS = "always"  # for the rest of this chat or run (an MCP tool in the window: saved in its autoApprove)
    DENY = "deny"
    DENY_AND_STOP = "deny_and_stop"  # deny, and end the run without asking the model again


Asker = Callable[[ToolCall, Tool], Awaitable[ApprovalDecision]]
SaveAlways = Callable[[str, str], None]  # (server, tool): "always" for an MCP tool, made lasting (autoApprove)


def approval_key(tool: Tool) -> str:
    """What "Always allow" is kept by: a local tool's name, or ``["server", "tool"]`` (JSON) for an MCP tool,
    which no local tool name can equal (those are ``[A-Za-z0-9_-]``)."""
    if tool.server is None:
        return tool.name
    return json.dumps([tool.server, tool.server_tool or tool.name], ensure_ascii=False)


def verdict(decision: ApprovalDecision) -> Approval:
    """The loop's answer for what the user chose."""
    if decision is ApprovalDecision.DENY_AND_STOP:
        return Approval.DENY_AND_STOP
    return Approval.DENY if decision is ApprovalDecision.DENY else Approval.ALLOW


def argument_problem(tool: Tool, call: ToolCall) -> ToolResult | None:
    """The error result for a call whose arguments do not fit the tool's schema; None when they do. Checked
    before anyone is asked: approving a call that cannot run (or that the server would quietly change) helps
    nobody, and the model learns what to fix."""
    if call.invalid_arguments is not None:
        return ToolResult(False, "", f"{call.name}: arguments are not a JSON object: "
                                     f"{call.invalid_arguments[:200]}", 0.0)
    try:
        tool.validate(call.arguments)
    except ToolArgumentsError as exc:
        return ToolResult(False, "", f"invalid arguments for {exc}", 0.0)
    return None


async def approve_call(tool: Tool, call: ToolCall, before_call: ApprovalHook | None) -> ToolResult | Approval:
    """Everything that happens before a call runs: for a tool that needs approval, an error result when its
    arguments are wrong, else the approval hook's answer (no hook denies). A tool that needs none is allowed
    here; execute() checks its arguments, as it checks every call's (so no call pays for the check twice
    unless someone has to be asked in between)."""
    if not tool.needs_approval:
        return Approval.ALLOW
    # In a thread, as execute() does: a schema `pattern` check may wait on a child process (tools/safe_regex).
    problem = await asyncio.to_thread(argument_problem, tool, call)
    if problem is not None:
        return problem
    answer: Any = False
    if before_call is not None:
        answer = before_call(call, tool)
        if inspect.isawaitable(answer):
            answer = await answer
    if isinstance(answer, Approval):
        return answer
    return Approval.ALLOW if answer else Approval.DENY


class ApprovalPolicy:
    """When to ask, and what "Always allow" remembers (see the module docstring).

    ``allowed``: the memory of "always" answers, by :func:`approval_key`; pass a chat's own set to share it with
    the chat (the window), or nothing for a fresh one (one ``llmctl`` run). ``allow_all``: never ask.
    ``save_always``: called for "always" on an MCP tool to make it lasting (the MCP manager's ``always_allow``);
    a failure to save leaves it allowed for now and is kept in ``problem``.
    """

    def __init__(self, allowed: MutableSet[str] | None = None, *, allow_all: bool = False,
                 save_always: SaveAlways | None = None) -> None:
        self.allowed: MutableSet[str] = allowed if allowed is not None else set()
        self.allow_all = allow_all
        self.save_always = save_always
        self.problem: str | None = None

    def must_ask(self, tool: Tool) -> bool:
        """Whether the user has to be asked before ``tool`` runs."""
        return tool.needs_approval and not self.allow_all and approval_key(tool) not in self.allowed

    def record(self, tool: Tool, decision: ApprovalDecision) -> Approval:
        """Remember an "always" answer (and save it for an MCP tool); the loop's answer."""
        if decision is ApprovalDecision.ALWAYS:
            self.allowed.add(approval_key(tool))
            if tool.server is not None and self.save_always is not None:
                try:
                    self.save_always(tool.server, tool.server_tool or tool.name)
                except LLMError as exc:
                    self.problem = f"Allowed for now, but not saved: {exc}"
        return verdict(decision)

    async def decide(self, call: ToolCall, tool: Tool, ask: Asker) -> Approval:
        """Allow without asking where the policy can, else ``ask`` and record the answer."""
        if not self.must_ask(tool):
            return Approval.ALLOW
        return self.record(tool, await ask(call, tool))

    def hook(self, ask: Asker) -> Callable[[ToolCall, Tool], Awaitable[Approval]]:
        """The loop's approval hook: this policy, asking through ``ask``."""

        async def before_call(call: ToolCall, tool: Tool) -> Approval:
            return await self.decide(call, tool, ask)

        return before_call
