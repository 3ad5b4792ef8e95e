"""The chat session: how an answer becomes a saved message (``recorder``), the session that owns a
conversation and its current request (``session``), and replays of tool answers (``replay``). No Qt: the
window, ``llmctl`` and the eval drive it."""

from .recorder import AnswerRecorder, describe_error, step_record
from .replay import REPLAY_ACTIONS, ReplayAction, parse_edited_arguments
from .session import ChangeKind, ChatSession, Request, SessionChange, ToolOptions

__all__ = [
    "AnswerRecorder",
    "ChangeKind",
    "ChatSession",
    "REPLAY_ACTIONS",
    "ReplayAction",
    "Request",
    "SessionChange",
    "ToolOptions",
    "describe_error",
    "parse_edited_arguments",
    "step_record",
]
