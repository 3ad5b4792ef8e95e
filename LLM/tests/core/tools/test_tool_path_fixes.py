"""Regression tests for five bugs of the tool path, each reproduced first:

1. a call drafted inside reasoning was run when the prompt itself opened ``<think>``;
2. auto mode took any 4xx (a context overflow too) as "tools unsupported" for the rest of the process;
3. a 404 from an attached server (unknown model name) switched the client to llama.cpp's /completion for good;
4. ``search_files(regex=True)`` ran the model's pattern with ``re`` and froze the event loop;
5. one huge tool result went back whole and could push the user's question out of the context.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from LLM.core.errors import BackendStatusError
from LLM.core.events import ReasoningDelta, TextDelta, ToolCall
from LLM.core.inference import ToolEnabledInferenceConfig, stream_tool_inference
from LLM.core.protocol.client import ChatClient
from LLM.core.runtime import Runtime
from LLM.core.tools import ToolRegistry, tool
from LLM.core.tools.builtin import build_default_registry, make_builtin_tools
from LLM.core.tools.loop import LoopFinished, LoopNotice, ToolResultEvent
from LLM.core.tools.parsing import ToolCallStreamParser, TurnParser, parse_tool_calls
from LLM.tests.conftest import openai_config
from LLM.tests.fakes.handle import FakeServerHandle, async_wait_until, wait_until

CALL_TEXT = '<tool_call>\n{"name": "calculator", "arguments": {"expression": "6*7"}}\n</tool_call>'
QUESTION = "Please use the tools to answer my question."


@tool
def dump(size: int) -> str:
    """Return a long text.

    Args:
        size: How many characters.
    """
    return "".join(f"line {i:06d}\n" for i in range(size // 12 + 1))[:size]


def make_runtime(server: FakeServerHandle, tmp_path: Path, mode: str, **config: Any) -> Runtime:
    registry = build_default_registry(tmp_path)
    registry.register(dump)
    return Runtime(openai_config(server.url, tools=mode, **config), tools=registry, workspace=tmp_path)


def run_loop(server: FakeServerHandle, tmp_path: Path, mode: str, config: dict | None = None, **cfg: Any):
    async def go():
        runtime = make_runtime(server, tmp_path, mode, **(config or {}))
        events = []
        try:
            request = ToolEnabledInferenceConfig(prompt=QUESTION, model_id="fake", enable_tools=True, **cfg)
            async for event in stream_tool_inference(request, runtime):
                events.append(event)
            return events, runtime
        finally:
            await runtime.aclose()

    events, runtime = asyncio.run(go())
    assert isinstance(events[-1], LoopFinished)
    return events[-1].result, events, runtime


def bodies(server: FakeServerHandle) -> list[dict]:
    return [r["body"] for r in server.requests()]


def served(*extra: str):
    server = FakeServerHandle(None, *extra).wait_ready()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def thinking_server():
    """A llama-server-like fake whose chat template ends the generation prompt with ``<think>\\n`` (QwQ)."""
    yield from served("--props", "tools", "--generation-prompt", "<think>\n")


@pytest.fixture
def plain_llama_server():
    """A llama-server-like fake whose template does not open reasoning."""
    yield from served("--props", "tools", "--generation-prompt", "")


# ================================================================ 1. calls drafted inside reasoning

DRAFT_THEN_ANSWER = f"Let me think. Maybe {CALL_TEXT} but no, I know it.</think>The answer is 42."


@pytest.mark.parametrize("mode", ["fallback", "auto"])
def test_tool_loop_call_drafted_in_reasoning_is_not_run_when_the_prompt_opens_think(thinking_server, tmp_path, mode):
    """Bug 1: QwQ-style templates end the prompt with <think>; raw text then starts inside reasoning."""
    thinking_server.script({"text": DRAFT_THEN_ANSWER, "n_chunks": 9})
    result, events, _ = run_loop(thinking_server, tmp_path, mode, tools=["calculator"])
    assert [step.calls for step in result.steps] == [[]]
    assert len(bodies(thinking_server)) == 1
    assert result.final_text == "The answer is 42."
    assert "Maybe" in result.steps[0].reasoning and "Let me think" not in result.final_text


def test_tool_loop_text_before_a_lone_close_is_reasoning_without_knowing_the_prompt(fake_server, tmp_path):
    """Bug 1, second half: no /apply-template to ask, yet a lone </think> still makes the text before it reasoning."""
    fake_server.script({"text": DRAFT_THEN_ANSWER, "n_chunks": 7})
    result, _, _ = run_loop(fake_server, tmp_path, "fallback", tools=["calculator"])
    assert result.steps[0].calls == [] and len(bodies(fake_server)) == 1
    assert result.final_text == "The answer is 42."


def test_tool_loop_text_before_a_lone_close_is_reasoning_when_the_prompt_does_not_open_it(plain_llama_server,
                                                                                           tmp_path):
    plain_llama_server.script({"text": DRAFT_THEN_ANSWER, "n_chunks": 5})
    result, _, _ = run_loop(plain_llama_server, tmp_path, "fallback", tools=["calculator"])
    assert result.steps[0].calls == [] and len(bodies(plain_llama_server)) == 1
    assert result.final_text.endswith("The answer is 42.")


def test_tool_loop_server_split_reasoning_then_a_real_call_runs(thinking_server, tmp_path):
    """llama-server itself moves the reasoning to reasoning_content (its default): the content is the answer."""
    thinking_server.script({"reasoning": "I should compute it.", "text": CALL_TEXT}, {"text": "It is 42."})
    result, _, _ = run_loop(thinking_server, tmp_path, "fallback", tools=["calculator"])
    assert [call.name for call, _ in result.steps[0].calls] == ["calculator"]
    assert result.steps[0].results[0].output == "42" and result.final_text == "It is 42."


def test_tool_loop_server_consumed_an_empty_reasoning_then_a_real_call_runs(thinking_server, tmp_path):
    """The prompt opened <think>, the model closed it at once and the server took the tag away: no reasoning
    arrives, and the content (with its call) is still the answer, not reasoning."""
    thinking_server.script({"text": "Computing. " + CALL_TEXT}, {"text": "It is 42."})
    result, _, _ = run_loop(thinking_server, tmp_path, "fallback", tools=["calculator"])
    assert [call.name for call, _ in result.steps[0].calls] == ["calculator"]
    assert result.final_text == "It is 42."


def test_tool_loop_thinking_cut_off_by_max_tokens_runs_no_call(thinking_server, tmp_path):
    """Raw output that ends inside the reasoning the prompt opened (finish_reason length): all of it is reasoning."""
    thinking_server.script({"text": f"Let me try {CALL_TEXT} and then", "finish_reason": "length"})
    result, _, _ = run_loop(thinking_server, tmp_path, "fallback", tools=["calculator"])
    assert result.steps[0].calls == [] and result.final_text == ""
    assert "Let me try" in result.steps[0].reasoning


def turn(text: str, opens: bool | None, reasoning_first: bool = False, truncated: bool = False, step: int = 1):
    """Feed ``text`` to a TurnParser ``step`` characters at a time; (result, every event)."""
    parser = TurnParser(None, opens)
    if reasoning_first:
        parser.reasoning_arrived()
    events = [e for i in range(0, len(text), step) for e in parser.feed(text[i : i + step])]
    result = parser.finish(truncated=truncated)
    return result, events + parser.final_events


DRAFT = f"Let me think. Maybe {CALL_TEXT} but no."
TURN_CASES = [
    # (text, prompt opens <think>, reasoning arrived apart first, truncated) -> (calls, content, reasoning has)
    pytest.param(f"{DRAFT}</think>The answer is 42.", True, False, False, [], "The answer is 42.", "Maybe",
                 id="prompt-opens-think-draft-is-reasoning"),
    pytest.param(f"{DRAFT}</think>The answer is 42.", None, False, False, [], "The answer is 42.", "Maybe",
                 id="unknown-prompt-lone-close-makes-draft-reasoning"),
    pytest.param(f"{DRAFT}</think>The answer is 42.", False, False, False, [],
                 "Let me think. Maybe  but no.The answer is 42.", "<tool_call>",
                 id="prompt-without-think-lone-close-still-voids-the-call"),
    pytest.param(f"{DRAFT}</think>{CALL_TEXT}", True, False, False, ["calculator"], "", "Maybe",
                 id="call-after-the-reasoning-runs"),
    pytest.param(f"Computing. {CALL_TEXT}", True, True, False, ["calculator"], "Computing.", "",
                 id="server-sent-reasoning-apart-content-is-the-answer"),
    pytest.param(f"Computing. {CALL_TEXT}", True, False, False, ["calculator"], "Computing.", "",
                 id="server-took-an-empty-reasoning-away"),
    pytest.param(f"Let me try {CALL_TEXT} and then", True, False, True, [], "", "Let me try",
                 id="cut-off-inside-the-opened-reasoning"),
    pytest.param(f"Computing. {CALL_TEXT}", False, False, False, ["calculator"], "Computing.", "",
                 id="no-think-anywhere-call-runs"),
    pytest.param(f"Computing. {CALL_TEXT}", None, False, False, ["calculator"], "Computing.", "",
                 id="unknown-prompt-no-think-call-runs"),
    pytest.param(f"<think>{DRAFT}</think>Done.", False, False, False, [], "Done.", "Maybe",
                 id="explicit-think-block-is-reasoning"),
]


@pytest.mark.parametrize("text, opens, reasoning_first, truncated, calls, content, reasoning", TURN_CASES)
@pytest.mark.parametrize("step", [1, 7, 10_000], ids=["by-char", "by-7", "whole"])
def test_turn_parser_reasoning_and_calls(text, opens, reasoning_first, truncated, calls, content, reasoning, step):
    result, events = turn(text, opens, reasoning_first, truncated, step)
    assert [c.name for c in result.calls] == calls
    assert result.content == content
    assert reasoning in result.reasoning
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == result.content
    assert [e for e in events if isinstance(e, ToolCall)] == result.calls


def test_turn_parser_streams_content_at_once_when_the_prompt_does_not_open_reasoning():
    """Known prompt: content is not held back until a think tag or the end (only calls wait)."""
    parser = TurnParser(None, False)
    assert parser.feed("Hello there. ") == [TextDelta("Hello there.")]
    held = TurnParser(None, None)
    assert held.feed("Hello there. ") == []  # unknown prompt: the policy's wait for a lone </think>


def test_turn_parser_streams_reasoning_at_once_when_the_prompt_opens_it():
    parser = TurnParser(None, True)
    assert parser.feed("planning") == [ReasoningDelta("planning")]


LONE_CLOSE_CASES = [
    # stream_content: content goes out at once; a call before a lone </think> is still never a call
    pytest.param(f"a {CALL_TEXT} b</think>c", [], "a  bc", id="call-before-lone-close-is-void"),
    pytest.param(f"a</think>b {CALL_TEXT}", ["calculator"], "ab", id="call-after-lone-close-runs"),
    pytest.param(f"a {CALL_TEXT}<think>x</think>b", ["calculator"], "a b", id="think-block-settles-earlier-call"),
    pytest.param(f"a {CALL_TEXT}", ["calculator"], "a", id="no-tag-call-runs-at-the-end"),
    pytest.param('a <tool_call>{"name": ""}</tool_call></think>b', [], 'a <tool_call>{"name": ""}</tool_call>b',
                 id="invalid-block-before-lone-close-stays-text-without-error"),
]


@pytest.mark.parametrize("text, calls, content", LONE_CLOSE_CASES)
def test_stream_parser_stream_content_mode(text, calls, content):
    whole = parse_tool_calls(text, start_in_reasoning=None)
    parser = ToolCallStreamParser(None, None, stream_content=True)
    events = [e for ch in text for e in parser.feed(ch)]
    result = parser.finish()
    events += parser.final_events
    assert [c.name for c in result.calls] == calls and result.content == content
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == result.content
    assert "".join(e.text for e in events if isinstance(e, ReasoningDelta)) == result.reasoning
    assert [c.name for c in result.calls] == [c.name for c in whole.calls]  # the same calls as the policy's parse
    assert result.errors == []


FRAGMENTS = ["<tool_call>", "</tool_call>", "<think>", "</think>", "```json\n", "```", "\n", " ", "<", ">",
             '{"name": "f", "arguments": {"a": 1}}', '{"name": ""}', "<function=f>", "</function>", "hello", "<tool_ca",
             "</thi"]
TEXTS = st.lists(st.sampled_from(FRAGMENTS) | st.text(max_size=3), max_size=30).map("".join)


@settings(max_examples=300, deadline=None)
@given(text=TEXTS, data=st.data())
def test_stream_parser_stream_content_mode_any_chunking_equals_whole(text: str, data: st.DataObject):
    """The stream_content mode keeps the parser's contract: any chunking gives the whole-text result, and the
    deltas join to exactly the result's content and reasoning."""
    def run(chunks: list[str]):
        parser = ToolCallStreamParser(None, None, stream_content=True)
        events = [e for chunk in chunks for e in parser.feed(chunk)]
        return parser.finish(), events + parser.final_events

    whole, _ = run([text])
    cuts = sorted(data.draw(st.sets(st.integers(0, len(text)), max_size=10)) | {0, len(text)})
    for chunks in ([text[a:b] for a, b in zip(cuts, cuts[1:]) if b > a], list(text)):
        result, events = run(chunks)
        assert (result.content, result.reasoning, [(c.name, c.arguments) for c in result.calls], result.errors) == (
            whole.content, whole.reasoning, [(c.name, c.arguments) for c in whole.calls], whole.errors)
        assert "".join(e.text for e in events if isinstance(e, TextDelta)) == result.content
        assert "".join(e.text for e in events if isinstance(e, ReasoningDelta)) == result.reasoning
        assert [e for e in events if isinstance(e, ToolCall)] == result.calls
    # Only where content goes differs from the policy's own (held) parse: the calls are the same.
    policy = parse_tool_calls(text, start_in_reasoning=None)
    assert [(c.name, c.arguments) for c in whole.calls] == [(c.name, c.arguments) for c in policy.calls]


# ================================================================ 2. auto mode and 4xx answers

LLAMA_CONTEXT_ERROR = {"error": {"code": 400, "message": "request (3112 tokens) exceeds the available context size "
                                 "(2048 tokens), try increasing it", "type": "exceed_context_size_error",
                                 "n_prompt_tokens": 3112, "n_ctx": 2048}}
VLLM_CONTEXT_ERROR = {"object": "error", "message": "This model's maximum context length is 2048 tokens. However, you "
                      "requested 3112 tokens (3000 in the messages, 112 in the completion). Please reduce the length "
                      "of the messages or completion.", "type": "BadRequestError", "param": None, "code": 400}


@pytest.mark.parametrize("body", [LLAMA_CONTEXT_ERROR, VLLM_CONTEXT_ERROR], ids=["llama-server", "vllm"])
def test_tool_loop_auto_mode_context_overflow_is_a_typed_error_not_a_fallback(fake_server, tmp_path, body):
    """Bug 2: a context-overflow 400 switched the model to the text fallback, whose longer prompt overflowed too."""
    from LLM.core.errors import ContextOverflowError

    fake_server.script({"status": 400, "body": body}, {"text": "must not be asked"})
    with pytest.raises(ContextOverflowError) as info:
        run_loop(fake_server, tmp_path, "auto", tools=["calculator"])
    assert len(bodies(fake_server)) == 1
    message = str(info.value)
    assert "context" in message and fake_server.url in message
    assert info.value.status_code == 400


def test_tool_loop_auto_mode_does_not_learn_fallback_when_the_request_fails_without_tools_too(fake_server,
                                                                                               tmp_path):
    """Bug 2: the switch is remembered for the process only when the same request without `tools` succeeds."""
    bad = {"status": 400, "body": {"error": {"message": "unsupported value for 'top_k'"}}}

    async def go():
        runtime = make_runtime(fake_server, tmp_path, "auto")
        try:
            request = ToolEnabledInferenceConfig(prompt=QUESTION, model_id="fake", enable_tools=True,
                                                 tools=["calculator"])
            with pytest.raises(BackendStatusError, match="top_k") as info:
                async for _ in stream_tool_inference(request, runtime):
                    pass
            return runtime.learned_tool_modes, info.value
        finally:
            await runtime.aclose()

    fake_server.script(bad, bad)
    learned, error = asyncio.run(go())
    assert learned == {}
    assert error.status_code == 400
    sent = bodies(fake_server)
    assert len(sent) == 2 and "tools" in sent[0] and "tools" not in sent[1]


def test_tool_loop_auto_mode_learns_fallback_only_after_the_request_without_tools_succeeded(fake_server, tmp_path):
    fake_server.script({"reject_tools_status": 422}, {"text": "plain answer"})
    result, events, runtime = run_loop(fake_server, tmp_path, "auto", tools=["calculator"])
    assert runtime.learned_tool_modes == {"fake": "fallback"} and result.final_text == "plain answer"
    kinds = [e.kind for e in events if isinstance(e, LoopNotice)]
    assert kinds.index("fallback") > 0  # announced after the retry answered, not before


# ================================================================ 3. 404 from an attached server

OLLAMA_404 = {"error": {"message": 'model "llama3:8b" not found, try pulling it first', "type": "api_error"}}


def client_run(url: str, model: str, stream: bool = True, tools: list | None = None):
    async def go():
        client = ChatClient(url, model)
        try:
            return [e async for e in client.chat([{"role": "user", "content": "hi"}], {}, tools, stream=stream)]
        finally:
            await client.aclose()

    return asyncio.run(go())


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "non-stream"])
def test_client_404_for_an_unknown_model_names_the_models_the_server_has(fake_server, stream):
    """Bug 3: Ollama, vLLM and LM Studio answer 404 for an unknown model; that is no reason to try /completion."""
    from LLM.core.errors import ModelNotServedError

    fake_server.script({"status": 404, "body": OLLAMA_404}, {"text": "must not be asked"})
    with pytest.raises(ModelNotServedError) as info:
        client_run(fake_server.url, "llama3:8b", stream=stream)
    assert str(info.value).startswith("model 'llama3:8b' not found on the server at ")
    assert "it has: fake-model" in str(info.value)
    assert info.value.available == ["fake-model"] and info.value.status_code == 404
    assert [r["path"] for r in fake_server.requests()] == ["/v1/chat/completions"]


@pytest.mark.parametrize("body", [LLAMA_CONTEXT_ERROR, VLLM_CONTEXT_ERROR], ids=["llama-server", "vllm"])
@pytest.mark.parametrize("stream", [True, False], ids=["stream", "non-stream"])
def test_client_context_overflow_is_typed(fake_server, body, stream):
    from LLM.core.errors import ContextOverflowError

    fake_server.script({"status": 400, "body": body})
    with pytest.raises(ContextOverflowError, match="does not fit the model's context") as info:
        client_run(fake_server.url, "fake-model", stream=stream)
    if body is LLAMA_CONTEXT_ERROR:
        assert (info.value.prompt_tokens, info.value.context_size) == (3112, 2048)
        assert "3112 tokens for a context of 2048" in str(info.value)


def test_client_other_400_stays_a_plain_status_error(fake_server):
    from LLM.core.errors import ContextOverflowError

    fake_server.script({"status": 400, "body": {"error": {"message": "unsupported value for 'top_k'"}}})
    with pytest.raises(BackendStatusError) as info:
        client_run(fake_server.url, "fake-model")
    assert not isinstance(info.value, ContextOverflowError)


def test_client_404_with_the_model_listed_tries_completion_once_and_says_neither_route_exists(fake_server):
    """The model is listed but the chat route 404s: /completion gets one try; it 404s too, which is said
    plainly, and the client does not switch to it."""
    fake_server.script({"status": 404}, {"status": 404})
    with pytest.raises(BackendStatusError, match="neither an OpenAI chat route nor llama.cpp's native one"):
        client_run(fake_server.url, "fake-model")
    assert [r["path"] for r in fake_server.requests()] == ["/v1/chat/completions", "/completion"]


def test_client_404_for_an_unknown_model_with_tools_is_typed_too(fake_server):
    from LLM.core.errors import ModelNotServedError

    fake_server.script({"status": 404, "body": OLLAMA_404})
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}}]
    with pytest.raises(ModelNotServedError, match="it has: fake-model"):
        client_run(fake_server.url, "llama3:8b", tools=tools)


@pytest.fixture
def llama_server_without_chat():
    yield from served("--props", "no-tools")


def test_client_404_from_a_llama_cpp_server_uses_its_native_completion(llama_server_without_chat):
    """A server that answers /props is llama.cpp: its /completion is the right fallback (and stays in use)."""
    llama_server_without_chat.script({"status": 404, "body": {"error": {"message": "no chat route"}}},
                                     {"text": "native answer"}, {"text": "again"})

    async def go():
        client = ChatClient(llama_server_without_chat.url, "some-name-it-ignores")
        try:
            first = [e async for e in client.chat([{"role": "user", "content": "hi"}])]
            second = [e async for e in client.chat([{"role": "user", "content": "hi"}])]
            return first, second
        finally:
            await client.aclose()

    first, second = asyncio.run(go())
    assert "".join(getattr(e, "text", "") for e in first) == "native answer"
    assert [r["path"] for r in llama_server_without_chat.requests()] == [
        "/v1/chat/completions", "/completion", "/completion"]


def test_client_404_file_not_found_body_is_llama_cpp(fake_server):
    """llama-server answers an unknown route with {"error": {"message": "File Not Found", ...}} (measured)."""
    body = {"error": {"message": "File Not Found", "type": "not_found_error", "code": 404}}
    fake_server.script({"status": 404, "body": body}, {"text": "native answer"})
    events = client_run(fake_server.url, "not-in-the-list")
    assert "".join(getattr(e, "text", "") for e in events) == "native answer"
    assert [r["path"] for r in fake_server.requests()] == ["/v1/chat/completions", "/completion"]


# ================================================================ 4. regex search must not stall the loop

CATASTROPHIC = r"(a+)+$"


def catastrophic_workspace(tmp_path: Path, lines: int = 3, width: int = 24) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "lines.txt").write_text(("a" * width + "b\n") * lines)
    return ws


def test_search_files_catastrophic_regex_keeps_the_event_loop_responsive(tmp_path):
    """Bug 4: `re` never releases the GIL, so `(a+)+$` on a 31-character line froze the loop for 71 s.

    Here a 25-character line (seconds of backtracking per line) and a short deadline: the call must come back
    with a clear error while other coroutines keep running: a loop frozen for the search would tick once or
    twice in all, a free one ticks every few milliseconds of the deadline (its speed is the bench's business).
    """
    ws = catastrophic_workspace(tmp_path, lines=2, width=25)
    registry = ToolRegistry(make_builtin_tools(ws, search_deadline_s=1.0))

    async def go():
        gaps: list[float] = []
        done = asyncio.Event()

        async def ticker():
            last = time.perf_counter()
            while not done.is_set():
                await asyncio.sleep(0.005)
                now = time.perf_counter()
                gaps.append(now - last)
                last = now

        task = asyncio.ensure_future(ticker())
        try:
            result = await registry.execute("search_files", {"pattern": CATASTROPHIC, "regex": True})
        finally:
            done.set()
            await task
        return result, len(gaps)

    result, ticks = asyncio.run(go())
    assert not result.ok and "took too long" in (result.error or "")
    assert "(a+)+$" in result.error
    assert ticks >= 10


needs_proc = pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="child processes are read from /proc")


@needs_proc
def test_search_files_catastrophic_regex_child_is_killed(tmp_path):
    """The search runs in a child process with a deadline; on timeout the child is gone, not left running."""
    ws = catastrophic_workspace(tmp_path, lines=1, width=40)  # hours of backtracking if not killed
    registry = ToolRegistry(make_builtin_tools(ws, search_deadline_s=0.5))
    result = asyncio.run(registry.execute("search_files", {"pattern": CATASTROPHIC, "regex": True}))
    assert not result.ok and "took too long" in (result.error or "")
    assert search_children() == []


@needs_proc
def test_search_files_cancelled_kills_the_child(tmp_path):
    """Stop (or the tool's own timeout) cancels the call: the child goes at once, not at its deadline."""
    ws = catastrophic_workspace(tmp_path, lines=1, width=40)
    registry = ToolRegistry(make_builtin_tools(ws, search_deadline_s=120))

    async def go():
        task = asyncio.ensure_future(registry.execute("search_files", {"pattern": CATASTROPHIC, "regex": True}))
        await async_wait_until(lambda: search_children(), 10, "the search child to start")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(go())
    wait_until(lambda: not search_children(), 10, "the search child to be gone")


def test_search_files_regex_still_finds_and_reports_invalid_patterns(tmp_path):
    ws = tmp_path / "ws"
    (ws / "sub").mkdir(parents=True)
    (ws / "sub" / "a.py").write_text("def alpha():\n    return 1\n")
    registry = build_default_registry(ws)
    found = asyncio.run(registry.execute("search_files", {"pattern": r"^def \w+\(", "regex": True}))
    assert found.output == "sub/a.py:1: def alpha():"
    bad = asyncio.run(registry.execute("search_files", {"pattern": "a{2,1}", "regex": True}))
    assert not bad.ok and "invalid regular expression" in bad.error


def search_children() -> list[int]:
    return [pid for pid in child_pids() if "search_files" in cmdline(pid)]


def child_pids() -> list[int]:
    pids: list[int] = []
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        children = (task / "children").read_text().split()
        pids += [int(pid) for pid in children]
    return pids


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


# ================================================================ 5. huge tool results

@pytest.mark.parametrize("mode", ["native", "fallback"])
def test_tool_loop_huge_result_is_cut_for_the_model_but_kept_whole(fake_server, tmp_path, mode):
    """Bug 5: a 100k-character result went back whole; the model gets a part, saying how much was left out."""
    call = {"name": "dump", "arguments": {"size": 100_000}}
    first = {"tool_calls": [call]} if mode == "native" else {
        "text": f'<tool_call>{json.dumps(call)}</tool_call>'}
    fake_server.script(first, {"text": "done"})
    result, events, _ = run_loop(fake_server, tmp_path, mode, {"context_size": 2048}, tools=["dump"])
    whole = result.steps[0].results[0].output
    assert len(whole) == 100_000
    assert [len(e.result.output) for e in events if isinstance(e, ToolResultEvent)] == [100_000]
    second = bodies(fake_server)[1]["messages"]
    sent = second[-1]["content"]
    assert len(sent) < 2048 * 3
    assert "left out" in sent and f"{100_000:,}" in sent
    assert any(m["role"] == "user" and m["content"] == QUESTION for m in second)


def test_tool_loop_results_over_many_steps_never_push_out_the_question(fake_server, tmp_path):
    calls = [{"tool_calls": [{"name": "dump", "arguments": {"size": 50_000 + i}}]} for i in range(5)]
    fake_server.script(*calls, {"text": "done"})
    result, _, _ = run_loop(fake_server, tmp_path, "native", {"context_size": 1024}, tools=["dump"])
    assert result.final_text == "done"
    for body in bodies(fake_server):
        assert any(m["role"] == "user" and m["content"] == QUESTION for m in body["messages"]), body["messages"]
        roles = [m["role"] for m in body["messages"]]
        # every tool result still follows the assistant turn that called it
        for i, role in enumerate(roles):
            if role == "tool":
                assert roles[i - 1] in ("assistant", "tool")
        size = sum(len(json.dumps(m)) for m in body["messages"])
        assert size < 1024 * 3, size
