"""The embedded engine (llama.cpp's llama-server, default model) and our stack on top of it, side by side in one run.

* engine_ready_s: spawn of llama-server (our launch line) to its /health answering 200, median of 5.
* stack_ttft_ratio / stack_decode_ratio: ``stream_inference`` against a raw httpx stream to the same server,
  interleaved (the order alternates each round), a new question each time; TTFT from sending to the first
  text, decode speed as completion tokens after the first over the time from the first to the last text.
* stop_to_idle_ms: ``stop_generation`` on a streaming answer to the engine's /slots showing no slot busy.
* persistent_vs_oneshot_ttft_ratio: a fresh llama-server process that loads, answers and exits (timed
  from launch to the first token) over the warm TTFT; first_request_vs_warm_ttft_ratio: the first
  request after the server reported ready (its warm-up done) over the warm median.

Run from the repository root: ``python bench/engine.py`` (needs the built engine: ``make install``).
"""

from __future__ import annotations

import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import aclosing
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from LLM.core import InferenceConfig, Runtime, TextDelta, Usage, stop_generation, stream_inference  # noqa: E402
from LLM.core.chat.messages import build_messages  # noqa: E402
from LLM.core.chat.params import request_params  # noqa: E402
from LLM.core.config import SHIPPED_CONFIG, BackendsConfig, load_backends  # noqa: E402
from LLM.core.servers import HostFacts, ServerManager, build_launch  # noqa: E402
from LLM.tests.fakes.handle import free_port  # noqa: E402

ROUNDS = 32
READY_RUNS = 5
STOP_RUNS = 5
ONESHOT_RUNS = 3
MAX_TOKENS = 48
TOPICS = ["rivers", "owls", "bread", "comets", "violins", "glaciers", "tea", "bridges", "moss", "kites", "salt",
          "lighthouses", "bees", "copper", "deserts", "maps"]


def question(n: int) -> str:
    return f"Question {n}: tell me one short fact about {TOPICS[n % len(TOPICS)]}."


def config(port: int) -> BackendsConfig:
    shipped = load_backends(SHIPPED_CONFIG, strict=True)
    entry = shipped.models["default"].model_copy(update={"port": port})
    return BackendsConfig(source="bench", models={"default": entry})


async def wait_health(url: str, deadline_s: float = 60) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=1) as http:
        stop_at = time.monotonic() + deadline_s
        while time.monotonic() < stop_at:
            try:
                if (await http.get("/health")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.01)
    raise TimeoutError("llama-server did not become ready")


def launch_line(port: int, tmp: Path) -> tuple[list[str], str]:
    entry = config(port).models["default"]
    spec = build_launch(entry, HostFacts.detect())
    if spec.engine != "llama-server":
        raise SystemExit("bench/engine.py needs llama-server: run `make install` (or `llmctl engine build`)")
    return spec.argv, f"http://127.0.0.1:{port}"


async def engine_ready(tmp: Path) -> float:
    times = []
    for _ in range(READY_RUNS):
        port = free_port()
        argv, url = launch_line(port, tmp)
        started = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            await wait_health(url)
            times.append(time.perf_counter() - started)
        finally:
            proc.terminate()
            proc.wait(10)
    return statistics.median(times)


RAW_RESENDS = [0]


async def raw_stream(http: httpx.AsyncClient, body: dict) -> tuple[float, float | None]:
    """TTFT and decode tokens/s of one raw streamed request (the client a user could write with httpx).

    llama-server sometimes closes a kept-alive connection just as the next request goes out on it; like our
    client, the raw one then sends the request again (it was never read), and only that attempt is timed."""
    for attempt in (1, 2):
        try:
            return await _raw_stream_once(http, body)
        except httpx.RemoteProtocolError as exc:
            if attempt == 2 or "without sending a response" not in str(exc):
                raise
            RAW_RESENDS[0] += 1
    raise AssertionError("unreachable")


async def _raw_stream_once(http: httpx.AsyncClient, body: dict) -> tuple[float, float | None]:
    sent = time.perf_counter()
    first = last = None
    tokens = 0
    async with http.stream("POST", "/v1/chat/completions", json=body) as response:
        async for line in response.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            for choice in chunk.get("choices") or []:
                if (choice.get("delta") or {}).get("content"):
                    last = time.perf_counter()
                    first = first or last
            if chunk.get("usage"):
                tokens = chunk["usage"]["completion_tokens"]
    return first - sent, (tokens - 1) / (last - first) if tokens > 1 and last > first else None


async def stack_stream(runtime: Runtime, cfg: InferenceConfig) -> tuple[float, float | None]:
    sent = time.perf_counter()
    first = last = None
    tokens = 0
    async with aclosing(stream_inference(cfg, runtime)) as events:
        async for event in events:
            if isinstance(event, TextDelta):
                last = time.perf_counter()
                first = first or last
            elif isinstance(event, Usage):
                tokens = event.completion_tokens or 0
    return first - sent, (tokens - 1) / (last - first) if tokens > 1 and last > first else None


async def stack_vs_raw(runtime: Runtime) -> tuple[list[float], list[float], list[float], list[float], float]:
    entry = runtime.entry("default")
    started = time.perf_counter()
    await runtime.client_for("default")  # starts and warms the server
    first_request, _ = await stack_stream(runtime, InferenceConfig(prompt=question(1000), model_id="default",
                                                                   max_new_tokens=MAX_TOKENS, temperature=0))
    print(f"INFO cold start to ready (spawn, load, warm-up) and a first request: {time.perf_counter() - started:.2f} s")
    headers = {"Authorization": f"Bearer {runtime.servers.api_key('default')}"}
    stack_ttft, raw_ttft, stack_tps, raw_tps = [], [], [], []
    async with httpx.AsyncClient(base_url=entry.base_url, headers=headers, timeout=60) as http:
        for n in range(ROUNDS):
            cfg = InferenceConfig(prompt=question(2 * n), model_id="default", max_new_tokens=MAX_TOKENS,
                                  temperature=0)
            raw_cfg = InferenceConfig(prompt=question(2 * n + 1), model_id="default", max_new_tokens=MAX_TOKENS,
                                      temperature=0)
            body = {"model": entry.request_model_name, "messages": build_messages(raw_cfg, entry), "stream": True,
                    "stream_options": {"include_usage": True}, **request_params(raw_cfg, entry)}
            order = ("stack", "raw") if n % 2 == 0 else ("raw", "stack")
            for side in order:
                if side == "stack":
                    ttft, tps = await stack_stream(runtime, cfg)
                    stack_ttft.append(ttft)
                    if tps:
                        stack_tps.append(tps)
                else:
                    ttft, tps = await raw_stream(http, body)
                    raw_ttft.append(ttft)
                    if tps:
                        raw_tps.append(tps)
    return stack_ttft, raw_ttft, stack_tps, raw_tps, first_request


async def stop_to_idle(runtime: Runtime) -> float:
    client = await runtime.client_for("default")
    times = []
    for n in range(STOP_RUNS):
        cfg = InferenceConfig(prompt=f"Story {n}: write a very long story about a dragon.", model_id="default",
                              max_new_tokens=1000, temperature=0.8)
        got_text = asyncio.Event()

        async def consume() -> None:
            async with aclosing(stream_inference(cfg, runtime)) as events:
                async for event in events:
                    if isinstance(event, TextDelta):
                        got_text.set()

        task = asyncio.ensure_future(consume())
        await asyncio.wait_for(got_text.wait(), 60)
        await asyncio.sleep(0.2)  # well into the answer, as a user would press Stop
        stopped = time.perf_counter()
        stop_generation(task)
        await asyncio.gather(task, return_exceptions=True)
        while any(slot.get("is_processing") for slot in await client.slots()):
            await asyncio.sleep(0.005)
        times.append(time.perf_counter() - stopped)
    return statistics.median(times)


async def oneshot(tmp: Path) -> float:
    """The old way: a fresh engine process per request, timed from launch to the first streamed token."""
    times = []
    for n in range(ONESHOT_RUNS):
        port = free_port()
        argv, url = launch_line(port, tmp)
        cfg = InferenceConfig(prompt=question(500 + n), model_id="default", max_new_tokens=MAX_TOKENS,
                              temperature=0)
        entry = config(port).models["default"]
        body = {"model": entry.request_model_name, "messages": build_messages(cfg, entry), "stream": True,
                **request_params(cfg, entry)}
        started = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            await wait_health(url)
            async with httpx.AsyncClient(base_url=url, timeout=60) as http:
                sent = time.perf_counter()
                ttft, _ = await raw_stream(http, body)
            times.append(sent - started + ttft)  # launch -> first token
        finally:
            proc.terminate()
            proc.wait(10)
    return statistics.median(times)


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        ready = await engine_ready(tmp)
        port = free_port()
        cfg = config(port)
        runtime = Runtime(cfg, ServerManager(cfg, logs_dir=tmp / "logs", state_dir=tmp / "state"))
        try:
            stack_ttft, raw_ttft, stack_tps, raw_tps, first = await stack_vs_raw(runtime)
            idle = await stop_to_idle(runtime)
        finally:
            await runtime.aclose()
        one = await oneshot(tmp)
    warm = statistics.median(stack_ttft)
    print(f"INFO TTFT median: stack {warm * 1e3:.1f} ms, raw {statistics.median(raw_ttft) * 1e3:.1f} ms "
          f"({ROUNDS} interleaved rounds, {MAX_TOKENS} tokens max); decode median: stack "
          f"{statistics.median(stack_tps):.1f} tok/s, raw {statistics.median(raw_tps):.1f} tok/s")
    print(f"INFO one-shot process (launch, load, first token) median {one * 1e3:.0f} ms; first request after "
          f"ready {first * 1e3:.1f} ms; raw requests resent on a connection the server had closed: {RAW_RESENDS[0]}")
    print(f"RESULT engine_ready_s {ready:.2f} <= 1.0")
    print(f"RESULT stack_ttft_ratio {warm / statistics.median(raw_ttft):.3f} <= 1.05")
    print(f"RESULT stack_decode_ratio {statistics.median(stack_tps) / statistics.median(raw_tps):.3f} >= 0.97")
    print(f"RESULT stop_to_idle_ms {idle * 1e3:.0f} <= 500")
    print(f"RESULT persistent_vs_oneshot_ttft_ratio {one / warm:.1f} >= 10")
    print(f"RESULT first_request_vs_warm_ttft_ratio {first / warm:.2f} <= 1.5")


if __name__ == "__main__":
    asyncio.run(main())
