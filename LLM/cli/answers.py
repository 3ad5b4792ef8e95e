"""llmctl run / chat: a chat session (core's ``ChatSession``) driven from the terminal; Ctrl-C is the user's Stop.

Both save what they answer in the history, as the window does: ``llmctl chat --resume ID`` (or the window's
sidebar) goes on with it; ``--no-save`` (run) keeps a one-off prompt out of it.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import sys
import time
from pathlib import Path

from ..core import (
    ConfigError,
    Conversation,
    GenerationSettings,
    InferenceConfig,
    LLMError,
    Runtime,
    ToolEnabledInferenceConfig,
    absorb_user_stop,
    response_for,
)
from ..core.attachments import Attachment, human_size, load_attachment
from ..core.session import ChatSession, Request
from ..core.tools import ApprovalDecision
from .history import SHORT_ID, ChatLog, format_message
from .session_view import TerminalView
from .terminal import CtrlC, prompt_line, read_line


def _request(args: argparse.Namespace, **extra: object) -> InferenceConfig:
    """The request the flags describe: checked before anything starts or is saved (a bad flag is one line)."""
    fields = {k: getattr(args, k) for k in ("max_new_tokens", "temperature", "top_p", "stop", "seed")}
    return InferenceConfig(
        model_id=args.model, system_prompt=args.system, **{k: v for k, v in fields.items() if v is not None}, **extra
    )


async def cmd_run(runtime: Runtime, args: argparse.Namespace) -> int:
    """One prompt, answered by a session of its own (with tools: the tool loop, each step shown). A base model
    continues the prompt as written, and that is no chat: it is not saved."""
    base = runtime.entry(args.model).model_type == "base"  # an unknown model is one line before anything starts
    cfg = _request(args, prompt=args.prompt)
    files = await asyncio.to_thread(lambda: [load_attachment(path) for path in args.files])  # a bad file: one line
    if args.tools:
        cfg = _tool_request(runtime, args, cfg)
        await runtime.ensure_tools(cfg.tools)  # MCP tools: a server that cannot start is one line, nothing saved
    # With --json, stdout carries only the JSON document (`| jq` works): a tool run's trace goes to stderr, an
    # answer's text only into the document.
    view = TerminalView(sys.stderr if args.json else sys.stdout, show_answer=not args.json or bool(args.tools))
    kind = "tools" if args.tools else "chat"
    log = None if args.no_save or base else ChatLog.open(None, kind=kind, quiet=args.json)
    try:
        session = ChatSession(runtime, kind=kind, saver=log.saver if log else None, on_change=view,
                              ask_approval=_asker(view.trace), allow_all=args.yes)
        _configure(session, args)
        await session.check_files(files)  # an image without vision, a file for a base model: one line, nothing saved
        start = session.continue_text if base else lambda text: session.send(text, files)
        request = await _answer(session, lambda: start(args.prompt), CtrlC())
    finally:
        if log is not None:
            log.close()
    status = request.message.status
    failed = status == "failed"
    if args.json and args.tools and request.recorder.result is not None:
        print(json.dumps(dataclasses.asdict(request.recorder.result), default=str, indent=2))
    elif args.json and not args.tools:
        response = response_for(cfg, runtime, request.recorder, request.id)
        print(response.model_dump_json(indent=2))
        failed = failed or (status != "stopped" and response.error_message is not None)  # e.g. max tokens spent
    if log is not None and log.saving and not failed and not view.warned:  # a failure says so in one line
        resume = session.conversation.id[:SHORT_ID]
        print(f"(saved as {resume}: llmctl chat --resume {resume})", file=sys.stderr)
    return 130 if status == "stopped" else 1 if failed else 0


def _tool_request(runtime: Runtime, args: argparse.Namespace, cfg: InferenceConfig) -> ToolEnabledInferenceConfig:
    if args.workspace:
        runtime.workspace = Path(args.workspace).resolve()
    runtime.tools  # loads the user tools directory, filling tool_load_problems
    for problem in runtime.tool_load_problems:
        print(f"[tools] skipped: {problem}", file=sys.stderr)
    return ToolEnabledInferenceConfig(
        **cfg.model_dump(exclude={"request_id", "base_model", "adapter_dir"}), enable_tools=True,
        tools=_tool_names(args), max_iterations=args.max_iterations, tool_mode=args.tool_mode,
        tool_choice=args.tool_choice)


def _tool_names(args: argparse.Namespace) -> list[str]:
    return [t.strip() for t in args.tools.split(",") if t.strip()]


def _configure(session: ChatSession, args: argparse.Namespace) -> None:
    """The flags as the session's model, settings and (for a tool run) tool options."""
    session.set_model(args.model)
    session.conversation.settings = _settings(args)
    session.seed = args.seed
    if getattr(args, "tools", None):
        options = session.tool_options
        options.tools, options.max_iterations = _tool_names(args), args.max_iterations
        options.tool_mode, options.tool_choice = args.tool_mode, args.tool_choice


async def _answer(session: ChatSession, start, ctrl_c: CtrlC) -> Request:
    """Start an answer and wait for it, with Ctrl-C as the session's Stop (the partial answer is kept)."""
    with ctrl_c.installed(), ctrl_c.doing(session.stop):
        request = start()
        await session.wait()
    return request


def _asker(out):
    """The approval question of a tool run, asked on the terminal: y (once), a (always in this run), N, s (deny
    and stop the run). With --json it goes to stderr with the trace."""

    async def ask(call, tool) -> ApprovalDecision:
        if tool.server is not None:  # an MCP tool: say whose it is and what it does, with the full arguments
            print(f"\n[approve] MCP server '{tool.server}' tool {call.name}: {tool.description.strip()[:300]}\n"
                  f"[approve] arguments: {json.dumps(call.arguments, ensure_ascii=False, indent=2)}", file=out)
        question = (f"\n[approve] {call.name}({json.dumps(call.arguments)})? [y/N] "
                    "(a: always in this run, s: no, and stop the run) ")
        try:  # Ctrl-C here is the run's Stop: the read is left to its daemon thread
            answer = await read_line(question, out)
        except EOFError:  # stdin closed or not a terminal: nobody can approve
            print("\n[approve] no answer (stdin closed): denied", file=sys.stderr)
            return ApprovalDecision.DENY
        return _APPROVAL_ANSWERS.get(answer.strip().lower(), ApprovalDecision.DENY)

    return ask


_APPROVAL_ANSWERS = {"y": ApprovalDecision.ONCE, "yes": ApprovalDecision.ONCE, "a": ApprovalDecision.ALWAYS,
                     "always": ApprovalDecision.ALWAYS, "s": ApprovalDecision.DENY_AND_STOP,
                     "stop": ApprovalDecision.DENY_AND_STOP}
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
        print(f"Chatting with {entry.label} ({entry.backend}). Starting its server if needed...", flush=True)
        await runtime.client_for(args.model)
        if args.resume:
            _recap(log.conversation, taken)
        print("Ready. Type a message; Ctrl-C stops an answer, Ctrl-D or /exit quits, /reset starts a new chat, "
              "/model ID switches the model, /attach PATH adds a file to your next message.")
        view = TerminalView()
        session = ChatSession(runtime, saver=log.saver, on_change=view)
        session.open(log.conversation)
        _configure(session, args)  # saved with the chat (the Markdown export shows the system prompt)
        _announce(log, session.conversation)
        ctrl_c = CtrlC()
        with ctrl_c.installed():
            return await _chat_loop(runtime, args, session, view, log, ctrl_c)
    finally:
        log.close()


async def _chat_loop(runtime: Runtime, args: argparse.Namespace, session: ChatSession, view: TerminalView,
                     log: ChatLog, ctrl_c: CtrlC) -> int:
    files: list[Attachment] = []  # attached with /attach, sent with the next message
    while True:
        try:
            line = await prompt_line("you> ", ctrl_c)
        except EOFError:
            print()
            return 0
        command = line.strip()
        if command in ("/exit", "/quit"):
            return 0
        if command == "/reset":
            session.new_chat()
            session.conversation.settings = _settings(args)
            print("(new chat; the last one stays saved)" if log.saving else "(history cleared)")
            _announce(log, session.conversation)
            continue
        if command == "/model" or command.startswith("/model "):
            if await _switch_model(runtime, args, command[len("/model"):].strip(), ctrl_c):
                session.set_model(args.model)
            continue
        if command == "/attach" or command.startswith("/attach "):
            await _attach(session, command[len("/attach"):].strip(), files)
            continue
        if command == "/detach":
            print(f"(removed {len(files)} file(s) from your next message)" if files else "(no file attached)")
            files.clear()
            continue
        if not command:
            continue
        sys.stdout.write("assistant> ")
        view.line_open = True
        with ctrl_c.doing(session.stop):
            session.send(line, files)
            files.clear()
            await session.wait()


async def _attach(session: ChatSession, path: str, files: list[Attachment]) -> None:
    """``/attach PATH``: a file for the next message, checked now (read, its type, the model's vision); ``/attach``
    alone lists what is attached."""
    if not path:
        print("\n".join(f"  {a.name} ({a.media.label}, {human_size(a.size)})" for a in files) or
              "(no file attached: /attach PATH adds one)")
        return
    try:
        attachment = await asyncio.to_thread(load_attachment, Path(path.strip("'\"")))
        await session.check_files([attachment])
    except LLMError as exc:
        print(f"error: {exc}")
        return
    files.append(attachment)
    print(f"(attached {attachment.name}: {attachment.media.label}, {human_size(attachment.size)}; it goes with your "
          f"next message, /detach removes every file)")


async def _switch_model(runtime: Runtime, args: argparse.Namespace, model_id: str, ctrl_c: CtrlC) -> bool:
    """``/model ID``: the rest of the chat goes to another model (True once it is ready). Models sharing a running server (a base and
    its adapters) switch at once; another model's server starts first. ``/model`` alone says which is in use."""
    if not model_id:
        print(f"(using {args.model}; models: {', '.join(runtime.config.models)})")
        return False
    try:
        entry = runtime.entry(model_id)
    except LLMError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return False
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
        return False
    except LLMError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return False
    args.model = model_id
    how = "its server was running, nothing started" if shared else f"ready in {time.monotonic() - started:.1f} s"
    adapter = f", adapter {entry.adapter_name}" if entry.adapter_name else ""
    print(f"(now chatting with {entry.label}{adapter}: {how})")
    return True


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


def _announce(log: ChatLog, conversation: Conversation) -> None:
    if log.saving:
        short_id = conversation.id[:SHORT_ID]
        print(f"Saving as {short_id} (llmctl chat --resume {short_id})")


