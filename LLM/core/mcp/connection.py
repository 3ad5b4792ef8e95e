"""One MCP server's connection and lifecycle: an owner task holds the SDK session; calls go through it.

The ``mcp`` SDK is imported here, lazily, the first time a server starts (it costs about 0.6 s).
Its session lives in anyio task groups that must be left by the task that entered them, so one owner
task per server enters it, performs every state transition, and leaves it; other tasks only send
requests over it. The SDK's own and low-level exceptions are translated into McpError here, once.

Security: a stdio child gets the SDK's minimal environment (HOME, LOGNAME, PATH, SHELL, TERM, USER)
plus the entry's ``env``, never our own environment: API keys of ours never reach it.
"""

from __future__ import annotations

import asyncio
import collections
import os
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import IO, Any

from ..errors import (
    McpConnectionError,
    McpError,
    McpStartError,
    McpTimeoutError,
    McpToolCallError,
)
from ..logfiles import open_private
from .config import McpServerConfig
from .results import ConvertedResult, convert_result
from .states import McpState

MAX_RESPAWNS = 3  # crashes respawned within RESPAWN_WINDOW_S; the next one leaves the server failed
RESPAWN_WINDOW_S = 60.0
BACKOFF_S = (0.5, 1.0, 2.0)
STDERR_LINES = 20
_LIST_PAGES = 100  # a paginator that never ends cannot hang the start


class McpConnection:
    """A configured server. ``start`` spawns its owner task; ``state`` changes only in that task.

    ``on_change(connection, kind)`` is called on every transition (kind ``state``) and whenever the tool
    list changes (kind ``tools``), on the event loop's thread.
    """

    def __init__(self, config: McpServerConfig, on_change: Callable[[McpConnection, str], None], *,
                 log_path: Path | None = None, in_process: Any = None,
                 backoff_s: tuple[float, ...] = BACKOFF_S) -> None:
        self.config = config
        self._backoff_s = backoff_s
        self.state = McpState.STOPPED
        self.detail = ""
        self.error: McpError | None = None
        self.tools: list[dict[str, Any]] = []  # as listed: name, description, inputSchema
        self.restarts = 0
        self._on_change = on_change
        self._log_path = log_path
        self._in_process = in_process
        self._client: Any = None
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._stopping = False
        self._eof = False
        self._tools_changed = False
        self._settled = asyncio.Event()  # set while ready, failed or stopped
        self._settled.set()
        self._crashes: collections.deque[float] = collections.deque()
        self._stderr: IO[str] | None = None
        self._stderr_start = 0

    @property
    def name(self) -> str:
        return self.config.name

    # ----- control (any task) -----
    def start(self) -> None:
        """Start the owner task unless one runs (a failed or stopped server starts afresh)."""
        if self._task is not None and not self._task.done():
            return
        self._stopping = False
        self._crashes.clear()
        self.restarts = 0
        self._settled.clear()
        self._task = asyncio.get_running_loop().create_task(self._own(), name=f"mcp-{self.name}")

    async def stop(self) -> None:
        """Close the connection (stdio: stdin closed, then SIGTERM, then SIGKILL of its process group)."""
        task = self._task
        if task is None or task.done():
            return
        self._stopping = True
        self._wake.set()
        if self._client is None:  # still starting (a slow spawn, a download): nothing to close politely
            task.cancel()
        await asyncio.wait([task])  # never raises: a stop must not look like the caller's own cancellation

    def kill(self) -> None:
        """Cancel the owner task: for when a stop ran out of its time budget."""
        if self._task is not None and not self._task.done():
            self._task.cancel()

    async def wait_settled(self, timeout: float | None = None) -> McpState:
        """Until the server is ready, failed or stopped (or ``timeout`` passes); returns the state then."""
        try:
            await asyncio.wait_for(self._settled.wait(), timeout)
        except asyncio.TimeoutError:
            pass
        return self.state

    def stderr_tail(self, lines: int = STDERR_LINES) -> list[str]:
        if self._stderr is None or self._stderr.closed:
            return []
        try:
            # pread: the child writes through the same file description, whose offset must not move.
            fd = self._stderr.fileno()
            size = os.fstat(fd).st_size
            start = max(self._stderr_start, size - 64_000)
            text = os.pread(fd, size - start, start).decode("utf-8", "replace")
        except (OSError, ValueError):
            return []
        return [line for line in text.splitlines() if line.strip()][-lines:]

    # ----- calls (any task) -----
    async def call(self, tool: str, arguments: dict[str, Any]) -> ConvertedResult:
        """Call a tool once (never retried: it may have side effects). Raises McpError."""
        if self.state is McpState.STARTING:
            await self.wait_settled(self.config.start_timeout_s)
        client = self._client
        if client is None or self.state is not McpState.READY:
            why = f": {self.error}" if self.error is not None else ""
            raise McpConnectionError(f"MCP server '{self.name}' is {self.state.value}{why}", self.name)
        try:
            result = await client.call_tool(tool, arguments, read_timeout_seconds=self.config.timeout_s)
        except Exception as exc:  # noqa: BLE001 - the one translation point for calls
            raise self._translate(exc, starting=False) from exc
        return convert_result(result.model_dump(by_alias=True, exclude_none=True, mode="json"))

    # ----- the owner task: every transition happens here -----
    def _set(self, state: McpState, detail: str = "", error: McpError | None = None) -> None:
        self.state, self.detail, self.error = state, detail, error
        if state is McpState.STARTING:
            self._settled.clear()
        else:
            self._settled.set()
        self._on_change(self, "state")

    async def _own(self) -> None:
        ever_ready = False
        try:
            while True:
                self._set(McpState.STARTING, "restarting after a crash" if ever_ready else "starting")
                try:
                    outcome = await self._session()
                except McpError as exc:
                    if not ever_ready:  # a start that fails is the config's problem: retrying would not help
                        self._set(McpState.FAILED, exc.reason, exc)
                        return
                    outcome, crash = "crashed", exc
                else:  # _session returns only once it was ready
                    ever_ready = True
                    crash = McpConnectionError(f"MCP server '{self.name}' closed the connection (it exited)",
                                               self.name, self.stderr_tail())
                if outcome == "stopped" or self._stopping:
                    self._set(McpState.STOPPED)
                    return
                now = time.monotonic()
                self._crashes.append(now)
                while self._crashes and now - self._crashes[0] > RESPAWN_WINDOW_S:
                    self._crashes.popleft()
                if len(self._crashes) > MAX_RESPAWNS:
                    self._set(McpState.FAILED, f"crashed {len(self._crashes)} times in {RESPAWN_WINDOW_S:g} s; "
                              "not restarted again (Restart tries again)", crash)
                    return
                self.restarts = len(self._crashes)
                delay = self._backoff_s[min(len(self._crashes), len(self._backoff_s)) - 1]
                self._set(McpState.STARTING, f"crashed; restarting in {delay:g} s "
                          f"(restart {len(self._crashes)} of at most {MAX_RESPAWNS} a minute)", crash)
                self._wake.clear()  # a late end-of-stream of the dead connection must not cut the backoff short
                if not self._stopping:
                    try:
                        await asyncio.wait_for(self._wake.wait(), delay)
                    except asyncio.TimeoutError:
                        pass
                if self._stopping:
                    self._set(McpState.STOPPED)
                    return
        except asyncio.CancelledError:
            self._client = None
            self._set(McpState.STOPPED, "stopped (did not close in time)" if self._stopping else "")
            raise
        except Exception as exc:  # noqa: BLE001 - no transition may leave a server stuck in "starting"
            self._set(McpState.FAILED, f"{type(exc).__name__}: {exc}", McpStartError(
                f"MCP server '{self.name}': unexpected {type(exc).__name__}: {exc}", self.name))
        except BaseException:  # a group of cancellations from the SDK's task groups, KeyboardInterrupt
            self._client = None
            self._set(McpState.STOPPED)
            raise
        finally:
            self._close_stderr()

    async def _session(self) -> str:
        """Connect, list tools, serve until stopped or the connection ends: ``stopped`` or ``crashed``.
        A failure before the tools are listed raises McpStartError (or McpTimeoutError)."""
        import anyio  # the SDK's runtime; imported with it, only once a server starts

        self._eof = self._tools_changed = False
        self._wake.clear()
        ready = False
        try:
            with anyio.CancelScope(deadline=anyio.current_time() + self.config.start_timeout_s) as scope:
                async with AsyncExitStack() as stack:
                    client = await self._connect(stack)
                    self.tools = await self._list_tools(client)
                    scope.deadline = float("inf")  # started: from now on only stop or a crash ends it
                    self._client, ready = client, True
                    self._set(McpState.READY, f"{len(self.tools)} tool(s)")
                    while True:
                        await self._wake.wait()
                        self._wake.clear()
                        if self._stopping:
                            self._client = None
                            return "stopped"
                        if self._eof:
                            self._client = None
                            return "crashed"
                        if self._tools_changed:
                            self._tools_changed = False
                            self.tools = await self._list_tools(client)
                            self._on_change(self, "tools")
            if scope.cancelled_caught and not ready:
                raise McpTimeoutError(f"MCP server '{self.name}' did not list its tools within "
                                      f"{self.config.start_timeout_s:g} s", self.name, self.stderr_tail())
        except McpError:
            raise
        except Exception as exc:  # noqa: BLE001 - the one translation point for the connection
            self._client = None
            if ready:
                return "crashed"
            raise self._translate(exc, starting=True) from exc
        finally:
            self._client = None
        return "crashed"

    async def _connect(self, stack: AsyncExitStack) -> Any:
        # Lazily: the SDK is imported only once a server is enabled and starts.
        from mcp import Client

        options = dict(mode="legacy", cache=None, message_handler=self._on_message)
        if self._in_process is not None:  # an SDK server object (tests, embedding): no process, no crash to watch
            return await stack.enter_async_context(Client(self._in_process, **options))
        transport = await self._transport(stack)
        return await stack.enter_async_context(Client(_watched(transport, self._on_eof), **options))

    async def _transport(self, stack: AsyncExitStack) -> Any:
        config = self.config
        if config.transport == "stdio":
            from mcp import StdioServerParameters
            from mcp.client.stdio import stdio_client

            params = StdioServerParameters(command=str(config.command), args=list(config.args),
                                           env=dict(config.env) or None, cwd=config.cwd)
            return stdio_client(params, errlog=self._open_stderr())
        if config.transport == "sse":
            from mcp.client.sse import sse_client

            return sse_client(config.url, headers=dict(config.headers) or None, timeout=config.timeout_s)
        from mcp.client.streamable_http import streamable_http_client
        # The SDK's own factory (its default timeouts for MCP streams); private to it, hence the extra's pin below 3.
        from mcp.shared._httpx_utils import create_mcp_http_client

        http = await stack.enter_async_context(create_mcp_http_client(headers=dict(config.headers) or None))
        return streamable_http_client(str(config.url), http_client=http)

    async def _list_tools(self, client: Any) -> list[dict[str, Any]]:
        tools: list[dict[str, Any]] = []
        cursor = None
        for _ in range(_LIST_PAGES):
            if cursor is None:
                page = await client.list_tools()
            else:
                page = await client.list_tools(cursor=cursor)
            tools += [t.model_dump(by_alias=True, exclude_none=True, mode="json") for t in page.tools]
            cursor = page.next_cursor
            if not cursor:
                break
        return tools

    def _on_eof(self) -> None:
        self._eof = True
        self._wake.set()

    async def _on_message(self, message: Any) -> None:
        if getattr(message, "method", None) == "notifications/tools/list_changed":
            self._tools_changed = True
            self._wake.set()

    # ----- stderr -----
    def _open_stderr(self) -> IO[str]:
        if self._stderr is None or self._stderr.closed:
            if self._log_path is not None:  # private: a server may print its command line or its keys
                self._stderr = open_private(self._log_path, "a+", encoding="utf-8", errors="replace")
            else:  # append mode: the child's writes always land at the end
                self._stderr = tempfile.TemporaryFile("a+", encoding="utf-8", errors="replace")
        self._stderr.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} starting {self.config.target}\n")
        self._stderr.flush()
        self._stderr_start = self._stderr.tell()
        return self._stderr

    def _close_stderr(self) -> None:
        # Kept open while the server is known, so a failed server still shows its tail; closed at stop.
        if self.state is McpState.STOPPED and self._stderr is not None:
            self._stderr.close()

    # ----- the SDK's exceptions -> ours -----
    def _translate(self, exc: BaseException, *, starting: bool) -> McpError:
        exc = _leaf(exc)
        tail = self.stderr_tail()
        name = self.name
        if isinstance(exc, McpError):
            return exc
        if isinstance(exc, ImportError) and (exc.name or "").split(".")[0] in ("mcp", "mcp_types", "anyio"):
            return McpStartError(f"MCP server '{name}' cannot start: the MCP SDK is not installed (pip install "
                                 "'llm-workbench[mcp]', or `pip install mcp`)", name)
        code = getattr(getattr(exc, "error", None), "code", None)
        if code is not None:  # mcp.shared.exceptions.MCPError: a JSON-RPC error
            message = getattr(exc.error, "message", str(exc))  # type: ignore[attr-defined]
            if code == -32001:
                return McpTimeoutError(f"MCP server '{name}' did not answer within {self.config.timeout_s:g} s "
                                       "(its \"timeout\")", name)
            if code == -32000 and starting:
                return McpStartError(f"MCP server '{name}' exited before it was ready", name, tail)
            if code == -32000:
                return McpConnectionError(f"MCP server '{name}' closed the connection (it exited or crashed)",
                                          name, tail)
            if starting:
                return McpStartError(f"MCP server '{name}' refused to start: {message} (error {code})", name, tail)
            return McpToolCallError(f"{message} (error {code})", name)
        if isinstance(exc, (FileNotFoundError, PermissionError)):
            return McpStartError(f"MCP server '{name}': cannot run {self.config.command!r}: {exc.strerror or exc}",
                                 name, tail)
        if isinstance(exc, TimeoutError):
            return McpTimeoutError(f"MCP server '{name}' did not answer within {self.config.timeout_s:g} s", name)
        what = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        if starting:
            return McpStartError(f"MCP server '{name}' could not be started: {what}", name, tail)
        return McpConnectionError(f"MCP server '{name}': {what}", name, tail)


def _leaf(exc: BaseException) -> BaseException:
    """The first real error inside (nested) exception groups: anyio's task groups wrap them."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:  # noqa: F821 - builtin from 3.11; exceptiongroup before
        inner = [e for e in exc.exceptions if not isinstance(e, asyncio.CancelledError)]
        exc = (inner or list(exc.exceptions))[0]
    return exc


if sys.version_info < (3, 11):  # pragma: no cover - the SDK depends on exceptiongroup there
    from exceptiongroup import BaseExceptionGroup


@asynccontextmanager
async def _watched(transport: Any, on_eof: Callable[[], None]) -> AsyncIterator[tuple[Any, Any]]:
    """The transport, its read stream watched: the end of the stream (the server exited) calls ``on_eof``."""
    async with transport as (read_stream, write_stream):
        yield _WatchedReadStream(read_stream, on_eof), write_stream


class _WatchedReadStream:
    """Passes everything through to the SDK's read stream; only notices when it ends."""

    def __init__(self, inner: Any, on_eof: Callable[[], None]) -> None:
        self._inner = inner
        self._on_eof = on_eof

    async def __aenter__(self) -> _WatchedReadStream:
        await self._inner.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> Any:
        return await self._inner.__aexit__(*exc)

    def __aiter__(self) -> _WatchedReadStream:
        return self

    async def __anext__(self) -> Any:
        try:
            return await self._inner.__anext__()
        except StopAsyncIteration:
            self._on_eof()
            raise

    async def receive(self) -> Any:
        import anyio

        try:
            return await self._inner.receive()
        except anyio.EndOfStream:
            self._on_eof()
            raise

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)
