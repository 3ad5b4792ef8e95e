"""The endpoint other apps use (``llmctl serve``) against going straight to the model's server, side by side.

The endpoint runs as it does for a user: ``llmctl serve`` in a process of its own. The client is plain httpx
in this process, as another app would be.

* router_ttft_ratio / router_decode_ratio: the default model on llama-server, streamed through the endpoint
  and directly (with the server's own key), interleaved with the order alternating, a new question each time;
  TTFT from sending to the first text, decode speed as completion tokens after the first over the time from
  the first to the last text (medians). This process starts the model; ``llmctl serve`` re-attaches to it
  (the state file), so both sides reach the very same server.
* router_overhead_ms: the median added latency of a short non-streaming request against the fake server
  (median through the endpoint minus median direct, interleaved).

Run from the repository root: ``python bench/router.py`` (needs the built engine: ``make install``).
"""

from __future__ import annotations

import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from LLM.core.config import SHIPPED_CONFIG, load_backends  # noqa: E402
from LLM.core.router import TokenFile  # noqa: E402
from LLM.core.runtime import Runtime  # noqa: E402
from LLM.core.servers import ServerManager  # noqa: E402
from LLM.tests.fakes.handle import REPO_ROOT, FakeServerHandle, free_port, port_open, wait_until  # noqa: E402

# The same questions and the same timed stream reader as bench/engine.py's stack-vs-raw figures.
from engine import question, raw_stream  # noqa: E402

ROUNDS = 64  # TTFT varies by ~10% a request on this shared machine: enough pairs to see 1%
OVERHEAD_ROUNDS = 400
MAX_TOKENS = 48
class Served:
    """``llmctl serve`` on a free port with private data, state and log folders under ``tmp``."""

    def __init__(self, config: Path, tmp: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "LLM_DATA_DIR": str(tmp / "data"),
               "LLM_STATE_DIR": str(tmp / "state"), "LLM_LOGS_DIR": str(tmp / "logs")}
        self.process = subprocess.Popen([sys.executable, "-m", "LLM", "--config", str(config), "serve", "--port",
                                         str(self.port)], env=env, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL, start_new_session=True)
        wait_until(lambda: port_open(self.port) or self.process.poll() is not None, 60, "llmctl serve")
        if self.process.poll() is not None:
            raise SystemExit(f"llmctl serve exited with {self.process.returncode}")
        self.token = TokenFile(tmp / "data" / "endpoint.token").current()

    def close(self) -> None:
        os.killpg(self.process.pid, signal.SIGINT)
        self.process.wait(30)


async def engine_side_by_side(tmp: Path) -> tuple[float, float]:
    config_file = tmp / "engine.yaml"
    entry = "\n    port: 9100\n"  # the default model's own line in the shipped file
    config_file.write_text(SHIPPED_CONFIG.read_text().replace(entry, f"\n    port: {free_port()}\n"))
    config = load_backends(config_file, strict=True)
    runtime = Runtime(config, ServerManager(config, logs_dir=tmp / "engine" / "logs",
                                            state_dir=tmp / "engine" / "state"))
    upstream = await runtime.upstream("default")  # started and warmed here; the endpoint re-attaches to it
    served = Served(config_file, tmp / "engine")
    direct = httpx.AsyncClient(base_url=upstream.base_url, timeout=120,
                               headers={"Authorization": f"Bearer {upstream.api_key}"})
    routed = httpx.AsyncClient(base_url=served.url.removesuffix("/v1"), timeout=120,
                               headers={"Authorization": f"Bearer {served.token}"})
    models = {"direct": upstream.model_name, "routed": "default"}
    clients = {"direct": direct, "routed": routed}
    ttft: dict[str, list[float]] = {"direct": [], "routed": []}
    tps: dict[str, list[float]] = {"direct": [], "routed": []}
    try:
        for side in ("direct", "routed"):  # warm both paths (connections, the endpoint's re-attach)
            await raw_stream(clients[side], body(models[side], 1000 + len(side)))
        for n in range(ROUNDS):
            order = ("direct", "routed") if n % 2 == 0 else ("routed", "direct")
            for i, side in enumerate(order):
                first, rate = await raw_stream(clients[side], body(models[side], 2 * n + i))
                ttft[side].append(first)
                if rate:
                    tps[side].append(rate)
    finally:
        await direct.aclose()
        await routed.aclose()
        served.close()
        await runtime.aclose()
    med_ttft = {k: statistics.median(v) for k, v in ttft.items()}
    med_tps = {k: statistics.median(v) for k, v in tps.items()}
    print(f"INFO TTFT median: direct {med_ttft['direct'] * 1e3:.1f} ms, through the endpoint "
          f"{med_ttft['routed'] * 1e3:.1f} ms; decode median: direct {med_tps['direct']:.1f} tokens/s, through "
          f"the endpoint {med_tps['routed']:.1f} tokens/s ({ROUNDS} rounds each)")
    return med_ttft["routed"] / med_ttft["direct"], med_tps["routed"] / med_tps["direct"]


def body(model: str, n: int) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": question(n)}], "stream": True,
            "max_tokens": MAX_TOKENS, "temperature": 0, "stream_options": {"include_usage": True}}


async def fake_overhead(tmp: Path) -> float:
    fake = FakeServerHandle().wait_ready()
    config = tmp / "fake.yaml"
    config.write_text(f"models:\n  fake:\n    server_url: {fake.url}/v1\n    model_name: fake-model\n")
    served = Served(config, tmp / "fake")
    fake.set_default({"text": "ok, short reply"})
    request = {"model": "fake", "messages": [{"role": "user", "content": "hi"}]}
    times: dict[str, list[float]] = {"direct": [], "routed": []}
    try:
        async with httpx.AsyncClient(timeout=30) as http:
            token = {"Authorization": f"Bearer {served.token}"}

            async def once(side: str) -> float:
                started = time.perf_counter()
                if side == "direct":
                    response = await http.post(f"{fake.url}/v1/chat/completions",
                                               json={**request, "model": "fake-model"})
                else:
                    response = await http.post(f"{served.url}/chat/completions", json=request, headers=token)
                assert response.status_code == 200, response.text
                return time.perf_counter() - started

            for _ in range(30):
                await once("direct")
                await once("routed")
            for n in range(OVERHEAD_ROUNDS):
                for side in (("direct", "routed") if n % 2 == 0 else ("routed", "direct")):
                    times[side].append(await once(side))
    finally:
        served.close()
        fake.stop()
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"INFO short non-streaming request, median: direct {med['direct'] * 1e3:.3f} ms, through the endpoint "
          f"{med['routed'] * 1e3:.3f} ms ({OVERHEAD_ROUNDS} each)")
    return (med["routed"] - med["direct"]) * 1e3


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        overhead = asyncio.run(fake_overhead(tmp))
        ttft_ratio, decode_ratio = asyncio.run(engine_side_by_side(tmp))
    print(f"RESULT router_ttft_ratio {ttft_ratio:.3f} <= 1.03")
    print(f"RESULT router_decode_ratio {decode_ratio:.3f} >= 0.98")
    print(f"RESULT router_overhead_ms {overhead:.2f} <= 2")


if __name__ == "__main__":
    main()
