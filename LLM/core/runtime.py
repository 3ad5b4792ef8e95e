"""The services one process shares: config, the server manager and one pooled client per model.

``Runtime`` lives on one asyncio loop (the window's qasync loop, or the CLI's). Plain
blocking scripts go through ``BlockingPortal``: a private loop thread that owns a Runtime,
so pooled connections and started servers survive from one ``run_inference`` call to
the next, and session servers are stopped when the process exits.
"""

from __future__ import annotations

import asyncio
import atexit
import signal
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import CancelledError as FutureCancelled
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from .config import BackendsConfig, ModelEntry, load_backends
from .errors import BackendConnectionError, BackendError, LLMError, ToolError
from .mcp.manager import McpManager
from .model_reports import report_for_entry, report_for_path
from .models.capabilities import Capability
from .models.inspection import Inspector
from .models.report import ModelReport
from .models.system import Machine, read_machine
from .protocol.client import ChatClient, api_key_from_env
from .protocol.props import EngineProps
from .servers.manager import ServerManager
from .tools.builtin import build_default_registry
from .tools.registry import ToolRegistry, default_tools_dir

T = TypeVar("T")


@dataclass(frozen=True)
class Upstream:
    """Where a model's requests go: its server's root URL (no /v1), the name that server knows the model by,
    the key it expects, and what every request adds (the adapter a grouped model selects)."""

    model_id: str
    server_id: str  # the group's leader for launched models; the model id for attached ones
    base_url: str
    model_name: str
    api_key: str | None
    extras: dict[str, object]
    connect_timeout_s: float
    read_timeout_s: float


class Runtime:
    def __init__(
        self,
        config: BackendsConfig,
        servers: ServerManager | None = None,
        tools: ToolRegistry | None = None,
        workspace: Path | None = None,
        tools_dir: Path | None = None,
        mcp: McpManager | None = None,
    ) -> None:
        self.config = config
        # MCP tool servers (mcp.json): their tools join the registry while their servers are ready.
        self.mcp = mcp
        self._mcp_attached = False
        self.servers = servers
        self._clients: dict[str, ChatClient] = {}
        self._tools = tools
        self.workspace = workspace or Path.cwd()
        self.tools_dir = tools_dir
        self.tool_load_problems: list[str] = []
        # Tool mode a model turned out to need (e.g. its server rejected `tools`), per process.
        self.learned_tool_modes: dict[str, str] = {}
        self._attached_props: dict[str, EngineProps | None] = {}
        self.inspector = Inspector()  # model files' headers, read once while they stay the same
        self._retired_clients: list[ChatClient] = []
        self._reload_lock = asyncio.Lock()
        self._reload_generation = 0

    @property
    def tools(self) -> ToolRegistry:
        """Built-in tools confined to ``workspace``, plus the user's tools directory (loaded once)."""
        if self._tools is None:
            registry = build_default_registry(self.workspace)
            self.tool_load_problems = registry.load_directory(self.tools_dir or default_tools_dir())
            self._tools = registry
        if self.mcp is not None and not self._mcp_attached:
            self._mcp_attached = True
            self.mcp.attach(self._tools)
        return self._tools

    async def ensure_tools(self, names: list[str] | None) -> None:
        """Before a tool run: when a requested tool is not registered and MCP servers are configured, start the
        enabled ones (or wait for those starting); a tool still missing then raises ToolError saying why."""
        registry = self.tools
        missing = [n for n in names or () if n not in registry]
        if not missing or self.mcp is None or not self.mcp.has_servers:
            return
        await self.mcp.ensure_started()
        for name in missing:
            reason = self.mcp.missing_tool_reason(name) if name not in registry else None
            if reason:
                raise ToolError(f"tool '{name}' is not available: {reason}")

    @classmethod
    def from_config_path(cls, path: str | None = None, **manager_options: Any) -> "Runtime":
        config = load_backends(path)
        return cls(config, ServerManager(config, **manager_options), mcp=McpManager.from_path())

    def entry(self, model_id: str) -> ModelEntry:
        return self.config.get(model_id)

    async def upstream(self, model_id: str) -> Upstream:
        """Where requests of ``model_id`` go, its server started (or re-attached) and warm first."""
        entry = self.entry(model_id)
        if entry.launchable:
            if self.servers is None:
                raise LLMError(f"model '{model_id}' needs a server manager to launch its {entry.backend} server")
            await self.servers.ensure_ready(model_id)
            # Read again: a reload may have replaced the entry (and the server) while the start waited for it.
            entry = self.entry(model_id)
        servers = self.servers if entry.launchable else None
        return Upstream(
            model_id=model_id,
            server_id=servers.group_id(model_id) if servers is not None else model_id,
            base_url=entry.base_url,
            model_name=entry.request_model_name,
            api_key=servers.api_key(model_id) if servers is not None else api_key_from_env(entry.api_key_env),
            # The adapter a grouped model selects rides on every request; it depends on the running server.
            extras=servers.request_extras(model_id) if servers is not None else {},
            connect_timeout_s=entry.connect_timeout_s,
            read_timeout_s=entry.request_timeout_s,
        )

    async def client_for(self, model_id: str) -> ChatClient:
        """The model's client, its server started (or re-attached) and warm first."""
        upstream = await self.upstream(model_id)
        client = self._clients.get(model_id)
        if client is not None and client.extra_body != upstream.extras:
            self._retired_clients.append(self._clients.pop(model_id))
            client = None
        if client is None:
            client = ChatClient(
                upstream.base_url,
                upstream.model_name,
                api_key=upstream.api_key,
                connect_timeout_s=upstream.connect_timeout_s,
                read_timeout_s=upstream.read_timeout_s,
                extra_body=upstream.extras,
            )
            self._clients[model_id] = client
        return client

    async def engine_props(self, model_id: str) -> EngineProps | None:
        """What the model's engine reports about itself; asked once per attached server, None if it cannot say."""
        if self.entry(model_id).launchable and self.servers is not None:
            return self.servers.props(model_id)
        if model_id not in self._attached_props:
            try:
                props = await (await self.client_for(model_id)).props()
            except BackendError:
                props = None
            self._attached_props[model_id] = props
        return self._attached_props[model_id]

    async def model_report(self, model_id: str, machine: Machine | None = None) -> ModelReport:
        """What the app knows about a model without loading it: inspection, capabilities, memory and fit on
        ``machine`` (read now when not given). A running engine's own report joins in; nothing is started
        and no network is asked."""
        return await self._report(model_id, machine, fit=True)

    async def path_report(self, path: Path, context_size: int | None = None) -> ModelReport:
        """The same for any model file or folder, configured or not; InspectionError when it is no model."""
        return await asyncio.to_thread(lambda: report_for_path(Path(path), self.inspector, context_size=context_size,
                                                               machine=read_machine()))

    async def capabilities(self, model_id: str) -> dict[str, Capability]:
        """Each capability of the model with its confidence and source (see LLM/core/models/capabilities.py);
        the machine is not read (the tool loop asks this at every run)."""
        return (await self._report(model_id, None, fit=False)).capabilities

    async def _report(self, model_id: str, machine: Machine | None, fit: bool) -> ModelReport:
        entry = self.entry(model_id)
        if entry.launchable and self.servers is not None:
            engine = self.servers.props(model_id)
        else:
            engine = self._attached_props.get(model_id)
        learned = self.learned_tool_modes.get(model_id)
        probe = {"tools": False} if learned == "fallback" else None

        def judge() -> ModelReport:
            on = (machine or read_machine()) if fit else None
            return report_for_entry(entry, self.inspector, engine=engine, probe=probe, machine=on)

        return await asyncio.to_thread(judge)

    def in_use(self, model_id: str) -> AbstractAsyncContextManager[None]:
        """Wrap a request: a server is not stopped for idleness while one is in flight."""
        if self.servers is None:
            return nullcontext()
        return self.servers.in_use(model_id)

    @asynccontextmanager
    async def crashes_explained(self, model_id: str) -> AsyncIterator[None]:
        """Wrap a request: a dropped connection to a server we manage usually means it died, so
        it is re-raised as the ServerExitedError with the server's log tail."""
        try:
            yield
        except BackendConnectionError as exc:
            crashed = await self.servers.crash_error(model_id) if self.servers is not None else None
            if crashed is None:
                raise
            raise crashed from exc

    async def reload(self, config: BackendsConfig) -> list[str]:
        """Adopt a new config. Reloads are serialized and the latest wins: a reload that finds a newer one
        waiting gives way to it. Returns the ids of running servers that were stopped because their launch
        settings changed (they restart on next use; answers in flight finish first)."""
        self._reload_generation += 1
        mine = self._reload_generation
        async with self._reload_lock:
            if mine != self._reload_generation:
                return []  # a newer config arrived meanwhile: it is the one to adopt
            restarted = await self.servers.reload(config) if self.servers is not None else []
            # After the servers' reload, with no await between this and the switch of config: a client a
            # request made from the old entry while the reload waited is retired too.
            for model_id, client in list(self._clients.items()):
                new = config.models.get(model_id)
                if new is None or _connection(new) != _connection(self.config.models.get(model_id)):
                    # Not closed: an answer may still be streaming through it. Closed with the runtime.
                    self._retired_clients.append(self._clients.pop(model_id))
                    self._attached_props.pop(model_id, None)
            self.config = config
            return restarted

    async def aclose(self) -> None:
        for client in [*self._clients.values(), *self._retired_clients]:
            await client.aclose()
        self._clients.clear()
        self._retired_clients.clear()
        closing = [self.mcp.aclose()] if self.mcp is not None else []  # MCP servers close alongside the models'
        if self.servers is not None:
            closing.append(self.servers.shutdown())
        await asyncio.gather(*closing)


def _connection(entry: ModelEntry | None) -> tuple[Any, ...] | None:
    """What a model's pooled client is built from; other edits (a display name, defaults) keep the client."""
    if entry is None:
        return None
    return (entry.base_url, entry.request_model_name, entry.api_key_env, entry.connect_timeout_s,
            entry.request_timeout_s)


class BlockingPortal:
    """Runs coroutines on a private event-loop thread that owns one Runtime."""

    def __init__(self, runtime_factory: Callable[[], Runtime]) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="llm-runtime", daemon=True)
        self._thread.start()
        self.runtime: Runtime = self._submit(self._make(runtime_factory))
        self._closed = False

    @staticmethod
    async def _make(factory: Callable[[], Runtime]) -> Runtime:
        return factory()

    def call(self, fn: Callable[[Runtime], Awaitable[T]]) -> T:
        return self._submit(fn(self.runtime))

    def _submit(self, coro: Awaitable[T]) -> T:
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)  # type: ignore[arg-type]
        try:
            return future.result()
        except KeyboardInterrupt:
            # Ctrl-C: cancel the task (which closes its HTTP stream) before giving control back.
            future.cancel()
            try:
                future.result(timeout=5)
            except (FutureCancelled, Exception):
                pass
            raise

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._submit(self.runtime.aclose())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)


class _DefaultPortal:
    """The process-wide portal behind the blocking convenience API (``run_inference``).

    The one deliberate process-level object: plain scripts call ``run_inference`` with no
    context to pass, and servers they start must outlive one call and stop at exit.
    The window and tests build their own Runtime and never touch this.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._portal: BlockingPortal | None = None

    def get(self) -> BlockingPortal:
        with self._lock:
            if self._portal is None:
                self._portal = BlockingPortal(Runtime.from_config_path)
                atexit.register(self.close)
                _exit_cleanly_on_sigterm()
            return self._portal

    def close(self) -> None:
        with self._lock:
            portal, self._portal = self._portal, None
        if portal is not None:
            portal.close()


def _exit_cleanly_on_sigterm() -> None:
    """Python's default SIGTERM ends the process without atexit, which would orphan the servers a
    script started. Turn it into SystemExit, but only where nobody installed a handler already."""
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _raise_system_exit)


def _raise_system_exit(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


default_portal = _DefaultPortal()
