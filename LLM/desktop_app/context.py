"""The one context object the composition root hands to every widget: shared services, no globals."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from LLM.core import Runtime
from LLM.core.evaluation import EvalStore
from LLM.core.history import HistoryStore
from LLM.core.router import ModelEndpoint

from .interaction import Interaction

log = logging.getLogger(__name__)


class BackgroundTasks:
    """Owns the asyncio tasks the window starts, so closing can cancel every one of them."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()
        self.closed = False

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str | None = None) -> asyncio.Task[Any]:
        if self.closed:
            coro.close()
            raise RuntimeError("the window is closing; no new work is started")
        task = asyncio.ensure_future(coro)
        if name:
            task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def spawn_if_open(self, coro: Coroutine[Any, Any, Any], name: str | None = None) -> asyncio.Task[Any] | None:
        """``spawn``, or nothing once the window is closing (a late click must not raise)."""
        if self.closed:
            coro.close()
            return None
        return self.spawn(coro, name)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            # Our coroutines handle their expected errors; anything here is a bug worth a trace.
            log.error("background task %s failed", task.get_name(), exc_info=task.exception())

    async def cancel_all(self) -> None:
        self.closed = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    def __len__(self) -> int:
        return len(self._tasks)


@dataclass
class AppContext:
    """Built once in app.build_main_window; widgets read services from here, never from module state."""

    runtime: Runtime
    config_path: Path
    interaction: Interaction
    tasks: BackgroundTasks = field(default_factory=BackgroundTasks)
    history: HistoryStore | None = None  # None when the store cannot be opened: chats work, unsaved
    history_problem: str | None = None  # why there is no store, shown in the sidebar
    evals: EvalStore | None = None  # BFCL report cards, in the same history file; None when it cannot be opened
    evals_problem: str | None = None  # why there are none, shown on the Tool eval tab
    # The endpoint for other apps over this window's runtime, off until the Endpoint tab's switch starts it.
    endpoint: ModelEndpoint | None = None

    @property
    def config(self):
        return self.runtime.config

    @property
    def servers(self):
        return self.runtime.servers
