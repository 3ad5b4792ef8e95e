"""The event loop while ``search_files`` runs a catastrophic regular expression.

The model asks for ``(a+)+$`` (regex=true) over a file of 200 lines like ``'a' * 31 + 'b'``: Python's ``re``
backtracks for hours on each line and never releases the GIL, which froze the loop for 71 s when the search ran
in a thread. A 5 ms asyncio ticker runs meanwhile; a gap is the time between two ticks (5 ms when nothing
stalls). The tool is the built-in one with its default deadline, called as the tool loop calls it.

Run from the repository root: ``python bench/regex_stall.py``.

RESULT regex_stall_ms: largest gap between 5 ms ticks while the search runs (<= 100)
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from LLM.core.tools.builtin import build_default_registry  # noqa: E402

TICK_S = 0.005
PATTERN = r"(a+)+$"


async def measure(workspace: Path) -> tuple[float, float, int, str]:
    registry = build_default_registry(workspace)
    gaps: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        last = time.perf_counter()
        while not done.is_set():
            await asyncio.sleep(TICK_S)
            now = time.perf_counter()
            gaps.append((now - last) * 1000)
            last = now

    ticks = asyncio.ensure_future(ticker())
    await asyncio.sleep(0.05)  # the ticker is running before the search starts
    started = time.perf_counter()
    try:
        result = await registry.execute("search_files", {"pattern": PATTERN, "path": ".", "regex": True})
    finally:
        elapsed = time.perf_counter() - started
        done.set()
        await ticks
    outcome = result.output if result.ok else f"error: {result.error}"
    return max(gaps), elapsed, len(gaps), outcome


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        workspace = Path(tmp)
        (workspace / "lines.txt").write_text(("a" * 31 + "b\n") * 200)
        stall_ms, elapsed, ticks, outcome = asyncio.run(measure(workspace))
    print(f"INFO search_files({PATTERN!r}, regex=True) returned after {elapsed:.1f} s with {ticks} ticks: "
          f"{outcome[:160]}")
    print(f"RESULT regex_stall_ms {stall_ms:.1f} <= 100")


if __name__ == "__main__":
    main()
