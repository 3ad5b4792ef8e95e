"""ChatClient over real HTTP against the fake server subprocess, plus error mapping units."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from LLM.core.protocol.client import ChatClient
from LLM.core.errors import (
    BackendConnectionError,
    BackendStatusError,
    BackendTimeoutError,
    ConfigError,
    ContextOverflowError,
    EmptyResponseError,
    ModelNotServedError,
)
from LLM.core.events import Done, ReasoningDelta, TextDelta, Usage
from LLM.tests.fakes.handle import FakeServerHandle, free_port, served
from LLM.tests.fakes.replies import LLAMA_CONTEXT_ERROR, OLLAMA_404, VLLM_CONTEXT_ERROR

HI = [{"role": "user", "content": "hi"}]


async def collect(client: ChatClient, **kwargs) -> list:
    return [e async for e in client.chat(HI, **kwargs)]


def run(coro):
    return asyncio.run(coro)


def with_client(url: str, fn, model: str = "fake-model", **client_kwargs):
    async def go():
        client = ChatClient(url, model, **client_kwargs)
        try:
            return await fn(client)
        finally:
            await client.aclose()

    return run(go())


def text_of(events: list) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


def test_client_streams_text_usage_and_done(fake_server: FakeServerHandle):
    fake_server.script({"text": "one two three", "reasoning": "thinking"})
    events = with_client(fake_server.url, collect)
    assert events[0] == ReasoningDelta("thinking")
    assert text_of(events) == "one two three"
    assert any(isinstance(e, Usage) for e in events)
    assert events[-1] == Done("stop")
    body = fake_server.requests()[-1]["body"]
    assert body["stream"] is True and body["model"] == "fake-model"


def test_client_non_stream_gives_the_same_events(fake_server: FakeServerHandle):
    fake_server.script({"text": "whole answer", "tool_calls": [{"name": "calc", "arguments": {"x": 1}}]})
    events = with_client(fake_server.url, lambda c: collect(c, stream=False))
    assert text_of(events) == "whole answer"
    assert events[-1].finish_reason == "tool_calls"
    assert events[-1].tool_calls[0].arguments == {"x": 1}


def test_client_stream_without_done_marker_still_finishes(fake_server: FakeServerHandle):
    fake_server.script({"text": "no done here", "no_done": True})
    events = with_client(fake_server.url, collect)
    assert text_of(events) == "no done here" and events[-1] == Done("stop")


def test_client_error_object_inside_stream_raises_status_error(fake_server: FakeServerHandle):
    fake_server.script({"text": "a b c d", "error_mid_stream": 2})
    with pytest.raises(BackendStatusError, match="scripted mid-stream failure") as info:
        with_client(fake_server.url, collect)
    assert info.value.status_code == 500


def test_client_http_error_status_carries_code_and_body(fake_server: FakeServerHandle):
    fake_server.script({"status": 429, "body": {"error": {"message": "slow down"}}})
    with pytest.raises(BackendStatusError) as info:
        with_client(fake_server.url, collect)
    assert info.value.status_code == 429 and "slow down" in info.value.body


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "non-stream"])
def test_client_empty_200_body_raises(fake_server: FakeServerHandle, stream: bool):
    """Regression: llama-cpp-python (chatml-function-calling + tool_choice auto) answers 200 with no body."""
    fake_server.script({"empty_body": True})
    with pytest.raises(EmptyResponseError, match="empty"):
        with_client(fake_server.url, lambda c: collect(c, stream=stream))


def test_client_falls_back_to_native_completion_on_404(fake_server: FakeServerHandle):
    fake_server.script({"status": 404}, {"text": "native answer"})
    events = with_client(fake_server.url, collect)
    assert text_of(events) == "native answer"
    paths = [r["path"] for r in fake_server.requests()]
    assert paths == ["/v1/chat/completions", "/completion"]
    assert "<|im_start|>user\nhi<|im_end|>" in fake_server.requests()[-1]["body"]["prompt"]


def test_client_sends_bearer_key(fake_server: FakeServerHandle):
    fake_server.script({"text": "ok"})
    with_client(fake_server.url, collect, api_key="sekrit")
    assert fake_server.requests()[-1]["authorization"] == "Bearer sekrit"


def test_client_connection_refused_is_typed():
    with pytest.raises(BackendConnectionError, match="cannot connect"):
        with_client(f"http://127.0.0.1:{free_port()}", collect)


def test_client_read_timeout_is_typed(fake_server: FakeServerHandle):
    fake_server.script({"text": "late", "first_delay_s": 3})
    with pytest.raises(BackendTimeoutError, match="read timeout"):
        with_client(fake_server.url, collect, read_timeout_s=0.3)


def test_client_utf8_split_across_chunks(fake_server: FakeServerHandle):
    fake_server.script({"chunks": ["caf", "é ", "😀", " ok"]})
    assert text_of(with_client(fake_server.url, collect)) == "café 😀 ok"


def test_client_cancelling_the_consumer_closes_the_stream(fake_server: FakeServerHandle):
    fake_server.script({"text": "word " * 200, "delay_s": 0.05})

    async def go(client: ChatClient):
        got = asyncio.Event()

        async def consume():
            async for event in client.chat(HI):
                if isinstance(event, TextDelta):
                    got.set()

        task = asyncio.ensure_future(consume())
        await asyncio.wait_for(got.wait(), 5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    with_client(fake_server.url, go)
    event = fake_server.wait_for_event("disconnect")
    assert event["after_chunks"] < 200


def test_client_probe_reports_each_step(fake_server: FakeServerHandle):
    report = with_client(fake_server.url, lambda c: c.probe())
    assert report.ok and [s.name for s in report.steps] == ["reachable", "model listed", "dry run"]
    bad = with_client(f"http://127.0.0.1:{free_port()}", lambda c: c.probe())
    assert not bad.ok and "cannot connect" in bad.steps[0].message


@pytest.mark.parametrize(
    "exc, expected",
    [
        pytest.param(httpx.ConnectError("refused"), BackendConnectionError, id="connect"),
        pytest.param(httpx.ConnectTimeout("slow"), BackendTimeoutError, id="connect-timeout"),
        pytest.param(httpx.ReadTimeout("slow"), BackendTimeoutError, id="read-timeout"),
        pytest.param(httpx.RemoteProtocolError("peer closed"), BackendConnectionError, id="dropped"),
        pytest.param(httpx.ReadError("reset"), BackendConnectionError, id="read-error"),
    ],
)
def test_client_httpx_errors_are_translated_and_chained(exc: Exception, expected: type):
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    with pytest.raises(expected) as info:
        with_client("http://test", collect, transport=httpx.MockTransport(handler))
    assert info.value.__cause__ is exc


def _sse_bytes(*deltas: dict, finish: str = "stop") -> bytes:
    chunks = [{"choices": [{"index": 0, "delta": d, "finish_reason": None}]} for d in deltas]
    chunks.append({"choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
    return b"".join(b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks)


LATE = json.dumps({"choices": [{"index": 0, "delta": {"content": " LATE"}, "finish_reason": None}]}).encode()


@pytest.mark.parametrize(
    "wire, text",
    [
        pytest.param([b"\xef\xbb\xbf" + _sse_bytes({"content": "first"}, {"content": " second"}) + b"data: [DONE]\n\n"],
                     "first second", id="bom-first-event-kept"),
        pytest.param([b"\xef", b"\xbb", b"\xbf" + _sse_bytes({"content": "first"}), b"data: [DONE]\n\n"],
                     "first", id="bom-split-across-chunks"),
        pytest.param([_sse_bytes({"content": "answer"}) + b"data: [DONE]\n\ndata: " + LATE + b"\n\n"],
                     "answer", id="terminated-event-after-done"),
        pytest.param([_sse_bytes({"content": "answer"}) + b"data: [DONE]\n\n", b"data: " + LATE],
                     "answer", id="unterminated-event-after-done"),
        pytest.param([_sse_bytes({"content": "answer"}) + b"data: [DONE]\n\ndata: {not json"],
                     "answer", id="unterminated-garbage-after-done"),
    ],
)
def test_client_decodes_the_wire_bytes_up_to_done(wire: list[bytes], text: str):
    """Regression (#19, SSE): a stream opening with a byte-order mark lost its first event, and an event
    after [DONE] left unterminated at the end of the body was still decoded (garbage there even failed the
    answer). Hand-made bytes on the wire, chunked as given."""

    async def body():
        for piece in wire:
            yield piece

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body())

    events = with_client("http://test", collect, transport=httpx.MockTransport(handler))
    assert text_of(events) == text and events[-1] == Done("stop")


def test_api_key_env_missing_is_a_config_error(monkeypatch: pytest.MonkeyPatch):
    from LLM.core.protocol.client import api_key_from_env

    monkeypatch.delenv("NO_SUCH_KEY_VAR", raising=False)
    with pytest.raises(ConfigError, match="NO_SUCH_KEY_VAR is not set"):
        api_key_from_env("NO_SUCH_KEY_VAR")


def test_client_resends_a_request_the_server_closed_the_connection_on():
    """llama-server closes a kept-alive connection right after a response longer than 5 s; the next request on
    it failed with "Server disconnected without sending a response" (pinned). Sent again, it succeeds; any
    other protocol error is not retried."""
    from LLM.core.protocol.client import _ResendOnStaleConnection

    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        if len(calls) == 1:
            raise httpx.RemoteProtocolError("Server disconnected without sending a response.", request=request)
        if request.url.path == "/broken":
            raise httpx.RemoteProtocolError("peer closed connection mid-body", request=request)
        return httpx.Response(200, json={"ok": True})

    async def go():
        async with httpx.AsyncClient(transport=_ResendOnStaleConnection(httpx.MockTransport(handler)),
                                     base_url="http://engine") as http:
            first = (await http.post("/v1/chat/completions", json={"x": 1})).json()
            with pytest.raises(httpx.RemoteProtocolError, match="mid-body"):
                await http.get("/broken")
            return first

    assert asyncio.run(go()) == {"ok": True}
    assert calls == ["/v1/chat/completions", "/v1/chat/completions", "/broken"]


# --- 404s and 400s: what each means, by who answers ---------------------------------------


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "non-stream"])
def test_client_404_for_an_unknown_model_names_the_models_the_server_has(fake_server: FakeServerHandle, stream: bool):
    """Regression (tool path fixes, bug 3): a 404 from an attached server (an unknown model name) switched the
    client to llama.cpp's /completion for good. Ollama, vLLM and LM Studio answer 404 for an unknown model; that
    is no reason to try /completion."""
    fake_server.script({"status": 404, "body": OLLAMA_404}, {"text": "must not be asked"})
    with pytest.raises(ModelNotServedError) as info:
        with_client(fake_server.url, lambda c: collect(c, stream=stream), model="llama3:8b")
    assert str(info.value).startswith("model 'llama3:8b' not found on the server at ")
    assert "it has: fake-model" in str(info.value)
    assert info.value.available == ["fake-model"] and info.value.status_code == 404
    assert [r["path"] for r in fake_server.requests()] == ["/v1/chat/completions"]


@pytest.mark.parametrize("body", [LLAMA_CONTEXT_ERROR, VLLM_CONTEXT_ERROR], ids=["llama-server", "vllm"])
@pytest.mark.parametrize("stream", [True, False], ids=["stream", "non-stream"])
def test_client_context_overflow_is_typed(fake_server: FakeServerHandle, body: dict, stream: bool):
    """Regression (tool path fixes, bug 2): a context overflow was a plain 400, which auto mode took as "tools
    unsupported"; it is its own error, with the sizes where the server says them."""
    fake_server.script({"status": 400, "body": body})
    with pytest.raises(ContextOverflowError, match="does not fit the model's context") as info:
        with_client(fake_server.url, lambda c: collect(c, stream=stream))
    if body is LLAMA_CONTEXT_ERROR:
        assert (info.value.prompt_tokens, info.value.context_size) == (3112, 2048)
        assert "3112 tokens for a context of 2048" in str(info.value)


def test_client_other_400_stays_a_plain_status_error(fake_server: FakeServerHandle):
    """Regression (tool path fixes, bug 2): only a context overflow is told apart; any other 400 is unchanged."""
    fake_server.script({"status": 400, "body": {"error": {"message": "unsupported value for 'top_k'"}}})
    with pytest.raises(BackendStatusError) as info:
        with_client(fake_server.url, collect)
    assert not isinstance(info.value, ContextOverflowError)


def test_client_404_with_the_model_listed_tries_completion_once_and_says_neither_route_exists(
        fake_server: FakeServerHandle):
    """Regression (tool path fixes, bug 3): the model is listed but the chat route 404s: /completion gets one try;
    it 404s too, which is said plainly, and the client does not switch to it."""
    fake_server.script({"status": 404}, {"status": 404})
    with pytest.raises(BackendStatusError, match="neither an OpenAI chat route nor llama.cpp's native one"):
        with_client(fake_server.url, collect)
    assert [r["path"] for r in fake_server.requests()] == ["/v1/chat/completions", "/completion"]


def test_client_404_for_an_unknown_model_with_tools_is_typed_too(fake_server: FakeServerHandle):
    """Regression (tool path fixes, bug 3): with tools sent, an unknown model's 404 is typed as without them."""
    fake_server.script({"status": 404, "body": OLLAMA_404})
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}}]
    with pytest.raises(ModelNotServedError, match="it has: fake-model"):
        with_client(fake_server.url, lambda c: collect(c, tools=tools), model="llama3:8b")


@pytest.fixture
def llama_server_without_chat():
    yield from served("--props", "no-tools")


def test_client_404_from_a_llama_cpp_server_uses_its_native_completion(llama_server_without_chat: FakeServerHandle):
    """Regression (tool path fixes, bug 3): the switch to /completion is kept for llama.cpp: a server that answers
    /props is llama.cpp, and its /completion is the right fallback (and stays in use)."""
    llama_server_without_chat.script({"status": 404, "body": {"error": {"message": "no chat route"}}},
                                     {"text": "native answer"}, {"text": "again"})

    async def twice(client: ChatClient):
        return await collect(client), await collect(client)

    first, _second = with_client(llama_server_without_chat.url, twice, model="some-name-it-ignores")
    assert text_of(first) == "native answer"
    assert [r["path"] for r in llama_server_without_chat.requests()] == [
        "/v1/chat/completions", "/completion", "/completion"]


def test_client_404_file_not_found_body_is_llama_cpp(fake_server: FakeServerHandle):
    """Regression (tool path fixes, bug 3): llama-server answers an unknown route with {"error": {"message":
    "File Not Found", ...}} (measured); that 404 still falls back to its /completion."""
    body = {"error": {"message": "File Not Found", "type": "not_found_error", "code": 404}}
    fake_server.script({"status": 404, "body": body}, {"text": "native answer"})
    events = with_client(fake_server.url, collect, model="not-in-the-list")
    assert text_of(events) == "native answer"
    assert [r["path"] for r in fake_server.requests()] == ["/v1/chat/completions", "/completion"]
