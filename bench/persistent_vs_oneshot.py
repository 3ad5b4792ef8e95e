"""Persistent server vs load-per-request, with the real engine and the default model (one run).

* warm TTFT: time to first token of stream_inference on a running, warmed server (median);
* one-shot TTFT: the old approach, a fresh process that loads the model and answers once,
  timed from process launch to its first streamed token (median);
* first request after a cold start: the first user request once the server reports ready
  (its warm-up done), vs the warm median.

RESULT persistent_vs_oneshot_ttft_ratio (one-shot / warm, >= 10)
RESULT first_request_vs_warm_ttft_ratio (first / warm, <= 1.5)
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from LLM.core.config import SHIPPED_CONFIG, BackendsConfig, load_backends  # noqa: E402
from LLM.core.events import TextDelta  # noqa: E402
from LLM.core.inference import InferenceConfig, stream_inference  # noqa: E402
from LLM.core.runtime import Runtime  # noqa: E402
from LLM.core.servers import ServerManager  # noqa: E402
from LLM.core.servers.model_files import resolve_model_path  # noqa: E402
from LLM.tests.fakes.handle import free_port  # noqa: E402

PROMPT = "Name three colours."
WARM_ROUNDS = 15
ONESHOT_ROUNDS = 3

ONESHOT = """
import os, sys, time
t0 = float(sys.argv[2])
from llama_cpp import Llama
llm = Llama(model_path=sys.argv[1], n_ctx=2048, n_threads=os.cpu_count(), verbose=False)
for chunk in llm.create_chat_completion([{"role": "user", "content": %r}], max_tokens=16, stream=True):
    if chunk["choices"][0]["delta"].get("content"):
        print(time.time() - t0)
        break
""" % PROMPT


async def ttft(runtime: Runtime, n: int) -> float:
    # A different question each time, as a user sends: no request re-uses the previous prompt's cache.
    cfg = InferenceConfig(prompt=f"Question {n}: {PROMPT}", model_id="default", max_new_tokens=16, temperature=0)
    started = time.perf_counter()
    first = None
    async for event in stream_inference(cfg, runtime):
        if first is None and isinstance(event, TextDelta):
            first = time.perf_counter() - started
    assert first is not None, "no text"
    return first


async def persistent(tmp: Path) -> tuple[float, float, float]:
    shipped = load_backends(SHIPPED_CONFIG, strict=True)
    entry = shipped.models["default"].model_copy(update={"port": free_port()})
    config = BackendsConfig(source="bench", models={"default": entry})
    manager = ServerManager(config, logs_dir=tmp / "logs", state_dir=tmp / "state")
    runtime = Runtime(config, manager)
    started = time.perf_counter()
    await manager.ensure_ready("default")
    cold_start = time.perf_counter() - started
    first = await ttft(runtime, 0)
    warm = [await ttft(runtime, n) for n in range(1, WARM_ROUNDS + 1)]
    await runtime.aclose()
    return cold_start, first, statistics.median(warm)


def oneshot() -> float:
    model = str(resolve_model_path(load_backends(SHIPPED_CONFIG).models["default"].base_model or ""))
    times = []
    for _ in range(ONESHOT_ROUNDS):
        out = subprocess.run([sys.executable, "-c", ONESHOT, model, repr(time.time())],
                             capture_output=True, text=True, timeout=300)
        times.append(float(out.stdout.strip().splitlines()[-1]))
    return statistics.median(times)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        cold_start, first, warm = asyncio.run(persistent(Path(tmp)))
    one = oneshot()
    print(f"cold start to ready (spawn, load, warm-up): {cold_start:.2f} s")
    print(f"TTFT: warm median {warm * 1e3:.1f} ms, first request after ready {first * 1e3:.1f} ms, "
          f"one-shot process (load + answer) median {one * 1e3:.1f} ms")
    print(f"RESULT persistent_vs_oneshot_ttft_ratio {one / warm:.1f} >= 10")
    print(f"RESULT first_request_vs_warm_ttft_ratio {first / warm:.2f} <= 1.5")


if __name__ == "__main__":
    main()
