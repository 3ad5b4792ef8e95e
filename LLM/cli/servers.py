"""llmctl probe / servers: whether a model answers, what runs, and its logs."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

from ..core import Runtime
from ..core.servers import log_tail


def line_count(text: str) -> int:
    """`servers logs -n`: how many of the last lines to print; 0 prints none (with -f: only new lines, as
    `tail -n 0 -f`). A negative or non-numeric count is refused by argparse with a one-line usage error."""
    try:
        count = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of lines, got {text!r}") from None
    if count < 0:
        raise argparse.ArgumentTypeError(f"the number of lines cannot be negative (got {count}); "
                                         "0 prints none")
    return count


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
            memory = f"{row.memory_bytes / 2**20:.0f} MB" if row.memory_bytes else "-"
            print(f"{row.model_id:<20} {row.backend:<12} {row.state:<9} pid {pid:<8} {memory:>8}  {row.url}  "
                  f"{row.detail}")
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
