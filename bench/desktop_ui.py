"""UI responsiveness of the desktop window while a long answer streams from the fake server (offscreen).

The real window (build_main_window) chats with the fake OpenAI server: 40 short turns first, so
the transcript is already long, then one answer of STREAM_CHUNKS chunks sent as fast as the
server can. Meanwhile:
  * a 10 ms precise QTimer ticks; a stall is the gap between two ticks minus 10 ms;
  * a 1 ms poller notes when the conversation model grows, and the transcript's ``rendered``
    signal notes when the view caught up, so lag = view shows the text - text arrived.

RESULT ui_max_stall_ms: the longest stall while streaming (<= 50)
RESULT ui_stream_render_lag_ms: last chunk arrived -> transcript shows it (<= 100)
(INFO lines: the worst lag at any point of the stream, chunk rate, segments.)
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import Qt, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

import qasync  # noqa: E402

from LLM.desktop_app.app import build_main_window  # noqa: E402
from LLM.desktop_app.widgets.markdown_view import MarkdownView  # noqa: E402
from LLM.tests.fakes.handle import FakeServerHandle  # noqa: E402

STREAM_CHUNKS = 5_000
HISTORY_TURNS = 40
TICK_MS = 10


def long_answer() -> str:
    """About 5,000 words of Markdown: paragraphs, lists and code blocks, like a long model answer."""
    parts = []
    for i in range(60):
        parts.append(f"## Section {i}\n\n" + " ".join(f"word{i}_{w} **bold** `code`" for w in range(25)))
        parts.append("\n".join(f"- item {i}.{k} with some *emphasis*" for k in range(4)))
        if i % 4 == 0:
            parts.append(f"```python\ndef f{i}(x):\n    return x * {i}\n```")
    return "\n\n".join(parts) + "\n\nEND-OF-ANSWER"


class Probe:
    """Measures loop stalls and how far the view trails the model, while armed."""

    def __init__(self, page) -> None:
        self.page = page
        self.max_stall_ms = 0.0
        self.arrivals: list[tuple[float, int]] = []  # (time, characters in the model)
        self.renders: list[tuple[float, int]] = []  # (time, characters the view shows)
        self._last_tick: float | None = None
        self.ticker = QTimer(interval=TICK_MS, timerType=Qt.TimerType.PreciseTimer)
        self.ticker.timeout.connect(self._tick)
        self.poller = QTimer(interval=1, timerType=Qt.TimerType.PreciseTimer)
        self.poller.timeout.connect(self._poll)
        page.transcript.rendered.connect(self._rendered)
        self.armed = False

    def start(self) -> None:
        self.armed = True
        self._last_tick = time.perf_counter()
        self.ticker.start()
        self.poller.start()

    def stop(self) -> None:
        self.armed = False
        self.ticker.stop()
        self.poller.stop()

    def _tick(self) -> None:
        now = time.perf_counter()
        if self._last_tick is not None:
            self.max_stall_ms = max(self.max_stall_ms, (now - self._last_tick) * 1000 - TICK_MS)
        self._last_tick = now

    def _answer(self):
        messages = self.page.conversation.messages
        return messages[-1] if messages else None

    def _poll(self) -> None:
        answer = self._answer()
        if answer is None:
            return
        length = sum(len(p.text) for p in answer.parts if hasattr(p, "text"))
        if not self.arrivals or self.arrivals[-1][1] != length:
            self.arrivals.append((time.perf_counter(), length))

    def _rendered(self, message_id: str) -> None:
        answer = self._answer()
        if self.armed and answer is not None and answer.id == message_id:
            widget = self.page.transcript.widget_for(message_id)
            shown = sum(len(v.source_text) for v in widget.findChildren(MarkdownView)
                        if v.parent() is not widget.reasoning_view)
            self.renders.append((time.perf_counter(), shown))

    def lags_ms(self) -> list[float]:
        lags = []
        for arrived, length in self.arrivals:
            shown_at = next((t for t, n in self.renders if n >= length and t >= arrived - 1e-3), None)
            if shown_at is not None:
                lags.append(max(0.0, shown_at - arrived) * 1000)
        return lags


async def scenario(window, server: FakeServerHandle) -> dict[str, float]:
    page = window.chat_page
    for turn in range(HISTORY_TURNS):
        server.script({"text": f"Answer {turn}: " + "Some **markdown** text with `code`. " * 12})
        page.prompt.setPlainText(f"Question {turn}")
        page.send()
        while page.busy:
            await asyncio.sleep(0.005)
    text = long_answer()
    server.script({"text": text, "n_chunks": STREAM_CHUNKS})
    probe = Probe(page)
    page.prompt.setPlainText("Write a long answer")
    probe.start()
    started = time.perf_counter()
    page.send()
    while page.busy:
        await asyncio.sleep(0.005)
    ended = time.perf_counter()
    await asyncio.sleep(0.1)
    probe.stop()
    answer = page.conversation.messages[-1]
    assert answer.status == "done", answer.error
    assert answer.content.endswith("END-OF-ANSWER")
    widget = page.transcript.widget_for(answer.id)
    assert "END-OF-ANSWER" in widget.plain_text()
    final = probe.arrivals[-1]
    last_render = next(t for t, n in probe.renders if n >= final[1])
    lags = probe.lags_ms()
    return {
        "max_stall_ms": probe.max_stall_ms,
        "last_chunk_lag_ms": max(0.0, last_render - final[0]) * 1000,
        "worst_lag_ms": max(lags) if lags else float("nan"),
        "stream_s": ended - started,
        "chars": len(text),
        "segments": len(widget.findChildren(MarkdownView)),
        "messages": len(page.conversation.messages),
    }


def run_in_window(scenario) -> dict[str, float]:
    """``await scenario(window, server)`` in the real window (1180x780) chatting with a fresh fake server."""
    app = QApplication.instance() or QApplication([])
    app.setQuitOnLastWindowClosed(False)
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    server = FakeServerHandle().wait_ready()
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "llm_backends.yaml"
        config.write_text(f'models:\n  fake:\n    backend: openai\n    server_url: "{server.url}/v1"\n'
                          "    model_name: fake-model\n    default_params:\n      max_new_tokens: 100000\n")
        window = build_main_window(config, manager_options={"logs_dir": Path(tmp), "state_dir": Path(tmp)},
                                   workspace=Path(tmp), tools_dir=Path(tmp) / "tools",
                                   history_path=Path(tmp) / "history.sqlite3")
        window.resize(1180, 780)
        window.show()

        async def run() -> dict[str, float]:
            try:
                return await scenario(window, server)
            finally:
                await window.shutdown()

        try:
            with loop:
                return loop.run_until_complete(run())
        finally:
            server.stop()


def main() -> None:
    result = run_in_window(scenario)
    print(f"INFO streamed {STREAM_CHUNKS} chunks ({result['chars']} chars) in {result['stream_s']:.2f} s "
          f"({STREAM_CHUNKS / result['stream_s']:.0f} chunks/s) after {HISTORY_TURNS} turns; "
          f"answer shown in {result['segments']} segments")
    print(f"INFO ui_stream_render_lag_worst_ms {result['worst_lag_ms']:.1f} (any point of the stream)")
    print(f"RESULT ui_max_stall_ms {result['max_stall_ms']:.1f} <= 50")
    print(f"RESULT ui_stream_render_lag_ms {result['last_chunk_lag_ms']:.1f} <= 100")


if __name__ == "__main__":
    main()
