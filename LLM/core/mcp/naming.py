"""MCP tool names -> OpenAI function names ``<server>__<tool>``: sanitised, unique, collisions reported (pure)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

MAX_NAME = 64  # what OpenAI-compatible servers accept as a function name
SEPARATOR = "__"
_BAD = re.compile(r"[^A-Za-z0-9_-]")


def sanitise(part: str) -> str:
    """Every character outside ``[A-Za-z0-9_-]`` becomes ``_``; an empty part becomes ``_``."""
    return _BAD.sub("_", part) or "_"


def prefixed_name(server: str, tool: str) -> str:
    """``<server>__<tool>``, sanitised and cut to 64 characters (the server part gives way first, down to 16)."""
    server_part, tool_part = sanitise(server), sanitise(tool)
    room = MAX_NAME - len(SEPARATOR)
    if len(server_part) + len(tool_part) > room:
        server_part = server_part[: max(16, room - len(tool_part))]
        tool_part = tool_part[: room - len(server_part)]
    return f"{server_part}{SEPARATOR}{tool_part}"


@dataclass(frozen=True)
class NamedTool:
    server: str
    tool: str  # the server's own name for it
    name: str  # the function name the model sees


def assign_names(tools: Iterable[tuple[str, str]], taken: Iterable[str] = ()) -> tuple[list[NamedTool], list[str]]:
    """Name every (server, tool) pair; a name already used (by a local tool in ``taken`` or an earlier pair)
    gets ``_2``, ``_3``, ... Returns the names in the given order and one sentence per collision."""
    used = set(taken)
    named: list[NamedTool] = []
    collisions: list[str] = []
    owners: dict[str, str] = {}
    for server, tool in tools:
        base = prefixed_name(server, tool)
        name, n = base, 1
        while name in used:
            n += 1
            suffix = f"_{n}"
            name = base[: MAX_NAME - len(suffix)] + suffix
        if name != base:
            other = owners.get(base)
            clash = f"'{other}'" if other else "a local tool"
            collisions.append(f"MCP tool '{tool}' of server '{server}' would be named '{base}', which {clash} "
                              f"already has; it is called '{name}'")
        used.add(name)
        owners[name] = f"{server}/{tool}"
        named.append(NamedTool(server, tool, name))
    return named, collisions
