"""ServerManager: one supervised server per launchable model, attach-only for ``openai`` entries.

A config reload retires the supervisors whose launch settings changed (states.py, RETIRED) and drops them;
requests that meet one wait for the reload and are served by its successor, built from the new config.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from platformdirs import user_log_dir, user_state_dir

from ..config import APP_NAME, BackendsConfig, ModelEntry
from ..errors import LLMError, ModelTooLargeError, ResourceNotAvailableError, ServerExitedError, ServerRetired
from ..models.fit import fitting_context
from ..models.system import available_memory_bytes
from ..server_groups import ServerGroup
from ..protocol.client import ChatClient
from ..protocol.props import EngineProps
from . import process
from .api_keys import read_key
from .budget import Loaded, plan_room
from .launchers import HostFacts, LaunchSpec, build_launch
from .live_adapters import RestartNeeded, change_in_place
from .model_files import MemoryEstimate, estimate_memory, process_memory_bytes, resolve_optional
from .state_file import StateFile
from .states import ServerEvent, ServerState
from .supervisor import ModelServer

LOGS_ENV_VAR = "LLM_LOGS_DIR"
STATE_ENV_VAR = "LLM_STATE_DIR"
PACKAGE_LOGS_DIR = Path(__file__).resolve().parents[2] / "logs"


def default_logs_dir(package_logs: Path = PACKAGE_LOGS_DIR) -> Path:
    """$LLM_LOGS_DIR, else LLM/logs in a source checkout, else the user log dir.

    A checkout is told by the pyproject.toml beside the package: an installed copy has LLM/logs too (the wheel
    ships its .gitkeep) and may be writable (a venv), but its logs belong in the user's log dir."""
    if os.environ.get(LOGS_ENV_VAR):
        return Path(os.environ[LOGS_ENV_VAR])
    checkout = (package_logs.parents[1] / "pyproject.toml").is_file()
    if checkout and package_logs.is_dir() and os.access(package_logs, os.W_OK):
        return package_logs
    return Path(user_log_dir(APP_NAME))


def default_state_dir() -> Path:
    return Path(os.environ.get(STATE_ENV_VAR) or user_state_dir(APP_NAME))


@dataclass(frozen=True)
class ServerStatus:
    model_id: str
    backend: str
    state: str
    pid: int | None
    url: str
    external: bool
    detail: str = ""
    props: EngineProps | None = None
    memory_bytes: int | None = None  # resident memory of a running server


class ServerManager:
    def __init__(
        self,
        config: BackendsConfig,
        *,
        logs_dir: Path | None = None,
        state_dir: Path | None = None,
        on_event: Callable[[ServerEvent], None] | None = None,
        launcher: Callable[[ModelEntry], LaunchSpec] | None = None,
        facts: HostFacts | None = None,
        warmup: bool = True,
        memory_probe: Callable[[], int | None] = available_memory_bytes,
        confirm_unload: Callable[[str, str], Awaitable[bool]] | None = None,
    ) -> None:
        self.config = config
        self.logs_dir = logs_dir or default_logs_dir()
        state_dir = state_dir or default_state_dir()
        self.state_file = StateFile(state_dir / "servers.json")
        self.keys_dir = state_dir / "keys"
        self._listeners: list[Callable[[ServerEvent], None]] = [on_event] if on_event else []
        self._facts = facts or HostFacts.detect()
        self._custom_launcher = launcher
        self._warmup = warmup
        self._servers: dict[str, ModelServer] = {}
        self._memory_probe = memory_probe
        # Asked before a `keep_alive: forever` server is unloaded to make room: (its id, the one starting).
        self.confirm_unload = confirm_unload
        self._admission = asyncio.Lock()  # one start at a time decides what must make room
        self._admitting: dict[str, tuple[ModelServer, asyncio.Task[None]]] = {}
        self._reload_lock = asyncio.Lock()
        self._reloads = 0  # reloads begun and not finished (one runs, the others wait for the lock)
        self._settled = asyncio.Event()  # set while no reload is under way
        self._settled.set()
        # Supervisors a reload retired that may still hold a process (a reload cancelled or failed midway):
        # shutdown stops them, since no one else knows them any more.
        self._retired: set[ModelServer] = set()
        self._replaced: set[str] = set()  # server ids retired by the reloads under way: wait for their successor

    def add_listener(self, listener: Callable[[ServerEvent], None]) -> None:
        self._listeners.append(listener)

    def _dispatch(self, event: ServerEvent) -> None:
        if event.state is ServerState.RETIRED:
            return  # the supervisor is gone, not the model: its successor starts STOPPED, as it last reported
        # A server speaks for its whole group: every model id of it hears the event under its own id.
        group = self.config.groups.get(event.model_id)
        for model_id in group.model_ids if group is not None else (event.model_id,):
            member_event = event if model_id == event.model_id else replace(event, model_id=model_id)
            for listener in list(self._listeners):
                listener(member_event)

    def _launcher(self, entry: ModelEntry, config: BackendsConfig | None = None,
                  group: ServerGroup | None = None) -> LaunchSpec:
        """The launch spec of the server led by ``entry``, loading its group's adapters (or ``group``'s)."""
        if self._custom_launcher is not None:
            return self._custom_launcher(entry)
        group = group or (config or self.config).groups.get(entry.id)
        return build_launch(entry, self._facts, self.keys_dir / f"{entry.id}.key", group)

    def group_id(self, model_id: str) -> str:
        """The id of the server a launchable model runs on: its group's leader."""
        return self.config.group_of(model_id).id

    def log_path(self, model_id: str) -> Path:
        entry = self.config.models.get(model_id)
        server_id = self.group_id(model_id) if entry is not None and entry.launchable else model_id
        return self.logs_dir / f"{server_id}.log"

    def server(self, model_id: str) -> ModelServer | None:
        """The supervisor of a launchable model's group (None for attached ``openai`` entries)."""
        entry = self.config.get(model_id)
        if not entry.launchable:
            return None
        server_id = self.group_id(model_id)
        server = self._servers.get(server_id)
        if server is None:
            server = ModelServer(self.config.models[server_id], self._launcher, self.log_path(server_id),
                                 self.state_file, self._dispatch, self._warmup)
            self._servers[server_id] = server
        return server

    def _existing(self, model_id: str) -> ModelServer | None:
        """The supervisor of a model's group if one was made (never makes one)."""
        entry = self.config.models.get(model_id)
        return self._servers.get(self.group_id(model_id)) if entry is not None and entry.launchable else None

    def request_extras(self, model_id: str) -> dict[str, object]:
        """What every request of ``model_id`` adds to its body: on llama-server, the `lora` scales that select
        its adapter (zero for the group's others, all zero for the bare base) and the slot it keeps."""
        server, entry = self._existing(model_id), self.config.models.get(model_id)
        spec = server.spec if server is not None else None
        if entry is None or spec is None or spec.engine != "llama-server" or not server.engine_adapters:
            return {}
        mine = spec.engine_adapter(entry.adapter_dir) if entry.adapter_dir else None
        extras: dict[str, object] = {"lora": [{"id": i, "scale": entry.adapter_scale if path == mine else 0.0}
                                              for i, path in enumerate(server.engine_adapters)]}
        if spec.pinned_slots:
            extras["id_slot"] = self.config.group_of(model_id).model_ids.index(model_id)
        return extras

    def api_key(self, model_id: str) -> str | None:
        """The key a launched model's server expects; None for attached models and keyless servers."""
        server = self.server(model_id)
        return server.api_key() if server is not None else None

    def props(self, model_id: str) -> EngineProps | None:
        """What a running model's engine reported about itself (context, template capabilities, modalities)."""
        server = self._existing(model_id)
        return server.props if server is not None else None

    async def running_props(self, model_id: str) -> EngineProps | None:
        """The props of a model's running server, whichever process of ours started it; None if none runs."""
        props = self.props(model_id)
        if props is not None:
            return props
        entry = self.config.models.get(model_id)
        if entry is None or not entry.launchable:
            return None
        server_id = self.group_id(model_id)
        record = self.state_file.load().get(server_id)
        if record is None or not process.pid_alive(record.pid):
            return None
        client = ChatClient(entry.base_url, entry.request_model_name, connect_timeout_s=1, read_timeout_s=5,
                            api_key=read_key(self.keys_dir / f"{server_id}.key"))
        try:
            return await client.props()
        except LLMError:
            return None
        finally:
            await client.aclose()

    def engine_binary(self, model_id: str) -> str | None:
        """The engine command a launchable model runs (or would run), e.g. the llama-server path."""
        entry = self.config.get(model_id)
        if not entry.launchable:
            return None
        try:
            spec = self._launcher(self.config.models[self.group_id(model_id)])
        except LLMError:
            return None
        return spec.argv[0] if spec.engine != "llama-cpp-python" else f"{spec.argv[0]} -m llama_cpp.server"

    async def ensure_ready(self, model_id: str, detach: bool = False) -> None:
        """Start (or re-attach to) the model's server, unloading idle ones first if it would not fit.

        A supervisor that a reload retires refuses the start; the call then waits for the reload and starts
        the successor with the new settings (a READY one still serves the request already in flight)."""
        # A retiring READY server is joined: the request in flight on it (in_use came first) must not wait for
        # the reload, which waits for that request.
        server = await self._serving(model_id, join_retiring=True)
        while server is not None:
            try:
                await self._ensure_ready(server, detach)
                return
            except ServerRetired:
                server = await self._serving(model_id)

    async def _ensure_ready(self, server: ModelServer, detach: bool) -> None:
        server.last_used = time.monotonic()
        if server.loaded:
            await server.ensure_ready(detach=detach)
            return
        # Callers for one server share one admission and start, and so its outcome (a start called off by a
        # stop is a typed error for all of them); shielded, so one impatient caller cannot abort it for the rest.
        admitting = self._admitting.get(server.entry.id)
        if admitting is None or admitting[0] is not server or admitting[1].done():
            admitting = self._admitting[server.entry.id] = (server, asyncio.ensure_future(self._admit(server, detach)))
            # Its outcome is read here too: when every waiter was cancelled, nobody else would.
            admitting[1].add_done_callback(lambda t: t.cancelled() or t.exception())
        await asyncio.shield(admitting[1])

    async def _serving(self, model_id: str, join_retiring: bool = False) -> ModelServer | None:
        """The supervisor a request of ``model_id`` uses (None for attached models). Never one a reload has
        retired (unless ``join_retiring``), nor a new one made from the config a reload is replacing: those
        wait for the reload and get the successor built from the new config (which may have dropped the
        model: ModelNotFoundError)."""
        while True:
            if not self.config.get(model_id).launchable:
                return None
            server_id = self.group_id(model_id)
            server = self._servers.get(server_id)
            if server is None and server_id not in self._replaced:
                if await self._finish_retiring(server_id):
                    continue  # it awaited: look again, a reload may have begun meanwhile
                return self.server(model_id)
            if server is not None and (join_retiring or not server.retiring):
                return server
            while not self._settled.is_set():  # checked on waking: a newer reload may have begun meanwhile
                await self._settled.wait()
            if server is not None and server.retiring and self._servers.get(server_id) is server:
                del self._servers[server_id]  # retired outside a reload: nothing else would replace it
                self._retired.add(server)

    async def _finish_retiring(self, server_id: str) -> bool:
        """Before a successor is made: stop what a cancelled reload left of the retired servers of
        ``server_id``, which still hold its port (a successor would collide with them, or re-attach to a
        process that shutdown then stops under it). True when it retired any (the caller looks again); a
        stop that fails leaves it to shutdown, as before, rather than blocking the model for good."""
        left = [old for old in self._retired if old.entry.id == server_id]
        for old in left:
            await old.retire(wait_for_requests=False)
            if old.state is ServerState.RETIRED:
                self._retired.discard(old)
        return bool(left) and all(old.state is ServerState.RETIRED for old in left)

    async def _admit(self, server: ModelServer, detach: bool) -> None:
        # Two starts must not both take the last place: admission (deciding and starting) is one at a time.
        async with self._admission:
            if server.retiring:  # retired while this waited its turn: make no room for it
                raise ServerRetired(server.entry.id)
            if not server.loaded:
                await self._make_room(server)
            await server.ensure_ready(detach=detach)

    def estimate(self, model_id: str) -> MemoryEstimate | None:
        """What a launchable model's server will hold in memory; None when its weights cannot be found."""
        entry = self.config.get(model_id)
        if entry.launchable:
            entry = self.config.models[self.group_id(model_id)]
        try:
            spec = self._launcher(entry)
        except LLMError:
            return None
        if not spec.model_path:
            return None
        mmproj = resolve_optional(entry.mmproj)
        extra = mmproj.stat().st_size if mmproj is not None and mmproj.is_file() else 0
        return estimate_memory(Path(spec.model_path), entry.context_size, quantized_4bit=entry.use_4bit,
                               gpu_layers=entry.gpu_layers, extra_bytes=extra)

    async def _make_room(self, server: ModelServer) -> None:
        model_id = server.entry.id
        loaded = [
            Loaded(s.entry.id, s.last_used, process_memory_bytes(s.pid) if s.pid else None, s.owned, s.busy,
                   s.entry.keep_alive == "forever")
            for s in self._servers.values() if s.loaded and s.entry.id != model_id
        ]
        # The estimate reads the model file's header: off the event loop (the window's Qt thread).
        need, available = await asyncio.to_thread(self.estimate, model_id), self._memory_probe()
        limit = self.config.max_loaded
        plan = plan_room(model_id, need, loaded, limit, available)
        forever = sorted((s for s in loaded if s.forever and s.owned and not s.busy), key=lambda s: s.last_used)
        if plan.problem and forever and self.confirm_unload is not None:
            confirmed = [s.model_id for s in forever if await self.confirm_unload(s.model_id, model_id)]
            plan = plan_room(model_id, need, loaded, limit, available, frozenset(confirmed))
        if plan.problem:
            error = _refusal(plan.problem, need, loaded, available, server.entry.context_size)
            server.refuse(error)
            raise error
        for victim in plan.unload:
            await self._servers[victim].stop(reason=f"unloaded to make room for '{model_id}'")

    async def stop(self, model_id: str) -> None:
        server = self.server(model_id)
        if server is not None:
            await server.stop()

    async def stop_all(self) -> None:
        """Stop every launchable model's server, including ones other processes of ours started."""
        for server_id in self.config.groups:
            await self.stop(server_id)

    async def shutdown(self) -> None:
        """App exit: stop what this process started under the session (or TTL) policy; leave the rest.
        A retired server that still runs (its reload was cancelled or failed midway) is stopped in any case."""
        for server in list(self._retired):
            await server.retire(wait_for_requests=False)
            if server.pid is None:
                self._retired.discard(server)
        for server in list(self._servers.values()):
            if server.owned and server.entry.keep_alive != "forever":
                await server.stop()

    async def crash_error(self, model_id: str) -> ServerExitedError | None:
        server = self._existing(model_id)
        return await server.crash_error() if server is not None else None

    @asynccontextmanager
    async def in_use(self, model_id: str) -> AsyncIterator[None]:
        """Marks a request of ``model_id`` in flight. A new request never joins a retiring server: it waits
        for the reload and counts on the successor (so do not nest in_use for one model: a reload would wait
        for the outer request, which waits for the reload)."""
        server = await self._serving(model_id)
        if server is None:
            yield
            return
        async with server.in_use():
            yield

    def status(self) -> list[ServerStatus]:
        records = self.state_file.load()
        rows = []
        for model_id, entry in self.config.models.items():
            if not entry.launchable:
                rows.append(ServerStatus(model_id, entry.backend, "external", None, entry.base_url, True))
                continue
            server_id = self.group_id(model_id)
            server = self._servers.get(server_id)
            state, pid, detail = ServerState.STOPPED.value, None, ""
            props = server.props if server is not None and server.state is ServerState.READY else None
            if server is not None and server.state is not ServerState.STOPPED:
                state, pid = server.state.value, server.pid
                detail = str(server.error) if server.error else ""
            elif server_id in records and process.pid_alive(records[server_id].pid):
                record = records[server_id]
                state, pid = "running", record.pid
                detail = "detached" if record.detached else f"started by pid {record.owner_pid}"
            memory = process_memory_bytes(pid) if pid else None
            rows.append(ServerStatus(model_id, entry.backend, state, pid, entry.base_url, False, detail, props, memory))
        return rows

    async def reload(self, config: BackendsConfig) -> list[str]:
        """Adopt a new config. A server restarts only when its launch spec (the command line and
        environment it was started with) changed; any other edit updates its entry in place. Adapters
        added to or removed from a running group are loaded or unloaded in place where the engine can
        (see ``_change_adapters``); the events say which happened.

        A server that must restart is retired: it refuses new starts, finishes the answers in flight,
        stops and is dropped; requests meeting it wait for the reload and start its successor from the
        new config. Reloads run one at a time.

        Returns the model ids whose server was stopped for that reason (they restart on next use).
        """
        self._reloads += 1
        self._settled.clear()
        try:
            async with self._reload_lock:
                return await self._reload(config)
        finally:
            self._reloads -= 1
            if self._reloads == 0:
                self._replaced.clear()
                self._settled.set()

    async def _reload(self, config: BackendsConfig) -> list[str]:
        restarted: list[str] = []
        decided: set[ModelServer] = set()
        # Until none is left undecided: a request may make a supervisor (from the old config) while this awaits.
        while pending := [(i, s) for i, s in self._servers.items() if s not in decided]:
            for server_id, server in pending:
                decided.add(server)
                new_entry, new_group = config.models.get(server_id), config.groups.get(server_id)
                old_group = self.config.groups.get(server_id)
                if new_entry is not None and new_group is not None and new_entry.launchable:
                    new_hash = self._launch_hash(new_entry, config)
                    if new_hash is not None and new_hash == self._launch_hash(server.entry, self.config):
                        server.update_entry(new_entry)
                        continue
                    if await self._change_adapters(server, new_entry, config, old_group, new_group):
                        server.update_entry(new_entry)
                        continue
                if server.state is not ServerState.STOPPED:
                    restarted += old_group.model_ids if old_group is not None else [server_id]
                await self._retire(server_id, server)
        self.config = config
        return restarted

    async def _retire(self, server_id: str, server: ModelServer) -> None:
        self._replaced.add(server_id)
        self._retired.add(server)
        try:
            await server.retire()
        finally:
            if self._servers.get(server_id) is server:
                del self._servers[server_id]
            if server.state is ServerState.RETIRED:
                self._retired.discard(server)

    async def _change_adapters(self, server: ModelServer, entry: ModelEntry, config: BackendsConfig,
                               old: ServerGroup | None, new: ServerGroup) -> bool:
        """Load or unload the adapters that differ without reloading the base, where the engine can;
        False when the group must restart instead (the reason is reported as an event)."""
        spec = server.spec
        if old is None or spec is None or server.state is not ServerState.READY:
            return False
        base_before = self._launch_hash(server.entry, self.config, old.without_adapters())
        if base_before is None or base_before != self._launch_hash(entry, config, new.without_adapters()):
            return False  # the base or its load settings changed too
        try:
            new_spec = self._launcher(entry, config)
        except LLMError:
            return False
        client = ChatClient(entry.base_url, spec.served_model_name, api_key=server.api_key(),
                            connect_timeout_s=entry.connect_timeout_s, read_timeout_s=entry.startup_timeout_s)
        try:
            done, engine_adapters = await change_in_place(spec, new_spec, server.engine_adapters, client)
        except RestartNeeded as exc:
            self._say(server, f"restarting: {exc}")
            return False
        finally:
            await client.aclose()
        server.adopt(new_spec, engine_adapters, f"{done} (the base was not reloaded)")
        return True

    def _say(self, server: ModelServer, detail: str) -> None:
        self._dispatch(ServerEvent(server.entry.id, server.state, detail, pid=server.pid))

    def _launch_hash(self, entry: ModelEntry, config: BackendsConfig, group: ServerGroup | None = None) -> str | None:
        """The launch spec's hash; None when no spec can be built (a missing model file, say)."""
        try:
            return self._launcher(entry, config, group).config_hash()
        except LLMError:
            return None


def _refusal(problem: str, need: MemoryEstimate | None, loaded: list[Loaded], available: int | None,
             context_size: int) -> ResourceNotAvailableError:
    """The error a start that cannot fit gets: with a context size that would fit once every idle model this
    process may unload is gone, when a smaller context is what it takes."""
    if need is None or available is None or need.total <= available:
        return ResourceNotAvailableError(problem)
    best_case = available + sum(s.memory or 0 for s in loaded if s.owned and not s.busy and not s.forever)
    smaller = fitting_context(need, best_case, context_size)
    hint = f"; with context_size {smaller} it would fit" if smaller else ""
    return ModelTooLargeError(problem + hint, need.total, available, smaller)
