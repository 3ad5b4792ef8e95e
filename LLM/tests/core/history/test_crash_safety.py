"""kill -9 while an answer streams into the history: 20 times into one file, which must never break.

After the kills, every message a writer reported committed is there, whole and done; the answer that
was streaming is there as interrupted, with a prefix of its text at most a second (plus a tolerance)
short of what had been produced. time.monotonic() is system-wide on Linux, so the writers' token
times and this process's kill times are on one clock.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from LLM.core.history import INTERRUPTED, PARTIAL_SAVE_INTERVAL_S, HistoryStore
from LLM.tests.core.history import crash_writer
from LLM.tests.core.history.crash_writer import STREAM, question_text

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="the writer server forks (POSIX only)")

ROOT = Path(__file__).resolve().parents[4]
KILLS = 20
KILL_AFTER_S = (0.2, 2.5)  # after the writer is ready: mid-question, mid-answer, between saves
# A save is due on the first token a second after the previous one; writing it, and getting a CPU on a
# loaded 2-core CI machine (where a process can wait a few hundred ms), can make it land later. So the
# saved text must cover what had been produced by (kill - 1 s - this tolerance).
TOLERANCE_S = 0.5


class Output:
    """The server's and its writers' stdout, read by a thread so that a full pipe never blocks them."""

    def __init__(self, stream) -> None:
        self.lines: list[str] = []
        self.closed = False
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream) -> None:
        for line in stream:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self.closed = True
            self._changed.notify_all()

    def wait_for(self, prefixes: tuple[str, ...], start: int, timeout: float) -> int | None:
        """The index of the first line from ``start`` on that starts with one of ``prefixes``; None at the deadline."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for index in range(start, len(self.lines)):
                    if self.lines[index].startswith(prefixes):
                        return index
                start = len(self.lines)
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self.closed:
                    return None
                self._changed.wait(remaining)

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)


@dataclass
class Run:
    """What one writer reported before it was killed."""

    seed: int
    killed_at: float
    conversation_id: str = ""
    committed: dict[str, tuple[str, int]] = field(default_factory=dict)  # message id -> (role, number or length)
    streaming: str | None = None  # the answer being written when the kill came
    tokens: list[tuple[int, float]] = field(default_factory=list)  # of that answer: (length, monotonic time)
    saved: int = 0  # the longest partial save of that answer it reported

    @classmethod
    def parse(cls, seed: int, killed_at: float, lines: list[str]) -> "Run":
        run = cls(seed, killed_at)
        for line in lines:
            kind, *words = line.split()
            if kind == "ready":
                run.conversation_id = words[0]
            elif kind == "committed":
                run.committed[words[0]] = (words[1], int(words[2]))
                run.streaming = None
            elif kind == "answer":
                run.streaming, run.tokens, run.saved = words[0], [], 0
            elif kind == "token":
                run.tokens.append((int(words[0]), float(words[1])))
            elif kind == "saved":
                run.saved = int(words[1])
            elif kind == "error":
                raise AssertionError(f"writer {seed} failed: {' '.join(words)}")
        return run

    def produced_by(self, when: float) -> int:
        return max((length for length, at in self.tokens if at <= when), default=0)


@pytest.fixture
def writer_server(tmp_path: Path) -> Iterator[tuple[subprocess.Popen, Output, Path]]:
    db = tmp_path / "history.sqlite3"
    server = subprocess.Popen(
        [sys.executable, crash_writer.__file__, str(db)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)}, start_new_session=True)  # its own group: it and its writers
    output = Output(server.stdout)
    try:
        yield server, output, db
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)  # unreaped, so the group is still ours
        server.wait(timeout=10)
        output.join(timeout=10)


def kill_delays(rng: random.Random) -> list[float]:
    """A random moment in each twentieth of KILL_AFTER_S, shuffled: random points that still cover the window
    (twenty plain draws can bunch up before the first partial save, which comes a second into an answer)."""
    low, high = KILL_AFTER_S
    width = (high - low) / KILLS
    delays = [low + (k + rng.random()) * width for k in range(KILLS)]
    rng.shuffle(delays)
    return delays


def kill_writers(server: subprocess.Popen, output: Output) -> list[Run]:
    runs = []
    start = 0
    for seed, delay in enumerate(kill_delays(random.Random(20240611))):
        server.stdin.write(f"run {seed}\n")
        server.stdin.flush()
        ready = output.wait_for(("ready ", "error "), start, timeout=30)
        assert ready is not None and output.lines[ready].startswith("ready "), output.lines[start:][-5:]
        pid_line = output.wait_for(("pid ",), start, timeout=10)
        assert pid_line is not None
        pid = int(output.lines[pid_line].split()[1])
        # Wait for the moment to kill it; a writer that fails or dies first ends the test at once.
        early = output.wait_for(("error ", "reaped "), ready, timeout=delay)
        assert early is None, output.lines[early]
        killed_at = time.monotonic()
        os.kill(pid, signal.SIGKILL)  # still ours: the server reaps it only after it dies, and it never exits
        reaped = output.wait_for((f"reaped {pid} ",), ready, timeout=10)
        assert reaped is not None, f"writer {pid} was not reaped"
        status = int(output.lines[reaped].split()[2])
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
        writer_lines = [line for line in output.lines[start:reaped] if not line.startswith(("pid ", "reaped "))]
        runs.append(Run.parse(seed, killed_at, writer_lines))
        start = reaped + 1
    server.stdin.close()
    assert server.wait(timeout=10) == 0
    return runs


def test_history_survives_kill_9_mid_answer(writer_server):
    server, output, db = writer_server
    runs = kill_writers(server, output)

    with sqlite3.connect(db) as raw:
        assert raw.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    raw.close()
    interrupted_with_text = 0
    with HistoryStore(db) as store:
        assert len(store.list()) == KILLS
        for run in runs:
            nodes = store.load(run.conversation_id).nodes
            for message_id, (role, value) in run.committed.items():
                expected = question_text(run.seed, value) if role == "user" else STREAM[:value]
                message = nodes[message_id]
                assert (message.role, message.status, message.content) == (role, "done", expected), run.seed
            # Besides those, only the message being written when the kill came: the last one saved.
            unreported = [m for m in nodes.values() if m.id not in run.committed and m.id != run.streaming]
            assert unreported in ([], [list(nodes.values())[-1]]), run.seed
            if run.streaming is None:
                continue
            answer = nodes[run.streaming]  # "answer" is printed after its first save
            text = answer.content
            produced = run.produced_by(run.killed_at)
            assert text == STREAM[:len(text)] and len(text) <= produced, (run.seed, text, produced)
            if answer.status == "done":  # it finished and was killed before it said so
                assert len(text) == produced, run.seed
                continue
            assert (answer.status, answer.stop_reason) == ("stopped", INTERRUPTED), run.seed
            assert len(text) >= run.saved, run.seed
            due = run.produced_by(run.killed_at - PARTIAL_SAVE_INTERVAL_S - TOLERANCE_S)
            assert len(text) >= due, (f"writer {run.seed}: {len(text)} characters saved, {due} produced more than "
                                      f"{PARTIAL_SAVE_INTERVAL_S + TOLERANCE_S} s before the kill")
            interrupted_with_text += bool(text)
    # The kills must have hit answers mid-stream after partial saves, or the test proved little.
    assert interrupted_with_text >= 3, [(r.seed, r.streaming, r.saved) for r in runs]
