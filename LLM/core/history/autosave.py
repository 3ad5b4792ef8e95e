"""When a streaming answer is saved: at once when it starts and ends, else about once a second.

Saving every token would put a database write on every chunk; saving once a second bounds what a
crash can lose to the last second of text and keeps writes off the streaming path (pure; the clock
is injectable).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from ..chat.conversation import Conversation, Message
from ..errors import HistoryError
from .store import HistoryStore

PARTIAL_SAVE_INTERVAL_S = 1.0


class AnswerSaver:
    """Saves messages to a store, throttling the partial saves of a growing answer.

    A failing store (a full disk, a lock held too long) must not break the chat: the error is kept in
    ``problem`` for the window or CLI to show, and the messages it missed stay queued, oldest first,
    and go in with the next save that works, so the saved tree never has an answer without its
    question."""

    def __init__(self, store: HistoryStore, clock: Callable[[], float] = time.monotonic,
                 interval_s: float = PARTIAL_SAVE_INTERVAL_S) -> None:
        self.store = store
        self._clock = clock
        self._interval_s = interval_s
        self._last_saved: dict[str, float] = {}  # message id -> when its last save was attempted
        self._queued: dict[tuple[str, str], tuple[Conversation, Message]] = {}  # in the order first asked
        self.problem: HistoryError | None = None

    def save(self, conversation: Conversation, message: Message) -> bool:
        """Now: a new message, a finished one, an edit. True when it (and everything queued) is saved."""
        self._queued.setdefault((conversation.id, message.id), (conversation, message))
        if message.final:
            self._last_saved.pop(message.id, None)
        else:
            self._last_saved[message.id] = self._clock()
        for key, (queued_conversation, queued) in list(self._queued.items()):
            try:
                self.store.save_message(queued_conversation, queued)  # its state now, not when it was queued
            except HistoryError as exc:
                self.problem = exc
                return False
            del self._queued[key]
        self.problem = None
        return True

    def changed(self, conversation: Conversation, message: Message) -> bool:
        """The answer grew: saved (incomplete) when the last save is ``interval_s`` old. True if it saved."""
        last = self._last_saved.get(message.id)
        if last is not None and self._clock() - last < self._interval_s:
            return False
        return self.save(conversation, message)

    @property
    def unsaved(self) -> int:
        """Messages waiting for the store to work again."""
        return len(self._queued)
