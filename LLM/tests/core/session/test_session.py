"""ChatSession headless against the fake server: every action, staleness after Stop or a switch, autosave."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from LLM.core.chat.parts import Notice
from LLM.core.config import parse_backends
from LLM.core.errors import SessionError
from LLM.core.events import ToolCall
from LLM.core.history.autosave import AnswerSaver
from LLM.core.history.store import INTERRUPTED, HistoryStore
from LLM.core.runtime import Runtime
from LLM.core.session import ChangeKind, ChatSession, SessionChange
from LLM.core.tools.approval import ApprovalDecision
from LLM.core.tools.registry import Tool
from LLM.tests.fakes.handle import FakeServerHandle, async_wait_until

CALC = {"name": "calculator", "arguments": {"expression": "6*7"}}
WRITE = {"name": "write_file", "arguments": {"path": "a.txt", "content": "hi"}}


def config(url: str, tmp_path: Path, *, base: bool = False):
    text = (f"models:\n  fake:\n    backend: openai\n    server_url: \"{url}/v1\"\n    model_name: fake-model\n"
            f"  other:\n    backend: openai\n    server_url: \"{url}/v1\"\n    model_name: fake-model\n")
    if base:
        text += f"  base:\n    backend: openai\n    server_url: \"{url}/v1\"\n    model_name: fake-model\n" \
                "    model_type: base\n"
    return parse_backends(text, source="test.yaml", strict=True, base_dir=tmp_path)


class Asker:
    """The front end's approval question, answered from a script; records what was asked."""

    def __init__(self, *answers: ApprovalDecision) -> None:
        self.answers = list(answers)
        self.asked: list[str] = []

    async def __call__(self, call: ToolCall, tool: Tool) -> ApprovalDecision:
        self.asked.append(call.name)
        return self.answers.pop(0)


@asynccontextmanager
async def session_on(server: FakeServerHandle, tmp_path: Path, *, kind: str = "chat", store: bool = True,
                     base: bool = False, **options: Any) -> AsyncIterator[tuple[ChatSession, list[SessionChange]]]:
    runtime = Runtime(config(server.url, tmp_path, base=base))
    runtime.workspace = tmp_path
    history = HistoryStore(tmp_path / "history.db") if store else None
    changes: list[SessionChange] = []
    session = ChatSession(runtime, kind=kind, saver=AnswerSaver(history, interval_s=0) if history else None,
                          on_change=changes.append, **options)
    session.set_model("fake")
    try:
        yield session, changes
    finally:
        session.stop()
        await runtime.aclose()
        if history is not None:
            history.close()


def kinds(changes: list[SessionChange]) -> list[str]:
    """The change kinds in order, runs of STREAMED folded into one."""
    out: list[str] = []
    for change in changes:
        if not (change.kind is ChangeKind.STREAMED and out and out[-1] == "streamed"):
            out.append(change.kind.value)
    return out


def test_session_send_answers_saves_and_reports_each_change(fake_server: FakeServerHandle, tmp_path: Path):
    fake_server.script({"text": "Hello there.", "n_chunks": 3})

    async def go():
        async with session_on(fake_server, tmp_path) as (session, changes):
            session.send("Hi")
            answer = await session.wait()
            assert answer.status == "done" and answer.content == "Hello there."
            assert answer.backend == "openai" and answer.metrics.finish_reason == "stop"
            assert answer.params == {}  # no setting of its own: the model's defaults
            assert kinds(changes) == ["added", "saved", "added", "busy", "streamed", "saved", "finished", "busy"]
            metrics = answer.metrics
            assert session.context_used == metrics.prompt_tokens + metrics.completion_tokens and not session.busy
            saved = session.saver.store.load(session.conversation.id)
            assert [(m.role, m.content, m.status) for m in saved.messages] == [
                ("user", "Hi", "done"), ("assistant", "Hello there.", "done")]

    asyncio.run(go())


def test_session_regenerate_and_edit_keep_the_old_versions(fake_server: FakeServerHandle, tmp_path: Path):
    fake_server.script({"text": "One."}, {"text": "Two."}, {"text": "Three."})

    async def go():
        async with session_on(fake_server, tmp_path) as (session, changes):
            session.send("Count")
            first = await session.wait()
            session.regenerate()
            second = await session.wait()
            assert [m.content for m in session.conversation.siblings(second)] == ["One.", "Two."]
            assert first.id in session.conversation.nodes and changes[-1].kind is ChangeKind.BUSY
            question = session.conversation.messages[0]
            session.edit_and_resend(question.id, "Count again")
            third = await session.wait()
            path = session.conversation.messages
            assert [m.content for m in path] == ["Count again", "Three."] and path[-1] is third
            assert [m.content for m in session.conversation.siblings(path[0])] == ["Count", "Count again"]
            # the history each request sent: the edited question alone, not the old one
            assert fake_server.requests()[-1]["body"]["messages"][-1]["content"] == "Count again"
            session.switch_branch(path[0].id, -1)
            assert [m.content for m in session.conversation.messages] == ["Count", "Two."]
            saved = session.saver.store.load(session.conversation.id)
            assert len(saved.nodes) == 5 and saved.head == session.conversation.head

    asyncio.run(go())


@pytest.mark.parametrize("action, expect", [
    ("regenerate", "there is no answer to regenerate"),
    ("edit", "is not a user message"),
    ("empty", "the message is empty"),
    ("no-model", "choose a model first"),
])
def test_session_refuses_actions_that_cannot_run_and_changes_nothing(fake_server, tmp_path, action, expect):
    async def go():
        async with session_on(fake_server, tmp_path) as (session, changes):
            if action == "no-model":
                session.set_model(None)
            with pytest.raises(SessionError, match=expect):
                {"regenerate": session.regenerate, "edit": lambda: session.edit_and_resend("nope", "x"),
                 "empty": lambda: session.send("  \n"), "no-model": lambda: session.send("hi")}[action]()
            assert session.conversation.nodes == {} and changes == [] and not session.busy

    asyncio.run(go())


def test_session_stop_keeps_the_partial_answer_and_ignores_late_events(fake_server, tmp_path):
    fake_server.script({"text": "word " * 200, "n_chunks": 200, "delay_s": 0.01})

    async def go():
        async with session_on(fake_server, tmp_path) as (session, changes):
            request = session.send("Talk")
            await async_wait_until(lambda: len(request.message.content) > 20, 30, "some text")
            with pytest.raises(SessionError, match="while an answer is being written"):
                session.send("more")
            session.stop()
            kept = request.message.content
            assert request.message.status == "stopped" and not session.busy
            await asyncio.wait([request.task])  # the cancelled stream unwinds; nothing more lands in the answer
            await asyncio.sleep(0.1)
            assert request.message.content == kept and request.message.metrics.finish_reason == "cancelled"
            saved = session.saver.store.load(session.conversation.id).messages[-1]
            assert saved.status == "stopped" and saved.content == kept
            assert sum(c.kind is ChangeKind.FINISHED for c in changes) == 1

    asyncio.run(go())


@pytest.mark.parametrize("replace", ["model switched", "new chat", "opened another chat"])
def test_session_switch_makes_the_answer_stale(fake_server, tmp_path, replace):
    fake_server.script({"text": "word " * 200, "n_chunks": 200, "delay_s": 0.01})

    async def go():
        async with session_on(fake_server, tmp_path) as (session, _changes):
            request = session.send("Talk")
            await async_wait_until(lambda: request.message.content, 30, "some text")
            conversation = session.conversation
            if replace == "model switched":
                session.set_model("other")
            elif replace == "new chat":
                session.new_chat()
            else:
                from LLM.core.chat.conversation import Conversation
                session.open(Conversation())
            assert request.message.status == "stopped" and request.message.stop_reason == replace
            assert not session.busy
            kept = request.message.content
            await asyncio.sleep(0.1)
            assert request.message.content == kept
            assert (session.conversation is conversation) == (replace == "model switched")

    asyncio.run(go())


def test_session_autosaves_a_partial_answer_while_it_streams(fake_server, tmp_path):
    fake_server.script({"text": "word " * 100, "n_chunks": 100, "delay_s": 0.02})

    async def go():
        async with session_on(fake_server, tmp_path) as (session, _changes):
            request = session.send("Talk")
            reader = HistoryStore(tmp_path / "history.db")
            try:
                def partial():
                    saved = reader.load(session.conversation.id).messages
                    # (loaded while its writer still writes, an incomplete answer reads as interrupted)
                    return len(saved) == 2 and saved[-1].stop_reason == INTERRUPTED and saved[-1].content
                await async_wait_until(partial, 30, "a partial answer in the store")
            finally:
                reader.close()
            await session.wait()
            assert request.message.status == "done"

    asyncio.run(go())


def test_session_without_a_store_answers_and_saves_nothing(fake_server, tmp_path):
    fake_server.script({"text": "Fine."})

    async def go():
        async with session_on(fake_server, tmp_path, store=False) as (session, changes):
            session.send("Hi")
            assert (await session.wait()).content == "Fine."
            assert not any(c.kind is ChangeKind.SAVED for c in changes)

    asyncio.run(go())


def test_session_a_failed_request_is_kept_failed_and_the_session_goes_on(fake_server, tmp_path):
    fake_server.script({"status": 500}, {"text": "Better."})

    async def go():
        async with session_on(fake_server, tmp_path) as (session, _changes):
            session.send("Hi")
            failed = await session.wait()
            assert failed.status == "failed" and failed.error.startswith("Scripted error (HTTP 500")
            session.send("Again")
            assert (await session.wait()).content == "Better."
            # the failed exchange is left out of the next request's history
            assert [m["content"] for m in fake_server.requests()[-1]["body"]["messages"]] == ["Again"]

    asyncio.run(go())


def test_session_continue_text_streams_a_base_models_continuation(fake_server, tmp_path):
    fake_server.script({"text": " upon a time", "n_chunks": 3})

    async def go():
        async with session_on(fake_server, tmp_path, base=True) as (session, changes):
            session.set_model("base")
            session.continue_text("Once")
            message = await session.wait()
            assert message.content == " upon a time" and message.status == "done"
            assert session.conversation.nodes == {}  # a continuation is not a chat turn
            streamed = "".join(c.event.text for c in changes if c.kind is ChangeKind.STREAMED and c.what == "text")
            assert streamed == " upon a time"
            assert fake_server.requests()[-1]["path"].endswith("/completions")

    asyncio.run(go())


def test_session_tool_run_records_cards_steps_and_approval(fake_server, tmp_path):
    fake_server.script({"tool_calls": [WRITE]}, {"text": "Written."})
    asker = Asker(ApprovalDecision.ALWAYS)

    async def go():
        async with session_on(fake_server, tmp_path, kind="tools", ask_approval=asker) as (session, changes):
            session.tool_options.tools = ["write_file"]
            session.send("Write a.txt")
            answer = await session.wait()
            assert asker.asked == ["write_file"] and (tmp_path / "a.txt").read_text() == "hi"
            card = answer.tool_cards[0]
            assert (card.name, card.ok, card.iteration) == ("write_file", True, 1)
            assert [s.iteration for s in answer.steps] == [1, 2] and answer.content == "Written."
            assert answer.params["tools"] == ["write_file"]
            waiting = [c for c in changes if c.kind is ChangeKind.WAITING]
            assert waiting and "write_file" in waiting[0].text
            assert "write_file" in session.conversation.always_allowed

    asyncio.run(go())


@pytest.mark.parametrize("decision, card_error, text", [
    (ApprovalDecision.DENY, "the user denied", "Not written."),
    (ApprovalDecision.DENY_AND_STOP, "the user denied", ""),
])
def test_session_denied_calls_are_recorded(fake_server, tmp_path, decision, card_error, text):
    fake_server.script({"tool_calls": [WRITE]}, {"text": "Not written."})

    async def go():
        async with session_on(fake_server, tmp_path, kind="tools", ask_approval=Asker(decision)) as (session, _):
            session.tool_options.tools = ["write_file"]
            session.send("Write a.txt")
            answer = await session.wait()
            assert card_error in (answer.tool_cards[0].error or "") and answer.content == text
            assert not (tmp_path / "a.txt").exists()

    asyncio.run(go())


def test_session_without_an_asker_denies_calls_that_need_approval(fake_server, tmp_path):
    fake_server.script({"tool_calls": [WRITE]}, {"text": "Could not."})

    async def go():
        async with session_on(fake_server, tmp_path, kind="tools") as (session, _changes):
            session.tool_options.tools = ["write_file"]
            session.send("Write a.txt")
            answer = await session.wait()
            assert answer.tool_cards[0].ok is False and not (tmp_path / "a.txt").exists()

    asyncio.run(go())


def test_session_an_approval_answered_after_stop_runs_nothing(fake_server, tmp_path):
    """Stale: the user stopped the answer while its approval question was open; the late "yes" is ignored."""
    fake_server.script({"tool_calls": [WRITE]}, {"text": "Written."})
    asked = asyncio.Event()
    answer_now: asyncio.Future[ApprovalDecision] | None = None

    async def ask(call: ToolCall, tool: Tool) -> ApprovalDecision:
        nonlocal answer_now
        answer_now = asyncio.get_running_loop().create_future()
        asked.set()
        return await answer_now

    async def go():
        async with session_on(fake_server, tmp_path, kind="tools", ask_approval=ask) as (session, _changes):
            session.tool_options.tools = ["write_file"]
            request = session.send("Write a.txt")
            await asyncio.wait_for(asked.wait(), 30)
            session.stop()
            if not answer_now.done():  # (the stop cancelled the question too, as a dialog's would close)
                answer_now.set_result(ApprovalDecision.ONCE)
            await asyncio.sleep(0.1)
            assert request.message.status == "stopped" and not (tmp_path / "a.txt").exists()

    asyncio.run(go())


@pytest.mark.parametrize("action, edit, expect_output, expect_requests", [
    ("edit_result", "50", "50", 1),  # the edited result goes to the model; nothing runs again
    ("edit_arguments", {"expression": "7*7"}, "49", 1),  # the call runs again with the new arguments
    ("rerun_step", None, "42", 2),  # the step is asked for again
])
def test_session_replay_makes_a_new_version(fake_server, tmp_path, action, edit, expect_output, expect_requests):
    fake_server.script({"tool_calls": [CALC]}, {"text": "It is 42."})

    async def go():
        async with session_on(fake_server, tmp_path, kind="tools") as (session, _changes):
            session.tool_options.tools = ["calculator"]
            session.send("What is 6*7?")
            old = await session.wait()
            before = len(fake_server.requests())
            fake_server.script(*([{"tool_calls": [CALC]}] if action == "rerun_step" else []), {"text": "Done."})
            session.replay(old.id, 0, action, edit)
            new = await session.wait()
            assert new.id != old.id and old.content == "It is 42." and new.content == "Done."
            assert new.tool_cards[0].output == expect_output and new.status == "done"
            assert len(fake_server.requests()) - before == expect_requests
            assert [m.id for m in session.conversation.siblings(new)] == [old.id, new.id]
            assert [s.iteration for s in new.steps] == [1, 2]

    asyncio.run(go())


def test_session_replay_refuses_bad_edits(fake_server, tmp_path):
    fake_server.script({"tool_calls": [CALC]}, {"text": "It is 42."})

    async def go():
        async with session_on(fake_server, tmp_path, kind="tools") as (session, _changes):
            session.tool_options.tools = ["calculator"]
            session.send("What is 6*7?")
            old = await session.wait()
            for args, match in [((old.id, 5, "rerun_step"), "no tool call number 6"),
                                ((old.id, 0, "explode"), "unknown replay action"),
                                ((old.id, 0, "edit_arguments", "[1]"), "JSON object"),
                                (("nope", 0, "rerun_step"), "is not an answer")]:
                with pytest.raises(SessionError, match=match):
                    session.replay(*args)
            assert len(session.conversation.nodes) == 2

    asyncio.run(go())


def test_session_a_front_end_failing_on_finished_still_hears_it_is_idle(fake_server, tmp_path):
    """Regression (#20 review): a view that raised while drawing the finished answer never got BUSY, so the
    window kept Send disabled and a "finish, then switch" waited for ever."""
    fake_server.script({"text": "Fine."})
    seen: list[ChangeKind] = []

    def view(change: SessionChange) -> None:
        seen.append(change.kind)
        if change.kind is ChangeKind.FINISHED:
            raise RuntimeError("a drawing bug")

    async def go():
        async with session_on(fake_server, tmp_path) as (session, _changes):
            session.on_change = view
            session.send("Hi")
            await session.wait()
            assert seen[-2:] == [ChangeKind.FINISHED, ChangeKind.BUSY] and not session.busy

    asyncio.run(go())


def test_session_replay_of_a_denied_edited_call_does_not_say_it_waits(fake_server, tmp_path):
    """Regression (#20 review): an edited call that the user then denied kept "waiting for your approval…" as
    its saved output."""
    fake_server.script({"tool_calls": [WRITE]}, {"text": "Written."}, {"text": "Not written."})
    asker = Asker(ApprovalDecision.ONCE, ApprovalDecision.DENY)

    async def go():
        async with session_on(fake_server, tmp_path, kind="tools", ask_approval=asker) as (session, _changes):
            session.tool_options.tools = ["write_file"]
            session.send("Write a.txt")
            old = await session.wait()
            session.replay(old.id, 0, "edit_arguments", {"path": "b.txt", "content": "no"})
            new = await session.wait()
            card = new.tool_cards[0]
            assert (card.ok, card.output) == (False, "") and "denied" in card.error
            assert not (tmp_path / "b.txt").exists() and new.content == "Not written."

    asyncio.run(go())


def notices(message):
    return [part for part in message.parts if isinstance(part, Notice)]


def test_session_a_tool_call_in_a_plain_chat_says_what_the_model_tried(fake_server, tmp_path):
    """Regression (#22): a tool call in the plain chat was an empty answer ("finish: tool_calls"). The answer
    says what the model tried to call and where tools run; the exchange stays out of the next request's history
    (no text to send back: a notice is not the model's words), which stays well formed."""
    fake_server.script({"tool_calls": [CALC]}, {"text": "Hello."})

    async def go():
        async with session_on(fake_server, tmp_path) as (session, _changes):
            session.send("What is 6*7?")
            answer = await session.wait()
            assert answer.status == "done" and answer.metrics.finish_reason == "tool_calls"
            (notice,) = notices(answer)
            assert notice.kind == "tool_call_in_chat"
            assert notice.message.startswith('The model tried to call calculator({"expression": "6*7"})')
            assert "Tool chat" in notice.message
            saved = session.saver.store.load(session.conversation.id)
            assert notices(saved.messages[-1]) == [notice]
            session.send("Hi")
            await session.wait()
            assert fake_server.requests()[-1]["body"]["messages"] == [{"role": "user", "content": "Hi"}]

    asyncio.run(go())


def test_session_time_to_first_token_leaves_out_the_approval_question(fake_server, tmp_path):
    """#22: the seconds a user spent in the approval dialog counted as the model's time to first token."""
    fake_server.script({"tool_calls": [WRITE]}, {"text": "Written."})
    think_s = 0.5

    async def slow_yes(call: ToolCall, tool: Tool) -> ApprovalDecision:
        await asyncio.sleep(think_s)
        return ApprovalDecision.ONCE

    async def go():
        async with session_on(fake_server, tmp_path, kind="tools", ask_approval=slow_yes) as (session, _changes):
            session.tool_options.tools = ["write_file"]
            started = time.perf_counter()
            session.send("Write a.txt")
            answer = await session.wait()
            wall_ms = (time.perf_counter() - started) * 1000
            metrics = answer.metrics
            assert answer.content == "Written." and metrics.time_to_first_token_ms is not None
            # What was excluded, not how fast: at least the user's thinking time is missing from both figures.
            assert metrics.time_to_first_token_ms <= wall_ms - think_s * 1000
            assert metrics.duration_ms <= wall_ms - think_s * 1000

    asyncio.run(go())


def test_session_says_what_an_answer_waits_for(fake_server, tmp_path):
    """#22: an answer that has not begun says whether it waits for the user's approval or for the prompt to be
    read (a launchable model's start is the third case, shown by the window's tests)."""
    fake_server.script({"tool_calls": [WRITE]}, {"text": "Written."})
    phases: list[str] = []

    async def go():
        async with session_on(fake_server, tmp_path, kind="tools") as (session, _changes):
            async def ask(call: ToolCall, tool: Tool) -> ApprovalDecision:
                phases.append(session.waiting_for(request.message))
                return ApprovalDecision.ONCE

            session.ask_approval = ask
            session.tool_options.tools = ["write_file"]
            request = session.send("Write a.txt")
            phases.append(session.waiting_for(request.message))
            await session.wait()
            phases.append(session.waiting_for(request.message))

    asyncio.run(go())
    assert phases == ["prompt", "approval", "prompt"]


def test_session_deny_and_stop_on_an_edited_call_asks_the_model_nothing_more(fake_server, tmp_path):
    """Regression (#22 review): "Deny and stop" on a replayed (edited) call was taken as a plain deny, and the model
    was asked again; the run now ends there, as in the loop."""
    fake_server.script({"tool_calls": [WRITE]}, {"text": "Written."})
    asker = Asker(ApprovalDecision.ONCE, ApprovalDecision.DENY_AND_STOP)

    async def go():
        async with session_on(fake_server, tmp_path, kind="tools", ask_approval=asker) as (session, _changes):
            session.tool_options.tools = ["write_file"]
            session.send("Write a.txt")
            old = await session.wait()
            before = len(fake_server.requests())
            session.replay(old.id, 0, "edit_arguments", {"path": "b.txt", "content": "no"})
            new = await session.wait()
            assert len(fake_server.requests()) == before  # the model was not asked again
            assert new.status == "done" and new.metrics.finish_reason == "denied"
            assert new.tool_cards[0].ok is False and [n.kind for n in notices(new)] == ["denied"]
            assert not (tmp_path / "b.txt").exists()

    asyncio.run(go())


def test_session_an_answered_approval_question_leaves_the_card(fake_server, tmp_path):
    """#22 review: after "Allow once" the card kept saying it waited for approval while the call ran."""
    fake_server.script({"tool_calls": [WRITE]}, {"text": "Written."})
    seen: list[str] = []

    async def go():
        async with session_on(fake_server, tmp_path, kind="tools") as (session, changes):
            async def ask(call: ToolCall, tool: Tool) -> ApprovalDecision:
                return ApprovalDecision.ONCE

            session.ask_approval = ask
            session.tool_options.tools = ["write_file"]
            request = session.send("Write a.txt")

            def watch(change: SessionChange) -> None:
                changes.append(change)
                if change.kind is ChangeKind.NOTE and change.text == "":
                    seen.append(request.message.tool_cards[0].output)

            session.on_change = watch
            await session.wait()

    asyncio.run(go())
    assert seen == [""]
