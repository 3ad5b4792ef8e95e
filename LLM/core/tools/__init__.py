"""Tool calling: defining tools, parsing calls from model text, running them, and the iterative loop.

``registry`` (Tool, ``@tool``, ToolRegistry, safe execution) with ``schema`` (JSON schema from a
signature); ``canned`` (tools without code: JSON files with a schema and a canned reply) and
``json_schema`` (the schema subset they may use); ``builtin`` tools on top of ``calculator`` and the workspace ``sandbox``; ``parsing``
(the pure ``<tool_call>`` parser); ``prompts`` (the fallback tool prompt and history turns) and
``loop`` (the iterative tool loop). User tool files import ``tool`` from here.
"""

from .canned import CannedTool, CannedToolError
from .registry import Tool, ToolArgumentsError, ToolRegistry, ToolResult, default_tools_dir, execute, tool

__all__ = ["CannedTool", "CannedToolError", "Tool", "ToolArgumentsError", "ToolRegistry", "ToolResult",
           "default_tools_dir", "execute", "tool"]
