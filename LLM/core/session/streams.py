"""The events one request produces: a plain answer (``stream_inference``) or the tool loop's
(``stream_tool_inference``). The session records them; the inference API collects them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing

from ..attachments import Blobs, references
from ..chat.context_budget import fit_to_context, has_images
from ..chat.messages import build_messages, completion_prompt
from ..chat.params import InferenceConfig, ToolEnabledInferenceConfig, merged_stop, request_params
from ..chat.turns import text_tool_turns
from ..errors import ConfigError
from ..events import Done, StreamEvent, TextDelta
from ..protocol.prefill_echo import PrefillEchoFilter
from ..protocol.stop_sequences import StopSequenceFilter
from ..runtime import Runtime
from ..tools.loop import ApprovalHook, LoopEvent, LoopNotice, ToolLoop
from .files import check_files, rendered, with_files

DEFAULT_TOOLS = ("calculator", "get_current_time")  # the safe built-ins a tool request gets unless it names others


async def stream_inference(cfg: InferenceConfig, runtime: Runtime | None = None,
                           blobs: Blobs | None = None) -> AsyncIterator[StreamEvent | LoopNotice]:
    """Stream the model's answer as events; the last one is Done.

    Client-side stop sequences: text from a stop sequence on is never yielded, the HTTP
    stream is closed at once (so the server stops), and Done says ``stop_sequence``.
    Pass a long-lived ``runtime``; without one a temporary Runtime is built and closed.
    A reasoning model cut off by max_tokens before it answered ends with ReasoningDelta events and
    ``Done("length")``: the events show it; ``ainfer`` and ``run_inference`` name it as an error.
    Files (``cfg.files``, and references in the messages whose bytes ``blobs`` holds) are checked before the
    server starts; a document cut to fit is said by a LoopNotice ``attachment`` before the answer.
    """
    if runtime is None:
        owned = Runtime.from_config_path()
        try:
            async with aclosing(stream_inference(cfg, owned, blobs)) as events:
                async for event in events:
                    yield event
        finally:
            await owned.aclose()
        return
    model_id = str(cfg.model_id)
    entry = runtime.entry(model_id)  # an unknown model is a typed error before anything starts
    attached: list[dict] | None = None  # the messages with their files rendered, where the request has files
    if cfg.files or references(cfg.messages or []):
        messages, blobs = await with_files(cfg, build_messages(cfg, entry), blobs)
        await check_files(runtime, model_id, messages)
        # A history from the tool chat may hold native tool turns; sent without tools, they go as text.
        done = await rendered(text_tool_turns(messages), blobs, entry)
        attached = done.messages
        for note in done.notes:
            yield LoopNotice("attachment", note)
    async with runtime.crashes_explained(model_id):
        # in_use before client_for: an idle TTL cannot stop the server between "ready" and the request.
        async with runtime.in_use(model_id):
            client = await runtime.client_for(model_id)
            # Read once the server is ready: a config reload may have replaced the entry while this waited.
            entry = runtime.entry(model_id)
            stop = StopSequenceFilter(merged_stop(cfg, entry))
            echo: PrefillEchoFilter | None = None  # only a continued answer pays for it
            if entry.model_type == "base":  # no chat template: the text is continued as written
                source = client.complete(completion_prompt(cfg), request_params(cfg, entry))
            else:
                budget = entry.effective_usable_context
                # A history from the tool chat may hold native tool turns; sent without tools, they go as text.
                messages = attached if attached is not None else text_tool_turns(build_messages(cfg, entry))
                # The engine's count leaves images out: with one, the estimate (which counts them) decides.
                count = None if has_images(messages) else client.count_prompt_tokens
                messages = await fit_to_context(messages, budget, count)
                if messages and messages[-1].get("role") == "assistant":  # a continued answer
                    echo = PrefillEchoFilter(str(messages[-1].get("content") or ""))
                source = client.chat(messages, request_params(cfg, entry))
            async with aclosing(source) as events:
                async for event in events:
                    if isinstance(event, TextDelta):
                        new = echo.feed(event.text) if echo is not None else event.text
                        text = stop.feed(new) if new else ""
                        if text:
                            yield event if text is event.text else TextDelta(text)
                        if stop.stopped:
                            yield Done("stop_sequence")
                            return
                    elif isinstance(event, Done):
                        tail = (stop.feed(echo.flush()) if echo is not None else "") + stop.flush()
                        if tail:
                            yield TextDelta(tail)
                        yield event
                    else:
                        yield event


def tool_loop_for(cfg: ToolEnabledInferenceConfig, runtime: Runtime, before_call: ApprovalHook | None) -> ToolLoop:
    model_id = str(cfg.model_id)
    entry = runtime.entry(model_id)
    names = list(cfg.tools) if cfg.tools is not None else [n for n in DEFAULT_TOOLS if n in runtime.tools]
    tools = runtime.tools.select(names)
    if not cfg.enable_tools:
        mode = "off"
    else:
        mode = cfg.tool_mode or runtime.learned_tool_modes.get(model_id) or entry.tools
    if cfg.tool_choice not in ("auto", "required", "none") and cfg.tool_choice not in names:
        raise ConfigError(f"tool_choice: '{cfg.tool_choice}' is not one of the enabled tools "
                          f"({', '.join(names) or 'none'}); use auto, required, none or an enabled tool's name")
    return ToolLoop(runtime, model_id, tools, request_params(cfg, entry), mode, cfg.max_iterations, before_call,
                    cfg.tool_choice)


async def stream_tool_inference(
    cfg: ToolEnabledInferenceConfig, runtime: Runtime, before_call: ApprovalHook | None = None,
    blobs: Blobs | None = None,
) -> AsyncIterator[LoopEvent]:
    """The tool loop's events (steps, text, calls, results, notices), ending with LoopFinished. Files as in
    ``stream_inference``; each step's recorded request holds placeholders where the files went."""
    entry = runtime.entry(str(cfg.model_id))
    messages = build_messages(cfg, entry)
    attached = None
    if cfg.files or references(messages):
        messages, blobs = await with_files(cfg, messages, blobs)
        await check_files(runtime, str(cfg.model_id), messages)
        attached = await rendered(messages, blobs, entry)
        messages = attached.messages
    if cfg.enable_tools:
        await runtime.ensure_tools(cfg.tools)  # MCP tools: their servers start on first use
    loop = tool_loop_for(cfg, runtime, before_call)
    if attached is not None:
        loop.redact = attached.redact
    for note in attached.notes if attached is not None else []:
        yield LoopNotice("attachment", note)
    async with runtime.crashes_explained(str(cfg.model_id)), aclosing(loop.run(messages)) as events:
        async for event in events:
            yield event

