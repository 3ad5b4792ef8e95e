"""The reachability probe of a remote (`backend: openai`) model, against the fake server and a port where nothing
listens."""

from __future__ import annotations

import asyncio

import pytest

from LLM.core.config import parse_backends
from LLM.core.servers import probe_reachability
from LLM.tests.fakes.handle import free_port


def remote(url: str, model_name: str = "fake-model", **extra: str):
    lines = ["models:", "  r:", "    backend: openai", f'    server_url: "{url}/v1"', f"    model_name: {model_name}"]
    lines += [f"    {key}: {value}" for key, value in extra.items()]
    return parse_backends("\n".join(lines) + "\n", strict=True).models["r"]


def test_reachability_nothing_listening_is_not_reachable():
    url = f"http://127.0.0.1:{free_port()}"
    found = asyncio.run(probe_reachability(remote(url)))
    assert not found.ok and found.text == f"Not reachable: nothing listens at {url}/v1"


@pytest.mark.parametrize("model_name, ok, text", [
    pytest.param("fake-model", True, "Reachable: {url}/v1", id="serves-it"),
    pytest.param("other", False, "Reachable, but {url}/v1 does not serve 'other' (it serves fake-model); check "
                 "model_name in llm_backends.yaml", id="serves-another"),
])
def test_reachability_a_listening_server(fake_server, model_name, ok, text):
    found = asyncio.run(probe_reachability(remote(fake_server.url, model_name)))
    assert (found.ok, found.text) == (ok, text.format(url=fake_server.url))


def test_reachability_a_missing_key_variable_is_said_not_raised(monkeypatch):
    monkeypatch.delenv("NO_SUCH_KEY_VAR", raising=False)
    found = asyncio.run(probe_reachability(remote("http://127.0.0.1:9", api_key_env="NO_SUCH_KEY_VAR")))
    assert not found.ok and "NO_SUCH_KEY_VAR" in found.text
