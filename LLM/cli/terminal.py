"""The terminal side of llmctl's chats: Ctrl-C as the user's Stop, and lines read without blocking the loop."""

from __future__ import annotations

import asyncio
import signal
import sys
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import TextIO, TypeVar

from ..core import stop_generation

T = TypeVar("T")


class CtrlC:
    """What Ctrl-C does, from one SIGINT handler: set by the moment (``doing``), e.g. the user's Stop while
    an answer streams or a fresh prompt at ``you>``; ignored in between, so a Ctrl-C that lands just as an
    answer ends never quits a chat."""

    def __init__(self) -> None:
        self._react: Callable[[], object] = lambda: None

    @contextmanager
    def installed(self) -> Iterator[None]:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGINT, lambda: self._react())
        try:
            yield
        finally:
            loop.remove_signal_handler(signal.SIGINT)

    @contextmanager
    def doing(self, react: Callable[[], object]) -> Iterator[None]:
        previous, self._react = self._react, react
        try:
            yield
        finally:
            self._react = previous

    async def stops(self, coro: Awaitable[T]) -> T:
        """Await ``coro`` with Ctrl-C as the user's Stop of it."""
        task = asyncio.ensure_future(coro)
        with self.doing(lambda: stop_generation(task)):
            return await task


async def prompt_line(prompt: str, ctrl_c: CtrlC) -> str:
    """The next line typed at ``prompt`` (without its newline); EOFError at the end of input (Ctrl-D).

    The terminal has already dropped a half-typed line when Ctrl-C arrives (a tty in canonical mode flushes
    its input on ^C): a fresh prompt is all it takes, and the same read goes on with the next line. GNU
    readline is deliberately not used: it keeps typed text in its own buffer, which a Ctrl-C seen on another
    thread cannot clear.
    """

    def fresh_prompt() -> None:
        sys.stdout.write("\n" + prompt)
        sys.stdout.flush()

    with ctrl_c.doing(fresh_prompt):
        return await read_line(prompt)


async def read_line(prompt: str, out: TextIO | None = None) -> str:
    """The next line typed after ``prompt`` is written to ``out`` (stdout by default), without its newline;
    EOFError at the end of input.

    The line is read in a daemon thread, so the event loop goes on meanwhile (servers' idle timers, MCP
    servers, Ctrl-C handled by ``CtrlC``: a signal never reaches that thread), and a read still waiting when
    the awaiting task is cancelled never holds the process at exit.
    """
    out = out or sys.stdout
    loop = asyncio.get_running_loop()
    line: asyncio.Future[str] = loop.create_future()

    def settle(text: str, error: BaseException | None) -> None:
        if line.done():
            return
        if error is not None:
            line.set_exception(error)
        else:
            line.set_result(text)

    def read() -> None:
        text, error = "", None
        try:
            text = sys.stdin.readline()
        except OSError as exc:  # stdin unreadable: llmctl reports it in one line
            error = exc
        except (AttributeError, ValueError):  # no stdin, or a closed one: the end of input
            pass
        try:
            loop.call_soon_threadsafe(settle, text, error)
        except RuntimeError:
            pass  # the loop is gone: nobody waits for this line any more

    out.write(prompt)
    out.flush()
    threading.Thread(target=read, name="llmctl-prompt", daemon=True).start()
    text = await line
    if not text:
        raise EOFError
    return text[:-1] if text.endswith("\n") else text
