"""Shared fixtures: the fake OpenAI server subprocess and config helpers."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from LLM.core.config import BackendsConfig, parse_backends
from LLM.tests.fakes.handle import FakeServerHandle, served


@pytest.fixture(autouse=True, scope="session")
def _private_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """No test writes the user's conversation history: the store (and every llmctl or window a test
    starts, which inherit the environment) uses a directory of this session."""
    data = tmp_path_factory.mktemp("data")
    previous = os.environ.get("LLM_DATA_DIR")
    os.environ["LLM_DATA_DIR"] = str(data)
    try:
        yield data
    finally:
        if previous is None:
            os.environ.pop("LLM_DATA_DIR", None)
        else:
            os.environ["LLM_DATA_DIR"] = previous


@pytest.fixture(autouse=True, scope="session")
def _no_user_mcp_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """No test starts the user's own MCP servers: mcp.json (for every Runtime, llmctl and window a test starts)
    is a missing file of this session unless a test points LLM_MCP_CONFIG elsewhere."""
    previous = os.environ.get("LLM_MCP_CONFIG")
    os.environ["LLM_MCP_CONFIG"] = str(tmp_path_factory.mktemp("mcp") / "mcp.json")
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("LLM_MCP_CONFIG", None)
        else:
            os.environ["LLM_MCP_CONFIG"] = previous


@pytest.fixture
def fake_server() -> Iterator[FakeServerHandle]:
    yield from served()


@pytest.fixture(scope="session")
def qloop(qapp):
    """One qasync loop (Qt's loop as the asyncio loop) for every desktop test of the session.

    Creating and closing a loop per test left Qt timers and deferred deletes of a closed loop
    to fire in a later test's event processing, which crashed the process now and then.
    """
    from LLM.tests.desktop_app.harness import qasync_loop

    yield from qasync_loop(qapp)


def openai_config(url: str, tmp_path: Path | None = None, **extra: object) -> BackendsConfig:
    """A config with one 'fake' model attached to a running fake server."""
    lines = [f"models:\n  fake:\n    backend: openai\n    server_url: \"{url}/v1\"\n    model_name: fake-model"]
    for key, value in extra.items():
        lines.append(f"    {key}: {value}")
    return parse_backends("\n".join(lines) + "\n", source="test.yaml", strict=True, base_dir=tmp_path)
