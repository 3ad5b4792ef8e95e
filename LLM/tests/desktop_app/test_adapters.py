"""Adapters of one shared server in the window: listed under their base, switched to instantly."""

from __future__ import annotations

from pathlib import Path

import httpx

from LLM.tests.desktop_app.harness import (
    fake_launcher,
    last_answer,
    model_combo,
    open_window,
    page,
    run,
    select_model,
    server_status,
    type_and_send,
    wait_until,
)
from LLM.tests.fakes.handle import free_port


def group_yaml(tmp_path: Path, port: int) -> str:
    """The guide's shape: the base and two adapters, each its own entry and port, on one base model."""
    text = "models:\n"
    for model_id, adapter in (("base", None), ("pirate", "pirate_lora"), ("poet", "poet_lora")):
        text += (f"  {model_id}:\n    base_model: fake.gguf\n    port: {port}\n"
                 f"    display_name: \"{model_id.title()}\"\n    startup_timeout_s: 20\n")
        if adapter:
            (tmp_path / adapter).mkdir(exist_ok=True)
            text += f"    adapter_dir: \"{tmp_path / adapter}\"\n"
        port += 1
    return text


def test_desktop_adapters_sit_under_their_base_and_switch_without_a_start(qloop, tmp_path):
    port = free_port()

    async def go():
        async with open_window(tmp_path, group_yaml(tmp_path, port), initial_model="base",
                               launcher=fake_launcher()) as window:
            combo = model_combo(window)
            assert [combo.itemData(i) for i in range(combo.count())] == ["base", "pirate", "poet"]
            texts = [combo.model().item(i).text() for i in range(combo.count())]
            assert texts[0].startswith("Base") and texts[1].startswith("    ↳ Pirate") and "LoRA pirate_lora" in texts[1]
            await wait_until(lambda: server_status(window) == "ready", timeout=60, what="the shared server ready")
            status = window.selector.status
            assert "no adapter (the bare base)" in status.detail.text()
            pid = window.ctx.runtime.servers.server("base").pid

            states: list[str] = []
            window.bridge.event.connect(lambda event: states.append(event.state.value))
            select_model(window, "pirate")
            # Instant: the status says ready with the adapter at once, and no server starts.
            assert server_status(window) == "ready" and "adapter pirate_lora" in status.detail.text()
            chat = page(window)
            type_and_send(chat, "Ahoy?")
            await wait_until(lambda: last_answer(chat).status == "done", timeout=60, what="the adapter's answer")
            assert "starting" not in states and window.ctx.runtime.servers.server("pirate").pid == pid
            log = httpx.get(f"http://127.0.0.1:{port}/_requests", timeout=5).json()
            chats = [e["body"] for e in log if e["type"] == "request" and e.get("path") == "/v1/chat/completions"]
            assert chats[-1]["model"] == "pirate", "the request must name the adapter it selects"

    run(qloop, go())
