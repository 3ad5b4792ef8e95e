"""A transformers server group through the server manager: one process, adapters per request, yaml edits in place."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from LLM.core.config import parse_backends
from LLM.core.inference import InferenceConfig, ainfer
from LLM.core.runtime import Runtime
from LLM.core.servers import ServerManager, ServerState
from LLM.core.servers.states import ServerEvent
from LLM.tests.core.servers.test_hf_server import build_adapter, build_tiny_model, require_hf_stack
from LLM.tests.fakes.handle import free_port


def group_yaml(model: Path, port: int, adapters: dict[str, Path]) -> str:
    """The guide's shape: the base and one entry per adapter, each with its own port."""
    text = (f"models:\n  tiny:\n    backend: transformers\n    base_model: \"{model}\"\n    port: {port}\n"
            "    context_size: 256\n    startup_timeout_s: 120\n")
    for offset, (model_id, adapter) in enumerate(adapters.items(), start=1):
        text += (f"  {model_id}:\n    backend: transformers\n    base_model: \"{model}\"\n    port: {port + offset}\n"
                 f"    adapter_dir: \"{adapter}\"\n    context_size: 256\n    startup_timeout_s: 120\n")
    return text


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    require_hf_stack()
    root = tmp_path_factory.mktemp("tiny_group")
    build_tiny_model(root / "model", root / "unused_adapter")
    for name, seed in (("pirate", 11), ("poet", 12), ("third", 13)):
        build_adapter(root / "model", root / name, seed=seed)
    return {"model": root / "model", **{n: root / n for n in ("pirate", "poet", "third")}}


def test_hf_group_adapters_share_one_process_and_yaml_edits_apply_in_place(tiny: dict[str, Path], tmp_path: Path):
    port = free_port()
    two = {"pirate": tiny["pirate"], "poet": tiny["poet"]}
    config = parse_backends(group_yaml(tiny["model"], port, two), strict=True)
    events: list[ServerEvent] = []
    runtime = Runtime(config, ServerManager(config, logs_dir=tmp_path / "logs", state_dir=tmp_path / "state",
                                            on_event=events.append))

    async def answer(model_id: str) -> str:
        result = await ainfer(InferenceConfig(prompt="hello world", model_id=model_id, temperature=0,
                                              max_new_tokens=8), runtime=runtime)
        assert result.error_message is None, result.error_message
        return result.generated_text

    async def go() -> None:
        try:
            answers = {m: await answer(m) for m in ("tiny", "pirate", "poet")}
            pid = runtime.servers.server("tiny").pid
            assert {runtime.servers.server(m).pid for m in answers} == {pid}
            assert len(set(answers.values())) == 3, answers

            # A third adapter added in the yaml is loaded into the running server: no restart.
            three = {**two, "third": tiny["third"]}
            restarted = await runtime.reload(parse_backends(group_yaml(tiny["model"], port, three), strict=True))
            assert restarted == [] and runtime.servers.server("third").pid == pid
            assert any(e.detail == "loaded adapter 'third' (the base was not reloaded)" for e in events)
            third = await answer("third")
            assert third not in answers.values()
            assert await answer("pirate") == answers["pirate"], "the other adapters are untouched"

            # Removing one unloads it in place too.
            restarted = await runtime.reload(parse_backends(group_yaml(tiny["model"], port, {"third": tiny["third"]}),
                                                            strict=True))
            assert restarted == [] and runtime.servers.server("tiny").pid == pid
            assert any("unloaded adapter 'pirate'" in e.detail and "unloaded adapter 'poet'" in e.detail
                       for e in events)
            assert await answer("third") == third and await answer("tiny") == answers["tiny"]
            starts = {e.pid for e in events if e.state is ServerState.STARTING and e.pid}
            assert starts == {pid}, "one process for the whole test"
        finally:
            await runtime.aclose()

    asyncio.run(go())
