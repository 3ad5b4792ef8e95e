"""The lifecycle of one model server: its states, legal transitions and the events reported."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from ..errors import LLMError
from ..protocol.props import EngineProps


class ServerState(str, enum.Enum):
    STOPPED = "stopped"
    STARTING = "starting"
    READY = "ready"
    STOPPING = "stopping"
    FAILED = "failed"


TRANSITIONS: dict[ServerState, frozenset[ServerState]] = {
    # STOPPING from STOPPED: stopping a server another process of ours started. FAILED from STOPPED: a start
    # refused before anything ran (the loaded-model budget), so the user sees why and can retry.
    ServerState.STOPPED: frozenset({ServerState.STARTING, ServerState.STOPPING, ServerState.FAILED}),
    ServerState.STARTING: frozenset({ServerState.READY, ServerState.FAILED, ServerState.STOPPING}),
    ServerState.READY: frozenset({ServerState.STOPPING, ServerState.FAILED}),
    ServerState.STOPPING: frozenset({ServerState.STOPPED, ServerState.FAILED}),
    ServerState.FAILED: frozenset({ServerState.STARTING, ServerState.STOPPING, ServerState.STOPPED}),
}


class IllegalTransition(RuntimeError):
    """A programming error: the owner tried a transition the lifecycle does not allow."""


@dataclass(frozen=True)
class ServerEvent:
    """Reported on every transition, and while starting when the engine prints progress."""

    model_id: str
    state: ServerState
    detail: str = ""
    error: LLMError | None = None
    pid: int | None = None
    progress: str | None = None  # the engine's latest log line while loading
    props: EngineProps | None = None  # on READY: what the engine reports about itself
    memory_bytes: int | None = None  # on READY: the server's resident memory
