"""The lifecycle of one model server: its states, legal transitions and the events reported.

What the supervisor (supervisor.py ``ModelServer``, the single owner of the state) does when asked, per state:

- STOPPED   ``ensure_ready`` starts it (or re-attaches to the one another process of ours runs); ``stop``
            stops such a server of another process of ours, if one runs.
- STARTING  ``ensure_ready`` joins the start in progress; ``stop`` cancels it and stops the process.
- READY     ``ensure_ready`` returns at once; ``stop`` waits for the answers in flight, then stops it.
- STOPPING  ``ensure_ready`` waits for the stop to end, then starts again; ``stop`` waits for that stop.
- FAILED    ``ensure_ready`` starts again (the user's Retry); ``stop`` clears it.
- RETIRED   terminal. A config reload replaced this supervisor (``retire``) and it has stopped; it holds no
            process and never starts again, so a request cannot revive old settings outside the manager.

Retirement is decided before its stop begins: from then on ``ensure_ready`` refuses to start (``ServerRetired``)
in every state, while a READY server still finishes the answers already in flight. The manager catches the
refusal, waits for the reload to finish and hands the request to the successor built from the new config.
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
