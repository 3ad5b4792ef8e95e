"""Recovering ``<tool_call>`` calls and ``<think>`` reasoning from raw model text, whole or streamed (pure)."""

from .stream import ParsedOutput, ParserEvent, ToolCallStreamParser, parse_tool_calls

__all__ = ["ParsedOutput", "ParserEvent", "ToolCallStreamParser", "parse_tool_calls"]
