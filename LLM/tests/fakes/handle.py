"""Starting, scripting and stopping the fake OpenAI server subprocess from tests and benches."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx

REPO_ROOT = Path(__file__).resolve().parents[3]
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def fake_server_command(port: int, *extra: str) -> list[str]:
    return [sys.executable, "-m", "LLM.tests.fakes.fake_openai_server", "--port", str(port), *extra]


def wait_until(condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.02) -> Any:
    """Poll ``condition`` until it is truthy or the deadline passes (then fail loudly)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


async def async_wait_until(
    condition: Callable[[], T], timeout: float = 30, what: str = "condition"
) -> T:
    """``wait_until`` for coroutines: polls without blocking the event loop (asyncio or qasync)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        await asyncio.sleep(0.02)


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


class FakeServerHandle:
    def __init__(self, port: int | None = None, *extra: str) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
        self.process = subprocess.Popen(
            fake_server_command(self.port, *extra), cwd=REPO_ROOT, env=env,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        self._http = httpx.Client(base_url=self.url, timeout=5)

    def wait_ready(self, timeout: float = 30) -> "FakeServerHandle":
        wait_until(lambda: port_open(self.port) or self.process.poll() is not None, timeout, "fake server port")
        if self.process.poll() is not None:
            raise RuntimeError(f"fake server exited with {self.process.returncode}")
        return self

    def script(self, *replies: dict[str, Any]) -> None:
        self._http.post("/_script", json={"replies": list(replies)}).raise_for_status()

    def set_default(self, reply: dict[str, Any]) -> None:
        self._http.post("/_default", json=reply).raise_for_status()

    def log(self) -> list[dict[str, Any]]:
        return self._http.get("/_requests").json()

    def requests(self) -> list[dict[str, Any]]:
        return [entry for entry in self.log() if entry["type"] == "request"]

    def chunks_sent(self) -> int:
        return int(self._http.get("/_progress").json()["chunks_sent"])

    def max_in_flight(self) -> int:
        """The most completion requests the server was answering at once."""
        return int(self._http.get("/_progress").json()["max_in_flight"])

    def wait_for_event(self, kind: str, timeout: float = 30) -> dict[str, Any]:
        return wait_until(
            lambda: next((e for e in self.log() if e["type"] == kind), None), timeout, f"fake server event {kind}"
        )

    def stop(self) -> None:
        self._http.close()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def served(*extra: str) -> Iterator[FakeServerHandle]:
    """A fake server started with ``extra`` arguments, stopped afterwards: ``yield from served(...)`` in a fixture."""
    server = FakeServerHandle(None, *extra).wait_ready()
    try:
        yield server
    finally:
        server.stop()
