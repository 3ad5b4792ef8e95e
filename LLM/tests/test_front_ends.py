"""One tool run, recorded by core's session, is the same whichever front end drove it.

The window's tool chat, ``llmctl run --tools`` and the eval answer "What is 6*7?" against the same scripted
replies (a native calculator call, then the answer), with the same settings. The window and llmctl save the
run: the saved answers are equal but for ids, clocks and timings. The eval stops after its scored step: what
it recorded equals the saved answer up to that step.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from LLM.core.chat.conversation import answer_prefix
from LLM.core.config import parse_backends
from LLM.core.evaluation.runner import run_task
from LLM.core.evaluation.suite import parse_suite
from LLM.core.history.store import HistoryStore
from LLM.core.runtime import Runtime
from LLM.core.tools.builtin import build_default_registry
from LLM.core import GenerationSettings
from LLM.tests.cli.harness import llmctl
from LLM.tests.desktop_app.harness import last_answer, open_window, page, run, type_and_send, wait_until
from LLM.tests.fakes.handle import FakeServerHandle

QUESTION = "What is 6*7?"
REPLIES = ({"tool_calls": [{"name": "calculator", "arguments": {"expression": "6*7"}}]}, {"text": "It is 42."})
# What differs between two runs of the same answer: identities (the fake server numbers its call ids by
# request), clocks and timings.
VOLATILE = {"id", "parent_id", "call_id", "tool_call_id", "created", "updated", "duration_ms", "request_ms",
            "time_to_first_token_ms", "tokens_per_second"}


def config_text(server: FakeServerHandle) -> str:
    return f"models:\n  fake:\n    backend: openai\n    server_url: {server.url}/v1\n    model_name: fake-model\n"


def stable(value: Any) -> Any:
    """``value`` (a saved message as JSON) without what differs between runs."""
    if isinstance(value, dict):
        return {key: stable(item) for key, item in value.items() if key not in VOLATILE}
    if isinstance(value, list):
        return [stable(item) for item in value]
    return value


def saved_answer(history: Path) -> dict[str, Any]:
    with HistoryStore(history) as store:
        (summary,) = store.list()
        conversation = store.load(summary.id)
    assert conversation.kind == "tools" and conversation.title == QUESTION
    answer = conversation.messages[-1]
    saved = {m["id"]: m for m in json.loads(json.dumps(conversation.to_dict()))["messages"]}
    return stable(saved[answer.id]) | {"_conversation": conversation.id}


def by_window(qloop, server: FakeServerHandle, tmp_path: Path) -> dict[str, Any]:
    server.script(*REPLIES)
    history = tmp_path / "window.sqlite3"

    async def go():
        async with open_window(tmp_path, config_text(server), history_path=history) as window:
            tools = page(window, "toolChatPage")
            window.tabs.setCurrentWidget(tools)
            tools.set_tool_enabled("get_current_time", False)
            tools.tool_mode.setCurrentIndex(tools.tool_mode.findData("native"))
            tools.panel.load(GenerationSettings(temperature=0.0, max_new_tokens=256))
            type_and_send(tools, QUESTION)
            await wait_until(lambda: tools.conversation.messages and last_answer(tools).final, what="the answer")

    run(qloop, go())
    return saved_answer(history)


def by_llmctl(server: FakeServerHandle, tmp_path: Path) -> dict[str, Any]:
    server.script(*REPLIES)
    config = tmp_path / "cli" / "backends.yaml"
    config.parent.mkdir()
    config.write_text(config_text(server))
    out = llmctl(config, "run", "-m", "fake", "--tools", "calculator", "--tool-mode", "native", "--temperature", "0",
                 "--max-tokens", "256", QUESTION)
    assert out.returncode == 0, out.stderr
    saved = saved_answer(config.parent / "data" / "history.sqlite3")
    assert f"llmctl chat --resume {saved['_conversation'][:8]}" in out.stderr  # it says how to go on with it
    return saved


def by_eval(server: FakeServerHandle, tmp_path: Path) -> dict[str, Any]:
    """The eval with a suite whose calculator is the built-in one's schema, answering what it would."""
    server.script(*REPLIES)
    calculator = build_default_registry(tmp_path).get("calculator")
    suite = parse_suite("\n".join([
        json.dumps({"tool": {"name": "calculator", "description": calculator.description,
                             "parameters": calculator.parameters, "result": "42"}}),
        json.dumps({"id": "multiply", "prompt": QUESTION, "tools": ["calculator"],
                    "expect": [{"name": "calculator", "arguments": {"expression": "6*7"}}]}),
    ]))

    async def go():
        runtime = Runtime(parse_backends(config_text(server), source="test.yaml", strict=True))
        try:
            return await run_task(runtime, "fake", suite.tasks[0], "native")
        finally:
            await runtime.aclose()

    outcome = asyncio.run(go())
    assert outcome.score.passed, outcome.score
    return outcome.answer


def test_a_tool_run_is_recorded_the_same_by_the_window_llmctl_and_the_eval(qloop, fake_server, tmp_path):
    window = by_window(qloop, fake_server, tmp_path)
    cli = by_llmctl(fake_server, tmp_path)
    window.pop("_conversation"), cli.pop("_conversation")
    assert window == cli
    assert [card["output"] for card in window["parts"] if card["type"] == "tool"] == ["42"]
    assert window["status"] == "done" and len(window["steps"]) == 2

    recorded = by_eval(fake_server, tmp_path)
    parts, steps = answer_prefix(recorded, last_step=1)
    assert stable([{"type": "tool", **asdict(part)} for part in parts]) == window["parts"][:1]
    assert stable([asdict(step) for step in steps]) == window["steps"][:1]
