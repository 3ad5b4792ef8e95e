"""llmctl run / chat: streaming answers and tool runs to the terminal; Ctrl-C is the user's Stop."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import signal
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import aclosing, contextmanager
from pathlib import Path
from typing import TextIO, TypeVar

from ..core import (
    ApprovalDecision,
    ApprovalPolicy,
    ConfigError,
    Conversation,
    Done,
    GenerationCancelled,
    GenerationSettings,
    InferenceConfig,
    LLMError,
    LoopFinished,
    LoopNotice,
    Message,
    MetricsMeter,
    ReasoningDelta,
    Runtime,
    StepFinished,
    StepStarted,
    TextDelta,
    ToolCallEvent,
    ToolEnabledInferenceConfig,
    ToolResultEvent,
    Usage,
    absorb_user_stop,
    ainfer,
    stop_generation,
    stream_inference,
    stream_tool_inference,
)
from .history import ChatLog, format_message

T = TypeVar("T")


def _request(args: argparse.Namespace, **extra: object) -> InferenceConfig:
    fields = {k: getattr(args, k) for k in ("max_new_tokens", "temperature", "top_p", "stop", "seed")}
    return InferenceConfig(
        model_id=args.model, system_prompt=args.system, **{k: v for k, v in fields.items() if v is not None}, **extra
    )


async def cmd_run(runtime: Runtime, args: argparse.Namespace) -> int:
    if args.tools:
        return await cmd_run_tools(runtime, args)
    cfg = _request(args, prompt=args.prompt)
    if args.json:
        response = await _ctrl_c_stops(ainfer(cfg, runtime))
        print(response.model_dump_json(indent=2))
        if response.finish_reason == "cancelled":
            return 130
        return 1 if response.error_message else 0
    _, finish_reason = await _ctrl_c_stops(_stream_answer(runtime, cfg))
    return 130 if finish_reason == "cancelled" else 0


async def _ctrl_c_stops(coro: Awaitable[T]) -> T:
    """Run ``coro`` with Ctrl-C as the user's Stop: the generation ends as "cancelled", the process goes on."""
    ctrl_c = CtrlC()
    with ctrl_c.installed():
        return await ctrl_c.stops(coro)


class CtrlC:
    """What Ctrl-C does, from one SIGINT handler: set by the moment (``doing``), e.g. the user's Stop while
    an answer streams or a fresh prompt at ``you>``; ignored in between, so a Ctrl-C that lands just as an
    answer ends never quits a chat."""

    def __init__(self) -> None:
        self._react: Callable[[], object] = lambda: None

    @contextmanager
    def installed(self) -> Iterator[None]:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGINT, lambda: self._react())
        try:
            yield
        finally:
            loop.remove_signal_handler(signal.SIGINT)

    @contextmanager
    def doing(self, react: Callable[[], object]) -> Iterator[None]:
        previous, self._react = self._react, react
        try:
            yield
        finally:
            self._react = previous

    async def stops(self, coro: Awaitable[T]) -> T:
        """Await ``coro`` with Ctrl-C as the user's Stop of it."""
        task = asyncio.ensure_future(coro)
        with self.doing(lambda: stop_generation(task)):
            return await task


async def cmd_run_tools(runtime: Runtime, args: argparse.Namespace) -> int:
    """Show each step of the tool loop: the model's text, every call and result, the guards."""
    if args.workspace:
        runtime.workspace = Path(args.workspace).resolve()
    runtime.tools  # loads the user tools directory, filling tool_load_problems
    for problem in runtime.tool_load_problems:
        print(f"[tools] skipped: {problem}", file=sys.stderr)
    cfg = ToolEnabledInferenceConfig(
        **_request(args, prompt=args.prompt).model_dump(exclude={"request_id", "base_model", "adapter_dir"}),
        enable_tools=True,
        tools=[t.strip() for t in args.tools.split(",") if t.strip()],
        max_iterations=args.max_iterations,
        tool_mode=args.tool_mode,
        tool_choice=args.tool_choice,
    )

    # The core policy decides (as in the window): "a" allows a tool for the rest of this run, kept by server and
    # tool for an MCP tool; --yes allows everything.
    policy = ApprovalPolicy(allow_all=getattr(args, "yes", False))

    # With --json, stdout carries only the JSON document: the questions go to stderr with the trace.
    out = sys.stderr if args.json else sys.stdout

    async def ask(call, tool) -> ApprovalDecision:
        if tool.server is not None:  # an MCP tool: say whose it is and what it does, with the full arguments
            print(f"\n[approve] MCP server '{tool.server}' tool {call.name}: {tool.description.strip()[:300]}\n"
                  f"[approve] arguments: {json.dumps(call.arguments, ensure_ascii=False, indent=2)}", file=out)
        question = (f"\n[approve] {call.name}({json.dumps(call.arguments)})? [y/N] "
                    "(a: always in this run, s: no, and stop the run) ")
        try:  # Ctrl-C here is the run's Stop (CtrlC): the read is left to its daemon thread
            answer = await _read_line(question, out)
        except EOFError:  # stdin closed or not a terminal: nobody can approve
            print("\n[approve] no answer (stdin closed): denied", file=sys.stderr)
            return ApprovalDecision.DENY
        return _APPROVAL_ANSWERS.get(answer.strip().lower(), ApprovalDecision.DENY)

    approve = policy.hook(ask)

    try:
        await _ctrl_c_stops(_show_tool_run(runtime, cfg, approve, args.json))
    except GenerationCancelled:
        print("\n[cancelled]", file=sys.stderr if args.json else sys.stdout)
        return 130
    return 0


_APPROVAL_ANSWERS = {"y": ApprovalDecision.ONCE, "yes": ApprovalDecision.ONCE, "a": ApprovalDecision.ALWAYS,
                     "always": ApprovalDecision.ALWAYS, "s": ApprovalDecision.DENY_AND_STOP,
                     "stop": ApprovalDecision.DENY_AND_STOP}


async def _show_tool_run(runtime: Runtime, cfg: ToolEnabledInferenceConfig, approve, as_json: bool) -> None:
    text: list[str] = []
    try:
        await _print_tool_events(runtime, cfg, approve, as_json, text)
    except asyncio.CancelledError as exc:
        if not absorb_user_stop(exc):
            raise
        raise GenerationCancelled("tool run stopped by the user", "".join(text)) from None


async def _print_tool_events(runtime, cfg, approve, as_json: bool, text: list[str]) -> None:
    # With --json, stdout carries the JSON document alone (`| jq` works); the trace goes to stderr.
    out = sys.stderr if as_json else sys.stdout
    async with aclosing(stream_tool_inference(cfg, runtime, approve)) as events:
        async for event in events:
            if isinstance(event, StepStarted):
                extras = [event.mode] + (["tools sent"] if event.tools_sent else [])
                if event.tool_choice != "auto":
                    extras.append(f"tool_choice {event.tool_choice}" + (", grammar" if event.constrained else ""))
                print(f"\n--- step {event.iteration} ({', '.join(extras)})", file=out)
            elif isinstance(event, TextDelta):
                text.append(event.text)
                out.write(event.text)
            elif isinstance(event, ReasoningDelta):
                out.write(f"\033[2m{event.text}\033[0m" if out.isatty() else event.text)
            elif isinstance(event, ToolCallEvent):
                arguments = json.dumps(event.call.arguments, ensure_ascii=False)
                print(f"\n[call {event.source}] {event.call.name}({arguments})", file=out)
            elif isinstance(event, ToolResultEvent):
                r = event.result
                print(f"[result {'ok' if r.ok else 'error'} {r.duration_ms:.1f} ms] {r.text[:500]}", file=out)
            elif isinstance(event, LoopNotice):
                print(f"\n[{event.kind}] {event.message}", file=out)
            elif isinstance(event, StepFinished):
                print(f"\n[step {event.iteration}: {event.finish_reason}, {event.duration_ms:.0f} ms]", file=out)
            elif isinstance(event, LoopFinished):
                if as_json:
                    print(json.dumps(dataclasses.asdict(event.result), default=str, indent=2))
            out.flush()


async def _stream_answer(runtime: Runtime, cfg: InferenceConfig) -> tuple[str, str]:
    """Print the answer as it streams; returns the visible text and the finish reason.

    A user's stop (Ctrl-C) ends it with "[cancelled]" and finish reason "cancelled"."""
    text: list[str] = []
    finish_reason = "stop"
    try:
        await _print_answer(runtime, cfg, text)
    except asyncio.CancelledError as exc:
        if not absorb_user_stop(exc):
            raise
        sys.stdout.write("\n[cancelled]")
        finish_reason = "cancelled"
    sys.stdout.write("\n")
    sys.stdout.flush()
    return "".join(text), finish_reason


async def _print_answer(runtime: Runtime, cfg: InferenceConfig, text: list[str]) -> None:
    printer = AnswerPrinter()
    async with aclosing(stream_inference(cfg, runtime)) as events:
        async for event in events:
            printer.show(event)
            if isinstance(event, TextDelta):
                text.append(event.text)


class AnswerPrinter:
    """A streamed answer on the terminal: reasoning between [thinking] markers, the text, and why it
    ended early ([length], [stop_sequence])."""

    def __init__(self) -> None:
        self.in_reasoning = False

    def show(self, event: object) -> None:
        if isinstance(event, ReasoningDelta):
            if not self.in_reasoning:
                sys.stdout.write("[thinking] ")
                self.in_reasoning = True
            sys.stdout.write(event.text)
        elif isinstance(event, TextDelta):
            if self.in_reasoning:
                sys.stdout.write("\n[/thinking]\n")
                self.in_reasoning = False
            sys.stdout.write(event.text)
        elif isinstance(event, Done) and event.finish_reason in ("length", "stop_sequence"):
            sys.stdout.write(f"\n[{event.finish_reason}]")
        sys.stdout.flush()


# Generation flags -> the request fields they set, as an answer's ``params`` records them (as the window does).
_RECORDED_FLAGS = {"system": "system_prompt", "max_new_tokens": "max_new_tokens", "temperature": "temperature",
                   "top_p": "top_p", "stop": "stop", "seed": "seed"}
RECAP_MESSAGES = 2  # chat --resume shows the last exchange


async def cmd_chat(runtime: Runtime, args: argparse.Namespace) -> int:
    entry = runtime.entry(args.model) if args.model else None
    log = ChatLog.open(args.resume)  # before any server starts: a bad --resume fails fast
    try:
        taken = []
        if entry is None:  # --resume without -m: the saved chat's model
            args.model = _saved_model(runtime, log)
            entry = runtime.entry(args.model)
            taken.append(f"model {args.model}")
        taken += _take_saved_settings(args, log.conversation) if args.resume else []
        log.conversation.settings = _settings(args)  # saved with the chat (the Markdown export shows the system prompt)
        print(f"Chatting with {entry.label} ({entry.backend}). Starting its server if needed...", flush=True)
        await runtime.client_for(args.model)
        if args.resume:
            _recap(log.conversation, taken)
        print("Ready. Type a message; Ctrl-C stops an answer, Ctrl-D or /exit quits, /reset starts a new chat, "
              "/model ID switches the model.")
        _announce(log)
        ctrl_c = CtrlC()
        with ctrl_c.installed():
            return await _chat_loop(runtime, args, log, ctrl_c)
    finally:
        log.close()


async def _chat_loop(runtime: Runtime, args: argparse.Namespace, log: ChatLog, ctrl_c: CtrlC) -> int:
    while True:
        try:
            line = await _prompt("you> ", ctrl_c)
        except EOFError:
            print()
            return 0
        if line.strip() in ("/exit", "/quit"):
            return 0
        if line.strip() == "/reset":
            log.start_new()
            log.conversation.settings = _settings(args)
            print("(new chat; the last one stays saved)" if log.saving else "(history cleared)")
            _announce(log)
            continue
        if line.strip() == "/model" or line.strip().startswith("/model "):
            await _switch_model(runtime, args, line.strip()[len("/model"):].strip(), ctrl_c)
            continue
        if not line.strip():
            continue
        conversation = log.conversation
        log.save(conversation.add_user(line))
        answer = conversation.add_assistant(args.model)
        answer.backend = runtime.entry(args.model).backend
        answer.params = {name: getattr(args, flag) for flag, name in _RECORDED_FLAGS.items()
                         if getattr(args, flag) is not None}
        log.save(answer)
        sys.stdout.write("assistant> ")
        await ctrl_c.stops(_answer_into(runtime, args, answer, log))


async def _switch_model(runtime: Runtime, args: argparse.Namespace, model_id: str, ctrl_c: CtrlC) -> None:
    """``/model ID``: the rest of the chat goes to another model. Models sharing a running server (a base and
    its adapters) switch at once; another model's server starts first. ``/model`` alone says which is in use."""
    if not model_id:
        print(f"(using {args.model}; models: {', '.join(runtime.config.models)})")
        return
    try:
        entry = runtime.entry(model_id)
    except LLMError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return
    servers = runtime.servers
    # Its server already runs (a base and its adapters share one): nothing to start.
    shared = servers is not None and entry.launchable and servers.server(model_id).loaded
    started = time.monotonic()
    try:
        await ctrl_c.stops(runtime.client_for(model_id))
    except asyncio.CancelledError as exc:
        if not absorb_user_stop(exc):
            raise
        print(f"(still chatting with {args.model})")
        return
    except LLMError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return
    args.model = model_id
    how = "its server was running, nothing started" if shared else f"ready in {time.monotonic() - started:.1f} s"
    adapter = f", adapter {entry.adapter_name}" if entry.adapter_name else ""
    print(f"(now chatting with {entry.label}{adapter}: {how})")


async def _answer_into(runtime: Runtime, args: argparse.Namespace, answer: Message, log: ChatLog) -> None:
    """Stream one answer to the terminal and into ``answer``, saved as it grows.

    The user's stop (Ctrl-C) keeps the partial text, marked stopped; an error marks it failed (the
    next request's history leaves a failed exchange out)."""
    meter = MetricsMeter()
    printer = AnswerPrinter()
    finish_reason = "stop"
    try:
        cfg = _request(args, messages=log.conversation.history(upto=answer))
        async with aclosing(stream_inference(cfg, runtime)) as events:
            async for event in events:
                printer.show(event)
                if isinstance(event, (ReasoningDelta, TextDelta)):
                    meter.delta()
                    if isinstance(event, ReasoningDelta):
                        answer.reasoning += event.text
                    else:
                        answer.append_text(event.text)
                    answer.status = "streaming"
                    log.changed(answer)
                elif isinstance(event, Usage):
                    meter.usage(event.prompt_tokens, event.completion_tokens,
                                tokens_per_second=event.tokens_per_second)
                elif isinstance(event, Done):
                    finish_reason = event.finish_reason
        answer.status = "done"
    except asyncio.CancelledError as exc:
        if not absorb_user_stop(exc):
            raise
        sys.stdout.write("\n[cancelled]")
        answer.status, finish_reason = "stopped", "cancelled"
    except LLMError as exc:
        print(f"\nerror: {exc}", file=sys.stderr)
        answer.status, answer.error, finish_reason = "failed", str(exc), "error"
    sys.stdout.write("\n")
    sys.stdout.flush()
    answer.metrics = meter.snapshot(finish_reason)
    log.save(answer)


def _settings(args: argparse.Namespace) -> GenerationSettings:
    return GenerationSettings(system_prompt=args.system, temperature=args.temperature, top_p=args.top_p,
                              max_new_tokens=args.max_new_tokens, stop=list(args.stop or []))


def _saved_model(runtime: Runtime, log: ChatLog) -> str:
    """The model of a resumed chat's last answer; an error naming it where the config no longer has it."""
    answers = [m for m in log.conversation.messages if m.role == "assistant" and m.model_id]
    configured = f"configured: {', '.join(runtime.config.models) or 'none'}"
    if not answers:
        raise ConfigError(f"the saved chat {log.short_id} does not say which model it was with ({configured}); "
                          "pass -m MODEL")
    model_id = answers[-1].model_id
    if model_id not in runtime.config.models:
        raise ConfigError(f"the saved chat {log.short_id} was with model '{model_id}', which is no longer in the "
                          f"config ({configured}); pass -m MODEL to go on with one of them")
    return model_id


def _take_saved_settings(args: argparse.Namespace, conversation: Conversation) -> list[str]:
    """A resumed chat keeps its system prompt and sampling settings; a flag given now wins.
    Returns what was taken from the saved chat, for the user to see."""
    saved = conversation.settings
    taken = []
    for flag, value, label in (("system", saved.system_prompt, "system prompt"),
                               ("temperature", saved.temperature, "temperature"), ("top_p", saved.top_p, "top-p"),
                               ("max_new_tokens", saved.max_new_tokens, "max tokens"),
                               ("stop", saved.stop or None, "stop sequences")):
        if getattr(args, flag) is None and value is not None:
            setattr(args, flag, value)
            taken.append(label)
    return taken


def _recap(conversation: Conversation, settings_taken: list[str]) -> None:
    """What a resumed chat was about: its title and its last exchange."""
    path = conversation.messages
    shown = path[-RECAP_MESSAGES:]
    last = f", the last {len(shown)} below" if len(path) > len(shown) else ""
    print(f"Resuming \"{conversation.title}\" ({len(path)} message{'' if len(path) == 1 else 's'}{last}):")
    for message in shown:
        print(format_message(message))
    if settings_taken:
        print(f"(from the saved chat: {', '.join(settings_taken)}; a flag given now overrides one)")


def _announce(log: ChatLog) -> None:
    if log.saving:
        print(f"Saving as {log.short_id} (llmctl chat --resume {log.short_id})")


async def _prompt(prompt: str, ctrl_c: CtrlC) -> str:
    """The next line typed at ``prompt`` (without its newline); EOFError at the end of input (Ctrl-D).

    The terminal has already dropped a half-typed line when Ctrl-C arrives (a tty in canonical mode flushes
    its input on ^C): a fresh prompt is all it takes, and the same read goes on with the next line. GNU
    readline is deliberately not used: it keeps typed text in its own buffer, which a Ctrl-C seen on another
    thread cannot clear.
    """

    def fresh_prompt() -> None:
        sys.stdout.write("\n" + prompt)
        sys.stdout.flush()

    with ctrl_c.doing(fresh_prompt):
        return await _read_line(prompt)


async def _read_line(prompt: str, out: TextIO | None = None) -> str:
    """The next line typed after ``prompt`` is written to ``out`` (stdout by default), without its newline;
    EOFError at the end of input.

    The line is read in a daemon thread, so the event loop goes on meanwhile (servers' idle timers, MCP
    servers, Ctrl-C handled by ``CtrlC``: a signal never reaches that thread), and a read still waiting when
    the awaiting task is cancelled never holds the process at exit.
    """
    out = out or sys.stdout
    loop = asyncio.get_running_loop()
    line: asyncio.Future[str] = loop.create_future()

    def settle(text: str, error: BaseException | None) -> None:
        if line.done():
            return
        if error is not None:
            line.set_exception(error)
        else:
            line.set_result(text)

    def read() -> None:
        text, error = "", None
        try:
            text = sys.stdin.readline()
        except OSError as exc:  # stdin unreadable: llmctl reports it in one line
            error = exc
        except (AttributeError, ValueError):  # no stdin, or a closed one: the end of input
            pass
        try:
            loop.call_soon_threadsafe(settle, text, error)
        except RuntimeError:
            pass  # the loop is gone: nobody waits for this line any more

    out.write(prompt)
    out.flush()
    threading.Thread(target=read, name="llmctl-prompt", daemon=True).start()
    text = await line
    if not text:
        raise EOFError
    return text[:-1] if text.endswith("\n") else text
