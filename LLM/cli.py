"""llmctl: models, one-shot runs, interactive chat, probes and server control from a terminal."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import signal
import sys
import time
from collections.abc import Awaitable
from contextlib import aclosing
from pathlib import Path
from typing import TypeVar

from .core import (
    Done,
    GenerationCancelled,
    InferenceConfig,
    LLMError,
    LoopFinished,
    LoopNotice,
    ReasoningDelta,
    Runtime,
    StepFinished,
    StepStarted,
    TextDelta,
    ToolCallEvent,
    ToolEnabledInferenceConfig,
    ToolResultEvent,
    absorb_user_stop,
    ainfer,
    log_tail,
    stop_generation,
    stream_inference,
    stream_tool_inference,
)

T = TypeVar("T")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="llmctl", description="Local LLM workbench command line")
    parser.add_argument("--config", help="path to llm_backends.yaml (default: see README)")
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("models", help="list configured models with backend and server status")

    run = sub.add_parser("run", help="answer one prompt, streaming to stdout")
    run.add_argument("-m", "--model", required=True)
    run.add_argument("prompt")
    run.add_argument("--json", action="store_true", help="print the InferenceResponse (or tool run) as JSON")
    run.add_argument("--tools", help="comma-separated tools to enable, e.g. calculator,get_current_time")
    run.add_argument("--tool-mode", choices=["auto", "native", "fallback", "off"], help="override the model's mode")
    run.add_argument("--max-iterations", type=int, default=8)
    run.add_argument("--workspace", help="directory the file tools are confined to (default: current directory)")
    _generation_flags(run)

    chat = sub.add_parser("chat", help="interactive chat (Ctrl-C stops an answer, Ctrl-D quits)")
    chat.add_argument("-m", "--model", required=True)
    _generation_flags(chat)

    probe = sub.add_parser("probe", help="check that a model's server answers")
    probe.add_argument("-m", "--model", required=True)

    servers = sub.add_parser("servers", help="manage model servers")
    servers_sub = servers.add_subparsers(dest="action", required=True)
    servers_sub.add_parser("status")
    start = servers_sub.add_parser("start", help="start a server and leave it running (until `servers stop`)")
    start.add_argument("model")
    stop = servers_sub.add_parser("stop")
    stop.add_argument("model", nargs="?")
    stop.add_argument("--all", action="store_true")
    logs = servers_sub.add_parser("logs")
    logs.add_argument("model")
    logs.add_argument("-f", "--follow", action="store_true")
    logs.add_argument("-n", "--lines", type=int, default=40)
    return parser


def _generation_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--system", help="system prompt")
    parser.add_argument("--max-tokens", type=int, dest="max_new_tokens")
    parser.add_argument("--temperature", type=float)
    parser.add_argument("--top-p", type=float, dest="top_p")
    parser.add_argument("--stop", action="append", help="stop sequence (repeatable)")
    parser.add_argument("--seed", type=int)


def _request(args: argparse.Namespace, **extra: object) -> InferenceConfig:
    fields = {k: getattr(args, k) for k in ("max_new_tokens", "temperature", "top_p", "stop", "seed")}
    return InferenceConfig(
        model_id=args.model, system_prompt=args.system, **{k: v for k, v in fields.items() if v is not None}, **extra
    )


async def cmd_models(runtime: Runtime) -> int:
    rows = {row.model_id: row for row in runtime.servers.status()} if runtime.servers else {}
    for model_id, entry in runtime.config.models.items():
        row = rows.get(model_id)
        state = row.state if row else "-"
        print(f"{model_id:<20} {entry.backend:<12} {state:<10} {entry.label}")
    for model_id, problems in runtime.config.invalid.items():
        print(f"{model_id:<20} {'invalid':<12} {'-':<10} {problems[0]}")
    return 0


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
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(coro)
    loop.add_signal_handler(signal.SIGINT, stop_generation, task)
    try:
        return await task
    finally:
        loop.remove_signal_handler(signal.SIGINT)


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
    )

    async def approve(call, tool) -> bool:
        question = f"\n[approve] {call.name}({json.dumps(call.arguments)})? [y/N] "
        try:
            answer = await asyncio.get_running_loop().run_in_executor(None, input, question)
        except EOFError:  # stdin closed or not a terminal: nobody can approve
            print("\n[approve] no answer (stdin closed): denied", file=sys.stderr)
            return False
        return answer.strip().lower() in ("y", "yes")

    try:
        await _ctrl_c_stops(_show_tool_run(runtime, cfg, approve, args.json))
    except GenerationCancelled:
        print("\n[cancelled]")
        return 130
    return 0


async def _show_tool_run(runtime: Runtime, cfg: ToolEnabledInferenceConfig, approve, as_json: bool) -> None:
    text: list[str] = []
    try:
        await _print_tool_events(runtime, cfg, approve, as_json, text)
    except asyncio.CancelledError as exc:
        if not absorb_user_stop(exc):
            raise
        raise GenerationCancelled("tool run stopped by the user", "".join(text)) from None


async def _print_tool_events(runtime, cfg, approve, as_json: bool, text: list[str]) -> None:
    async with aclosing(stream_tool_inference(cfg, runtime, approve)) as events:
        async for event in events:
            if isinstance(event, StepStarted):
                print(f"\n--- step {event.iteration} ({event.mode}{', tools sent' if event.tools_sent else ''})")
            elif isinstance(event, TextDelta):
                text.append(event.text)
                sys.stdout.write(event.text)
            elif isinstance(event, ReasoningDelta):
                sys.stdout.write(f"\033[2m{event.text}\033[0m" if sys.stdout.isatty() else event.text)
            elif isinstance(event, ToolCallEvent):
                print(f"\n[call {event.source}] {event.call.name}({json.dumps(event.call.arguments, ensure_ascii=False)})")
            elif isinstance(event, ToolResultEvent):
                r = event.result
                print(f"[result {'ok' if r.ok else 'error'} {r.duration_ms:.1f} ms] {r.text[:500]}")
            elif isinstance(event, LoopNotice):
                print(f"\n[{event.kind}] {event.message}")
            elif isinstance(event, StepFinished):
                print(f"\n[step {event.iteration}: {event.finish_reason}, {event.duration_ms:.0f} ms]")
            elif isinstance(event, LoopFinished):
                if as_json:
                    print(json.dumps(dataclasses.asdict(event.result), default=str, indent=2))
            sys.stdout.flush()


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
    in_reasoning = False
    async with aclosing(stream_inference(cfg, runtime)) as events:
        async for event in events:
            if isinstance(event, ReasoningDelta):
                if not in_reasoning:
                    sys.stdout.write("[thinking] ")
                    in_reasoning = True
                sys.stdout.write(event.text)
            elif isinstance(event, TextDelta):
                if in_reasoning:
                    sys.stdout.write("\n[/thinking]\n")
                    in_reasoning = False
                text.append(event.text)
                sys.stdout.write(event.text)
            elif isinstance(event, Done) and event.finish_reason in ("length", "stop_sequence"):
                sys.stdout.write(f"\n[{event.finish_reason}]")
            sys.stdout.flush()


async def cmd_chat(runtime: Runtime, args: argparse.Namespace) -> int:
    entry = runtime.entry(args.model)
    print(f"Chatting with {entry.label} ({entry.backend}). Starting its server if needed...", flush=True)
    await runtime.client_for(args.model)
    print("Ready. Type a message; Ctrl-C stops an answer, Ctrl-D or /exit quits, /reset clears history.")
    history: list[dict[str, str]] = []
    loop = asyncio.get_running_loop()
    while True:
        try:
            line = await loop.run_in_executor(None, _read_line, "you> ")
        except EOFError:
            print()
            return 0
        if line is None:
            continue  # Ctrl-C at the prompt: just a fresh prompt
        if line.strip() in ("/exit", "/quit"):
            return 0
        if line.strip() == "/reset":
            history.clear()
            print("(history cleared)")
            continue
        if not line.strip():
            continue
        history.append({"role": "user", "content": line})
        sys.stdout.write("assistant> ")
        try:
            answer, finish_reason = await _ctrl_c_stops(_stream_answer(runtime, _request(args, messages=list(history))))
        except LLMError as exc:
            print(f"\nerror: {exc}", file=sys.stderr)
            history.pop()
            continue
        if finish_reason == "cancelled":
            history.pop()  # a stopped exchange is not part of the conversation
        else:
            history.append({"role": "assistant", "content": answer})


def _read_line(prompt: str) -> str | None:
    try:
        return input(prompt)
    except KeyboardInterrupt:
        print()
        return None


async def cmd_probe(runtime: Runtime, args: argparse.Namespace) -> int:
    client = await runtime.client_for(args.model)
    report = await client.probe()
    for step in report.steps:
        print(f"{'ok  ' if step.ok else 'FAIL'} {step.name}: {step.message}")
    return 0 if report.ok else 1


async def cmd_servers(runtime: Runtime, args: argparse.Namespace) -> int:
    manager = runtime.servers
    assert manager is not None
    if args.action == "status":
        for row in manager.status():
            pid = str(row.pid) if row.pid else "-"
            print(f"{row.model_id:<20} {row.backend:<12} {row.state:<9} pid {pid:<8} {row.url}  {row.detail}")
    elif args.action == "start":
        started = time.monotonic()
        await manager.ensure_ready(args.model, detach=True)
        print(f"{args.model}: ready in {time.monotonic() - started:.1f} s (left running; `llmctl servers stop {args.model}`)")
    elif args.action == "stop":
        if args.all:
            await manager.stop_all()
            print("all servers stopped")
        elif args.model:
            runtime.entry(args.model)
            await manager.stop(args.model)
            print(f"{args.model}: stopped")
        else:
            print("error: name a model or pass --all", file=sys.stderr)
            return 2
    elif args.action == "logs":
        runtime.entry(args.model)
        return await _show_log(manager.log_path(args.model), args.lines, args.follow)
    return 0


async def _show_log(path: Path, lines: int, follow: bool) -> int:
    if not path.exists():
        print(f"no log yet: {path}")
        return 0 if not follow else 1
    for line in log_tail(path, lines):
        print(line)
    if follow:
        with open(path, encoding="utf-8", errors="replace") as f:
            f.seek(0, 2)
            while True:
                chunk = f.read()
                if chunk:
                    sys.stdout.write(chunk)
                    sys.stdout.flush()
                else:
                    await asyncio.sleep(0.25)
    return 0


async def _main(args: argparse.Namespace) -> int:
    runtime = Runtime.from_config_path(args.config)
    try:
        if args.command == "models":
            return await cmd_models(runtime)
        if args.command == "run":
            return await cmd_run(runtime, args)
        if args.command == "chat":
            return await cmd_chat(runtime, args)
        if args.command == "probe":
            return await cmd_probe(runtime, args)
        return await cmd_servers(runtime, args)
    finally:
        await runtime.aclose()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return asyncio.run(_main(args))
    except LLMError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
