"""Tool-loop overhead per iteration, excluding server time, against the fake server.

Side by side in one run: the loop (3 iterations: two calculator calls, then an answer)
vs a bare httpx.AsyncClient replaying the exact request bodies the loop sent, reading each
streamed reply to the end. The difference, per iteration, is what the loop adds: building
history, parsing calls, validating and running the tool, events.

RESULT tool_loop_overhead_ms (<= 5)
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx  # noqa: E402

from LLM.core.tools.builtin import build_default_registry  # noqa: E402
from LLM.core.config import parse_backends  # noqa: E402
from LLM.core.inference import ToolEnabledInferenceConfig, arun_tool_inference  # noqa: E402
from LLM.core.runtime import Runtime  # noqa: E402
from LLM.tests.fakes.handle import FakeServerHandle  # noqa: E402

ROUNDS = 60
SCRIPT = [
    {"tool_calls": [{"name": "calculator", "arguments": {"expression": "2+3"}}]},
    {"tool_calls": [{"name": "calculator", "arguments": {"expression": "5*7"}}]},
    {"text": "The results are 5 and 35."},
]


async def measure(server: FakeServerHandle, workspace: Path) -> tuple[float, float, float]:
    config = parse_backends(
        f"models:\n  fake:\n    backend: openai\n    server_url: {server.url}/v1\n"
        "    model_name: fake-model\n    tools: native\n",
        strict=True,
    )
    runtime = Runtime(config, tools=build_default_registry(workspace), workspace=workspace)
    bare = httpx.AsyncClient(base_url=server.url, timeout=30)
    cfg = ToolEnabledInferenceConfig(prompt="compute", model_id="fake", enable_tools=True, tools=["calculator"])

    async def loop_once() -> None:
        server.script(*SCRIPT)
        result = await arun_tool_inference(cfg, runtime)
        assert len(result.steps) == 3 and result.final_text.startswith("The results"), result

    await loop_once()
    bodies = [r["body"] for r in server.requests()[-3:]]

    async def bare_once() -> None:
        server.script(*SCRIPT)
        for body in bodies:
            async with bare.stream("POST", "/v1/chat/completions", json=body) as response:
                async for _ in response.aiter_bytes():
                    pass

    for _ in range(5):
        await loop_once()
        await bare_once()
    loop_times, bare_times = [], []
    for _ in range(ROUNDS):
        t = time.perf_counter()
        await loop_once()
        loop_times.append(time.perf_counter() - t)
        t = time.perf_counter()
        await bare_once()
        bare_times.append(time.perf_counter() - t)
    await bare.aclose()
    await runtime.aclose()
    loop_ms, bare_ms = statistics.median(loop_times) * 1e3, statistics.median(bare_times) * 1e3
    return loop_ms, bare_ms, (loop_ms - bare_ms) / 3


def main() -> None:
    server = FakeServerHandle().wait_ready()
    try:
        with tempfile.TemporaryDirectory() as workspace:
            loop_ms, bare_ms, per_iteration = asyncio.run(measure(server, Path(workspace)))
    finally:
        server.stop()
    print(f"3-iteration loop median {loop_ms:.2f} ms; the same 3 requests with bare httpx {bare_ms:.2f} ms "
          "(both include the scripting round trip to the fake server)")
    print(f"RESULT tool_loop_overhead_ms {per_iteration:.3f} <= 5")


if __name__ == "__main__":
    main()
