"""SSE decoding and OpenAI chunk decoding from hand-made bytes."""

from __future__ import annotations

import json

import pytest

from LLM.core.errors import BackendStatusError, InferenceError
from LLM.core.events import Done, ReasoningDelta, TextDelta, ToolCallDelta, Usage
from LLM.core.protocol.decoding import ChatStreamDecoder, CompletionStreamDecoder, decode_chat_response
from LLM.core.protocol.sse import SSEDecoder


def decode_all(chunks: list[bytes]) -> list[tuple[str, str]]:
    decoder = SSEDecoder()
    events = [e for chunk in chunks for e in decoder.feed(chunk)] + decoder.flush()
    return [(e.event, e.data) for e in events]


@pytest.mark.parametrize(
    "chunks, expected",
    [
        pytest.param([b"data: a\n\n"], [("message", "a")], id="one-event"),
        pytest.param([b"data: a\r\n\r\ndata: b\r\n\r\n"], [("message", "a"), ("message", "b")], id="crlf"),
        pytest.param([b"data: a\r", b"\n\r\n"], [("message", "a")], id="crlf-split-across-chunks"),
        pytest.param([b"data: a\rdata: b\r\r"], [("message", "a\nb")], id="cr-only"),
        pytest.param([b": keep-alive\n\ndata: x\n\n"], [("message", "x")], id="comment-ignored"),
        pytest.param([b"event: ping\ndata: {}\n\n"], [("ping", "{}")], id="event-field"),
        pytest.param([b"data: line1\ndata: line2\n\n"], [("message", "line1\nline2")], id="multi-line-data"),
        pytest.param([b"da", b"ta: hel", b"lo\n", b"\n"], [("message", "hello")], id="split-everywhere"),
        pytest.param(["data: é€😀\n\n".encode()[:8], "data: é€😀\n\n".encode()[8:]], [("message", "é€😀")],
                     id="utf8-split-inside-character"),
        pytest.param([b"data: tail-without-blank-line"], [("message", "tail-without-blank-line")], id="no-final-blank"),
        pytest.param([b"data:nospace\n\n"], [("message", "nospace")], id="no-space-after-colon"),
        pytest.param([b"id: 7\nretry: 10\ndata: z\n\n"], [("message", "z")], id="id-and-retry"),
        pytest.param([b"\n\n\n"], [], id="blank-lines-only"),
        pytest.param([b"data: [DONE]\n\n"], [("message", "[DONE]")], id="done-marker"),
    ],
)
def test_sse_decoder(chunks: list[bytes], expected: list[tuple[str, str]]):
    assert decode_all(chunks) == expected


BOM = b"\xef\xbb\xbf"


@pytest.mark.parametrize(
    "chunks, expected",
    [
        pytest.param([BOM + b"data: a\n\n"], [("message", "a")], id="bom-in-the-first-chunk"),
        pytest.param([BOM, b"data: a\n\n"], [("message", "a")], id="bom-alone-in-the-first-chunk"),
        pytest.param([b"\xef", b"\xbb\xbfdata: a\n\n"], [("message", "a")], id="bom-split-after-one-byte"),
        pytest.param([b"\xef\xbb", b"\xbf", b"data: a\n", b"\n"], [("message", "a")], id="bom-split-in-three"),
        pytest.param([BOM + b"event: e\ndata: a\n\n"], [("e", "a")], id="bom-before-an-event-field"),
        pytest.param([BOM + b"data: a\n\n" + BOM + b"data: b\n\n", BOM + b"data: c\n\n"], [("message", "a")],
                     id="only-the-stream-s-first-bom-is-stripped"),
    ],
)
def test_sse_decoder_strips_a_leading_byte_order_mark(chunks: list[bytes], expected: list[tuple[str, str]]):
    """Regression (#19, SSE): a stream that started with a UTF-8 byte-order mark lost its first event (the
    first field was read as "\\ufeffdata"). The event-stream spec strips one leading BOM, also when its three
    bytes arrive in different chunks; a BOM anywhere else belongs to the line (an unknown field, ignored)."""
    assert decode_all(chunks) == expected


def test_sse_decoder_byte_at_a_time_equals_whole():
    raw = "event: x\ndata: {\"a\": \"ü\"}\r\n\r\n: c\ndata: 2\n\n".encode()
    assert decode_all([raw[i : i + 1] for i in range(len(raw))]) == decode_all([raw])


def chunk(delta: dict, finish: str | None = None) -> str:
    return json.dumps({"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})


@pytest.mark.parametrize(
    "payloads, expected",
    [
        pytest.param([chunk({"content": "Hi"}), chunk({}, "stop")], [TextDelta("Hi"), Done("stop")], id="text"),
        pytest.param([chunk({"reasoning_content": "hmm"}), chunk({"content": "ok"}, "stop")],
                     [ReasoningDelta("hmm"), TextDelta("ok"), Done("stop")], id="reasoning-content"),
        pytest.param([chunk({"content": "<thi"}), chunk({"content": "nk>plan</think>"}), chunk({"content": "answer"})],
                     [ReasoningDelta("plan"), TextDelta("answer"), Done("stop")], id="think-tags-split"),
        pytest.param([chunk({"content": "a<th"}), chunk({"content": "x c"})],
                     [TextDelta("a"), TextDelta("<thx c"), Done("stop")], id="held-prefix-released"),
        pytest.param([json.dumps({"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 4}})],
                     [Usage(3, 4), Done("stop")], id="usage-chunk"),
        pytest.param([chunk({"content": "x"}, "length")], [TextDelta("x"), Done("length")], id="length"),
    ],
)
def test_chat_stream_decoder(payloads: list[str], expected: list):
    decoder = ChatStreamDecoder()
    events = [e for p in payloads for e in decoder.decode(p)] + decoder.finish()
    assert events == expected


@pytest.mark.parametrize(
    "decoder, payloads, expected",
    [
        pytest.param(ChatStreamDecoder(), [chunk({"content": "a"}), "[DONE]", chunk({"content": "late"}, "length")],
                     [TextDelta("a"), Done("stop")], id="chat"),
        pytest.param(ChatStreamDecoder(), [chunk({"content": "a"}), "[DONE]", "not json"],
                     [TextDelta("a"), Done("stop")], id="chat-garbage-after-done"),
        pytest.param(CompletionStreamDecoder(), ['{"content": "a", "stop": true, "stop_type": "eos"}',
                                                 '{"content": "late", "stop": true, "stop_type": "limit"}'],
                     [TextDelta("a"), Done("stop")], id="native-completion-stop"),
    ],
)
def test_stream_decoders_decode_nothing_after_the_end(decoder, payloads: list[str], expected: list):
    """Regression (#19, SSE): the stream ends at [DONE] (or llama.cpp's stop=true); whatever a server sends
    after it is not part of the answer."""
    events = [e for p in payloads for e in decoder.decode(p)] + decoder.finish()
    assert [e for e in events if not isinstance(e, Usage)] == expected


def test_chat_stream_decoder_accumulates_tool_calls_by_index():
    decoder = ChatStreamDecoder()
    payloads = [
        chunk({"tool_calls": [{"index": 0, "id": "c0", "function": {"name": "calc", "arguments": '{"e": '}}]}),
        chunk({"tool_calls": [{"index": 1, "id": "c1", "function": {"name": "time", "arguments": "{}"}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"1+1"}'}}]}, "tool_calls"),
    ]
    events = [e for p in payloads for e in decoder.decode(p)] + decoder.finish()
    assert isinstance(events[0], ToolCallDelta) and events[0].name == "calc"
    done = events[-1]
    assert done.finish_reason == "tool_calls"
    assert [(c.id, c.name, c.arguments) for c in done.tool_calls] == [
        ("c0", "calc", {"e": "1+1"}),
        ("c1", "time", {}),
    ]


@pytest.mark.parametrize(
    "payload, error, text",
    [
        pytest.param('{"error": {"message": "boom", "code": 503}}', BackendStatusError, "HTTP 503", id="error-object"),
        pytest.param('{"error": "plain"}', BackendStatusError, "plain", id="error-string"),
        pytest.param("not json", InferenceError, "not JSON", id="garbage"),
    ],
)
def test_chat_stream_decoder_errors(payload: str, error: type, text: str):
    with pytest.raises(error, match=text):
        ChatStreamDecoder().decode(payload)


def test_decode_chat_response_non_stream():
    body = {
        "choices": [{"message": {"content": "hello", "tool_calls": [
            {"id": "x", "function": {"name": "f", "arguments": {"a": 1}}}]}, "finish_reason": "tool_calls"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 2},
    }
    events = decode_chat_response(body)
    assert events[0] == TextDelta("hello")
    assert events[-1].tool_calls[0].arguments == {"a": 1}
    with pytest.raises(InferenceError, match="no choices"):
        decode_chat_response({"object": "x"})


def test_completion_stream_decoder_native_llama_cpp():
    decoder = CompletionStreamDecoder()
    events = decoder.decode('{"content": "Hi", "stop": false}') + decoder.decode(
        '{"content": "", "stop": true, "stop_type": "limit", "tokens_evaluated": 4, "tokens_predicted": 9}'
    ) + decoder.finish()
    assert events == [TextDelta("Hi"), Usage(4, 9), Done("length")]
