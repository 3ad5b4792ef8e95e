"""Benchmark the `<tool_call>` parser: whole-text throughput and the cost of streaming one character at a time.

Run from the repository root: ``python bench/toolcall_parser.py``. Prints ``RESULT`` lines (the target is part of
the line, so a miss is visible) and exits non-zero only if streaming and whole parsing disagree.
"""

from __future__ import annotations

import json
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from LLM.core.tools.parsing import ParsedOutput, ToolCallStreamParser, parse_tool_calls  # noqa: E402

TARGET_BYTES = 1_000_000
WHOLE_RUNS = 7
STREAM_RUNS = 3

_WORDS = (
    "the model checks weather in Paris and London before it answers; results may vary, so x < y and "
    "`code` spans appear too, with numbers like 42 or 3.14 — naïve café déjà vu 😀 <b>bold</b> a<b"
).split()

_TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}, "days": {"type": "integer"}, "metric": {"type": "boolean"}},
            },
        },
    }
]


def _prose(rng: random.Random) -> str:
    words = [rng.choice(_WORDS) for _ in range(rng.randint(20, 90))]
    return " ".join(words) + rng.choice([".\n\n", ".\n", ". "])


def _json_block(rng: random.Random) -> str:
    call = {"name": "get_weather", "arguments": {"city": rng.choice(["Paris", "London", "Zürich"]), "days": rng.randint(1, 9)}}
    body = json.dumps(call, ensure_ascii=rng.random() < 0.5)
    return rng.choice(["<tool_call>\n{}\n</tool_call>\n", "<tool_call>{}</tool_call>"]).format(body)


def _xml_block(rng: random.Random) -> str:
    return (
        "<tool_call>\n<function=get_weather>\n<parameter=city>\n"
        f"{rng.choice(['Dallas', 'Orlando'])}\n</parameter>\n<parameter=days>\n{rng.randint(1, 9)}\n</parameter>\n"
        "<parameter=metric>\ntrue\n</parameter>\n</function>\n</tool_call>\n"
    )


def _invalid_block(rng: random.Random) -> str:
    return rng.choice(
        [
            '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris",}\n</tool_call>\n',
            '<tool_call>\n{"arguments": {"city": "Paris"}}\n</tool_call>\n',
            '<tool_call>\n{name: "get_weather"}\n</tool_call>\n',
        ]
    )


def _think(rng: random.Random) -> str:
    draft = '<tool_call>{"name": "get_weather", "arguments": {"city": "Pariss"}}</tool_call> '
    return "<think>\n" + _prose(rng) + draft + _prose(rng) + "</think>\n\n"


def _mention(rng: random.Random) -> str:
    return "Calls are wrapped in <tool_call> tags, and `<function=...>` is the XML form. "


def build_text(seed: int = 20260101) -> str:
    """About 1 MB of mixed prose, valid and invalid blocks, reasoning and tag mentions, deterministic."""
    rng = random.Random(seed)
    makers = [(_prose, 50), (_json_block, 20), (_xml_block, 10), (_invalid_block, 5), (_think, 8), (_mention, 7)]
    funcs, weights = zip(*makers)
    parts = [_think(rng)]
    size = len(parts[0])
    while size < TARGET_BYTES:
        part = rng.choices(funcs, weights)[0](rng)
        parts.append(part)
        size += len(part)
    return "".join(parts)


def _stream_by_char(text: str) -> ParsedOutput:
    parser = ToolCallStreamParser(_TOOLS)
    feed = parser.feed
    for ch in text:
        feed(ch)
    return parser.finish()


class _NoOp:
    def feed(self, chunk: str) -> list:
        return []


def _call_per_char(text: str) -> None:
    """The floor for any streaming API in CPython: one method call per character."""
    feed = _NoOp().feed
    for ch in text:
        feed(ch)


def _timed(fn, runs: int) -> tuple[float, object]:
    """Median CPU seconds of ``fn`` (process time: the parser is single-threaded, and on a shared machine wall
    time mostly measures the neighbours)."""
    times, result = [], None
    for _ in range(runs):
        t0 = time.process_time()
        result = fn()
        times.append(time.process_time() - t0)
    return statistics.median(times), result


def _same(a: ParsedOutput, b: ParsedOutput) -> bool:
    calls = lambda r: [(c.name, c.arguments) for c in r.calls]  # noqa: E731 - ids differ by design
    return (a.content, a.reasoning, calls(a), a.errors) == (b.content, b.reasoning, calls(b), b.errors)


def main() -> int:
    text = build_text()
    megabytes = len(text.encode("utf-8")) / 1e6
    whole_s, whole = _timed(lambda: parse_tool_calls(text, _TOOLS), WHOLE_RUNS)
    stream_s, streamed = _timed(lambda: _stream_by_char(text), STREAM_RUNS)
    floor_s, _ = _timed(lambda: _call_per_char(text), STREAM_RUNS)
    print(
        f"text: {len(text)} chars, {megabytes:.2f} MB; calls {len(whole.calls)}, errors {len(whole.errors)}; "
        f"whole {whole_s * 1000:.1f} ms, char-by-char stream {stream_s * 1000:.1f} ms "
        f"(calling a method that does nothing once per character takes {floor_s * 1000:.1f} ms)"
    )
    print(f"RESULT toolcall_parser_mb_per_s {megabytes / whole_s:.3g} >= 20")
    print(f"RESULT toolcall_stream_vs_whole_ratio {stream_s / whole_s:.3g} <= 3")
    if not _same(whole, streamed):
        print("MISMATCH: streaming one character at a time differs from the whole parse", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
