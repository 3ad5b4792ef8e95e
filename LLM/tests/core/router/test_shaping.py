"""`<tool_call>` text in an upstream answer becomes native tool calls, streamed or whole; anything else passes."""

from __future__ import annotations

import json

import pytest

from LLM.core.router.shaping import StreamShaper, shape_whole, wants_tool_calls

TOOLS = [{"type": "function", "function": {"name": "calc", "parameters": {"type": "object"}}}]
CALL_TEXT = 'Let me. <tool_call>{"name": "calc", "arguments": {"x": 2}}</tool_call>'


def _sse(*chunks: dict) -> bytes:
    return b"".join(b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks) + b"data: [DONE]\n\n"


def _chunk(delta: dict, finish: str | None = None) -> dict:
    return {"id": "c1", "object": "chat.completion.chunk", "model": "m", "created": 1,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


def _events(raw: bytes) -> list:
    return [json.loads(line[6:]) if line[6:] != b"[DONE]" else "[DONE]"
            for line in raw.split(b"\n\n") if line.startswith(b"data: ")]


def _fold(events: list) -> tuple[str, list[dict], list[str]]:
    content, calls, finishes = "", [], []
    for event in events:
        if event == "[DONE]" or not event.get("choices"):
            continue
        choice = event["choices"][0]
        content += choice["delta"].get("content") or ""
        calls += choice["delta"].get("tool_calls") or []
        if choice["finish_reason"]:
            finishes.append(choice["finish_reason"])
    return content, calls, finishes


def _stream(text: str, cut: int) -> bytes:
    pieces = [text[i:i + cut] for i in range(0, len(text), cut)]
    return _sse(_chunk({"role": "assistant", "content": ""}), *[_chunk({"content": p}) for p in pieces],
                _chunk({}, "stop"))


@pytest.mark.parametrize("cut", [1, 3, 7, 1000])
@pytest.mark.parametrize("split", [1, 5, 64])
def test_shaping_a_streamed_text_call_becomes_one_tool_call_delta(cut, split):
    raw = _stream(CALL_TEXT, cut)
    shaper = StreamShaper(TOOLS)
    out = b"".join(shaper.feed(raw[i:i + split]) for i in range(0, len(raw), split)) + shaper.finish()
    events = _events(out)
    content, calls, finishes = _fold(events)
    assert content.strip() == "Let me."
    assert [(c["index"], c["function"]["name"], json.loads(c["function"]["arguments"])) for c in calls] == \
        [(0, "calc", {"x": 2})]
    assert calls[0]["id"].startswith("call_") and calls[0]["type"] == "function"
    assert finishes == ["tool_calls"]
    assert events[-1] == "[DONE]"
    assert all(e["id"] == "c1" and e["model"] == "m" for e in events if e != "[DONE]")


@pytest.mark.parametrize("text", [
    "Plain answer, no call.",
    "The tag <tool_call> alone is text",  # not followed by a call body: the parser's policy keeps it as text
    '<tool_call>{"name": "calc", "arguments": {"x": 1}',  # cut off: never a call
])
def test_shaping_text_that_is_no_call_stays_content(text):
    shaper = StreamShaper(TOOLS)
    out = shaper.feed(_stream(text, 4)) + shaper.finish()
    content, calls, finishes = _fold(_events(out))
    assert calls == [] and finishes == ["stop"]
    assert content == text


def test_shaping_native_tool_calls_pass_through_unchanged():
    native = _sse(_chunk({"role": "assistant", "content": None}),
                  _chunk({"tool_calls": [{"index": 0, "id": "call_a", "type": "function",
                                          "function": {"name": "calc", "arguments": "{\"x\""}}]}),
                  _chunk({"tool_calls": [{"index": 0, "function": {"arguments": ": 1}"}}]}),
                  _chunk({}, "tool_calls"))
    shaper = StreamShaper(TOOLS)
    events = _events(shaper.feed(native) + shaper.finish())
    assert events == _events(native)


def test_shaping_the_usage_chunk_and_unknown_events_pass():
    raw = _sse(_chunk({"content": "hi"}), _chunk({}, "stop"),
               {"id": "c1", "object": "chat.completion.chunk", "choices": [], "usage": {"total_tokens": 3}})
    shaper = StreamShaper(TOOLS)
    events = _events(shaper.feed(raw) + shaper.finish())
    assert events[-2]["usage"] == {"total_tokens": 3}


def _whole(content: str, finish: str = "stop") -> bytes:
    return json.dumps({"id": "x", "object": "chat.completion", "model": "m", "usage": {"total_tokens": 9},
                       "choices": [{"index": 0, "finish_reason": finish,
                                    "message": {"role": "assistant", "content": content}}]}).encode()


def test_shaping_a_whole_answer_gets_native_tool_calls():
    answer = json.loads(shape_whole(_whole(CALL_TEXT), TOOLS))
    choice = answer["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"].strip() == "Let me."
    [call] = choice["message"]["tool_calls"]
    assert call["function"]["name"] == "calc" and json.loads(call["function"]["arguments"]) == {"x": 2}
    assert answer["usage"] == {"total_tokens": 9}


@pytest.mark.parametrize("body", [_whole("no call here"), b"not json", b'{"error": {"message": "x"}}'])
def test_shaping_a_whole_answer_without_calls_is_unchanged(body):
    assert shape_whole(body, TOOLS) == body


@pytest.mark.parametrize("payload, wanted", [
    ({"tools": TOOLS}, True),
    ({"tools": TOOLS, "tool_choice": "auto"}, True),
    ({"tools": TOOLS, "tool_choice": "required"}, True),
    ({"tools": TOOLS, "tool_choice": "none"}, False),
    ({"tools": []}, False),
    ({}, False),
])
def test_shaping_applies_only_when_tools_may_be_called(payload, wanted):
    assert wants_tool_calls(payload) is wanted
