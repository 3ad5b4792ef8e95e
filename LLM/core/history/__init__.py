"""Saved conversations: the SQLite store, partial saves of streaming answers, export and import."""

from .autosave import PARTIAL_SAVE_INTERVAL_S, AnswerSaver
from .exchange import FORMAT, from_json, to_json, to_markdown
from .paths import DATA_ENV_VAR, data_dir, default_history_path
from .store import INTERRUPTED, ConversationSummary, HistoryStore

__all__ = [
    "DATA_ENV_VAR",
    "FORMAT",
    "INTERRUPTED",
    "PARTIAL_SAVE_INTERVAL_S",
    "AnswerSaver",
    "ConversationSummary",
    "HistoryStore",
    "data_dir",
    "default_history_path",
    "from_json",
    "to_json",
    "to_markdown",
]
