"""MCP tool servers: what our layers add to a stdio tool call in the tool loop, and how fast a server starts.

mcp_call_overhead_ms: the model (the scripted fake OpenAI server) calls ``fake__add`` of the fake MCP server
(LLM/tests/fakes/mcp_server.py, over stdio, auto-approved). Per round: the time from the loop's ToolCallEvent to its
ToolResultEvent minus the time the SDK's ``call_tool`` took inside it (timed around the SDK client of that very
connection), so the machine's load at that moment cancels out; the median over the rounds. What is left is the
loop, the registry, the manager, the result conversion and the events. A bare SDK call on the idle connection is
printed as INFO for scale.

mcp_startup_s: spawn to tools listed for the same Python server (a fresh process each time; median of the
starts). Most of it is the server importing the SDK.

RESULT mcp_call_overhead_ms (<= 5)
RESULT mcp_startup_s (<= 1.5)
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

# This file is named mcp.py: its folder must not be on sys.path, or it would shadow the mcp SDK it measures.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

from LLM.core.config import parse_backends  # noqa: E402
from LLM.core.inference import ToolEnabledInferenceConfig, stream_tool_inference  # noqa: E402
from LLM.core.mcp import McpManager, McpState, parse_mcp_config  # noqa: E402
from LLM.core.runtime import Runtime  # noqa: E402
from LLM.core.tools.builtin import build_default_registry  # noqa: E402
from LLM.core.tools.loop import ToolCallEvent, ToolResultEvent  # noqa: E402
from LLM.tests.fakes.handle import FakeServerHandle  # noqa: E402
from LLM.tests.fakes.mcp_handle import stdio_entry  # noqa: E402

ROUNDS = 40
STARTS = 5
CALL = {"name": "fake__add", "arguments": {"a": 2, "b": 3}}


def mcp_config(path: Path, **extra) -> McpManager:
    text = json.dumps({"mcpServers": {"fake": stdio_entry(**extra)}})
    return McpManager(parse_mcp_config(text, str(path)), path=path)


async def call_overhead(server: FakeServerHandle, workspace: Path) -> tuple[float, float]:
    config = parse_backends(f"models:\n  fake:\n    backend: openai\n    server_url: {server.url}/v1\n"
                            "    model_name: fake-model\n    tools: native\n", strict=True)
    mcp = mcp_config(workspace / "mcp.json", autoApprove=["add"])
    runtime = Runtime(config, tools=build_default_registry(workspace), workspace=workspace, mcp=mcp)
    cfg = ToolEnabledInferenceConfig(prompt="add", model_id="fake", enable_tools=True, tools=["fake__add"])
    try:
        await runtime.ensure_tools(["fake__add"])
        connection = mcp.connection("fake")
        client = connection._client  # the SDK's client of that very connection
        timed = _TimedClient(client)
        connection._client = timed  # a measuring seam of this benchmark only

        async def loop_call() -> float:
            server.script({"tool_calls": [CALL]}, {"text": "5"})
            started = None
            took = None
            async for event in stream_tool_inference(cfg, runtime):
                if isinstance(event, ToolCallEvent):
                    started = time.perf_counter()
                elif isinstance(event, ToolResultEvent):
                    took = time.perf_counter() - started
                    assert event.result.ok and event.result.output == "5", event.result
            return took - timed.last

        async def bare_call() -> float:
            started = time.perf_counter()
            result = await client.call_tool("add", {"a": 2, "b": 3}, read_timeout_seconds=60)
            took = time.perf_counter() - started
            assert result.content[0].text == "5"
            return took

        for _ in range(5):
            await loop_call()
            await bare_call()
        loop_times, bare_times = [], []
        for _ in range(ROUNDS):  # interleaved, so a busy moment of the machine hits both alike
            loop_times.append(await loop_call())
            bare_times.append(await bare_call())
        return statistics.median(loop_times) * 1e3, statistics.median(bare_times) * 1e3
    finally:
        await runtime.aclose()


class _TimedClient:
    """The SDK client, with the duration of its last ``call_tool`` kept."""

    def __init__(self, inner) -> None:
        self._inner = inner
        self.last = 0.0

    async def call_tool(self, *args, **kwargs):
        started = time.perf_counter()
        try:
            return await self._inner.call_tool(*args, **kwargs)
        finally:
            self.last = time.perf_counter() - started


async def startup(workspace: Path) -> list[float]:
    times = []
    for _ in range(STARTS):
        manager = mcp_config(workspace / "mcp.json")
        started = time.perf_counter()
        await manager.start_all(wait=True)
        times.append(time.perf_counter() - started)
        assert manager.status("fake").state is McpState.READY, manager.status("fake")
        await manager.aclose()
    return times


def main() -> None:
    server = FakeServerHandle().wait_ready()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            loop_ms, bare_ms = asyncio.run(call_overhead(server, Path(tmp)))
            starts = asyncio.run(startup(Path(tmp)))
    finally:
        server.stop()
    print(f"INFO a bare stdio call on the idle connection: median {bare_ms:.2f} ms")
    print(f"INFO starts (s): {' '.join(f'{s:.2f}' for s in starts)}")
    print(f"RESULT mcp_call_overhead_ms {loop_ms:.3f} <= 5")
    print(f"RESULT mcp_startup_s {statistics.median(starts):.3f} <= 1.5")


if __name__ == "__main__":
    main()
