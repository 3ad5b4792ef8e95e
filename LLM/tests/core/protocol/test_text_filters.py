"""Incremental text filters: client-side stop sequences and <think> splitting."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from LLM.core.events import ReasoningDelta, TextDelta
from LLM.core.protocol.reasoning import ThinkSplitter
from LLM.core.protocol.stop_sequences import StopSequenceFilter


def run_filter(stops: list[str], chunks: list[str]) -> tuple[str, bool]:
    f = StopSequenceFilter(stops)
    out = "".join(f.feed(c) for c in chunks) + f.flush()
    return out, f.stopped


@pytest.mark.parametrize(
    "stops, chunks, expected, stopped",
    [
        pytest.param(["END"], ["hello END world"], "hello ", True, id="whole"),
        pytest.param(["END"], ["hello E", "N", "D world"], "hello ", True, id="split-across-chunks"),
        pytest.param(["END"], ["hello E", "NOUGH"], "hello ENOUGH", False, id="prefix-released"),
        pytest.param(["\n\n", "###"], ["a\n", "b##", "#c"], "a\nb", True, id="several-stops"),
        pytest.param([], ["a", "b"], "ab", False, id="no-stops"),
        pytest.param(["x"], ["x"], "", True, id="stop-at-start"),
        pytest.param(["END"], ["tail E"], "tail E", False, id="held-tail-flushed"),
    ],
)
def test_stop_filter(stops, chunks, expected, stopped):
    assert run_filter(stops, chunks) == (expected, stopped)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="abEND \n", max_size=40), st.lists(st.integers(1, 5), max_size=20))
def test_stop_filter_any_chunking_equals_whole(text: str, cuts: list[int]):
    chunks, i = [], 0
    for size in cuts:
        chunks.append(text[i : i + size])
        i += size
    chunks.append(text[i:])
    whole = run_filter(["END"], [text])
    assert run_filter(["END"], chunks) == whole
    assert whole[0] == text.split("END")[0]


def split(chunks: list[str], start_in_reasoning: bool = False) -> tuple[str, str]:
    s = ThinkSplitter(start_in_reasoning)
    events = [e for c in chunks for e in s.feed(c)] + s.flush()
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    reasoning = "".join(e.text for e in events if isinstance(e, ReasoningDelta))
    return text, reasoning


@pytest.mark.parametrize(
    "chunks, expected",
    [
        pytest.param(["<think>a</think>b"], ("b", "a"), id="whole"),
        pytest.param(["<th", "ink>a</th", "ink>b"], ("b", "a"), id="tags-split"),
        pytest.param(["<think>unclosed"], ("", "unclosed"), id="unclosed-think-is-reasoning"),
        pytest.param(["a <b> c"], ("a <b> c", ""), id="other-tags-are-text"),
        pytest.param(["x<thi"], ("x<thi", ""), id="partial-tag-at-end-flushed"),
    ],
)
def test_think_splitter(chunks, expected):
    assert split(chunks) == expected


def test_think_splitter_start_in_reasoning():
    assert split(["plan</think>answer"], start_in_reasoning=True) == ("answer", "plan")
