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
    EmptyResponseError,
)
from LLM.core.events import Done, ReasoningDelta, TextDelta, Usage
from LLM.tests.fakes.handle import FakeServerHandle, free_port

HI = [{"role": "user", "content": "hi"}]


async def collect(client: ChatClient, **kwargs) -> list:
    return [e async for e in client.chat(HI, **kwargs)]


def run(coro):
    return asyncio.run(coro)


def with_client(url: str, fn, **client_kwargs):
    async def go():
        client = ChatClient(url, "fake-model", **client_kwargs)
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
