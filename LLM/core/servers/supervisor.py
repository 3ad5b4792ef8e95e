"""One supervised model server: the single owner of its state (the states are in states.py).

Every transition goes through ``_set``; callers only ask (``ensure_ready``, ``stop``, ``retire``),
so concurrent callers share one start and cannot race a transition. What each request does in
each state is the table in ``ModelServer``'s docstring.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path

from ..protocol.client import ChatClient
from ..config import ModelEntry
from ..errors import (
    BackendError,
    LLMError,
    PortInUseError,
    ServerError,
    ServerExitedError,
    ServerRetired,
    ServerStartTimeout,
)
from ..protocol.props import EngineProps
from . import process
from .api_keys import ensure_key_file, read_key
from .launchers import LaunchSpec, ensure_engine_installed
from .lora_convert import convert_adapter
from .model_files import check_memory, process_memory_bytes
from .state_file import ServerRecord, StateFile
from .states import TRANSITIONS, IllegalTransition, ServerEvent, ServerState

POLL_S = 0.1
CRASH_RESET_S = 60.0  # a server that ran this long before crashing resets the backoff
MAX_BACKOFF_S = 30.0


class ModelServer:
    """One launchable model's server process, and the one owner of its :class:`ServerState`.

    Callers only ask; each request does this from each state (``->``: the states it passes through; every one
    is reported to ``on_event``). tests/core/servers/test_contract.py checks every cell against a fake engine.

    ========  ================================================  ====================================================
    state     ensure_ready()                                    stop()
    ========  ================================================  ====================================================
    STOPPED   Starts it: re-attaches to the server another      Stops the server another process of ours runs for
              process of ours left running with the same        this model, if one does (-> STOPPING -> STOPPED);
              launch spec, else spawns one and polls its        else does nothing and reports nothing.
              health until it answers (-> STARTING -> READY).
              A start that fails ends FAILED and raises its
              typed error (ServerExitedError, ...).
    STARTING  Joins the start in progress: one process, and     Calls the start off and stops its process group
              every caller gets its outcome. A caller that is   (-> FAILED "start cancelled" -> STOPPED); callers
              cancelled does not cancel it for the others.      waiting in ensure_ready get a ServerError.
    READY     Returns at once (``detach``: the server is no     Waits for the answers in flight (unless
              longer stopped when this process exits).          ``wait_for_requests`` is False), then stops the
                                                                process group (-> STOPPING -> STOPPED).
    STOPPING  Waits for the stop to end, then starts it as      Waits for the stop under way to end, and does no
              from STOPPED.                                     more.
    FAILED    Starts it again, as from STOPPED (the user's      -> STOPPED: a failed start or a crash left no
              Retry).                                           process (a server another process of ours runs
                                                                for this model is stopped, as from STOPPED).
    RETIRED   Raises ServerRetired; starts nothing.             Returns at once: it holds nothing.
    ========  ================================================  ====================================================

    A stop() whose caller is cancelled while the process group is being stopped still ends STOPPED (the state
    never stays STOPPING with nobody finishing it); an ensure_ready meanwhile waits for it, as from STOPPING.
    A stop() that was waiting (for answers in flight, for a start it called off) when a reload retired the server
    returns once it resumes: the process is gone, and the record under the model's id is the successor's.

    ``retire()`` (a config reload replaced this supervisor) first marks it retiring, for good: from then on
    ensure_ready raises ServerRetired in every state but READY, which still returns at once so the answers in
    flight finish, and a start it calls off raises ServerRetired to its callers. Then it does what stop() does
    and ends RETIRED (from STOPPED at once; from RETIRED it does nothing).

    Not asked for: a READY server whose process exits goes to FAILED ("crashed; restarts on the next request"),
    and after repeated crashes, each within a minute of becoming ready, the next start first waits (2, 4, ... up
    to 30 s). ``refuse(error)`` puts a STOPPED or FAILED server in FAILED with the reason a start could not begin.
    """

    def __init__(
        self,
        entry: ModelEntry,
        spec_factory: Callable[[ModelEntry], LaunchSpec],
        log_path: Path,
        state_file: StateFile,
        on_event: Callable[[ServerEvent], None],
        warmup: bool = True,
    ) -> None:
        self.entry = entry
        self._spec_factory = spec_factory
        self.log_path = log_path
        self._state_file = state_file
        self._on_event = on_event
        self._warmup = warmup
        self.state = ServerState.STOPPED
        self.error: LLMError | None = None
        self.pid: int | None = None
        self._finishing_stop: asyncio.Future[None] | None = None  # a stop whose caller was cancelled, finishing
        self.owned = False  # stop it when this process shuts down (session policy)
        self.spec: LaunchSpec | None = None  # how the running (or attached) server was launched
        self.props: EngineProps | None = None  # what its engine reports about itself, once ready
        # The adapters the running engine holds, in its id order (llama-server's `lora` ids index this).
        self.engine_adapters: tuple[str, ...] = ()
        self._proc_exited = asyncio.Event()
        self._returncode: int | None = None
        self._start_task: asyncio.Task[None] | None = None
        self._watch_task: asyncio.Task[None] | None = None
        self._ready_at = 0.0
        self._crashes = 0
        self._in_flight = 0
        self.last_used = time.monotonic()  # for the loaded-model budget: least recently used goes first
        self._no_requests = asyncio.Event()  # set while no request is in flight
        self._no_requests.set()
        self._idle_handle: asyncio.TimerHandle | None = None
        self._stopped = asyncio.Event()  # set while no stop is in progress
        self._stopped.set()
        self._retiring = False  # one-way: a config reload replaced it (see retire)

    # ----- transitions (the only place state changes) -----
    def _set(self, state: ServerState, detail: str = "", error: LLMError | None = None) -> None:
        if state is not self.state and state not in TRANSITIONS[self.state]:
            raise IllegalTransition(f"{self.entry.id}: {self.state.value} -> {state.value}")
        self.state = state
        self.error = self._named(error)
        ready = state is ServerState.READY
        memory = process_memory_bytes(self.pid) if ready and self.pid else None
        self._emit(ServerEvent(self.entry.id, state, detail, error, self.pid, props=self.props if ready else None,
                               memory_bytes=memory))

    def _named(self, error: LLMError | None) -> LLMError | None:
        """The error with the model's display name and log file, so it can be said in plain words (failures.py)."""
        if isinstance(error, ServerError) and error.model_id == self.entry.id:
            error.label = error.label or self.entry.label
            error.log_path = error.log_path or str(self.log_path)
        return error

    def _emit(self, event: ServerEvent) -> None:
        try:
            self._on_event(event)
        except Exception:  # a broken listener must not break the lifecycle
            pass

    # ----- public requests -----
    def update_entry(self, entry: ModelEntry) -> None:
        """A config edit that leaves the launch settings alone (display name, timeouts, defaults)."""
        self.entry = entry

    def adopt(self, spec: LaunchSpec, engine_adapters: tuple[str, ...], detail: str) -> None:
        """The running server now matches ``spec`` (adapters loaded or unloaded in place): record it, so
        another process of ours re-attaches to it instead of restarting it."""
        self.spec = spec
        self.engine_adapters = engine_adapters
        record = self._state_file.load().get(self.entry.id)
        if record is not None and record.pid == self.pid:
            self._state_file.put(replace(record, config_hash=spec.config_hash()))
        self._emit(ServerEvent(self.entry.id, self.state, detail, pid=self.pid))

    async def ensure_ready(self, detach: bool = False) -> None:
        """Start (or re-attach to) the server unless it is ready; concurrent calls share one start.
        A retired supervisor starts nothing: ServerRetired (a READY one still serves answers in flight)."""
        await self._stopped.wait()  # a stop in progress (idle TTL, reload) finishes first
        if self.state is ServerState.READY and not self._proc_exited.is_set():
            if detach:
                self._mark_detached()
            return
        if self._retiring:
            raise ServerRetired(self.entry.id)
        if self._start_task is None or self._start_task.done():
            self._start_task = asyncio.ensure_future(self._start(detach))
        task = self._start_task
        try:
            # shield: one impatient caller cancelling must not abort the start the others wait on.
            await asyncio.shield(task)
        except asyncio.CancelledError:
            if task.cancelled():  # the start itself was called off (a stop or a reload), not this caller
                if self._retiring:
                    raise ServerRetired(self.entry.id) from None
                raise ServerError(f"the start of '{self.entry.id}' was cancelled: its server was stopped or "
                                  "reloaded; send again to start it", self.entry.id) from None
            raise

    @property
    def retiring(self) -> bool:
        """A config reload replaced it: it refuses starts, and ends RETIRED once stopped."""
        return self._retiring

    @property
    def loaded(self) -> bool:
        """Holding (or loading) its model now."""
        return self.state in (ServerState.STARTING, ServerState.READY) and self.pid is not None

    @property
    def busy(self) -> bool:
        return self._in_flight > 0

    def refuse(self, error: LLMError) -> None:
        """A start that could not even begin (nothing was spawned): FAILED with the reason, Retry possible."""
        if self.state in (ServerState.STOPPED, ServerState.FAILED):
            self._set(ServerState.FAILED, str(error), error)

    def api_key(self) -> str | None:
        """The key the running server expects (None for servers launched without one)."""
        return read_key(self.spec.api_key_file) if self.spec is not None else None

    async def stop(self, wait_for_requests: bool = True, reason: str = "") -> None:
        """Stop the server; answers in flight finish first unless ``wait_for_requests`` is False."""
        if self.state is ServerState.RETIRED:
            return  # it holds nothing; the record under its id, if any, is its successor's
        if not self._stopped.is_set():  # a stop under way (idle TTL, unload) does this one's work
            await self._stopped.wait()
            return
        # A loop: a request that began while the last one ended (before this resumed) is waited for too.
        while wait_for_requests and self.state is ServerState.READY and self._in_flight:
            await self._no_requests.wait()
        if self._start_task is not None and not self._start_task.done():
            self._start_task.cancel()
            try:
                await self._start_task
            except BaseException:
                pass
        if self.state is ServerState.RETIRED:
            return  # a reload retired it while this waited: its stop is done, and the record is its successor's
        pid = self.pid or self._recorded_pid()
        if pid is None:
            if self.state is not ServerState.STOPPED:
                self._set(ServerState.STOPPED, "stopped")
            return
        if self.state is not ServerState.STOPPING:
            self._set(ServerState.STOPPING, reason or f"stopping pid {pid}")
        self._cancel_idle()
        self._stopped.clear()
        stopping = _off_loop_future(process.stop_process_group, pid)
        try:
            await asyncio.shield(stopping)
        except asyncio.CancelledError:
            # The caller is gone (a switch called off, the window closing), the stop is not: the server must not
            # stay STOPPING with nobody finishing it. It ends STOPPED when the group is down; ensure_ready waits.
            self._finishing_stop = asyncio.ensure_future(self._finish_stop(stopping, pid))  # (held: not collected)
            raise
        except BaseException:
            self._stopped.set()
            raise
        self._stopped_now(pid)

    async def _finish_stop(self, stopping: asyncio.Future[object], pid: int) -> None:
        try:
            await stopping
            self._stopped_now(pid)
        except Exception as exc:  # nobody awaits this: say it in the state (a Retry or a stop tries again)
            self._set(ServerState.FAILED, f"stopping pid {pid} failed: {exc}",
                      exc if isinstance(exc, LLMError) else ServerError(str(exc), self.entry.id))
        finally:
            self._stopped.set()

    def _stopped_now(self, pid: int) -> None:
        try:
            self._state_file.remove(self.entry.id, pid)
            self.pid = None
            self.owned = False
            self._set(ServerState.STOPPED, "stopped")
        finally:
            self._stopped.set()

    async def retire(self, wait_for_requests: bool = True) -> None:
        """A config reload replaced this supervisor: from now on it refuses starts, so no request can revive
        the old settings outside the manager. It stops (answers in flight finish first unless
        ``wait_for_requests`` is False) and ends RETIRED for good. Called again, it finishes what a
        cancelled call left."""
        self._retiring = True
        if self.state is ServerState.RETIRED:
            return
        if self.state is not ServerState.STOPPED or self.pid is not None:
            await self.stop(wait_for_requests, reason="its settings changed in the config: stopping")
        # A start not yet begun (its task only scheduled) finds the supervisor retired and refuses.
        if self.state is ServerState.STOPPED:  # else a stop that failed: the manager's shutdown tries again
            self._set(ServerState.RETIRED, "replaced by a config reload")

    async def crash_error(self, wait_s: float = 1.5) -> ServerExitedError | None:
        """After a dropped connection: the ServerExitedError if the process died (or dies within wait_s)."""
        if self.pid is None and not self._proc_exited.is_set():
            return None
        try:
            await asyncio.wait_for(self._proc_exited.wait(), wait_s)
        except asyncio.TimeoutError:
            return None
        return self._named(ServerExitedError(
            self.entry.id, self._returncode, process.log_tail(self.log_path), when="while answering"
        ))

    @asynccontextmanager
    async def in_use(self) -> AsyncIterator[None]:
        """Marks a request in flight; the idle TTL counts from the end of the last one."""
        self._in_flight += 1
        self._no_requests.clear()
        self._cancel_idle()
        try:
            yield
        finally:
            self._in_flight -= 1
            self.last_used = time.monotonic()
            if self._in_flight == 0:
                self._no_requests.set()
            self._schedule_idle()

    # ----- start -----
    async def _start(self, detach: bool) -> None:
        if self._retiring:  # retired between this task's creation and its first step
            raise ServerRetired(self.entry.id)
        spec: LaunchSpec | None = None
        try:
            self._set(ServerState.STARTING, "preparing")
            await self._backoff()
            spec = self._spec_factory(self.entry)
            if await self._try_attach(spec, detach):
                return
            await self._spawn_and_wait(spec, detach)
        except asyncio.CancelledError:
            await self._abort_start()
            if self.state is ServerState.STARTING:
                self._set(ServerState.FAILED, "start cancelled")
            raise
        except LLMError as exc:
            await self._abort_start()
            self._set(ServerState.FAILED, str(exc), exc)
            raise
        except Exception as exc:  # no exit from a start without a state: a bug or an OS error ends in FAILED too
            await self._abort_start()
            error = ServerError(f"cannot start '{self.entry.id}': {type(exc).__name__}: {exc}", self.entry.id)
            self._set(ServerState.FAILED, str(error), error)
            raise error from exc

    async def _backoff(self) -> None:
        if self._crashes >= 2:
            delay = min(MAX_BACKOFF_S, 2.0 ** (self._crashes - 1))
            self._emit(ServerEvent(self.entry.id, self.state, f"crashed {self._crashes} times; waiting {delay:g} s"))
            await asyncio.sleep(delay)

    async def _try_attach(self, spec: LaunchSpec, detach: bool) -> bool:
        """Re-attach to a healthy server another process of ours left running; clean up stale records."""
        record = self._state_file.load().get(self.entry.id)
        if record is None:
            return False
        ours = process.pid_alive(record.pid) and _same_process(record)
        if ours and record.config_hash == spec.config_hash() and await self._answers(spec):
            self.pid = record.pid
            self.spec = spec
            self._proc_exited = asyncio.Event()
            owner_gone = not process.pid_alive(record.owner_pid) or record.owner_pid == os.getpid()
            # Adopt a session server whose owner died; never stop one another live process owns.
            self.owned = owner_gone and not record.detached and not detach
            if detach and not record.detached:
                self._state_file.put(replace(record, detached=True))
            self._watch_task = asyncio.ensure_future(self._watch_pid(record.pid))
            await self._read_props(spec)
            self.engine_adapters = await self._loaded_adapters(spec)
            self._ready_at = time.monotonic()
            self._set(ServerState.READY, f"attached to running server pid {record.pid} on port {record.port}")
            self._schedule_idle()
            return True
        if ours:
            self._emit(ServerEvent(self.entry.id, self.state, "stopping a server started with other settings"))
            await _off_loop(process.stop_process_group, record.pid)
        self._state_file.remove(self.entry.id, record.pid)
        return False

    async def _spawn_and_wait(self, spec: LaunchSpec, detach: bool) -> None:
        entry = self.entry
        if process.port_in_use(entry.host, int(entry.port or 0)):
            raise PortInUseError(int(entry.port or 0), process.port_owner(int(entry.port or 0)), entry.id)
        if spec.model_path:
            check_memory(entry.id, Path(spec.model_path))
        ensure_engine_installed(spec)
        for adapter_dir, out in spec.conversions:
            await self._convert(Path(adapter_dir), Path(out), Path(spec.model_path or ""))
        env = dict(spec.env)
        if spec.api_key_file:
            key = ensure_key_file(Path(spec.api_key_file))
            if spec.api_key_env:
                env[spec.api_key_env] = key
        self.spec = spec
        self.props = None
        self.engine_adapters = tuple(engine for _, engine in spec.adapters)
        proc = process.spawn(spec.argv, self.log_path, env)
        self.pid = proc.pid
        self.owned = not detach
        self._proc_exited = asyncio.Event()
        self._returncode = None
        self._state_file.put(
            ServerRecord(entry.id, proc.pid, entry.host, int(entry.port or 0), spec.config_hash(), time.time(),
                         spec.argv, os.getpid(), detach, process.start_time(proc.pid))
        )
        loop = asyncio.get_running_loop()
        exited = self._proc_exited

        def reap() -> None:  # a thread, so this works on any event loop (qasync included)
            code = proc.wait()
            try:
                loop.call_soon_threadsafe(self._on_exit, proc.pid, code, exited)
            except RuntimeError:
                pass  # the loop is gone: a detached server outlived the process that started it

        threading.Thread(target=reap, name=f"reap-{entry.id}", daemon=True).start()
        self._set(ServerState.STARTING, f"pid {proc.pid}: loading {spec.engine}")
        await self._wait_ready(spec)
        await self._read_props(spec)
        if self._warmup:
            await self._warm_up(spec)
        self._ready_at = time.monotonic()
        self._set(ServerState.READY, f"ready on port {entry.port} (pid {proc.pid})")
        self._schedule_idle()

    async def _convert(self, adapter_dir: Path, out: Path, base_model: Path) -> None:
        """A PEFT adapter for a GGUF base: converted once (cached), progress shown while it runs."""
        if out.is_file():
            return
        loop = asyncio.get_running_loop()

        def progress(line: str) -> None:
            event = ServerEvent(self.entry.id, self.state, line, pid=self.pid, progress=line[:200])
            loop.call_soon_threadsafe(self._emit, event)

        await asyncio.to_thread(convert_adapter, adapter_dir, out, base_model, progress)

    async def _loaded_adapters(self, spec: LaunchSpec) -> tuple[str, ...]:
        """llama-server's own list (a re-attached server may hold more than its spec says), else the spec's."""
        configured = tuple(engine for _, engine in spec.adapters)
        if spec.engine != "llama-server":
            return configured
        client = ChatClient(self.entry.base_url, spec.served_model_name, api_key=read_key(spec.api_key_file),
                            connect_timeout_s=2, read_timeout_s=5)
        try:
            listed = await client.lora_adapters()
        except BackendError:
            listed = None
        finally:
            await client.aclose()
        if not listed:
            return configured
        return tuple(str(a.get("path", "")) for a in sorted(listed, key=lambda a: a.get("id", 0)))

    async def _wait_ready(self, spec: LaunchSpec) -> None:
        deadline = time.monotonic() + self.entry.startup_timeout_s
        last_line = ""
        while True:
            if self._proc_exited.is_set():
                raise ServerExitedError(self.entry.id, self._returncode, process.log_tail(self.log_path), "while starting")
            if await self._answers(spec):
                return
            line = process.last_log_line(self.log_path)
            if line and line != last_line:
                last_line = line
                self._emit(ServerEvent(self.entry.id, self.state, "loading", pid=self.pid, progress=line[:200]))
            if time.monotonic() > deadline:
                raise ServerStartTimeout(self.entry.id, self.entry.startup_timeout_s, process.log_tail(self.log_path))
            await asyncio.sleep(POLL_S)

    async def _answers(self, spec: LaunchSpec) -> bool:
        client = ChatClient(self.entry.base_url, spec.served_model_name, connect_timeout_s=1, read_timeout_s=2)
        try:
            path = "/openapi.json" if spec.readiness == "openapi" else "/health"
            return await client.http_status(path) == 200
        finally:
            await client.aclose()

    async def _warm_up(self, spec: LaunchSpec) -> None:
        """One tiny request, so the user's first message does not pay the engine's first-call cost."""
        self._emit(ServerEvent(self.entry.id, self.state, "warming up", pid=self.pid, progress="warming up"))
        client = ChatClient(self.entry.base_url, spec.served_model_name, api_key=read_key(spec.api_key_file),
                            read_timeout_s=self.entry.startup_timeout_s)
        try:
            # Streamed and a few tokens long, like a user's request, so the engine's prompt batch,
            # decode loop and streaming path have all run once.
            warm_up = [{"role": "user", "content": "Say hello in a few words."}]
            async for _ in client.chat(warm_up, {"max_tokens": 8, "temperature": 0}):
                pass
        except BackendError as exc:
            if self._proc_exited.is_set() or await self.crash_error(0.5):
                raise ServerExitedError(self.entry.id, self._returncode, process.log_tail(self.log_path), "during warm-up") from exc
            raise
        finally:
            await client.aclose()

    async def _read_props(self, spec: LaunchSpec) -> None:
        """What the engine says about itself (llama-server's /props); None for engines without it."""
        client = ChatClient(self.entry.base_url, spec.served_model_name, api_key=read_key(spec.api_key_file),
                            connect_timeout_s=2, read_timeout_s=5)
        try:
            self.props = await client.props()
        except BackendError:
            self.props = None
        finally:
            await client.aclose()

    async def _abort_start(self) -> None:
        pid = self.pid
        if pid is not None:
            await _off_loop(process.stop_process_group, pid)
            self._state_file.remove(self.entry.id, pid)
            self.pid = None

    # ----- supervision -----
    def _on_exit(self, pid: int, code: int | None, exited: asyncio.Event) -> None:
        exited.set()
        if pid != self.pid:
            return  # an older process of ours, already handled
        self._returncode = code
        if self.state is ServerState.READY:
            uptime = time.monotonic() - self._ready_at
            self._crashes = 1 if uptime > CRASH_RESET_S else self._crashes + 1
            self._state_file.remove(self.entry.id, pid)
            self.pid = None
            self._cancel_idle()
            error = ServerExitedError(self.entry.id, code, process.log_tail(self.log_path), "unexpectedly")
            self._set(ServerState.FAILED, "crashed; restarts on the next request", error)

    async def _watch_pid(self, pid: int) -> None:
        """Liveness of a re-attached server that is not our child (no wait() possible)."""
        exited = self._proc_exited
        while process.pid_alive(pid):
            await asyncio.sleep(0.25)
        self._on_exit(pid, None, exited)

    def _mark_detached(self) -> None:
        self.owned = False
        record = self._state_file.load().get(self.entry.id)
        if record is not None and not record.detached:
            self._state_file.put(replace(record, detached=True))

    def _recorded_pid(self) -> int | None:
        record = self._state_file.load().get(self.entry.id)
        if record is None:
            return None
        if process.pid_alive(record.pid) and _same_process(record):
            return record.pid
        self._state_file.remove(self.entry.id, record.pid)
        return None

    # ----- idle TTL -----
    def _schedule_idle(self) -> None:
        ttl = self.entry.keep_alive
        if isinstance(ttl, str) or self._in_flight or self.state is not ServerState.READY:
            return
        self._cancel_idle()
        loop = asyncio.get_running_loop()
        self._idle_handle = loop.call_later(float(ttl), lambda: asyncio.ensure_future(self._idle_expired()))

    def _cancel_idle(self) -> None:
        if self._idle_handle is not None:
            self._idle_handle.cancel()
            self._idle_handle = None

    async def _idle_expired(self) -> None:
        self._idle_handle = None
        if self._in_flight == 0 and self.state is ServerState.READY:
            self._emit(ServerEvent(self.entry.id, self.state, f"idle for {self.entry.keep_alive:g} s; stopping"))
            await self.stop()


def _same_process(record: ServerRecord) -> bool:
    """Guards against pid reuse: a live pid is ours only if it still runs the recorded command and started
    when it was recorded. What cannot be read (no /proc, an old record) proves nothing: never signal it."""
    if record.started is None or process.start_time(record.pid) != record.started:
        return False
    return process.process_cmdline(record.pid) in (record.argv, None)


async def _off_loop(fn: Callable[..., object], *args: object) -> object:
    """Run a blocking call in a worker thread; at interpreter exit (atexit cleanup), where no new
    thread can be started, run it inline instead of failing to stop the server."""
    return await _off_loop_future(fn, *args)


def _off_loop_future(fn: Callable[..., object], *args: object) -> asyncio.Future[object]:
    """``_off_loop``'s future: what the worker thread will have done (already done where it ran inline)."""
    loop = asyncio.get_running_loop()
    try:
        return loop.run_in_executor(None, fn, *args)
    except RuntimeError:
        future: asyncio.Future[object] = loop.create_future()
        try:
            future.set_result(fn(*args))
        except Exception as exc:  # handed to whoever awaits it, as the thread's failure would be
            future.set_exception(exc)
        return future
