"""The lifecycle of one model server: its states, legal transitions and the events reported.

What ``ensure_ready``, ``stop`` and ``retire`` do from each state is the table in the docstring of
supervisor.py's ``ModelServer``, the single owner of the state (tests/core/servers/test_contract.py checks it).
RETIRED is terminal: a config reload replaced that supervisor and it has stopped; it holds no process and never
starts again, so a request cannot revive old settings outside the manager.
"""

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
    RETIRED = "retired"


TRANSITIONS: dict[ServerState, frozenset[ServerState]] = {
    # STOPPING from STOPPED: stopping a server another process of ours started. FAILED from STOPPED: a start
    # refused before anything ran (the loaded-model budget), so the user sees why and can retry.
    ServerState.STOPPED: frozenset({ServerState.STARTING, ServerState.STOPPING, ServerState.FAILED,
                                    ServerState.RETIRED}),
    ServerState.STARTING: frozenset({ServerState.READY, ServerState.FAILED, ServerState.STOPPING}),
    ServerState.READY: frozenset({ServerState.STOPPING, ServerState.FAILED}),
    ServerState.STOPPING: frozenset({ServerState.STOPPED, ServerState.FAILED}),
    ServerState.FAILED: frozenset({ServerState.STARTING, ServerState.STOPPING, ServerState.STOPPED}),
    # RETIRED is reached once stopped, and never left.
    ServerState.RETIRED: frozenset(),
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
