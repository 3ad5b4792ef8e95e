"""A long code block streaming into the desktop window (offscreen): does colouring it stall the event loop?

The real window chats with the fake server; an answer holding a 200-line Python block streams in as fast as
the server sends it, twice in one run, side by side: first with no language (no colours), then as ```python
(Pygments colours, lexed line by line as the block grows and once whole when it closes). bench/desktop_ui.py's
Probe ticks a 10 ms timer meanwhile; a stall is the gap between two ticks minus 10 ms.

RESULT code_block_render_ms: the longest stall while the highlighted block streams and renders (<= 50)
(INFO: the same without colours, and how long after the last chunk the colours have caught up.)
"""

from __future__ import annotations

import asyncio
import time

from desktop_ui import Probe, run_in_window  # bench/ is the script's folder, first on sys.path

from LLM.desktop_app.widgets.code_block import CodeBlockView

LINES = 200
CHUNKS = 2_000


def code() -> str:
    """200 lines of Python with the usual mix: keywords, strings, numbers, comments, a docstring."""
    lines = []
    for i in range(LINES // 5):
        lines += [f"def step_{i}(values: list[int], scale: float = {i}.5) -> dict[str, int]:",
                  f'    """Scale the values of step {i} and count them."""',
                  f"    total = sum(v * scale for v in values if v % {i + 2} == 0)  # only multiples",
                  f"    return {{'step': {i}, 'total': int(total), 'name': \"step-{i}\"}}",
                  ""]
    return "\n".join(lines)


async def stream(window, server, language: str) -> dict[str, float]:
    page = window.chat_page
    text = f"The code:\n\n```{language}\n{code()}\n```\n\nDone."
    server.script({"text": text, "n_chunks": CHUNKS})
    probe = Probe(page)
    page.prompt.setPlainText(f"Write the code ({language or 'plain'})")
    probe.start()
    started = time.perf_counter()
    page.send()
    while page.busy:
        await asyncio.sleep(0.005)
    ended = time.perf_counter()
    answer = page.conversation.messages[-1]
    assert answer.status == "done" and answer.content == text, answer.error
    await asyncio.sleep(0.1)  # the last refresh
    [block] = page.transcript.widget_for(answer.id).findChildren(CodeBlockView)
    while block.code_view.colouring():  # colours catch up on idle turns: measured until they have
        await asyncio.sleep(0.001)
    coloured_at = time.perf_counter()
    probe.stop()
    assert block.code() == code()
    coloured = sum(bool(b.layout().formats()) for b in _blocks(block.code_view.document()))
    if language:
        assert coloured > LINES // 2, f"only {coloured} of {LINES} lines coloured"
    return {"max_stall_ms": probe.max_stall_ms, "stream_s": ended - started, "coloured_lines": coloured,
            "colours_after_ms": (coloured_at - ended) * 1000}


def _blocks(document):
    block = document.begin()
    while block.isValid():
        yield block
        block = block.next()


async def scenario(window, server) -> dict[str, dict[str, float]]:
    server.script({"text": "Warm-up: `code` and a block:\n\n```python\nx = 1\n```\n"})
    window.chat_page.prompt.setPlainText("Warm up")
    window.chat_page.send()
    while window.chat_page.busy:
        await asyncio.sleep(0.005)
    return {"plain": await stream(window, server, ""), "python": await stream(window, server, "python")}


def main() -> None:
    result = run_in_window(scenario)
    plain, python = result["plain"], result["python"]
    print(f"INFO {LINES}-line block in {CHUNKS} chunks: plain {plain['stream_s']:.2f} s, "
          f"highlighted {python['stream_s']:.2f} s ({python['coloured_lines']} lines coloured "
          f"{python['colours_after_ms']:.0f} ms after the last chunk)")
    print(f"INFO code_block_plain_max_stall_ms {plain['max_stall_ms']:.1f} (the same block, no colours)")
    print(f"RESULT code_block_render_ms {python['max_stall_ms']:.1f} <= 50")


if __name__ == "__main__":
    main()
