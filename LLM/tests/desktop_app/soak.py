"""A bounded soak of the window over fake engines: random choices, sends, stops, reloads, kill -9s and unloads.

Shared by the soak test and bench/serving.py. Loopback only; every engine is a fake server process.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
from dataclasses import dataclass, field
from pathlib import Path

from LLM.core.servers import ServerState
from LLM.core.servers.process import pid_alive
from LLM.desktop_app.interaction import SwitchDecision
from LLM.tests.desktop_app.harness import (
    ScriptedInteraction,
    fake_launcher,
    open_window,
    page,
    select_model,
    type_and_send,
    wait_until,
)
from LLM.tests.fakes.handle import free_port

MODELS = ("a", "b", "c")
TRANSITIONAL = {ServerState.STARTING, ServerState.STOPPING}
FINAL = {"done", "stopped", "failed"}


class RandomInteraction(ScriptedInteraction):
    """Answers every question at random, as an impatient user might."""

    def __init__(self, rng: random.Random) -> None:
        super().__init__()
        self.rng = rng

    async def confirm_switch(self, parent, current: str, new: str) -> SwitchDecision:
        self.questions.append(("switch", current, new))
        return self.rng.choice(list(SwitchDecision))

    async def confirm_unload(self, parent, victim: str, starting: str) -> bool:
        return self.rng.random() < 0.5


@dataclass
class SoakReport:
    operations: dict[str, int] = field(default_factory=dict)
    pids: set[int] = field(default_factory=set)
    stuck_models: list[str] = field(default_factory=list)  # left starting / stopping after the soak settled
    orphans: list[int] = field(default_factory=list)  # engine processes alive after the window closed
    unfinished: list[str] = field(default_factory=list)  # answers not done / stopped / failed-with-a-message
    answers: int = 0


def config_text(ports: dict[str, int], generation: int) -> str:
    lines = ["defaults:\n  max_loaded: 2\nmodels:"]
    for model_id, port in ports.items():
        # share_server: false: one fake engine per model, as the soak kills and unloads them one by one.
        lines += [f"  {model_id}:", "    base_model: fake.gguf", "    share_server: false", f"    port: {port}",
                  f"    model_name: {model_id}",
                  f'    display_name: "Engine {model_id} v{generation}"', "    startup_timeout_s: 20",
                  f"    context_size: {4096 if generation % 3 else 2048}"]  # every third reload restarts servers
    return "\n".join(lines) + "\n"


async def soak(tmp_path: Path, operations: int, seed: int = 7) -> SoakReport:
    rng = random.Random(seed)
    report = SoakReport()
    ports = {m: free_port() for m in MODELS}
    generation = 0
    launcher = fake_launcher("--default-chunks", "40", "--default-delay", "0.01")
    async with open_window(tmp_path, config_text(ports, generation), interaction=RandomInteraction(rng),
                           launcher=launcher) as window:
        servers = window.ctx.servers
        servers.add_listener(lambda event: event.pid and report.pids.add(event.pid))
        chat = page(window)
        for _ in range(operations):
            op = rng.choice(["choose", "send", "send", "stop", "reload", "kill", "unload"])
            report.operations[op] = report.operations.get(op, 0) + 1
            if op == "choose":
                select_model(window, rng.choice(MODELS))
            elif op == "send" and not chat.busy:
                type_and_send(chat, f"message {rng.randrange(1000)}")
            elif op == "stop":
                chat.stop()
            elif op == "reload":
                generation += 1
                (tmp_path / "llm_backends.yaml").write_text(config_text(ports, generation))
                window.ctx.tasks.spawn(window.reload_config(), name="soak-reload")
            elif op == "kill":
                running = [s.pid for m in MODELS if (s := servers.server(m)).pid and pid_alive(s.pid)]
                if running:
                    with contextlib.suppress(ProcessLookupError):  # it may exit between the look and the kill
                        os.kill(rng.choice(running), signal.SIGKILL)
            elif op == "unload":
                window._unload(rng.choice(MODELS))
            await asyncio.sleep(rng.uniform(0, 0.05))  # the user's think time between actions

        def settled() -> bool:
            return not chat.busy and not window.ctx.tasks and all(servers.server(m).state not in TRANSITIONAL
                                                                 for m in MODELS)

        try:
            await wait_until(settled, timeout=60, what="the window to settle after the soak")
        except AssertionError:
            pass  # reported below as stuck models / unfinished answers
        report.stuck_models = [m for m in MODELS if servers.server(m).state in TRANSITIONAL]
        for message in chat.conversation.nodes.values():
            if message.role != "assistant":
                continue
            report.answers += 1
            if message.status not in FINAL or (message.status == "failed" and not message.error):
                report.unfinished.append(f"{message.id}: {message.status}")
        window.close()
        await asyncio.wait_for(window.wait_closed(), 30)
    try:
        await wait_until(lambda: not any(pid_alive(pid) for pid in report.pids), timeout=60, what="engines gone")
    except AssertionError:
        pass  # counted below
    report.orphans = [pid for pid in report.pids if pid_alive(pid)]
    return report
