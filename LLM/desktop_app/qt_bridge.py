"""Adapts the server manager's plain callbacks to a Qt signal, so widgets update on the GUI thread."""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal

from LLM.core.servers import ServerEvent, ServerManager


class ServerEventBridge(QObject):
    """Re-emits every ServerEvent as ``event``.

    Listeners run wherever the manager calls them (the asyncio loop, i.e. the GUI thread under
    qasync); a Qt signal makes that a non-issue even if a future manager calls from a thread:
    emitting from another thread queues the call onto the receiver's thread.
    """

    event = Signal(object)

    def __init__(self, manager: ServerManager | None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        if manager is not None:
            manager.add_listener(self._forward)

    def _forward(self, event: ServerEvent) -> None:
        self.event.emit(event)
