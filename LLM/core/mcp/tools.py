"""An MCP tool as a registry Tool: the model sees ``<server>__<tool>`` with the server's description and schema."""

from __future__ import annotations

import copy
from collections.abc import Awaitable, Callable
from typing import Any

from ..tools.registry import Tool
from .states import McpToolSpec

CALL_MARGIN_S = 5.0  # the registry's own deadline sits behind the server's timeout, so the server's fires first

Caller = Callable[[str, str, dict[str, Any]], Awaitable[str]]  # (server, tool, arguments) -> text; raises McpError


def object_schema(schema: Any) -> dict[str, Any]:
    """The server's inputSchema as function parameters: always an object schema with ``properties``. Where the
    server lists its properties and says nothing of others, others are refused (``additionalProperties``
    false): the SDKs' servers silently drop an unknown argument, and the model should hear that it was wrong."""
    out = copy.deepcopy(schema) if isinstance(schema, dict) else {}
    if isinstance(out.get("properties"), dict) and "additionalProperties" not in out:
        out["additionalProperties"] = False
    out.setdefault("type", "object")
    out.setdefault("properties", {})
    return out


def registry_tool(spec: McpToolSpec, call: Caller, timeout_s: float) -> Tool:
    """A Tool whose call goes to the server; an MCP error raised becomes the error result the model reads. Its
    arguments are checked against the schema before approval and the call (``Tool.validate``)."""

    async def run(**arguments: Any) -> str:
        return await call(spec.server, spec.tool, arguments)

    run.__name__ = spec.name
    return Tool(name=spec.name, description=spec.description, parameters=object_schema(spec.input_schema), fn=run,
                needs_approval=not spec.auto_approved, timeout_s=timeout_s + CALL_MARGIN_S, server=spec.server,
                server_tool=spec.tool)
