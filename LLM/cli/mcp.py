"""llmctl mcp: the MCP servers of mcp.json with their state and tools, one tool call for debugging, imports."""

from __future__ import annotations

import argparse
import json
import sys

from ..core import Runtime
from ..core.mcp import McpManager, McpState, present_sources


def add_mcp_parser(sub: argparse._SubParsersAction) -> None:
    mcp = sub.add_parser("mcp", help="MCP tool servers (mcp.json): list, call a tool, import from other apps")
    actions = mcp.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="start the enabled servers; show each with its state and tools")
    listing.add_argument("--json", action="store_true", help="print the servers as JSON")
    call = actions.add_parser("call", help="call one tool directly (no model, no approval): for debugging a server")
    call.add_argument("server")
    call.add_argument("tool", help="the server's own name for the tool (e.g. read_file, not files__read_file)")
    call.add_argument("arguments", nargs="?", default="{}", help="the arguments as a JSON object (default {})")
    imports = actions.add_parser("import", help="copy servers from Claude Desktop, Cursor or LM Studio into mcp.json")
    imports.add_argument("--from", dest="app", choices=["claude", "cursor", "lmstudio"],
                         help="only this app (default: every app whose file is present)")


async def cmd_mcp(runtime: Runtime, args: argparse.Namespace) -> int:
    manager = runtime.mcp or McpManager.from_path()
    runtime.tools  # the registry the MCP tools join, so their names are the loop's
    if args.action == "list":
        return await _list(manager, args.json)
    if args.action == "call":
        return await _call(manager, args)
    return _import(manager, args.app)


async def _list(manager: McpManager, as_json: bool) -> int:
    if manager.config_problem:
        print(f"error: {manager.config_problem}", file=sys.stderr)
        return 1
    await manager.start_all(wait=True)
    statuses = manager.statuses()
    if as_json:
        rows = [{"name": s.name, "state": "disabled" if not s.enabled else s.state.value, "transport": s.transport,
                 "target": s.target, "error": s.error, "collisions": list(manager.collisions),
                 "tools": [{"name": t.name, "tool": t.tool, "description": t.description, "enabled": t.enabled,
                            "auto_approved": t.auto_approved} for t in s.tools]} for s in statuses]
        rows += [{"name": name, "state": "invalid", "error": problems[0]}
                 for name, problems in manager.config.invalid.items()]
        print(json.dumps({"config": str(manager.path), "servers": rows}, indent=2))
        return 0
    count = len(statuses) + len(manager.config.invalid)
    print(f"{manager.path}: {count} server{'' if count == 1 else 's'}")
    if not count:
        print("add servers there in the \"mcpServers\" format other apps use (see the README), or "
              "`llmctl mcp import` them from Claude Desktop, Cursor or LM Studio")
    for status in statuses:
        state = "disabled" if not status.enabled else status.state.value
        print(f"{status.name:<20} {state:<9} {status.transport:<6} {status.target}")
        if status.state is McpState.FAILED:
            print(f"{'':<20} {_reason(status)}")
        for spec in status.tools:
            marks = [m for m, on in (("disabled", not spec.enabled), ("auto-approved", spec.auto_approved)) if on]
            extra = f"  [{', '.join(marks)}]" if marks else ""
            summary = spec.description.strip().splitlines()[0] if spec.description.strip() else ""
            print(f"  {spec.name:<34} {summary[:70]}{extra}")
    for name, problems in manager.config.invalid.items():
        print(f"{name:<20} {'invalid':<9} {problems[0]}")
    for collision in manager.collisions:
        print(f"note: {collision}")
    return 0


async def _call(manager: McpManager, args: argparse.Namespace) -> int:
    try:
        arguments = json.loads(args.arguments)
    except json.JSONDecodeError as exc:
        print(f"error: the arguments are not JSON: {exc}", file=sys.stderr)
        return 2
    if not isinstance(arguments, dict):
        print("error: the arguments must be a JSON object, e.g. '{\"a\": 1}'", file=sys.stderr)
        return 2
    await manager.ensure_started([args.server])
    status = manager.status(args.server)
    if status.state is not McpState.READY:
        print(f"error: {args.server}: {_reason(status)}", file=sys.stderr)
        return 1
    result = await manager.call(args.server, args.tool, arguments)
    print(result.text)
    return 0 if result.ok else 1


def _import(manager: McpManager, app: str | None) -> int:
    sources = [s for s in present_sources() if app is None or s.app == app]
    if not sources:
        print(f"no {app or 'Claude Desktop, Cursor or LM Studio'} MCP config found on this machine")
        return 1
    for source in sources:
        added, skipped = manager.import_from(source)
        print(f"{source.label} ({source.path}): added {', '.join(added) or 'nothing'}"
              + (f"; already in {manager.path.name}: {', '.join(skipped)}" if skipped else ""))
    return 0


def _reason(status) -> str:
    """Why a server is not ready, on one line: the reason and the last line it wrote to stderr."""
    reason = status.detail or status.state.value
    return f"{reason} (stderr: {status.stderr_tail[-1]})" if status.stderr_tail else reason
