"""The line of an answer that waits: what it waits for and for how long, ticking once a second."""

from __future__ import annotations

import time
from collections.abc import Callable

from PySide6.QtCore import QTimer

from .elided_label import ElidedLabel

DEFAULT_PHASE = "waiting for the model"
APPROVAL_PHASE = "waiting for your approval"
PROMPT_PHASE = "reading the prompt"


def starting_phase(model_label: str) -> str:
    return f"starting {model_label}"


class WaitingLabel(ElidedLabel):
    """"Reading the prompt…  ·  3 s" while :meth:`set_waiting` is on. ``phase`` says what the answer waits for
    ("" when unknown); it is asked at each tick. The ticker runs only while the label waits, so an answer that
    began (or ended) leaves no timer running."""

    def __init__(self, name: str = "messageWaiting") -> None:
        super().__init__(name=name)
        self.phase: Callable[[], str] = lambda: ""
        self.ticker = QTimer(self, interval=1000)
        self.ticker.timeout.connect(self.refresh)
        self._since: float | None = None

    @property
    def waiting(self) -> bool:
        return self._since is not None

    def set_waiting(self, waiting: bool) -> None:
        if waiting and self._since is None:
            self._since = time.monotonic()
            self.ticker.start()
        elif not waiting and self._since is not None:
            self._since = None
            self.ticker.stop()
        self.setVisible(waiting)
        self.refresh()

    def refresh(self) -> None:
        if self._since is None:
            return
        phase = self.phase() or DEFAULT_PHASE
        elapsed = round(time.monotonic() - self._since)  # (a tick comes a hair early or late)
        text = f"{phase[:1].upper()}{phase[1:]}…  ·  {elapsed} s"
        if text != self.text():
            self.setText(text)
