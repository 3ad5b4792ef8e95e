"""llmctl's command line: the parser and the dispatch; each command lives in the module named for it."""

from __future__ import annotations

import argparse
import asyncio
import sys

from ..core import LLMError, Runtime
from .answers import cmd_chat, cmd_run
from .engine import add_engine_parser, cmd_engine
from .evaluate import add_eval_parser, cmd_eval
from .report_cards import cmd_report_cards
from .history import add_history_parser, cmd_history
from .mcp import add_mcp_parser, cmd_mcp
from .models import add_models_parser, cmd_models
from .serve import add_serve_parser, cmd_serve, cmd_token
from .servers import cmd_probe, cmd_servers, line_count


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="llmctl", description="Local LLM workbench command line")
    parser.add_argument("--config", help="path to llm_backends.yaml (default: see README)")
    sub = parser.add_subparsers(dest="command", required=True)

    add_models_parser(sub)

    run = sub.add_parser("run", help="answer one prompt, streaming to stdout")
    run.add_argument("-m", "--model", required=True)
    run.add_argument("prompt")
    run.add_argument("--file", "-f", dest="files", action="append", default=[], metavar="PATH",
                     help="attach a file (repeatable): an image for a vision model, or a text, code, Markdown, CSV, "
                          "JSON or PDF document, sent as text")
    run.add_argument("--json", action="store_true", help="print the InferenceResponse (or tool run) as JSON")
    run.add_argument("--tools", help="comma-separated tools to enable, e.g. calculator,get_current_time")
    run.add_argument("--tool-mode", choices=["auto", "native", "fallback", "off"], help="override the model's mode")
    run.add_argument("--tool-choice", default="auto", metavar="auto|required|none|TOOL",
                     help="force a call (required), forbid calls (none) or force one tool by name (default: auto)")
    run.add_argument("--max-iterations", type=int, default=8)
    run.add_argument("--workspace", help="directory the file tools are confined to (default: current directory)")
    run.add_argument("--no-save", action="store_true",
                     help="keep this prompt out of the history (by default it is saved: llmctl chat --resume ID)")
    run.add_argument("--yes", action="store_true",
                     help="run tools that ask for approval (MCP tools, write_file) without asking")
    _generation_flags(run)

    chat = sub.add_parser("chat", help="interactive chat (Ctrl-C stops an answer, Ctrl-D quits)")
    chat.add_argument("-m", "--model", help="required unless --resume (default then: the saved chat's model)")
    chat.add_argument("--resume", metavar="ID",
                      help="continue a saved conversation (an id or a unique prefix, see `llmctl history list`)")
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
    logs.add_argument("-n", "--lines", type=line_count, default=40, help="how many of the last lines (default 40; "
                      "0: none, e.g. with -f to see only what comes)")
    add_engine_parser(sub)
    add_history_parser(sub)
    add_eval_parser(sub)
    add_mcp_parser(sub)
    add_serve_parser(sub)
    return parser


def _generation_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--system", help="system prompt")
    parser.add_argument("--max-tokens", type=int, dest="max_new_tokens")
    parser.add_argument("--temperature", type=float)
    parser.add_argument("--top-p", type=float, dest="top_p")
    parser.add_argument("--stop", action="append", help="stop sequence (repeatable)")
    parser.add_argument("--seed", type=int)


async def _main(args: argparse.Namespace) -> int:
    runtime = Runtime.from_config_path(args.config)
    try:
        if args.command == "models":
            return await cmd_models(runtime, args, args.config)
        if args.command == "run":
            return await cmd_run(runtime, args)
        if args.command == "chat":
            return await cmd_chat(runtime, args)
        if args.command == "probe":
            return await cmd_probe(runtime, args)
        if args.command == "engine":
            return await cmd_engine(runtime, args)
        if args.command == "eval":
            return await cmd_eval(runtime, args)
        if args.command == "mcp":
            return await cmd_mcp(runtime, args)
        if args.command == "serve":
            return await cmd_serve(runtime, args)
        return await cmd_servers(runtime, args)
    finally:
        await runtime.aclose()


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "chat" and not args.model and not args.resume:
        parser.error("chat: -m/--model is required (with --resume ID it defaults to the saved chat's model)")
    try:
        if args.command == "history":  # the store only: works without a model config and starts nothing
            return cmd_history(args)
        if args.command == "serve" and args.action == "token":
            return cmd_token(args)
        if args.command == "eval" and args.kind != "tools":  # report cards in the history: no config needed
            return cmd_report_cards(args)
        return asyncio.run(_main(args))
    except LLMError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    except (OSError, EOFError) as exc:  # the machine said no (a permission, a closed stdin): one line, no traceback
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
