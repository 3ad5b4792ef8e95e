"""Built-in tools (calculator, clock, workspace file access), made per workspace by a factory.

Every file tool goes through :meth:`Sandbox.resolve`. There is deliberately no shell tool.
"""

from __future__ import annotations

import asyncio
import codecs
import os
import stat
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field

from .calculator import calculate
from .registry import Tool, ToolRegistry, tool
from .sandbox import (
    MAX_SEARCH_FILES,
    SEARCH_DEADLINE_S,
    Sandbox,
    SandboxError,
    check_kind,
    describe_entry,
    is_binary,
    open_regular,
    search_lines,
    walk_files,
)

MAX_READ_BYTES = 64 * 1024
MAX_WRITE_BYTES = 1024 * 1024
# The built-ins that touch files, each confined to the workspace (a later tool of the same name is refused).
WORKSPACE_TOOLS = frozenset({"list_directory", "read_file", "search_files", "write_file"})
MAX_LIST_ENTRIES = 500
MAX_SEARCH_MATCHES = 200


def make_builtin_tools(
    workspace: Path, *, clock: Callable[[], datetime] | None = None, search_deadline_s: float = SEARCH_DEADLINE_S
) -> list[Tool]:
    """The built-in tools bound to ``workspace``; ``clock`` (aware datetime) is a test seam; ``search_files``
    stops a search after ``search_deadline_s``."""
    sandbox = Sandbox(workspace)
    now = clock or (lambda: datetime.now().astimezone())

    @tool
    def calculator(expression: str) -> str:
        """Evaluate an arithmetic expression and return the result.

        Args:
            expression: Arithmetic such as "2 * (3 + 4) ** 2" or "sqrt(2) * pi". Supports
                + - * / // % **, parentheses, pi, e, tau and the functions sqrt, sin, cos,
                tan, asin, acos, atan, exp, log, log10, log2, degrees, radians, floor, ceil,
                abs, round, min, max.
        """
        return calculate(expression)

    @tool
    def get_current_time(timezone: str | None = None) -> str:
        """Return the current date and time as ISO-8601.

        Args:
            timezone: IANA time zone such as "Europe/Berlin" or "UTC"; omit for local time.
        """
        if timezone is None:
            return now().isoformat(timespec="seconds")
        try:
            zone = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {timezone!r}; use an IANA name such as 'Europe/Berlin' or 'UTC'"
            ) from None
        return now().astimezone(zone).isoformat(timespec="seconds")

    @tool
    def list_directory(path: str = ".") -> str:
        """List a directory in the workspace: subdirectories end in '/', files show their size.

        Args:
            path: Directory relative to the workspace root.
        """
        target = sandbox.resolve(path)
        check_kind(target, path, "dir")
        try:
            with os.scandir(target) as it:
                entries = sorted(it, key=lambda entry: entry.name)
        except OSError as exc:
            raise SandboxError(f"'{path}' cannot be listed ({exc.strerror})") from None
        lines = [describe_entry(entry) for entry in entries[:MAX_LIST_ENTRIES]]
        if len(entries) > MAX_LIST_ENTRIES:
            lines.append(f"[truncated: {len(entries) - MAX_LIST_ENTRIES} more entries not shown]")
        return "\n".join(lines) if lines else "(empty directory)"

    @tool
    def read_file(
        path: str, max_bytes: Annotated[int, Field(ge=1, le=MAX_READ_BYTES)] = MAX_READ_BYTES
    ) -> str:
        """Read a text file in the workspace.

        Args:
            path: File relative to the workspace root.
            max_bytes: Read at most this many bytes from the start of the file.
        """
        target = sandbox.resolve(path)
        check_kind(target, path, "file")
        fd = open_regular(target, path, os.O_RDONLY)
        with os.fdopen(fd, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            data = handle.read(max_bytes + 1)
        truncated = len(data) > max_bytes
        data = data[:max_bytes]
        if is_binary(data):
            return f"'{path}' is a binary file ({size} bytes); its content is not shown"
        # Incremental decoding keeps a multibyte character cut at the limit from becoming noise.
        text = codecs.getincrementaldecoder("utf-8")("replace").decode(data, final=not truncated)
        if truncated:
            text += f"\n[truncated: showed the first {max_bytes} of {size} bytes]"
        return text

    @tool
    async def search_files(pattern: str, path: str = ".", regex: bool = False) -> str:
        """Search text files in the workspace for a string; returns 'file:line: text' matches.

        Args:
            pattern: Text to look for (case-sensitive), or a Python regular expression if regex is true.
            path: File or directory (searched recursively) relative to the workspace root.
            regex: Treat pattern as a regular expression.
        """
        if not pattern:
            raise ValueError("pattern must not be empty")
        target = sandbox.resolve(path)
        info = check_kind(target, path, "any")
        files = [target] if stat.S_ISREG(info.st_mode) else await asyncio.to_thread(walk_files, target)
        # Matching runs in a child process with a deadline: a model's pattern can backtrack for hours.
        found, more = await search_lines(files[:MAX_SEARCH_FILES], pattern, regex, MAX_SEARCH_MATCHES,
                                         search_deadline_s)
        matches = [f"{sandbox.relative(file)}:{lineno}: {text}" for file, lineno, text in found]
        if not matches:
            return f"no matches for {pattern!r} in '{path}'"
        if more or len(files) > MAX_SEARCH_FILES:
            matches.append(f"[truncated: stopped after {len(matches)} matches; narrow the search]")
        return "\n".join(matches)

    @tool(needs_approval=True)
    def write_file(path: str, content: str) -> str:
        """Write a text file in the workspace, replacing it if it exists; creates parent folders.

        Args:
            path: File relative to the workspace root.
            content: The complete new content of the file (UTF-8 text).
        """
        data = content.encode("utf-8")
        if len(data) > MAX_WRITE_BYTES:
            raise ValueError(f"content is {len(data)} bytes; the limit is {MAX_WRITE_BYTES}")
        target = sandbox.resolve(path)
        if target == sandbox.root:
            raise SandboxError("cannot write to the workspace root itself; give a file name")
        if os.path.lexists(target):
            check_kind(target, path, "file")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # e.g. a file where a folder should be
            raise SandboxError(f"cannot create the folders for '{path}' ({exc.strerror})") from None
        # The parents now exist: re-resolve so a link created meanwhile cannot redirect us.
        if sandbox.resolve(path) != target:
            raise SandboxError(f"path {path!r} refused: it changed while being written")
        fd = open_regular(target, path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        return f"wrote {len(data)} bytes to '{sandbox.relative(target)}'"

    return [calculator, get_current_time, list_directory, read_file, search_files, write_file]


def build_default_registry(workspace: Path) -> ToolRegistry:
    """A registry holding the built-in tools for ``workspace`` (user tools are loaded apart)."""
    return ToolRegistry(make_builtin_tools(workspace))
