"""MCP (Model Context Protocol) tool servers as a tool source: their tools become registry tools.

``config`` (mcp.json -> validated entries, pure), ``naming`` (``<server>__<tool>`` function names, stable for
a configuration, pure), ``results`` (a CallToolResult -> the model's text, pure), ``states`` (lifecycle
vocabulary), ``store`` (the app's edits to mcp.json), ``imports`` (other apps' files), ``tools`` (registry Tools),
``connection`` (one server: the owner task and the SDK, imported lazily) and ``manager`` (all servers + the
registry).
"""

from .config import McpConfig, McpServerConfig, default_mcp_config_path, load_mcp_config, parse_mcp_config
from .imports import ImportSource, present_sources
from .manager import McpManager
from .naming import assign_names, prefixed_name, server_prefixes
from .results import ConvertedResult, convert_result
from .states import McpEvent, McpServerStatus, McpState, McpToolSpec

__all__ = ["ConvertedResult", "ImportSource", "McpConfig", "McpEvent", "McpManager", "McpServerConfig",
           "McpServerStatus", "McpState", "McpToolSpec", "assign_names", "convert_result", "default_mcp_config_path",
           "load_mcp_config", "parse_mcp_config", "prefixed_name", "present_sources", "server_prefixes"]
