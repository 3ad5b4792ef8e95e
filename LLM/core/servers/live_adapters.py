"""Changing the adapters of a running group's server in place, without reloading its base, where the engine can."""

from __future__ import annotations


from ..errors import LLMError
from ..protocol.client import ChatClient
from .launchers import LaunchSpec
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
    if running.engine != "transformers":
        raise RestartNeeded(f"the adapters of a running {running.engine} server change only by a restart")
    before = {name: path for path, name in running.adapters}
    after = {name: path for path, name in wanted.adapters}
    done = []
    try:
        # Paths first: a missing directory changes nothing on the server.
        loads = {n: str(resolve_model_path(after[n])) for n in after if after[n] != before.get(n)}
        for name in [n for n in before if before[n] != after.get(n)]:
            await client.unload_adapter(name)
            done.append(f"unloaded adapter '{name}'")
        for name, path in loads.items():
            await client.load_adapter(name, path)
            done.append(f"loaded adapter '{name}'")
    except LLMError as exc:
        raise RestartNeeded(f"changing adapters in place failed ({exc})") from exc
    return "; ".join(done) or "adapters unchanged", tuple(name for _, name in wanted.adapters)


