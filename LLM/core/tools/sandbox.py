"""The workspace sandbox: the one place that decides whether a model-supplied path is inside the workspace.

It refuses ``..``, absolute paths, ``~``, drive letters, symlinks leading outside, devices and FIFOs,
and gives the file tools bounded, safe ways to open, walk, read and search files.
"""

from __future__ import annotations

import asyncio
import errno
import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path, PurePosixPath

from ..errors import ToolError

MAX_PATH_CHARS = 1024
MAX_SEARCH_FILES = 5000
MAX_SEARCH_FILE_BYTES = 2 * 1024 * 1024
SEARCH_DEADLINE_S = 20.0  # under a tool's 30 s timeout, so the model hears why the search stopped
_SKIPPED_DIRS = {"__pycache__", "node_modules"}  # plus every dot-directory (.git, .venv)


class SandboxError(ToolError):
    """A file tool refused a path; the message says which path and why."""


class Sandbox:
    """Resolves model-supplied relative paths to real paths inside one workspace directory."""

    def __init__(self, root: Path) -> None:
        root = Path(root)
        if not root.is_dir():
            raise ToolError(f"workspace '{root}' is not an existing directory")
        self.root = root.resolve(strict=True)

    def resolve(self, path: str) -> Path:
        """The real absolute path for ``path``, or SandboxError.

        Lexical checks come first (cheap, and they give the clearest reasons); then the path
        is resolved with every symlink followed, intermediate ones included, and the result
        must still lie under the root. The target need not exist (for writes).
        """
        def refuse(why: str) -> SandboxError:
            shown = path if len(path) <= 80 else path[:77] + "..."
            return SandboxError(f"path {shown!r} refused: {why}")

        if not isinstance(path, str):
            raise SandboxError(f"path must be a string, got {type(path).__name__}")
        if "\x00" in path:
            raise refuse("it contains a NUL byte")
        if len(path) > MAX_PATH_CHARS:
            raise refuse(f"it is longer than {MAX_PATH_CHARS} characters")
        if "\\" in path:
            # Backslash is a separator on Windows and a legal name character on POSIX;
            # refusing it avoids "..\\" meaning different things on different machines.
            raise refuse("backslashes are not allowed; use '/' as the separator")
        if path.startswith("~"):
            raise refuse("home-directory paths (~) are not allowed; use a workspace-relative path")
        if re.match(r"^[A-Za-z]:", path):
            raise refuse("drive-letter paths are not allowed; use a workspace-relative path")
        if path.startswith("/"):
            raise refuse("absolute paths are not allowed; use a path relative to the workspace")
        parts = PurePosixPath(path or ".").parts
        if ".." in parts:
            raise refuse("'..' components are not allowed")
        if any(len(part.encode()) > 255 for part in parts):
            raise refuse("a path component is longer than 255 bytes")
        joined = self.root.joinpath(*parts)
        # Strictly first: a symlink loop is an error there on every Python (RuntimeError before 3.13, ELOOP
        # since), while 3.13's non-strict resolve hands the loop back as a path. Anything else strict
        # refuses (a path that does not exist yet, for writes) is resolved non-strictly, as before.
        try:
            try:
                resolved = joined.resolve(strict=True)
            except OSError as exc:
                if exc.errno == errno.ELOOP:
                    raise RuntimeError("symlink loop") from None
                resolved = joined.resolve()
        except RuntimeError:  # pathlib's "Symlink loop from ..." before 3.13
            raise refuse("it cannot be resolved (symlink loop)") from None
        except OSError as exc:
            raise refuse(f"it cannot be resolved ({exc.strerror or exc})") from None
        if not resolved.is_relative_to(self.root):
            raise refuse("it resolves outside the workspace (through a symbolic link)")
        return resolved

    def relative(self, real: Path) -> str:
        rel = real.relative_to(self.root).as_posix()
        return rel if rel != "." else "."


def check_kind(path: Path, shown: str, want: str) -> os.stat_result:
    """Stat a resolved path and insist on a regular file or directory (never FIFOs, devices)."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise SandboxError(f"'{shown}' does not exist") from None
    except OSError as exc:
        raise SandboxError(f"'{shown}' cannot be accessed ({exc.strerror})") from None
    if not (stat.S_ISREG(info.st_mode) or stat.S_ISDIR(info.st_mode)):
        raise SandboxError(f"path {shown!r} refused: only regular files and directories are allowed")
    if want == "file" and not stat.S_ISREG(info.st_mode):
        raise SandboxError(f"'{shown}' is a directory, not a file")
    if want == "dir" and not stat.S_ISDIR(info.st_mode):
        raise SandboxError(f"'{shown}' is a file, not a directory")
    return info


def open_regular(path: Path, shown: str, flags: int) -> int:
    """Open without following a last-moment symlink or blocking on a FIFO, then re-check."""
    flags |= getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags, 0o644)
    except OSError as exc:
        raise SandboxError(f"'{shown}' cannot be opened ({exc.strerror})") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):  # swapped between the check and the open
        os.close(fd)
        raise SandboxError(f"path {shown!r} refused: only regular files are allowed")
    return fd


def is_binary(sample: bytes) -> bool:
    return b"\x00" in sample[:8192]


def describe_entry(entry: os.DirEntry[str]) -> str:
    if entry.is_symlink():
        return f"{entry.name}@ (symbolic link)"
    if entry.is_dir(follow_symlinks=False):
        return f"{entry.name}/"
    if entry.is_file(follow_symlinks=False):
        return f"{entry.name}  ({entry.stat(follow_symlinks=False).st_size} bytes)"
    return f"{entry.name}  (special file, not readable)"


def walk_files(root: Path) -> list[Path]:
    """Regular files under ``root``; symlinks are skipped so the walk cannot leave the sandbox."""
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d not in _SKIPPED_DIRS)
        for name in sorted(filenames):
            file = Path(dirpath, name)
            if stat.S_ISREG(os.lstat(file).st_mode):
                found.append(file)
            if len(found) > MAX_SEARCH_FILES:
                return sorted(found)
    return sorted(found)  # by path, so a file's matches read in directory order


class SearchTimeoutError(ToolError):
    """A search ran past its deadline and was stopped; the message names the pattern."""


# The search runs in a child process: Python's `re` holds the GIL for as long as one match runs, and a pattern
# such as (a+)+$ backtracks for exponential time, so in a thread it freezes the event loop and cannot be
# stopped. A process can be killed. The child is stdlib-only (`-I -S`: no site, no package import) and starts
# in ~25 ms. stdin: {pattern, regex, files, max_bytes, max_matches}; stdout: {matches: [[file index, line
# number, text]], more} or {error}. Files are the parent's vetted list; each is opened without following a
# last-moment symlink and skipped if no longer regular, too big or binary.
_SEARCH_CHILD = r"""
import json, os, re, stat, sys
request = json.load(sys.stdin)
try:
    matcher = re.compile(request["pattern"] if request["regex"] else re.escape(request["pattern"]))
except (re.error, OverflowError, RecursionError, ValueError) as exc:
    json.dump({"error": "invalid regular expression: %s" % exc}, sys.stdout)
    raise SystemExit(0)
limit, matches, more = request["max_bytes"], [], False
for index, path in enumerate(request["files"]):
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        continue
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        data = handle.read(limit + 1) if stat.S_ISREG(info.st_mode) and info.st_size <= limit else b""
    if len(data) > limit or b"\0" in data[:8192]:
        continue
    for number, line in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
        if matcher.search(line):
            if len(matches) == request["max_matches"]:
                more = True
                break
            matches.append([index, number, line if len(line) <= 200 else line[:200] + "..."])
    if more:
        break
json.dump({"matches": matches, "more": more}, sys.stdout)
"""


async def search_lines(
    files: list[Path], pattern: str, regex: bool, max_matches: int, deadline_s: float = SEARCH_DEADLINE_S
) -> tuple[list[tuple[Path, int, str]], bool]:
    """Lines of ``files`` matching ``pattern`` (file, line number, text cut at 200 characters), and whether more
    than ``max_matches`` matched. Runs in a child process killed at ``deadline_s`` or when the caller is
    cancelled, so no pattern can stall the event loop. Raises ValueError for an invalid pattern and
    SearchTimeoutError past the deadline."""
    request = json.dumps({"pattern": pattern, "regex": regex, "files": [str(f) for f in files],
                          "max_bytes": MAX_SEARCH_FILE_BYTES, "max_matches": max_matches}).encode()
    # The trailing "search_files" only names the child in process listings.
    process = subprocess.Popen([sys.executable, "-I", "-S", "-c", _SEARCH_CHILD, "search_files"],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = await asyncio.to_thread(_communicate, process, request, deadline_s)
    except subprocess.TimeoutExpired:
        kind = "regular expression" if regex else "search"
        raise SearchTimeoutError(
            f"the pattern took too long: the {kind} {pattern!r} was still running after {deadline_s:g} s and was "
            "stopped; nested repetition such as (a+)+ can take exponential time, so simplify the pattern or "
            "search a smaller path") from None
    finally:
        if process.poll() is None:
            process.kill()  # cancelled (Stop, the tool's timeout): the worker thread then reaps it
    try:
        reply = json.loads(out)
    except ValueError:
        tail = err.decode("utf-8", "replace").strip().splitlines()[-1:] or [f"exit status {process.returncode}"]
        raise ToolError(f"the search for {pattern!r} failed: {tail[0]}") from None
    if "error" in reply:
        raise ValueError(reply["error"])
    return [(files[i], number, text) for i, number, text in reply["matches"]], bool(reply["more"])


def _communicate(process: subprocess.Popen[bytes], request: bytes, deadline_s: float) -> tuple[bytes, bytes]:
    try:
        return process.communicate(request, timeout=deadline_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise
