"""The endpoint other apps use (``llmctl serve``) against going straight to the model's server, side by side.

The endpoint runs as it does for a user: on an event loop of its own (a thread here, standing for the
workbench process), routing through a Runtime that started the model. The client is plain httpx on the main
loop, as another app would be.

* router_ttft_ratio / router_decode_ratio: the default model on llama-server, streamed through the endpoint
  and directly (with the server's own key), interleaved with the order alternating, a new question each time;
  TTFT from sending to the first text, decode speed as completion tokens after the first over the time from
  the first to the last text (medians).
* router_overhead_ms: the median added latency of a short non-streaming request against the fake server
  (median through the endpoint minus median direct, interleaved).

Run from the repository root: ``python bench/router.py`` (needs the built engine: ``make install``).
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from LLM.core.config import SHIPPED_CONFIG, BackendsConfig, load_backends, parse_backends  # noqa: E402
from LLM.core.router import ModelEndpoint  # noqa: E402
from LLM.core.runtime import Runtime  # noqa: E402
from LLM.core.servers import ServerManager  # noqa: E402
from LLM.tests.fakes.handle import FakeServerHandle, free_port  # noqa: E402

ROUNDS = 32
OVERHEAD_ROUNDS = 400
MAX_TOKENS = 48
TOPICS = ["rivers", "owls", "bread", "comets", "violins", "glaciers", "tea", "bridges", "moss", "kites", "salt",
          "lighthouses", "bees", "copper", "deserts", "maps"]
T = TypeVar("T")


def question(n: int) -> str:
    return f"Question {n}: tell me one short fact about {TOPICS[n % len(TOPICS)]}."


class EndpointThread:
    """A Runtime and its endpoint on a loop of their own, as in the workbench's process."""

    def __init__(self, config: BackendsConfig, tmp: Path) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        manager = ServerManager(config, logs_dir=tmp / "logs", state_dir=tmp / "state")
        self.runtime = self.call(lambda: self._runtime(config, manager))
        self.endpoint = ModelEndpoint(self.runtime, port=0, token_path=tmp / "endpoint.token")
        self.call(self.endpoint.start)

    @staticmethod
    async def _runtime(config: BackendsConfig, manager: ServerManager) -> Runtime:
        return Runtime(config, manager)

    def call(self, fn: Callable[[], Awaitable[T]]) -> T:
        return asyncio.run_coroutine_threadsafe(fn(), self.loop).result()

    def close(self) -> None:
        self.call(self.endpoint.stop)
        self.call(self.runtime.aclose)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


async def stream_once(http: httpx.AsyncClient, url: str, body: dict[str, Any]) -> tuple[float, float | None]:
    """TTFT and decode tokens/s of one streamed request."""
    sent = time.perf_counter()
    first = last = None
    tokens = 0
    async with http.stream("POST", url, json=body) as response:
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
    assert first is not None, "no text came"
    return first - sent, (tokens - 1) / (last - first) if tokens > 1 and last > first else None


async def engine_side_by_side(served: EndpointThread) -> tuple[float, float]:
    upstream = served.call(lambda: served.runtime.upstream("default"))  # starts and warms the server
    direct = httpx.AsyncClient(timeout=120, headers={"Authorization": f"Bearer {upstream.api_key}"})
    routed = httpx.AsyncClient(timeout=120, headers={"Authorization": f"Bearer {served.endpoint.token()}"})
    urls = {"direct": f"{upstream.base_url}/v1/chat/completions", "routed": f"{served.endpoint.url}/chat/completions"}
    clients = {"direct": direct, "routed": routed}
    ttft: dict[str, list[float]] = {"direct": [], "routed": []}
    tps: dict[str, list[float]] = {"direct": [], "routed": []}
    for side in ("direct", "routed"):  # warm both paths (connections, the prompt's common prefix)
        await stream_once(clients[side], urls[side], body("default" if side == "routed" else upstream.model_name,
                                                          1000 + len(side)))
    for n in range(ROUNDS):
        order = ("direct", "routed") if n % 2 == 0 else ("routed", "direct")
        for i, side in enumerate(order):
            model = "default" if side == "routed" else upstream.model_name
            first, rate = await stream_once(clients[side], urls[side], body(model, 2 * n + i))
            ttft[side].append(first)
            if rate:
                tps[side].append(rate)
    await direct.aclose()
    await routed.aclose()
    med_ttft = {k: statistics.median(v) for k, v in ttft.items()}
    med_tps = {k: statistics.median(v) for k, v in tps.items()}
    print(f"INFO TTFT median: direct {med_ttft['direct'] * 1e3:.1f} ms, through the endpoint "
          f"{med_ttft['routed'] * 1e3:.1f} ms; decode median: direct {med_tps['direct']:.1f} tokens/s, through "
          f"the endpoint {med_tps['routed']:.1f} tokens/s ({ROUNDS} rounds each)")
    return med_ttft["routed"] / med_ttft["direct"], med_tps["routed"] / med_tps["direct"]


def body(model: str, n: int) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": question(n)}], "stream": True,
            "max_tokens": MAX_TOKENS, "temperature": 0, "stream_options": {"include_usage": True}}


async def fake_overhead(served: EndpointThread, fake: FakeServerHandle) -> float:
    request = {"model": "fake", "messages": [{"role": "user", "content": "hi"}]}
    direct_url = f"{fake.url}/v1/chat/completions"
    routed_url = f"{served.endpoint.url}/chat/completions"
    times: dict[str, list[float]] = {"direct": [], "routed": []}
    async with httpx.AsyncClient(timeout=30) as http:
        token = {"Authorization": f"Bearer {served.endpoint.token()}"}

        async def once(side: str) -> float:
            started = time.perf_counter()
            if side == "direct":
                response = await http.post(direct_url, json={**request, "model": "fake-model"})
            else:
                response = await http.post(routed_url, json=request, headers=token)
            assert response.status_code == 200, response.text
            return time.perf_counter() - started

        for _ in range(30):
            await once("direct")
            await once("routed")
        for n in range(OVERHEAD_ROUNDS):
            for side in (("direct", "routed") if n % 2 == 0 else ("routed", "direct")):
                times[side].append(await once(side))
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"INFO short non-streaming request, median: direct {med['direct'] * 1e3:.3f} ms, through the endpoint "
          f"{med['routed'] * 1e3:.3f} ms ({OVERHEAD_ROUNDS} each)")
    return (med["routed"] - med["direct"]) * 1e3


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        fake = FakeServerHandle().wait_ready()
        try:
            fake.set_default({"text": "ok, short reply"})
            config = parse_backends(f"models:\n  fake:\n    server_url: {fake.url}/v1\n    model_name: fake-model\n",
                                    strict=True)
            served = EndpointThread(config, Path(tmp) / "fake")
            try:
                overhead = asyncio.run(fake_overhead(served, fake))
            finally:
                served.close()
        finally:
            fake.stop()
        shipped = load_backends(SHIPPED_CONFIG, strict=True)
        engine = BackendsConfig(source="bench", models={
            "default": shipped.models["default"].model_copy(update={"port": free_port()})})
        served = EndpointThread(engine, Path(tmp) / "engine")
        try:
            ttft_ratio, decode_ratio = asyncio.run(engine_side_by_side(served))
        finally:
            served.close()
    print(f"RESULT router_ttft_ratio {ttft_ratio:.3f} <= 1.03")
    print(f"RESULT router_decode_ratio {decode_ratio:.3f} >= 0.98")
    print(f"RESULT router_overhead_ms {overhead:.2f} <= 2")


if __name__ == "__main__":
    main()
