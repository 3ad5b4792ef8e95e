"""The window's event loop while a 20 MB file is attached (offscreen).

The real window (build_main_window, no model) attaches a 20 MB CSV written to a temporary folder, as the Attach
button does once its dialog answers. A 1 ms precise QTimer ticks from the moment the attach starts until the chip is
filled in (read, checked, hashed, its tokens estimated); a stall is the largest gap between two ticks. Before the
window moved the work off the GUI thread, and the long text's estimate into a child process, the estimate alone
held the GIL for ~125 ms.

Run from the repository root: ``python bench/attachment_ui.py``.

RESULT attachment_ui_stall_ms: the largest gap between 1 ms ticks while the file is attached (<= 16)
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

FILE_BYTES = 20 * 1024 * 1024
TICK_MS = 1
DEADLINE_S = 120


def write_csv(path: Path) -> None:
    row = "2024-05-01,order-000000,Widget (large),17,3.99,shipped,`express`\n"
    with path.open("w", encoding="utf-8") as out:
        for n in range(FILE_BYTES // len(row)):
            out.write(row.replace("000000", f"{n:06d}"))


class Ticker:
    """The largest gap between ticks of a 1 ms timer, while running."""

    def __init__(self) -> None:
        self.max_gap_ms = 0.0
        self.ticks = 0
        self._last = 0.0
        self.timer = QTimer(interval=TICK_MS, timerType=Qt.TimerType.PreciseTimer)
        self.timer.timeout.connect(self._tick)

    def start(self) -> None:
        self._last = time.perf_counter()
        self.timer.start()

    def stop(self) -> None:
        self._tick()
        self.timer.stop()

    def _tick(self) -> None:
        now = time.perf_counter()
        self.max_gap_ms = max(self.max_gap_ms, (now - self._last) * 1000)
        self._last = now
        self.ticks += 1


async def scenario(window, csv: Path) -> dict[str, float]:
    page = window.chat_page
    await asyncio.sleep(0.3)  # the window settled (first layouts, the config's reports)
    ticker = Ticker()
    ticker.start()
    started = time.perf_counter()
    page.attach_files([csv])
    while not page.pending.files or page.pending.loading():
        if time.perf_counter() - started > DEADLINE_S:
            raise TimeoutError("the chip was not filled in")
        await asyncio.sleep(0.005)
    elapsed = time.perf_counter() - started
    ticker.stop()
    chip = page.composer.chips.chips()[0]
    assert chip.state == "ready", chip.detail.text()
    (_key, loaded), = page.pending.ready()
    return {"stall_ms": ticker.max_gap_ms, "ticks": ticker.ticks, "elapsed_s": elapsed,
            "tokens": loaded.tokens, "detail": chip.detail.text()}


def main() -> None:
    app = QApplication.instance() or QApplication([])
    app.setQuitOnLastWindowClosed(False)
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        csv = folder / "orders.csv"
        write_csv(csv)
        config = folder / "llm_backends.yaml"
        config.write_text("models: {}\n")
        window = build_main_window(config, manager_options={"logs_dir": folder, "state_dir": folder},
                                   workspace=folder, tools_dir=folder / "tools",
                                   history_path=folder / "history.sqlite3", mcp_config_path=folder / "mcp.json")
        window.resize(1180, 780)
        window.show()

        async def run() -> dict[str, float]:
            try:
                return await scenario(window, csv)
            finally:
                await window.shutdown()

        with loop:
            result = loop.run_until_complete(run())
    print(f"# attached {csv.name} ({result['detail']}, ~{result['tokens']:,} tokens) in "
          f"{result['elapsed_s']:.2f} s; {result['ticks']} ticks of {TICK_MS} ms")
    print(f"RESULT attachment_ui_stall_ms {result['stall_ms']:.1f} <= 16")


if __name__ == "__main__":
    main()
