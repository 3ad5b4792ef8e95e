"""Which adapter changes a running server takes in place, per engine (the HTTP side over a mock transport)."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from LLM.core.protocol.client import ChatClient
from LLM.core.servers.launchers import VLLM_RUNTIME_LORA, LaunchSpec
from LLM.core.servers.live_adapters import RestartNeeded, change_in_place


def spec(engine: str, *adapters: tuple[str, str]) -> LaunchSpec:
    return LaunchSpec(engine, [engine], "health", "base", None, adapters=tuple(adapters))


def vllm_spec(rank: int, *adapters: tuple[str, str]) -> LaunchSpec:
    """A vLLM server as the launcher starts one with adapters (LoRA on, runtime updates allowed)."""
    argv = ["vllm", "serve", "base", "--enable-lora", "--max-lora-rank", str(rank)]
    return LaunchSpec("vllm", argv, "health", "base", None, {VLLM_RUNTIME_LORA: "True"}, adapters=tuple(adapters))


def recording_client(calls: list[tuple[str, str, object]], fail: bool = False) -> ChatClient:
    def handle(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else None
        calls.append((request.method, request.url.path, body))
        return httpx.Response(400 if fail else 200, json={"error": {"message": "no such adapter"}} if fail else {})

    return ChatClient("http://server", "base", transport=httpx.MockTransport(handle))


@pytest.mark.parametrize(
    "running, wanted, engine_adapters, expected",
    [
        pytest.param(spec("llama-server", ("a", "/a.gguf"), ("b", "/b.gguf")), spec("llama-server", ("a", "/a.gguf")),
                     ("/a.gguf", "/b.gguf"), ("adapters changed", ("/a.gguf", "/b.gguf")),
                     id="llama-removal-keeps-the-loaded-ids"),
        pytest.param(spec("llama-server", ("a", "/a.gguf")), spec("llama-server", ("a", "/a.gguf"), ("c", "/c.gguf")),
                     ("/a.gguf",), "llama-server cannot load another adapter", id="llama-addition-restarts"),
        pytest.param(spec("vllm"), spec("vllm", ("a", "x")), (), "started without LoRA adapters",
                     id="vllm-started-without-lora-restarts"),
        pytest.param(vllm_spec(16, ("/a", "a")), vllm_spec(32, ("/a", "a"), ("/big", "big")), ("a",),
                     "above the running vLLM server's --max-lora-rank", id="vllm-larger-rank-restarts"),
        pytest.param(spec("llama-cpp-python", ("a", "x")), spec("llama-cpp-python"), ("x",),
                     "running llama-cpp-python server change only by a restart", id="other-engines-restart"),
    ],
)
def test_live_adapters_llama_server_and_vllm(running, wanted, engine_adapters, expected):
    calls: list = []
    change = change_in_place(running, wanted, engine_adapters, recording_client(calls))
    if isinstance(expected, str):
        with pytest.raises(RestartNeeded, match=expected):
            asyncio.run(change)
    else:
        assert asyncio.run(change) == expected
    assert calls == [], "llama-server and vLLM changes never call the server"


def test_live_adapters_transformers_unloads_then_loads_by_name(tmp_path):
    for name in ("a", "b", "b2", "c"):
        (tmp_path / name).mkdir()
    calls: list = []
    running = spec("transformers", (str(tmp_path / "a"), "pirate"), (str(tmp_path / "b"), "poet"))
    wanted = spec("transformers", (str(tmp_path / "b2"), "poet"), (str(tmp_path / "c"), "third"))
    done, names = asyncio.run(change_in_place(running, wanted, ("pirate", "poet"), recording_client(calls)))
    assert calls == [("DELETE", "/v1/adapters/pirate", None), ("DELETE", "/v1/adapters/poet", None),
                     ("POST", "/v1/adapters", {"name": "poet", "path": str(tmp_path / "b2")}),
                     ("POST", "/v1/adapters", {"name": "third", "path": str(tmp_path / "c")})]
    assert done == ("unloaded adapter 'pirate'; unloaded adapter 'poet'; loaded adapter 'poet'; "
                    "loaded adapter 'third'") and names == ("poet", "third")


def test_live_adapters_transformers_refusal_means_restart(tmp_path):
    (tmp_path / "broken").mkdir()
    running = spec("transformers")
    wanted = spec("transformers", (str(tmp_path / "broken"), "broken"))
    with pytest.raises(RestartNeeded, match="changing adapters in place failed .*no such adapter"):
        asyncio.run(change_in_place(running, wanted, (), recording_client([], fail=True)))


def test_live_adapters_transformers_missing_directory_changes_nothing(tmp_path):
    calls: list = []
    running = spec("transformers", (str(tmp_path), "old"))
    wanted = spec("transformers", (str(tmp_path / "gone"), "new"))
    with pytest.raises(RestartNeeded, match="not found"):
        asyncio.run(change_in_place(running, wanted, ("old",), recording_client(calls)))
    assert calls == []


def test_live_adapters_vllm_uses_its_runtime_lora_routes(tmp_path):
    (tmp_path / "c").mkdir()
    calls: list = []
    running = vllm_spec(16, ("/a", "pirate"), ("/b", "poet"))
    wanted = vllm_spec(16, ("/a", "pirate"), (str(tmp_path / "c"), "third"))
    done, names = asyncio.run(change_in_place(running, wanted, ("pirate", "poet"), recording_client(calls)))
    assert calls == [("POST", "/v1/unload_lora_adapter", {"lora_name": "poet"}),
                     ("POST", "/v1/load_lora_adapter", {"lora_name": "third", "lora_path": str(tmp_path / "c")})]
    assert done == "unloaded adapter 'poet'; loaded adapter 'third'" and names == ("pirate", "third")
