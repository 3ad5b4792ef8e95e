"""A user's Stop (the window's Stop button, Ctrl-C in llmctl), told apart from any other cancellation (a leaf).

The caller cancels the task running a generation with ``stop_generation``: asyncio closes the HTTP
stream on the way out (so the server stops generating) and the inference API reports the partial
answer with ``finish_reason="cancelled"`` instead of letting a bare ``CancelledError`` through.
Any other cancellation (a timeout, a shutdown) keeps asyncio's contract and propagates.
"""

from __future__ import annotations

import asyncio

USER_STOP = "llm-workbench: stopped by the user"


def stop_generation(task: asyncio.Task) -> bool:
    """Cancel ``task`` on the user's behalf; False if it had already finished."""
    return task.cancel(USER_STOP)


def absorb_user_stop(exc: asyncio.CancelledError) -> bool:
    """True if ``exc`` is a user's stop; the current task then stops counting as cancelled."""
    if not (exc.args and exc.args[0] == USER_STOP):
        return False
    task = asyncio.current_task()
    if task is not None and hasattr(task, "uncancel"):  # Python 3.11+
        task.uncancel()
    return True
