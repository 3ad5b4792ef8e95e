"""The continued answer's echo is dropped whichever way the engine streams it; new text is never lost."""

from __future__ import annotations

import pytest

from LLM.core.protocol.prefill_echo import PrefillEchoFilter

PREFILL = "Once upon a time, in the bustling"


@pytest.mark.parametrize("chunks, expected", [
    # llama-server (Jinja chat parser): the prefill comes back first, in any chunking.
    (["Once upon a time, in the bustling", " city of New Haven"], " city of New Haven"),
    (["Once", " upon a time,", " in the bust", "ling city", " of New Haven"], " city of New Haven"),
    (["Once upon a time, in the bustling city"], " city"),
    # vLLM and the built-in server: only the new text.
    ([" city of", " New Haven"], " city of New Haven"),
    # New text that happens to begin like the prefill is held only until it departs from it.
    (["Once", " more, the cat"], "Once more, the cat"),
    (["Once"], "Once"),  # the stream ended while it still looked like an echo: it was new text
    ([], ""),
], ids=["echo-one-chunk", "echo-split", "echo-and-more-in-one-chunk", "no-echo", "begins-like-the-prefill",
        "short-answer-like-the-prefill", "nothing"])
def test_prefill_echo_filter(chunks, expected):
    echo = PrefillEchoFilter(PREFILL)
    assert "".join(echo.feed(chunk) for chunk in chunks) + echo.flush() == expected


def test_prefill_echo_filter_without_a_prefill_passes_everything():
    echo = PrefillEchoFilter("")
    assert echo.feed("Once upon") + echo.feed(" a time") + echo.flush() == "Once upon a time"
