"""A tiny MCP server for the tests: add, slow_echo, boom, crash, grow (adds a tool), env, picture.

In-process: ``build_server()`` gives the MCPServer object. Over stdio: ``python -m LLM.tests.fakes.mcp_server``.
Streamable HTTP on a loopback port: ``... --http PORT`` (``--sse PORT``: the older SSE transport). ``--exit-at-start`` writes a reason to stderr and exits 3
(a server that cannot start); ``--name`` sets the server's name.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import sys

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError

PIXEL = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 16).decode()


def build_server(name: str = "fake") -> MCPServer:
    server = MCPServer(name, log_level="WARNING")

    @server.tool()
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    @server.tool()
    async def slow_echo(text: str, seconds: float = 1.0) -> str:
        """Echo the text after waiting some seconds."""
        await asyncio.sleep(seconds)
        return text

    @server.tool()
    def boom(message: str = "it broke") -> str:
        """Always fails."""
        raise ToolError(message)

    @server.tool()
    def crash() -> str:
        """Kill the server process at once."""
        print("fake mcp server: crashing on purpose", file=sys.stderr, flush=True)
        os._exit(7)

    @server.tool()
    async def grow(ctx: Context, name: str = "extra") -> str:
        """Add a tool called NAME and tell the client the tool list changed."""

        def grown() -> str:
            return f"{name} says hi"

        server.add_tool(grown, name=name, description=f"A tool grown at run time ({name}).")
        await ctx.session.send_tool_list_changed()
        return f"added {name}"

    @server.tool()
    def env(variable: str) -> str:
        """The value of an environment variable in the server process, or <unset>."""
        return os.environ.get(variable, "<unset>")

    @server.tool()
    def picture() -> list:
        """Returns a caption and a tiny image."""
        from mcp.server.mcpserver.utilities.types import Image

        return ["a tiny picture", Image(data=base64.b64decode(PIXEL), format="png")]

    return server


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--http", type=int, metavar="PORT")
    parser.add_argument("--sse", type=int, metavar="PORT", help="the older SSE transport (at /sse)")
    parser.add_argument("--name", default="fake")
    parser.add_argument("--exit-at-start", action="store_true")
    args = parser.parse_args()
    print(f"fake mcp server {args.name} starting (pid {os.getpid()})", file=sys.stderr, flush=True)
    if args.exit_at_start:
        print("fake mcp server: cannot start: no such database", file=sys.stderr, flush=True)
        sys.exit(3)
    server = build_server(args.name)
    if args.http:
        server.run("streamable-http", host="127.0.0.1", port=args.http)
    elif args.sse:
        server.run("sse", host="127.0.0.1", port=args.sse)
    else:
        server.run()


if __name__ == "__main__":
    main()
