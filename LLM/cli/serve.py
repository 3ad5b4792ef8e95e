"""llmctl serve: one OpenAI-compatible endpoint over every configured model, for other apps; and its token."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import time

from ..core import Runtime
from ..core.router import ModelEndpoint, RoutedRequest, TokenFile, rotate_token


def add_serve_parser(sub: argparse._SubParsersAction) -> None:
    serve = sub.add_parser("serve", help="serve every configured model to other apps on one OpenAI-compatible "
                                         "endpoint (token required; Ctrl-C stops)")
    serve.add_argument("--port", type=int, help="port to listen on (default: endpoint.port in the yaml, 8484)")
    serve.add_argument("--host", help="address to bind (default 127.0.0.1: this machine only; 0.0.0.0 opens it "
                                      "to the network, still behind the token)")
    actions = serve.add_subparsers(dest="action")
    token = actions.add_parser("token", help="print the endpoint's bearer token")
    token.add_argument("--rotate", action="store_true", help="replace it (the old one stops working at once)")


def cmd_token(args: argparse.Namespace) -> int:
    """The token alone: needs no config and starts nothing."""
    print(rotate_token() if args.rotate else TokenFile().current())
    return 0


async def cmd_serve(runtime: Runtime, args: argparse.Namespace) -> int:
    endpoint = ModelEndpoint(runtime, host=args.host, port=args.port)
    await endpoint.start()
    endpoint.activity.add_listener(_log_line)
    count = len(runtime.config.models)
    print(f"Serving {count} model{'' if count == 1 else 's'} on {endpoint.url}")
    print("  token: `llmctl serve token` prints it (send it as 'Authorization: Bearer <token>')")
    print(f"  models: {', '.join(runtime.config.models)}")
    print("Ctrl-C stops the endpoint and the models it started.", flush=True)
    task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    if task is not None:
        loop.add_signal_handler(signal.SIGTERM, task.cancel)
    try:
        await asyncio.Event().wait()
    finally:
        loop.remove_signal_handler(signal.SIGTERM)
        await endpoint.stop()
    return 0


def _log_line(record: RoutedRequest) -> None:
    if not record.finished:
        return
    when = time.strftime("%H:%M:%S", time.localtime(record.started))
    cold = " (cold start)" if record.cold_start else ""
    error = f"  {record.error}" if record.error else ""
    print(f"{when} {record.client} {record.path} {record.model or '-'} {record.status} "
          f"{record.duration_ms or 0:.0f} ms{cold}{error}", file=sys.stderr, flush=True)
