"""Every configured MCP server: start them together, keep their tools in the tool registry, stop them in time.

The manager owns one McpConnection per valid entry of mcp.json (each with its own owner task, see
``connection``) and mirrors the tools of the ready ones into the ToolRegistry it is attached to, named
``<server>__<tool>`` (see ``naming``: every configured server's prefix is fixed with the configuration, so a
name never moves to another server's tool). Edits the user makes (enable a server or a tool, always allow a
tool) are written to mcp.json and applied at once. Listeners get an McpEvent for every change.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..errors import McpConfigError, McpToolCallError
from ..tools.registry import ToolRegistry
from . import store
from .config import McpConfig, McpServerConfig, default_mcp_config_path, load_mcp_config
from .connection import McpConnection
from .imports import ImportSource, read_servers
from .naming import assign_names, log_file_name, prefix_collisions, prefixed_name, server_prefixes
from .results import ConvertedResult
from .states import McpEvent, McpServerStatus, McpState, McpToolSpec
from .tools import registry_tool

log = logging.getLogger(__name__)
CLOSE_BUDGET_S = 6.0  # quitting waits at most this long for all servers together, then cancels the rest

Listener = Callable[[McpEvent], None]


class McpManager:
    def __init__(self, config: McpConfig | None = None, *, path: Path | None = None,
                 logs_dir: Path | None = None, in_process: Mapping[str, Any] | None = None,
                 respawn_backoff_s: tuple[float, ...] | None = None) -> None:
        """``path``: the mcp.json edits are written to (default: where ``config`` came from).
        ``logs_dir``: where each stdio server's stderr goes (``mcp-<name>.log``; default: a temporary file).
        ``in_process``: servers given as SDK server objects (tests, embedding), connected without a process.
        ``respawn_backoff_s``: the waits before the 1st, 2nd, 3rd respawn after a crash (default 0.5, 1, 2 s)."""
        self.path = Path(path) if path is not None else Path(config.source) if config is not None else \
            default_mcp_config_path()
        self.config = config or McpConfig(str(self.path))
        self.config_problem: str | None = None  # the whole file could not be used
        self.logs_dir = logs_dir
        self._in_process = dict(in_process or {})
        self._backoff = {"backoff_s": respawn_backoff_s} if respawn_backoff_s else {}
        self._connections: dict[str, McpConnection] = {}
        self._registry: ToolRegistry | None = None
        self._registered: dict[str, McpToolSpec] = {}
        self._listeners: list[Listener] = []
        self.collisions: list[str] = []
        self._prefixes = _prefixes_of(self.config)
        self._reload_lock = asyncio.Lock()
        self._reload_generation = 0
        self._build_connections()

    @classmethod
    def from_path(cls, path: Path | None = None, **options: Any) -> McpManager:
        """Load mcp.json (default location: see ``default_mcp_config_path``); a file that cannot be used gives a
        manager with no servers and ``config_problem`` saying why (the app still runs)."""
        path = Path(path) if path is not None else default_mcp_config_path()
        try:
            config = load_mcp_config(path)
        except McpConfigError as exc:
            manager = cls(McpConfig(str(path)), path=path, **options)
            manager.config_problem = str(exc)
            return manager
        return cls(config, path=path, **options)

    def _build_connections(self) -> None:
        for name, server in self.config.servers.items():
            self._connections[name] = self._new_connection(server)

    def _new_connection(self, server: McpServerConfig) -> McpConnection:
        log_path = self.logs_dir / log_file_name(server.name) if self.logs_dir is not None else None
        return McpConnection(server, self._changed, log_path=log_path, in_process=self._in_process.get(server.name),
                             **self._backoff)

    async def reload(self, config: McpConfig | None = None) -> list[str]:
        """Adopt an edited mcp.json (default: read it again). A server whose connection settings changed restarts,
        a removed one stops, a new or newly enabled one starts; autoApprove and disabledTools apply at once.
        Reloads are serialized and the latest wins. Returns the servers started, stopped or restarted; a file that
        cannot be used changes nothing and sets ``config_problem``."""
        self._reload_generation += 1
        mine = self._reload_generation
        async with self._reload_lock:
            if mine != self._reload_generation:
                return []  # a newer reload is waiting: it reads the newer file
            if config is None:
                try:
                    config = await asyncio.to_thread(load_mcp_config, self.path)
                except McpConfigError as exc:
                    self.config_problem = str(exc)
                    self._emit_all()
                    return []
            self.config_problem = None
            self._prefixes = _prefixes_of(config)
            old, stops, starts, touched = self._connections, [], [], []
            connections: dict[str, McpConnection] = {}
            for name, server in config.servers.items():
                conn = old.get(name)
                if conn is not None and _connection_settings(conn.config) == _connection_settings(server):
                    was_disabled, conn.config = conn.config.disabled, server
                    if server.disabled and not was_disabled:
                        stops.append(conn)
                        touched.append(name)
                    elif was_disabled and not server.disabled and conn.state is not McpState.READY:
                        starts.append(conn)
                        touched.append(name)
                    connections[name] = conn
                    continue
                if conn is not None:
                    stops.append(conn)
                connections[name] = self._new_connection(server)
                if not server.disabled:
                    starts.append(connections[name])
                touched.append(name)
            for name, conn in old.items():
                if name not in config.servers:
                    stops.append(conn)
                    touched.append(name)
            self._connections, self.config = connections, config
            self._sync_registry()
            self._emit_all()
            await asyncio.gather(*(conn.stop() for conn in stops))
            for conn in starts:
                conn.start()
            return touched

    # ----- observers and the registry -----
    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def attach(self, registry: ToolRegistry) -> None:
        """Mirror the ready servers' tools into ``registry`` from now on."""
        self._registry = registry
        self._sync_registry()

    # ----- what there is -----
    @property
    def has_servers(self) -> bool:
        return bool(self._connections)

    def names(self) -> list[str]:
        return list(self._connections)

    def connection(self, name: str) -> McpConnection:
        try:
            return self._connections[name]
        except KeyError:
            known = ", ".join(self._connections) or "none"
            invalid = self.config.invalid.get(name)
            if invalid:
                raise McpConfigError(invalid[0]) from None
            raise McpConfigError(f"no MCP server '{name}' in {self.path} (servers: {known})") from None

    def log_path(self, name: str) -> Path | None:
        """Where the server's stderr goes (None without a logs dir, or for a remote server)."""
        conn = self.connection(name)
        if self.logs_dir is None or conn.config.transport != "stdio" or name in self._in_process:
            return None
        return self.logs_dir / log_file_name(name)

    def status(self, name: str) -> McpServerStatus:
        conn = self.connection(name)
        server = conn.config
        # Everything here is shown to people: the expanded ${env:NAME} values go back to how they are written.
        return McpServerStatus(
            name=name, state=conn.state, enabled=not server.disabled, transport=server.transport,
            target=server.target, detail=server.redact(conn.detail),
            error=server.redact(str(conn.error)) if conn.error else None,
            stderr_tail=tuple(server.redact(line) for line in conn.stderr_tail()), tools=tuple(self.tool_specs(name)),
            restarts=conn.restarts)

    def statuses(self) -> list[McpServerStatus]:
        return [self.status(name) for name in self._connections]

    def tool_specs(self, server: str | None = None) -> list[McpToolSpec]:
        """The listed tools (of one server, or all ready ones), named as the model sees them."""
        names = {(s.server, s.tool): s.name for s in self._named_specs()}
        out = []
        for conn in self._connections.values():
            if server is not None and conn.name != server:
                continue
            if conn.state is not McpState.READY:
                continue
            for tool in conn.tools:
                out.append(self._spec(conn.config, tool, names.get((conn.name, tool["name"]), "")))
        return out

    def _spec(self, server: McpServerConfig, tool: dict[str, Any], name: str) -> McpToolSpec:
        return McpToolSpec(server=server.name, tool=tool["name"], name=name,
                           description=str(tool.get("description") or tool.get("title") or ""),
                           input_schema=tool.get("inputSchema") or {},
                           enabled=tool["name"] not in server.disabled_tools,
                           auto_approved=tool["name"] in server.auto_approve)

    def _named_specs(self) -> list[McpToolSpec]:
        """The ready servers' tools, named: each server's names depend only on its own prefix (fixed with the
        configuration), its own tool list and the local tools, never on which other servers are ready."""
        local = [] if self._registry is None else [t.name for t in self._registry if t.server is None]
        collisions = prefix_collisions(self._prefixes)
        named = []
        for conn in self._connections.values():
            if conn.state is not McpState.READY:
                continue
            tools, notes = assign_names(conn.name, self._prefixes[conn.name], [tool["name"] for tool in conn.tools],
                                        taken=local)
            named += tools
            collisions += notes
        self.collisions = collisions
        return [McpToolSpec(n.server, n.tool, n.name, "", {}) for n in named]

    # ----- lifecycle -----
    def start(self, name: str) -> None:
        """Start one server in the background (also a disabled one: a deliberate start)."""
        self.connection(name).start()

    async def start_all(self, wait: bool = False) -> None:
        """Start every enabled server concurrently; with ``wait``, until each is ready or failed."""
        started = []
        for conn in self._connections.values():
            if not conn.config.disabled:
                conn.start()
                started.append(conn)
        if wait and started:
            await asyncio.gather(*(c.wait_settled(c.config.start_timeout_s + 5) for c in started))

    async def ensure_started(self, names: Iterable[str] | None = None) -> None:
        """Start the given (default: all enabled) servers that are stopped and wait until none is starting."""
        targets = [self.connection(n) for n in names] if names is not None else [
            c for c in self._connections.values() if not c.config.disabled]
        for conn in targets:
            if conn.state is McpState.STOPPED:
                conn.start()
        await asyncio.gather(*(c.wait_settled(c.config.start_timeout_s + 5) for c in targets))

    async def stop(self, name: str) -> None:
        await self.connection(name).stop()

    async def restart(self, name: str) -> None:
        conn = self.connection(name)
        await conn.stop()
        conn.start()

    async def aclose(self, budget_s: float = CLOSE_BUDGET_S) -> None:
        """Stop every server in parallel; what has not closed within ``budget_s`` is cancelled (the SDK still
        kills a stdio server's process group on the way out)."""
        conns = list(self._connections.values())
        if not conns:
            return
        stops = [asyncio.ensure_future(c.stop()) for c in conns]
        done, pending = await asyncio.wait(stops, timeout=budget_s)
        if pending:
            for conn in conns:
                conn.kill()
            await asyncio.wait(pending, timeout=5)
        for task in done:
            if not task.cancelled() and task.exception() is not None:
                log.warning("stopping an MCP server failed: %s", task.exception())

    # ----- calls -----
    async def call(self, server: str, tool: str, arguments: dict[str, Any]) -> ConvertedResult:
        """One call to a tool by the server's own name (``llmctl mcp call``); raises McpError."""
        return await self.connection(server).call(tool, arguments)

    async def call_text(self, server: str, tool: str, arguments: dict[str, Any]) -> str:
        """A call for the tool loop: the text on success; an error result raises McpToolCallError."""
        result = await self.call(server, tool, arguments)
        if not result.ok:
            raise McpToolCallError(result.text, server)
        return result.text

    # ----- the user's edits (saved to mcp.json, applied at once) -----
    async def set_enabled(self, name: str, enabled: bool) -> None:
        conn = self.connection(name)
        store.edit_file(self.path, store.server_disabled(name, not enabled))
        self._replace_config(name, disabled=not enabled)
        if enabled:
            conn.start()
        else:
            await conn.stop()

    def set_tool_enabled(self, name: str, tool: str, enabled: bool) -> None:
        conn = self.connection(name)
        store.edit_file(self.path, store.tool_disabled(name, tool, not enabled))
        tools = set(conn.config.disabled_tools)
        tools.discard(tool) if enabled else tools.add(tool)
        self._replace_config(name, disabled_tools=frozenset(tools))
        self._sync_registry()
        self._emit(conn, "tools")

    def always_allow(self, server: str, tool: str) -> None:
        """Save ``tool`` (the server's own name for it) into the server's ``autoApprove``: it is no longer asked
        about. Kept by server and tool, never by the function name the model sees."""
        conn = self.connection(server)
        store.edit_file(self.path, store.auto_approve(server, tool))
        self._replace_config(server, auto_approve=conn.config.auto_approve | {tool})
        self._sync_registry()
        self._emit(conn, "tools")

    def import_from(self, source: ImportSource) -> tuple[list[str], list[str]]:
        """Copy another app's servers into mcp.json (names already there are skipped); returns (added, skipped).
        ``reload()`` starts them (the window does so at once)."""
        added: list[str] = []
        skipped: list[str] = []
        store.edit_file(self.path, store.add_servers(read_servers(source), added, skipped))
        return added, skipped

    def _replace_config(self, name: str, **changes: Any) -> None:
        conn = self.connection(name)
        conn.config = replace(conn.config, **changes)
        self.config.servers[name] = conn.config

    # ----- changes from the connections -----
    def _changed(self, conn: McpConnection, kind: str) -> None:
        if self._connections.get(conn.name) is not conn:
            return  # a connection a reload replaced or removed, winding down: not ours to report any more
        self._sync_registry()
        self._emit(conn, kind)

    def _emit_all(self) -> None:
        self._send(McpEvent(None, "config", tuple(self.collisions)))

    def _emit(self, conn: McpConnection, kind: str) -> None:
        self._send(McpEvent(self.status(conn.name), kind, tuple(self.collisions)))

    def _send(self, event: McpEvent) -> None:
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:  # noqa: BLE001 - a broken listener must not break a server's lifecycle
                log.exception("MCP listener failed")

    def _sync_registry(self) -> None:
        """The registry holds exactly the enabled tools of the ready servers (no awaits: never seen half done)."""
        registry = self._registry
        if registry is None:
            return
        for name in self._registered:
            registry.unregister(name)
        self._registered = {}
        for spec in self.tool_specs():
            if not spec.enabled or spec.name in registry:
                continue
            timeout = self._connections[spec.server].config.timeout_s
            registry.register(registry_tool(spec, self.call_text, timeout))
            self._registered[spec.name] = spec

    def missing_tool_reason(self, name: str) -> str | None:
        """Why a requested tool name that looks like ``<server>__<tool>`` is not available, if a server says."""
        for server, conn in self._connections.items():
            prefix = self._prefixes.get(server)
            if prefix is not None and name.startswith(prefix + "__"):
                if conn.state is McpState.FAILED:
                    return f"its MCP server '{server}' failed: {conn.config.redact(conn.detail)}"
                if conn.config.disabled:
                    return f"its MCP server '{server}' is disabled in {self.path}"
                if conn.state is McpState.READY:
                    if any(prefixed_name(prefix, t) == name for t in conn.config.disabled_tools):
                        return f"it is disabled (disabledTools of MCP server '{server}')"
                    return f"MCP server '{server}' lists no such tool"
        return None


def _connection_settings(server: McpServerConfig) -> tuple:
    """What the connection is made from: a change to any of it restarts the server."""
    return (server.transport, server.command, server.args, dict(server.env), server.cwd, server.url,
            dict(server.headers), server.timeout_s)


def _prefixes_of(config: McpConfig) -> dict[str, str]:
    """Every configured server's name prefix, the invalid entries' included: fixing one later does not rename
    the others' tools."""
    return server_prefixes([*config.servers, *config.invalid])
