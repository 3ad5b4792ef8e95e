"""Our client layer vs bare httpx against the fake server, side by side in one run.

The baselines use the same transport our layer is built on (httpx.AsyncClient, one client
reused across calls), so the ratios measure what our layer adds: request building, SSE and
JSON decoding into typed events, stop-sequence and <think> filtering, server bookkeeping.
A bare synchronous httpx.Client is printed too, for reference: the gap between the two
baselines is httpx's own async cost, which no layer above it can remove.

RESULT client_request_overhead_ratio: median infer() time / median bare POST (<= 1.15)
RESULT client_stream_throughput_ratio: stream_inference chunks/s / bare SSE read (>= 0.90)
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx  # noqa: E402

from LLM.core.config import parse_backends  # noqa: E402
from LLM.core.events import TextDelta  # noqa: E402
from LLM.core.inference import InferenceConfig, ainfer, stream_inference  # noqa: E402
from LLM.core.runtime import Runtime  # noqa: E402
from LLM.tests.fakes.handle import FakeServerHandle  # noqa: E402

ROUNDS = 300
STREAM_CHUNKS = 20_000
STREAM_ROUNDS = 7
BODY = {"model": "fake-model", "messages": [{"role": "user", "content": "hi"}], "stream": True,
        "max_tokens": 512, "stream_options": {"include_usage": True}}


def count_content(line: str) -> int:
    """The least any consumer does per SSE line: decode the JSON and look at the delta."""
    if not line.startswith("data: {"):
        return 0
    payload = json.loads(line[6:])
    return 1 if payload["choices"] and payload["choices"][0]["delta"].get("content") else 0


async def measure(server: FakeServerHandle) -> dict[str, float]:
    config = parse_backends(
        f"models:\n  fake:\n    backend: openai\n    server_url: {server.url}/v1\n    model_name: fake-model\n",
        strict=True,
    )
    runtime = Runtime(config)
    bare_async = httpx.AsyncClient(base_url=server.url, timeout=30)
    bare_sync = httpx.Client(base_url=server.url, timeout=30)
    cfg = InferenceConfig(prompt="hi", model_id="fake")
    server.set_default({"text": "ok, short reply"})

    async def ours() -> None:
        response = await ainfer(cfg, runtime)
        assert response.error_message is None, response.error_message

    async def bare_async_post() -> None:
        async with bare_async.stream("POST", "/v1/chat/completions", json=BODY) as response:
            async for _ in response.aiter_bytes():
                pass

    def bare_sync_post() -> None:
        with bare_sync.stream("POST", "/v1/chat/completions", json=BODY) as response:
            for _ in response.iter_bytes():
                pass

    times: dict[str, list[float]] = {"ours": [], "async": [], "sync": []}
    for _ in range(20):  # warm every path
        await ours()
        await bare_async_post()
        bare_sync_post()
    for _ in range(ROUNDS):  # interleaved, so noise hits all alike
        t = time.perf_counter()
        await ours()
        times["ours"].append(time.perf_counter() - t)
        t = time.perf_counter()
        await bare_async_post()
        times["async"].append(time.perf_counter() - t)
        t = time.perf_counter()
        bare_sync_post()
        times["sync"].append(time.perf_counter() - t)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"short reply, median: infer() {med['ours'] * 1e3:.3f} ms, bare httpx.AsyncClient "
          f"{med['async'] * 1e3:.3f} ms, bare httpx.Client (sync, reference) {med['sync'] * 1e3:.3f} ms")

    server.set_default({"text": "x" * STREAM_CHUNKS, "n_chunks": STREAM_CHUNKS})
    rates: dict[str, list[float]] = {"ours": [], "async": [], "sync": []}
    for _ in range(STREAM_ROUNDS):
        t = time.perf_counter()
        count = 0
        async for event in stream_inference(cfg, runtime):
            if isinstance(event, TextDelta):
                count += 1
        rates["ours"].append(count / (time.perf_counter() - t))
        t = time.perf_counter()
        lines = 0
        async with bare_async.stream("POST", "/v1/chat/completions", json=BODY) as response:
            async for line in response.aiter_lines():
                lines += count_content(line)
        rates["async"].append(lines / (time.perf_counter() - t))
        t = time.perf_counter()
        sync_lines = 0
        with bare_sync.stream("POST", "/v1/chat/completions", json=BODY) as response:
            for line in response.iter_lines():
                sync_lines += count_content(line)
        rates["sync"].append(sync_lines / (time.perf_counter() - t))
        assert count == lines == sync_lines == STREAM_CHUNKS, (count, lines, sync_lines)
    rate = {k: statistics.median(v) for k, v in rates.items()}
    print(f"{STREAM_CHUNKS}-chunk stream: stream_inference {rate['ours']:,.0f} chunks/s, bare AsyncClient SSE "
          f"{rate['async']:,.0f} chunks/s, bare sync Client SSE (reference) {rate['sync']:,.0f} chunks/s")
    print(f"reference only (not a target): vs sync httpx.Client, request ratio {med['ours'] / med['sync']:.3f}, "
          f"stream ratio {rate['ours'] / rate['sync']:.3f}")
    bare_sync.close()
    await bare_async.aclose()
    await runtime.aclose()
    return {"request": med["ours"] / med["async"], "stream": rate["ours"] / rate["async"]}


def main() -> None:
    server = FakeServerHandle().wait_ready()
    try:
        ratios = asyncio.run(measure(server))
    finally:
        server.stop()
    print(f"RESULT client_request_overhead_ratio {ratios['request']:.3f} <= 1.15")
    print(f"RESULT client_stream_throughput_ratio {ratios['stream']:.3f} >= 0.90")


if __name__ == "__main__":
    main()
