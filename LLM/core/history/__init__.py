"""Saved conversations: the SQLite store, partial saves of streaming answers, export and import."""

from .autosave import PARTIAL_SAVE_INTERVAL_S, AnswerSaver
from .exchange import FORMAT, MAX_IMPORT_BYTES, from_json, from_json_file, to_json, to_markdown
from .paths import default_history_path
from .search import search_terms
from .store import INTERRUPTED, ConversationSummary, HistoryStore
from .times import UNKNOWN_TIME, local_datetime, local_time_text

__all__ = [
    "AnswerSaver",
    "ConversationSummary",
    "FORMAT",
    "HistoryStore",
    "INTERRUPTED",
    "MAX_IMPORT_BYTES",
    "PARTIAL_SAVE_INTERVAL_S",
    "UNKNOWN_TIME",
    "default_history_path",
    "from_json",
    "from_json_file",
    "local_datetime",
    "local_time_text",
    "search_terms",
    "to_json",
    "to_markdown",
]
