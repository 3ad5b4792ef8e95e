"""The chat session: how an answer becomes a saved message (``recorder``), the session that owns a
conversation and its current request (``session``), and replays of tool answers (``replay``). No Qt: the
window, ``llmctl`` and the eval drive it."""

from ..failures import describe_error
from .recorder import AnswerRecorder, step_record
from .replay import REPLAY_ACTIONS, ReplayAction, edited_cards, parse_edited_arguments
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
    "edited_cards",
    "parse_edited_arguments",
    "step_record",
]
