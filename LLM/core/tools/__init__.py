"""Tool calling: defining tools, parsing calls from model text, running them, and the iterative loop.

``registry`` (Tool, ``@tool``, ToolRegistry, safe execution) with ``schema`` (JSON schema from a
signature); ``canned`` (tools without code: JSON files with a schema and a canned reply) and
``json_schema`` (the schema subset they may use); ``builtin`` tools on top of ``calculator`` and the workspace
``sandbox``; ``parsing`` (the pure ``<tool_call>`` parser); ``grammar`` (forced calls); ``approval`` (the one
approval policy); ``prompts`` (the fallback tool prompt) and ``loop`` (the iterative tool loop and its events).
User tool files import ``tool`` from here.
"""

from .approval import Approval, ApprovalDecision, ApprovalHook, ApprovalPolicy, approve_call
from .builtin import WORKSPACE_TOOLS, build_default_registry
from .canned import REPLY_KINDS, CannedTool, canned_tool_from_form
from .json_schema import schema_problems, value_problems
from .loop import (
    LoopEvent,
    LoopFinished,
    LoopNotice,
    StepFinished,
    StepStarted,
    ToolCallEvent,
    ToolLoop,
    ToolResultEvent,
    ToolRunResult,
    ToolStep,
)
from .registry import Tool, ToolArgumentsError, ToolRegistry, ToolResult, default_tools_dir, execute, tool

__all__ = [
    "Approval",
    "ApprovalDecision",
    "ApprovalHook",
    "ApprovalPolicy",
    "CannedTool",
    "LoopEvent",
    "LoopFinished",
    "LoopNotice",
    "REPLY_KINDS",
    "StepFinished",
    "StepStarted",
    "Tool",
    "ToolArgumentsError",
    "ToolCallEvent",
    "ToolLoop",
    "ToolRegistry",
    "ToolResult",
    "ToolResultEvent",
    "ToolRunResult",
    "ToolStep",
    "WORKSPACE_TOOLS",
    "approve_call",
    "build_default_registry",
    "canned_tool_from_form",
    "default_tools_dir",
    "execute",
    "schema_problems",
    "tool",
    "value_problems",
]
