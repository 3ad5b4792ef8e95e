"""Test helpers for the fake MCP server (mcp_server.py): mcp.json entries for it, and its HTTP mode as a process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from .handle import REPO_ROOT, free_port, port_open, wait_until


def stdio_entry(*flags: str, timeout: float = 10, **extra: Any) -> dict[str, Any]:
    """An mcpServers entry that runs the fake server over stdio (cwd: the repository, so ``-m`` finds it)."""
    return {"command": sys.executable, "args": ["-m", "LLM.tests.fakes.mcp_server", *flags], "cwd": str(REPO_ROOT),
            "timeout": timeout, **extra}


def write_mcp_json(path: Path, servers: dict[str, Any]) -> Path:
    path.write_text(json.dumps({"mcpServers": servers}, indent=2))
    return path


class McpHttpServer:
    """The fake MCP server on streamable HTTP (or SSE) at a free loopback port, in its own process group."""

    def __init__(self, sse: bool = False) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/{'sse' if sse else 'mcp'}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "LLM.tests.fakes.mcp_server", "--sse" if sse else "--http", str(self.port)],
            cwd=REPO_ROOT,
            env={**os.environ, "PYTHONPATH": str(REPO_ROOT)}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True)

    def wait_ready(self, timeout: float = 20) -> McpHttpServer:
        wait_until(lambda: port_open(self.port) or self.process.poll() is not None, timeout, "MCP HTTP server port")
        if self.process.poll() is not None:
            raise RuntimeError(f"MCP HTTP server exited with {self.process.returncode}")
        return self

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
