"""The window with saved conversations (offscreen): opening a long chat, streaming into one, idle memory.

* open: a saved 500-message conversation (Markdown answers of a few hundred characters) is opened
  through the sidebar's controller, timed until the window has laid it out and painted it
  (a synchronous repaint); the median of 5 opens, alternating with a 10-message chat (shown as INFO).
* stall: a conversation that already holds 300 saved messages is open; the fake server streams
  about 2,000 small chunks a second into a new answer while a 5 ms precise QTimer ticks. A gap is
  the time between two ticks (5 ms when nothing stalls); p99 and max of the gaps while streaming.
  The answer is one word a chunk in paragraphs of 60 words (as a long model answer is shaped; the
  view re-renders only the paragraph being written).
  The partial saves of the streaming answer (about once a second) happen inside this window.
* idle RSS: a fresh process opens the window on a config whose only model is an external server
  that is not running (so no model server starts), idles 2 s, and reads its own VmRSS.

RESULT open_500_messages_s: median time to open and paint a 500-message chat (<= 1)
RESULT ui_stall_p99_ms: p99 gap between 5 ms timer ticks while streaming (<= 16)
RESULT ui_stall_max_ms: largest gap while streaming (<= 50)
RESULT idle_rss_mb: resident memory of the idle window with no model server (<= 200)
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import Qt, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

import qasync  # noqa: E402

from LLM.core import Conversation  # noqa: E402
from LLM.core.history import HistoryStore  # noqa: E402
from LLM.desktop_app.app import build_main_window  # noqa: E402
from LLM.tests.fakes.handle import FakeServerHandle  # noqa: E402

OPENS = 5
STREAM_S = 5.0
CHUNKS_PER_S = 2000
TICK_MS = 5
ANSWER = ("Here is what I found:\n\n- **first**, with `code`\n- second, a longer point that wraps over a line "
          "or two in the window\n\n```python\nprint('hello')\n```\n\nAnd a closing paragraph of plain text. ") * 2


def saved_conversation(store: HistoryStore, title: str, messages: int) -> str:
    conversation = Conversation(title)
    for i in range(messages // 2):
        store.save_message(conversation, conversation.add_user(f"Question {i}: how does part {i} work?"))
        answer = conversation.add_assistant("fake")
        answer.append_text(f"Answer {i}. {ANSWER}")
        store.save_message(conversation, answer)
    return conversation.id


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


async def measure_open(window, long_id: str, short_id: str) -> tuple[list[float], list[float]]:
    long_s, short_s = [], []
    for _ in range(OPENS):
        for conversation_id, out in ((long_id, long_s), (short_id, short_s)):
            window.chat_page.new_chat()  # so the next open loads from the store again
            await asyncio.sleep(0.05)
            started = time.perf_counter()
            window.history.open(conversation_id)
            window.repaint()  # layout and paint now, not at the next event-loop turn
            out.append(time.perf_counter() - started)
            assert window.chat_page.conversation.id == conversation_id
    return long_s, short_s


async def measure_stall(window, server: FakeServerHandle, history_id: str) -> dict[str, float]:
    page = window.chat_page
    window.history.open(history_id)
    assert len(page.conversation.messages) == 300
    chunks = int(STREAM_S * CHUNKS_PER_S)
    # One word a chunk, in paragraphs of 60 words: the shape of a long model answer.
    words = [f"w{i}" + ("\n\n" if i % 60 == 59 else " ") for i in range(chunks)]
    server.script({"chunks": words, "delay_s": 1 / CHUNKS_PER_S})
    gaps: list[float] = []
    last = [time.perf_counter()]

    def tick() -> None:
        now = time.perf_counter()
        gaps.append((now - last[0]) * 1000)
        last[0] = now

    ticker = QTimer(interval=TICK_MS, timerType=Qt.TimerType.PreciseTimer)
    ticker.timeout.connect(tick)
    page.prompt.setPlainText("Stream please")
    started = time.perf_counter()
    page.send()
    while not page.conversation.messages[-1].content:
        await asyncio.sleep(0.001)
    last[0] = time.perf_counter()
    ticker.start()
    while page.busy:
        await asyncio.sleep(0.005)
    ticker.stop()
    elapsed = time.perf_counter() - started
    answer = page.conversation.messages[-1]
    assert answer.status == "done", answer.error
    return {"p99": percentile(gaps, 0.99), "max": max(gaps), "ticks": len(gaps), "stream_s": elapsed,
            "chunks": chunks}


def idle_rss_mb(tmp: Path) -> float:
    """The window alone in a fresh process (nothing else this benchmark loaded counts)."""
    config = tmp / "idle.yaml"
    config.write_text('models:\n  remote:\n    backend: openai\n    server_url: "http://127.0.0.1:9/v1"\n'
                      "    model_name: remote\n")
    code = f"""
import asyncio, os, sys
from pathlib import Path
from PySide6.QtWidgets import QApplication
import qasync
from LLM.desktop_app.app import build_main_window
app = QApplication([])
loop = qasync.QEventLoop(app)
asyncio.set_event_loop(loop)
tmp = Path({str(tmp)!r})
window = build_main_window(tmp / "idle.yaml", manager_options={{"logs_dir": tmp, "state_dir": tmp}},
                           workspace=tmp, tools_dir=tmp / "tools", history_path=tmp / "idle-history.sqlite3")
window.resize(1180, 780)
window.show()
async def idle():
    await asyncio.sleep(2)
    rss = next(l for l in open("/proc/self/status") if l.startswith("VmRSS"))
    print("RSS_KB", rss.split()[1], flush=True)
    await window.shutdown()
loop.run_until_complete(idle())
"""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]), "QT_QPA_PLATFORM": "offscreen"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    line = next((l for l in out.stdout.splitlines() if l.startswith("RSS_KB")), None)
    if line is None:
        raise RuntimeError(f"the idle window did not report its memory: {out.stderr[-2000:]}")
    return int(line.split()[1]) / 1024


def main() -> None:
    app = QApplication.instance() or QApplication([])
    app.setQuitOnLastWindowClosed(False)
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    server = FakeServerHandle().wait_ready()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        history = tmp / "history.sqlite3"
        with HistoryStore(history) as store:
            long_id = saved_conversation(store, "Five hundred", 500)
            short_id = saved_conversation(store, "Ten", 10)
            stream_id = saved_conversation(store, "Three hundred", 300)
        config = tmp / "llm_backends.yaml"
        config.write_text(f'models:\n  fake:\n    backend: openai\n    server_url: "{server.url}/v1"\n'
                          "    model_name: fake-model\n    default_params:\n      max_new_tokens: 100000\n")
        window = build_main_window(config, manager_options={"logs_dir": tmp, "state_dir": tmp}, workspace=tmp,
                                   tools_dir=tmp / "tools", history_path=history)
        window.resize(1180, 780)
        window.show()

        async def run():
            try:
                opened = await measure_open(window, long_id, short_id)
                stall = await measure_stall(window, server, stream_id)
                return opened, stall
            finally:
                await window.shutdown()

        try:
            with loop:
                (long_s, short_s), stall = loop.run_until_complete(run())
        finally:
            server.stop()
        rss = idle_rss_mb(tmp)
    print(f"INFO open a 10-message chat: median {statistics.median(short_s) * 1000:.0f} ms; the 500-message one: "
          f"{', '.join(f'{s * 1000:.0f}' for s in long_s)} ms")
    print(f"INFO streamed {stall['chunks']} chunks in {stall['stream_s']:.2f} s "
          f"({stall['chunks'] / stall['stream_s']:.0f} chunks/s) into a 300-message chat; {stall['ticks']} ticks")
    print(f"RESULT open_500_messages_s {statistics.median(long_s):.3f} <= 1")
    print(f"RESULT ui_stall_p99_ms {stall['p99']:.1f} <= 16")
    print(f"RESULT ui_stall_max_ms {stall['max']:.1f} <= 50")
    print(f"RESULT idle_rss_mb {rss:.0f} <= 200")


if __name__ == "__main__":
    main()
