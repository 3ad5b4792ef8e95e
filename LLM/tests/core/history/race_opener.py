"""The process test_store's opening race runs several of: each opens a history the moment it is told to.

``python race_opener.py`` imports LLM.core once (about 0.7 s, too slow to pay per round), then for each
``<path> <title>`` line read on stdin opens a HistoryStore on that path, saves a conversation with that
title, closes the store and prints ``saved <conversation id>``, or ``error <type>: <message>`` when any
step fails. The test writes the line to every opener at once, so they open the file together.
"""

from __future__ import annotations

import sys

from LLM.core.chat.conversation import Conversation
from LLM.core.history import HistoryStore


def open_and_save(path: str, title: str) -> str:
    try:
        with HistoryStore(path) as store:
            conversation = Conversation(title)
            store.save_message(conversation, conversation.add_user(f"hello from {title}"))
        return f"saved {conversation.id}"
    except Exception as exc:  # the test shows what went wrong, whatever it was
        return f"error {type(exc).__name__}: {' '.join(str(exc).split())}"


def main() -> None:
    for line in sys.stdin:
        path, title = line.split()
        print(open_and_save(path, title), flush=True)


if __name__ == "__main__":
    main()
