"""Changing the adapters of a running group's server in place, without reloading its base, where the engine can."""

from __future__ import annotations

from pathlib import Path

from ..errors import LLMError
from ..protocol.client import ChatClient
from .launchers import VLLM_RUNTIME_LORA, LaunchSpec
from .model_files import resolve_model_path


class RestartNeeded(Exception):
    """The engine cannot make this change in place; the message says why (shown to the user)."""


async def change_in_place(running: LaunchSpec, wanted: LaunchSpec, engine_adapters: tuple[str, ...],
                          client: ChatClient) -> tuple[str, tuple[str, ...]]:
    """Bring the server started as ``running`` to ``wanted`` (the same base, other adapters).

    Returns what was done and the adapters the engine now holds; raises RestartNeeded otherwise."""
    if running.engine == "llama-server":
        if any(engine not in engine_adapters for _, engine in wanted.adapters):
            raise RestartNeeded("llama-server cannot load another adapter into a running server")
        # A removed adapter stays loaded at scale 0 (llama-server cannot unload one) until the next start.
        return "adapters changed", engine_adapters
    if running.engine not in ("transformers", "vllm"):
        raise RestartNeeded(f"the adapters of a running {running.engine} server change only by a restart")
    if running.engine == "vllm":
        _check_vllm(running, wanted)
    before = {name: path for path, name in running.adapters}
    after = {name: path for path, name in wanted.adapters}
    done = []
    try:
        # Paths first: a missing directory changes nothing on the server.
        loads = {n: _local(after[n], running.engine) for n in after if after[n] != before.get(n)}
        for name in [n for n in before if before[n] != after.get(n)]:
            await _unload(client, running.engine, name)
            done.append(f"unloaded adapter '{name}'")
        for name, path in loads.items():
            await _load(client, running.engine, name, path)
            done.append(f"loaded adapter '{name}'")
    except LLMError as exc:
        raise RestartNeeded(f"changing adapters in place failed ({exc})") from exc
    return "; ".join(done) or "adapters unchanged", tuple(name for _, name in wanted.adapters)


def _check_vllm(running: LaunchSpec, wanted: LaunchSpec) -> None:
    """vLLM takes adapters at run time only when started with LoRA on and runtime updates allowed, up to the
    rank it was started with."""
    if "--enable-lora" not in running.argv or running.env.get(VLLM_RUNTIME_LORA) != "True":
        raise RestartNeeded("the vLLM server was started without LoRA adapters; it restarts with them")
    if _flag(wanted.argv, "--max-lora-rank") > _flag(running.argv, "--max-lora-rank"):
        raise RestartNeeded("the new adapter's rank is above the running vLLM server's --max-lora-rank")


def _flag(argv: list[str], name: str) -> int:
    return int(argv[argv.index(name) + 1]) if name in argv else 0


def _local(path: str, engine: str) -> str:
    # vLLM also takes an adapter by its hub name, resolved by vLLM itself.
    return path if engine == "vllm" and not Path(path).exists() else str(resolve_model_path(path))


async def _load(client: ChatClient, engine: str, name: str, path: str) -> None:
    if engine == "vllm":
        await client.admin("POST", "/v1/load_lora_adapter", {"lora_name": name, "lora_path": path})
    else:  # our transformers server
        await client.admin("POST", "/v1/adapters", {"name": name, "path": path})


async def _unload(client: ChatClient, engine: str, name: str) -> None:
    if engine == "vllm":
        await client.admin("POST", "/v1/unload_lora_adapter", {"lora_name": name})
    else:
        await client.admin("DELETE", f"/v1/adapters/{name}")
