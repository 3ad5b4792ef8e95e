"""The workspace sandbox: the one place that decides whether a model-supplied path is inside the workspace.

It refuses ``..``, absolute paths, ``~``, drive letters, symlinks leading outside, devices and FIFOs,
and gives the file tools bounded, safe ways to open, walk and read files.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path, PurePosixPath

from ..errors import ToolError

MAX_PATH_CHARS = 1024
MAX_SEARCH_FILES = 5000
MAX_SEARCH_FILE_BYTES = 2 * 1024 * 1024
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
        try:
            resolved = (self.root.joinpath(*parts)).resolve()
        except (OSError, RuntimeError) as exc:  # RuntimeError: symlink loop
            raise refuse(f"it cannot be resolved ({exc})") from None
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


def text_lines(file: Path) -> list[tuple[int, str]]:
    """Numbered lines of a text file; empty for binary, huge or unreadable files."""
    try:
        if os.lstat(file).st_size > MAX_SEARCH_FILE_BYTES:
            return []
        data = file.read_bytes()
    except OSError:
        return []
    if is_binary(data):
        return []
    text = data.decode("utf-8", errors="replace")
    return list(enumerate(text.splitlines(), start=1))
