"""The vocabulary of MCP server lifecycles: states, a server's status, the events listeners get (pure data).

::

    stopped --start--> starting --tools listed--> ready
       ^                  |                         | crash: respawn with backoff (at most 3 times in 60 s)
       |                  v                         v
       +---stop------- failed <--start fails / 4th crash in 60 s-- starting
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class McpState(str, enum.Enum):
    STOPPED = "stopped"
    STARTING = "starting"
    READY = "ready"
    FAILED = "failed"


@dataclass(frozen=True)
class McpToolSpec:
    """A tool as the server lists it, with the function name the model sees."""

    server: str
    tool: str  # the server's own name
    name: str  # ``<server>__<tool>``, sanitised and unique
    description: str
    input_schema: dict[str, Any]
    enabled: bool = True  # False: listed under ``disabledTools``, not offered to the model
    auto_approved: bool = False  # listed under ``autoApprove``: called without asking


@dataclass(frozen=True)
class McpServerStatus:
    name: str
    state: McpState
    enabled: bool
    transport: str
    target: str  # the command line or URL
    detail: str = ""  # why it failed, or what it is doing
    error: str | None = None
    stderr_tail: tuple[str, ...] = ()
    tools: tuple[McpToolSpec, ...] = ()
    restarts: int = 0  # respawns after crashes in the current window


@dataclass(frozen=True)
class McpEvent:
    """A server changed state or its tools changed (``status``: its status after the change); or, with kind
    ``config`` and no status, mcp.json was reloaded and the set of servers may have changed."""

    status: McpServerStatus | None
    kind: str = "state"  # state | tools | config
    notes: tuple[str, ...] = field(default_factory=tuple)  # e.g. tool-name collisions
