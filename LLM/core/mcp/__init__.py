"""MCP (Model Context Protocol) tool servers as a tool source: their tools become registry tools.

``config`` (mcp.json -> validated entries, pure), ``naming`` (``<server>__<tool>`` function names, stable for
a configuration, pure), ``results`` (a CallToolResult -> the model's text, pure), ``states`` (lifecycle
vocabulary), ``store`` (the app's edits to mcp.json), ``imports`` (other apps' files), ``tools`` (registry Tools),
``connection`` (one server: the owner task and the SDK, imported lazily) and ``manager`` (all servers + the
registry).
"""

from .config import parse_mcp_config
from .imports import present_sources
from .manager import McpManager
from .states import McpEvent, McpServerStatus, McpState

__all__ = ["McpEvent", "McpManager", "McpServerStatus", "McpState", "parse_mcp_config", "present_sources"]
