"""A continued answer's echo: some engines stream a prefilled assistant turn back before what they write after it
(llama-server with its Jinja chat parser does: measured, the content is "<prefill><new text>"), others send only the
new text (vLLM, the built-in server). Pure and incremental, like the stop-sequence filter."""

from __future__ import annotations


class PrefillEchoFilter:
    """Feed the streamed text; returns only what the engine wrote after the prefill.

    While the stream repeats ``prefill`` from its start it is held back; once the whole prefill came back it is
    dropped. A stream that departs from it first was new text all along: what was held is released with it."""

    def __init__(self, prefill: str) -> None:
        self._prefill = prefill
        self._held = ""
        self._decided = not prefill

    def feed(self, text: str) -> str:
        if self._decided:
            return text
        buf = self._held + text
        if buf.startswith(self._prefill):  # the whole prefill came back: the rest is new
            self._decided, self._held = True, ""
            return buf[len(self._prefill):]
        if self._prefill.startswith(buf):  # so far, an echo: wait for more
            self._held = buf
            return ""
        self._decided, self._held = True, ""
        return buf

    def flush(self) -> str:
        """At the end of the stream: text held as a possible echo was new text after all (a short answer that
        began like the prefill)."""
        held, self._held = self._held, ""
        self._decided = True
        return held
