"""Recover Qwen/Hermes `<tool_call>` tool calls and `<think>` reasoning from raw model text, whole or streamed.

A pure leaf package (stdlib and ``core.events`` only, no I/O). Policy: section 6 of the shared TOOLCALL_PARSERS.md,
in short:

* Reasoning first: ``<think>…</think>`` is reasoning, calls inside it are never calls; an unclosed ``<think>``
  makes the rest reasoning; text before a lone leading ``</think>`` is reasoning.
* ``<tool_call>`` opens a block only when (after whitespace and an optional ```` ```lang ```` line) ``{``, ``[`` or
  ``<function=`` follows; otherwise the tag is plain text. JSON bodies (Hermes / Qwen2.5 / Qwen3) and
  Qwen3-Coder XML bodies (``<function=NAME><parameter=KEY>…``) are both understood.
* A block that does not give a non-empty name and an object of arguments is no call: its text stays in the
  content verbatim and the reason goes to ``errors``. Truncated calls are never returned. No tag, no call.

There is one engine, :class:`ToolCallStreamParser`; :func:`parse_tool_calls` feeds it the whole text at once.
Streaming therefore gives the whole-text result for any chunking, provided every decision waits until the text
seen so far settles it; that is the rule every step and grammar function follows (``final`` means "no more text
will come"). Work stays linear: resolved text is never scanned again, and an open block is looked at again only
when a plausible end of it arrives or it has grown geometrically (see ``window``).

The modules, each importing only ones listed before it:

* ``markup``: the lexicon: tags, the patterns that find them, partial-tag checks.
* ``calls``: call objects from decoded JSON or Python literals, the arguments policy.
* ``xml_calls``: Qwen3-Coder ``<function=…><parameter=…>`` calls, values typed by the tools' schemas.
* ``blocks``: resolving a ``<tool_call>`` block or a bare call into calls, or into why it is none.
* ``output``: where results go: events, content and reasoning text, calls with ids, errors, staged results.
* ``window``: an open block while streaming: when it is worth a look, and the look.
* ``stream``: the engine, :class:`ToolCallStreamParser`: its states and steps.
* ``turn``: :class:`TurnParser`, the engine set up for one model turn from what is known of its prompt (did it
  open ``<think>``?) and of the server (did it send the reasoning apart?).
* ``native_calls``: :class:`NativeToolCalls` and :func:`native_message`, the results as OpenAI native
  ``tool_calls`` (streamed deltas or a whole message), for a server that answers with them.
"""

from .native_calls import NativeToolCalls, native_message
from .output import ParsedOutput, ParserEvent
from .stream import ToolCallStreamParser, parse_tool_calls
from .turn import TurnParser

__all__ = [
    "NativeToolCalls",
    "ParsedOutput",
    "ParserEvent",
    "ToolCallStreamParser",
    "TurnParser",
    "native_message",
    "parse_tool_calls",
]
