"""The iterative tool loop: ask, collect tool calls (native or parsed from text), run them, repeat.

Events let a UI follow each step; ``ToolRunResult`` keeps every step for later inspection.
Modes (yaml ``tools`` key, or per request): native (send ``tools``, trust ``tool_calls``),
fallback (tool list in the system prompt, ``<tool_call>`` parsed from text), auto (send
``tools``; parse the text when no native call comes; a 4xx on ``tools`` that the request without
them does not get, or an empty 200, switches that model to fallback for the rest of the process;
a context overflow is raised, never a reason to switch), off.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from ..chat.context_budget import SentResult, estimate_tokens, fit_results, fit_to_context, has_images
from ..chat.turns import assistant_message, raw_call_text, text_tool_turns, tool_result_message
from ..errors import BackendError, BackendStatusError, ContextOverflowError, EmptyResponseError
from ..events import Done, ReasoningDelta, TextDelta, ToolCall, Usage
from ..protocol.client import ChatClient
from ..config import ModelEntry
from ..models.capabilities import Capability
from ..models.report import CONFIDENT
from ..protocol.props import EngineProps
from .approval import Approval, ApprovalHook, approve_call
from .grammar import MAX_CALLS, min_call_tokens, string_cap_note, tool_call_grammar
from .parsing import ParserEvent, TurnParser
from .prompts import fallback_tool_prompt, with_tool_prompt
from .registry import Tool, ToolResult, execute

class ModelAccess(Protocol):
    """What the loop needs to reach a model (the Runtime provides it): no import of the runtime up here."""

    learned_tool_modes: dict[str, str]

    def entry(self, model_id: str) -> ModelEntry: ...

    def in_use(self, model_id: str) -> AbstractAsyncContextManager[None]: ...

    async def client_for(self, model_id: str) -> ChatClient: ...

    async def engine_props(self, model_id: str) -> EngineProps | None: ...

    async def capabilities(self, model_id: str) -> dict[str, Capability]: ...


Mode = Literal["auto", "native", "fallback", "off"]
Source = Literal["native", "fallback"]


REPEAT_LIMIT = 3  # the same call with the same result this many times is a loop


@dataclass(frozen=True)
class StepStarted:
    iteration: int
    mode: str
    tools_sent: bool
    tool_choice: str = "auto"  # auto | required | none | a tool's name
    constrained: bool = False  # the output was held to tool-call blocks by a grammar


@dataclass(frozen=True)
class ToolCallEvent:
    iteration: int
    call: ToolCall
    source: Source


@dataclass(frozen=True)
class ToolResultEvent:
    iteration: int
    call: ToolCall
    result: ToolResult


@dataclass(frozen=True)
class StepFinished:
    iteration: int
    finish_reason: str
    prompt_tokens: int | None
    completion_tokens: int | None
    duration_ms: float
    step: "ToolStep | None" = None  # the whole exchange: request body, raw output, parse (the inspector's)


@dataclass(frozen=True)
class LoopNotice:
    """A guard fired or the loop changed course (fallback switch, max iterations, repeated call)."""

    kind: str
    message: str


@dataclass
class ToolStep:
    iteration: int
    mode: str
    request_messages: list[dict[str, Any]]
    tools_sent: bool
    tool_choice: str = "auto"
    constrained: bool = False
    constraint_note: str = ""  # what the grammar held the call to beyond the schemas (strings it capped)
    url: str = ""
    request_body: dict[str, Any] = field(default_factory=dict)  # exactly as sent
    native_calls: list[dict[str, Any]] = field(default_factory=list)  # tool_calls as the server sent them
    text: str = ""
    raw_text: str = ""
    reasoning: str = ""
    calls: list[tuple[ToolCall, Source]] = field(default_factory=list)
    dropped_calls: int = 0  # calls the model made beyond the first, not run (parallel_tool_calls false)
    results: list[ToolResult] = field(default_factory=list)
    parse_errors: list[str] = field(default_factory=list)
    finish_reason: str = "stop"
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    request_ms: float = 0.0  # waiting on the server (stream open to Done)
    tools_ms: float = 0.0  # running tools
    duration_ms: float = 0.0


@dataclass
class ToolRunResult:
    final_text: str = ""
    steps: list[ToolStep] = field(default_factory=list)
    finish_reason: str = "stop"
    stopped_by: str | None = None  # max_iterations | repeated_call | denied (the user denied a call and stopped)
    notices: list[LoopNotice] = field(default_factory=list)


@dataclass(frozen=True)
class LoopFinished:
    result: ToolRunResult


LoopEvent = (
    StepStarted | TextDelta | ReasoningDelta | ToolCallEvent | ToolResultEvent | StepFinished | LoopNotice | LoopFinished
)


class ToolLoop:
    def __init__(
        self,
        runtime: ModelAccess,
        model_id: str,
        tools: list[Tool],
        params: dict[str, Any],
        mode: Mode,
        max_iterations: int = 8,
        before_call: ApprovalHook | None = None,
        tool_choice: str = "auto",
    ) -> None:
        self.runtime = runtime
        self.model_id = model_id
        self.tools = {t.name: t for t in tools}
        self.openai_tools = [t.to_openai() for t in tools]
        self.params = params
        self.mode: Mode = mode if tools else "off"
        self.max_iterations = max_iterations
        self.before_call = before_call
        self.budget = runtime.entry(model_id).effective_usable_context
        self.tool_choice = tool_choice
        self._warned_unconstrained = False
        self._denied_and_stopped = False
        # What a step keeps of its request body: attached files become short placeholders (attachments.render).
        self.redact: Callable[[dict[str, Any]], dict[str, Any]] = lambda body: body

    async def run(self, messages: list[dict[str, Any]]) -> AsyncIterator[LoopEvent]:
        history = list(messages)
        sent: list[SentResult] = []  # the loop's results in history, whole, for fit_results
        result = ToolRunResult()
        repeats: Counter[tuple[str, str, str]] = Counter()
        async with self.runtime.in_use(self.model_id):
            client = await self.runtime.client_for(self.model_id)
            if self.mode == "auto":
                await self.runtime.engine_props(self.model_id)  # an attached server is asked once, here
                tools = (await self.runtime.capabilities(self.model_id))["tools"]
                if not tools.value and tools.confidence >= CONFIDENT:
                    # llama-server silently drops `tools` for such a template: asking natively would get nothing.
                    self.mode = "fallback"
                    yield self._notice(result, "fallback", f"the model cannot take native tool calls "
                                       f"({_capability_source(tools)}); using text tool calls (fallback mode)")
            choice = self.tool_choice
            for iteration in range(1, self.max_iterations + 1):
                step = ToolStep(iteration, self.mode, [], self.mode in ("native", "auto"))
                async for event in self._step(client, history, step, choice=choice):
                    if isinstance(event, LoopNotice):
                        result.notices.append(event)
                    yield event
                result.steps.append(step)
                if not step.calls:
                    break
                if choice not in ("auto", "none"):
                    choice = "auto"  # the forced call was made: the model may now answer
                history.append(self._assistant_turn(step))
                started = time.perf_counter()
                for call, source in step.calls:
                    yield ToolCallEvent(iteration, call, source)
                    outcome = await self._run_call(call)
                    step.results.append(outcome)
                    repeats[(call.name, json.dumps(call.arguments, sort_keys=True), outcome.text)] += 1
                    yield ToolResultEvent(iteration, call, outcome)
                    history.append(tool_result_message(call, outcome.text, source == "native"))
                    sent.append(SentResult(len(history) - 1, call, outcome.text, source == "native", iteration))
                # The model gets as much of each result as the usable context holds; the events keep them whole.
                fit_results(history, len(messages), sent, iteration, self.budget,
                            estimate_tokens({"role": "system", "content": fallback_tool_prompt(self.openai_tools)}))
                step.tools_ms = (time.perf_counter() - started) * 1000
                if self._denied_and_stopped:
                    yield self._notice(result, "denied", "you denied a tool call and stopped the run; the model was "
                                       "not asked again")
                    break
                if max(repeats.values()) >= REPEAT_LIMIT:
                    result.stopped_by = "repeated_call"
                    yield self._notice(result, "repeated_call",
                                       f"the model made the same call {REPEAT_LIMIT} times with the same result; "
                                       "stopped calling tools and asked for a final answer")
                    break
            else:
                result.stopped_by = "max_iterations"
                yield self._notice(result, "max_iterations",
                                   f"reached max_iterations ({self.max_iterations}); asked for a final answer "
                                   "without tools")
            if self._denied_and_stopped:
                result.stopped_by = "denied"
            elif result.stopped_by is not None:
                final = ToolStep(len(result.steps) + 1, "off", [], False)
                async for event in self._step(client, history, final, final_answer=True):
                    if isinstance(event, LoopNotice):
                        result.notices.append(event)
                    yield event
                result.steps.append(final)
        last = result.steps[-1]
        result.final_text = last.text
        result.finish_reason = last.finish_reason
        yield LoopFinished(result)

    def _notice(self, result: ToolRunResult, kind: str, message: str) -> LoopNotice:
        notice = LoopNotice(kind, message)
        result.notices.append(notice)
        return notice

    # ----- one request -----
    async def _step(
        self, client: ChatClient, history: list[dict[str, Any]], step: ToolStep, final_answer: bool = False,
        choice: str = "auto",
    ) -> AsyncIterator[LoopEvent]:
        started = time.perf_counter()
        stream = True
        rejected: BackendStatusError | None = None  # auto mode: the 4xx a request with `tools` got
        while True:
            mode = "off" if final_answer else self.mode
            if mode == "fallback" and choice == "none":
                mode = "off"  # fallback's way of "none": no tool prompt, nothing parsed as a call
            send_tools = mode in ("native", "auto")
            params = dict(self.params)
            if not send_tools:  # it qualifies `tools` (OpenAI refuses it alone); text calls are held to it below
                params.pop("parallel_tool_calls", None)
            if send_tools and choice != "auto":
                params["tool_choice"] = choice if choice in ("required", "none") else {
                    "type": "function", "function": {"name": choice}}
            note = ""
            if mode == "fallback" and choice not in ("auto", "none"):
                forced = await self._grammar(choice)
                if isinstance(forced, tuple):
                    params["grammar"], note = forced
                elif forced is not None:
                    yield forced
                elif not self._warned_unconstrained:
                    self._warned_unconstrained = True
                    yield LoopNotice("unconstrained", "this engine cannot constrain output with a grammar: the call "
                                     f"is asked for (tool_choice {choice}) but not enforced")
            # Without `tools` in the request, earlier native calls go as text: every template renders that.
            request = history if send_tools else text_tool_turns(history)
            if mode == "fallback":
                request = with_tool_prompt(request, self.openai_tools)
            # The engine's count leaves images out: with one, the estimate (which counts them) decides.
            count = None if has_images(request) else client.count_prompt_tokens
            request = await fit_to_context(request, self.budget, count)
            step.mode, step.tools_sent, step.request_messages = mode, send_tools, [dict(m) for m in request]
            step.tool_choice, step.constrained, step.constraint_note = choice, "grammar" in params, note
            step.url = f"{client.base_url}/v1/chat/completions"
            # (a copy: the loop appends to `history`, which may be this very list)
            step.request_body = self.redact(client.chat_body(step.request_messages, params,
                                                             self.openai_tools if send_tools else None, stream))
            yield StepStarted(step.iteration, mode, send_tools, choice, step.constrained)
            try:
                async for event in self._exchange(client, request, params, send_tools, stream, step, final_answer):
                    yield event
                if rejected is not None:  # answered without `tools`: they were what the server refused
                    yield self._switch_to_fallback(f"the server rejected 'tools' (HTTP {rejected.status_code}) and "
                                                   "answered the same request without them")
                break
            except BackendStatusError as exc:
                if rejected is not None:  # refused without `tools` too: the request itself is the problem
                    self.mode = "auto"
                    raise exc if isinstance(exc, ContextOverflowError) else rejected
                if not (send_tools and mode == "auto" and _may_be_about_tools(exc)):
                    raise
                rejected = exc
                self.mode = "fallback"  # for one try; kept only if the server answers it
                yield LoopNotice("retry_without_tools", f"the server refused the request with 'tools' (HTTP "
                                 f"{exc.status_code}); asking once more without them (text tool calls)")
            except EmptyResponseError:
                if not send_tools:
                    raise
                if stream:  # known llama-cpp-python quirk with tools: retry once without streaming
                    stream = False
                    yield LoopNotice("empty_response", "empty streamed answer with tools; retrying without streaming")
                    continue
                yield self._switch_to_fallback("the server answered tool requests with an empty body")
                stream = True
        step.duration_ms = (time.perf_counter() - started) * 1000
        yield StepFinished(step.iteration, step.finish_reason, step.prompt_tokens, step.completion_tokens,
                           step.duration_ms, step)

    async def _grammar(self, choice: str) -> tuple[str, str] | LoopNotice | None:
        """The grammar forcing ``choice`` (required: any enabled tool; a name: that one) and the note saying
        what it holds the call to, where the engine takes per-request grammars (llama-server, known by its
        /props); None elsewhere. Every call it admits closes within max_tokens; where not even one can, the
        notice saying so instead (the step then runs unconstrained)."""
        if await self.runtime.engine_props(self.model_id) is None:
            return None
        tools = self.openai_tools if choice == "required" else [self.tools[choice].to_openai()]
        single = choice != "required" or self.params.get("parallel_tool_calls") is False
        max_tokens = self.params.get("max_tokens")
        needed = min_call_tokens(tools)
        if isinstance(max_tokens, int) and max_tokens < needed:
            # Not an error: the model still answers (within max_tokens), where a grammar that cannot close would
            # spend max_tokens inside a call and leave neither a call nor an answer.
            return LoopNotice("budget", f"max_tokens {max_tokens} is too small for a forced call to close (it needs "
                              f"at least {needed}); the call is asked for (tool_choice {choice}) but not enforced")
        options: dict[str, Any] = {"max_calls": 1 if single else MAX_CALLS, "max_tokens": max_tokens}
        return tool_call_grammar(tools, **options), string_cap_note(tools, **options)

    def _switch_to_fallback(self, why: str) -> LoopNotice:
        self.mode = "fallback"
        self.runtime.learned_tool_modes[self.model_id] = "fallback"
        return LoopNotice("fallback", f"{why}; using text tool calls (fallback mode) for this model from now on")

    async def _exchange(
        self, client: ChatClient, request: list[dict[str, Any]], params: dict[str, Any], send_tools: bool,
        stream: bool, step: ToolStep, final_answer: bool,
    ) -> AsyncIterator[LoopEvent]:
        parse_text = final_answer or step.mode in ("fallback", "auto")
        # Whether the answer starts inside reasoning depends on the rendered prompt (and on the server; see
        # TurnParser): without knowing, a lone </think> still makes the text before it reasoning.
        parser = TurnParser(self.openai_tools, await _prompt_opens_reasoning(client, request)) if parse_text else None
        raw: list[str] = []
        text: list[str] = []
        reasoning: list[str] = []
        native: tuple[ToolCall, ...] = ()
        sent = time.perf_counter()
        events = client.chat(request, params, self.openai_tools if send_tools else None, stream=stream)
        async for event in events:
            if isinstance(event, TextDelta):
                raw.append(event.text)
                if parser is None:
                    text.append(event.text)
                    yield event
                else:
                    for out in _visible(parser.feed(event.text), text, reasoning):
                        yield out
            elif isinstance(event, ReasoningDelta):
                if parser is not None:
                    parser.reasoning_arrived()
                reasoning.append(event.text)
                yield event
            elif isinstance(event, Usage):
                step.prompt_tokens, step.completion_tokens = event.prompt_tokens, event.completion_tokens
            elif isinstance(event, Done):
                step.finish_reason = event.finish_reason
                native = event.tool_calls
                step.native_calls = [call.to_openai() for call in native]
        step.request_ms = (time.perf_counter() - sent) * 1000
        parsed_calls: list[ToolCall] = []
        if parser is not None:
            parsed = parser.finish(truncated=step.finish_reason == "length")
            for out in _visible(parser.final_events, text, reasoning):
                yield out
            parsed_calls, step.parse_errors = parsed.calls, parsed.errors
        step.raw_text, step.text, step.reasoning = "".join(raw), "".join(text).strip(), "".join(reasoning)
        if final_answer:
            if parsed_calls or native:
                yield LoopNotice("ignored_calls", "the final answer contained tool calls; they were not run")
            return
        if native:
            step.calls = [(call, "native") for call in native]
        elif parsed_calls:
            step.calls = [(call, "fallback") for call in parsed_calls]
        if len(step.calls) > 1 and self.params.get("parallel_tool_calls") is False:
            # The server may not honour the field (or the calls came as text): the loop holds the model to it.
            dropped = [call.name for call, _ in step.calls[1:]]
            step.calls, step.dropped_calls = step.calls[:1], len(dropped)
            yield LoopNotice("parallel_tool_calls", f"parallel_tool_calls is false: ran the first of "
                             f"{len(dropped) + 1} tool calls and dropped {len(dropped)} ({', '.join(dropped)})")
        if step.calls:
            step.finish_reason = "tool_calls"

    def _assistant_turn(self, step: ToolStep) -> dict[str, Any]:
        native = step.calls[0][1] == "native"
        if native:
            return assistant_message(step.text, [c for c, _ in step.calls], native=True)
        # Fallback: the model's own tagged text, so it sees what it asked for; only the call that ran where
        # others were dropped (a call without its result would read as unanswered).
        if step.dropped_calls:
            return assistant_message("\n".join(filter(None, [step.text, raw_call_text(step.calls[0][0])])), [], False)
        return assistant_message(step.raw_text or "\n".join(raw_call_text(c) for c, _ in step.calls), [], False)

    # ----- one call -----
    async def _run_call(self, call: ToolCall) -> ToolResult:
        tool = self.tools.get(call.name)
        if tool is None:
            known = ", ".join(self.tools) or "none"
            return ToolResult(False, "", f"unknown or disabled tool '{call.name}' (enabled: {known})", 0.0)
        if call.invalid_arguments is not None:
            return ToolResult(False, "", f"{call.name}: arguments are not a JSON object: "
                                         f"{call.invalid_arguments[:200]}", 0.0)
        if self._denied_and_stopped:
            return ToolResult(False, "", f"not run: the user stopped the run before the call to '{call.name}'", 0.0)
        verdict = await approve_call(tool, call, self.before_call)  # the arguments are checked before anyone is asked
        if isinstance(verdict, ToolResult):
            return verdict
        if verdict is Approval.DENY_AND_STOP:
            self._denied_and_stopped = True
        if not verdict:
            return ToolResult(False, "", f"the user denied the call to '{call.name}'", 0.0)
        return await execute(tool, call.arguments)


def _visible(events: list[ParserEvent], text: list[str], reasoning: list[str]) -> list[TextDelta | ReasoningDelta]:
    """Parser output as stream events; completed calls are reported after the step, not here."""
    out: list[TextDelta | ReasoningDelta] = []
    for event in events:
        if type(event) is TextDelta:
            text.append(event.text)
            out.append(event)
        elif type(event) is ReasoningDelta:
            reasoning.append(event.text)
            out.append(event)
    return out


async def _prompt_opens_reasoning(client: ChatClient, request: list[dict[str, Any]]) -> bool | None:
    """Whether the prompt the server renders for ``request`` ends inside an open ``<think>`` (QwQ, Qwen3-Thinking);
    None when the server cannot render it (only llama-server has /apply-template)."""
    try:
        prompt = await client.apply_template(request)
    except BackendError:
        return None
    return None if prompt is None else prompt.rstrip().endswith("<think>")


# Statuses that never mean "this server does not take `tools`": auth, unknown model or route, timeout, size, rate.
_NOT_ABOUT_TOOLS = frozenset({401, 403, 404, 408, 413, 429})


def _may_be_about_tools(exc: BackendStatusError) -> bool:
    return 400 <= exc.status_code < 500 and exc.status_code not in _NOT_ABOUT_TOOLS and not isinstance(
        exc, ContextOverflowError)


def _capability_source(capability: Capability) -> str:
    """Where the answer came from, in words: "its engine reports that its chat template cannot render tools"."""
    said = {"declared": "its yaml entry says so", "probe": "an earlier request showed it",
            "engine": "its engine reports that its chat template cannot render tools",
            "template": "its chat template does not render tools", "metadata": "its files say so",
            "name": "guessed from its name"}.get(capability.source, capability.source)
    return f"{said}, {capability.confidence:.0%} sure"

