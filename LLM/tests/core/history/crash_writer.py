"""The process test_crash_safety kills: it streams answers into a real history until it gets SIGKILL.

``python crash_writer.py <db>`` is a small fork server: importing LLM.core takes about 0.7 s, which 20
fresh processes cannot afford in a test of 40 s, so it imports once and forks one writer per
``run <seed>`` line read on stdin. It prints ``pid <pid>`` for each writer and, once that writer is
dead, ``reaped <pid> <wait status>``: every line the writer printed comes before that one.

A writer uses the real HistoryStore and AnswerSaver (one save a second) and prints::

    ready <conversation id>
    committed <message id> user <question number>    the question is saved
    answer <message id>                             the answer exists and is saved (empty)
    token <length> <time.monotonic()>               one more token of text, printed before it can be saved
    saved <message id> <length>                     a partial save committed
    committed <message id> assistant <length>       the finished answer committed
    error <description>                             the writer failed; it then waits to be killed
"""

from __future__ import annotations

import itertools
import os
import random
import signal
import sys
import time
import traceback
from pathlib import Path

from LLM.core.chat.conversation import Conversation
from LLM.core.history import AnswerSaver, HistoryStore

TOKEN_INTERVAL_S = 0.005
# Tokens per answer, either range at even odds: short answers finish (commits to check), long ones
# stream for 1.5-4 s, past their first partial saves (a second in), where most kills then land.
SHORT, LONG = (20, 100), (300, 800)


def token(i: int) -> str:
    return f"t{i} "


STREAM = "".join(token(i) for i in range(LONG[1]))  # every answer is a prefix of this


def question_text(seed: int, n: int) -> str:
    return f"question {n} of writer {seed}"


def say(*words: object) -> None:
    """One line in one write(2): a pipe takes it whole (it is under PIPE_BUF), so a kill never leaves half a
    line for the server's next line to run into, as print() can (it may write the words one by one)."""
    os.write(1, (" ".join(map(str, words)) + "\n").encode())


def write(db: Path, seed: int) -> None:
    rng = random.Random(seed)
    saver = AnswerSaver(HistoryStore(db))
    conversation = Conversation()

    def save(message) -> None:
        if not saver.save(conversation, message):
            raise RuntimeError(f"save failed: {saver.problem}")

    say("ready", conversation.id)
    for n in itertools.count():
        question = conversation.add_user(question_text(seed, n))
        save(question)
        say("committed", question.id, "user", n)
        answer = conversation.add_assistant("crash-test")
        save(answer)
        say("answer", answer.id)
        for i in range(rng.randint(*(SHORT if rng.random() < 0.5 else LONG))):
            answer.append_text(token(i))
            answer.status = "streaming"
            say("token", len(answer.content), repr(time.monotonic()))
            if saver.changed(conversation, answer):
                say("saved", answer.id, len(answer.content))
            time.sleep(TOKEN_INTERVAL_S)
        answer.status = "done"
        save(answer)
        say("committed", answer.id, "assistant", len(answer.content))


def _writer(db: Path, seed: int) -> None:
    """The forked child: never returns into the server's loop, and never exits on its own, so its pid
    stays the test's to kill until the server reaps it."""
    try:
        write(db, seed)
    except BaseException:
        say("error", repr(traceback.format_exc()))
    while True:
        signal.pause()


def main(argv: list[str] | None = None) -> None:
    db = Path((argv if argv is not None else sys.argv[1:])[0])
    for line in sys.stdin:
        command, seed = line.split()
        assert command == "run", line
        pid = os.fork()
        if pid == 0:
            _writer(db, int(seed))
        say("pid", pid)
        _, status = os.waitpid(pid, 0)
        say("reaped", pid, status)


if __name__ == "__main__":
    main()
