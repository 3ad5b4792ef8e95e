"""Stored times (seconds since 1970) read safely: what an import accepts and how a bad stored value is shown.

A time in milliseconds, ``Infinity`` or a value written by hand can reach the file (an older import
let them in), and ``datetime.fromtimestamp`` raises on it; one such chat must not stop the list,
``llmctl history`` or the window from opening, so readers get ``None`` and show UNKNOWN_TIME.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

# Up to the start of the year 9000: far past any real chat, and local time stays within datetime's range.
LATEST = 221_845_392_000.0
UNKNOWN_TIME = "unknown time"


def timestamp_problem(value: Any) -> str | None:
    """Why ``value`` is not a time a chat can have (``None`` when it is one)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "must be a number of seconds since 1970"
    try:
        seconds = float(value)
    except OverflowError:
        seconds = math.inf
    if not math.isfinite(seconds):
        return f"must be a finite number of seconds since 1970, not {seconds}"
    if not 0 <= seconds < LATEST:
        return (f"must be seconds since 1970, between 0 and {LATEST:.0f}, not {seconds:g} (a time in "
                "milliseconds is 1000 times too large)")
    return None


def local_datetime(value: Any) -> datetime | None:
    """``value`` (seconds since 1970) as a local time, or ``None`` if it is not one."""
    if timestamp_problem(value) is not None:
        return None
    try:
        return datetime.fromtimestamp(value)
    except (OverflowError, OSError, ValueError):
        return None


def local_time_text(value: Any, form: str = "%Y-%m-%d %H:%M") -> str:
    """``value`` formatted as a local time, UNKNOWN_TIME if it is not a time."""
    moment = local_datetime(value)
    return moment.strftime(form) if moment is not None else UNKNOWN_TIME
