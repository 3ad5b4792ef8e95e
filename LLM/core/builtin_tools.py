"""Built-in tools (calculator, clock, workspace file access), made per workspace by a factory.

Every file tool goes through :meth:`Sandbox.resolve`, the one place that decides whether a
path is inside the workspace. There is deliberately no shell tool.
"""

from __future__ import annotations

import ast
import codecs
import math
import operator
import os
import re
import stat
from collections.abc import Callable
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field

from LLM.core.errors import ToolError
from LLM.core.tools import Tool, ToolRegistry, tool

MAX_READ_BYTES = 64 * 1024
MAX_WRITE_BYTES = 1024 * 1024
MAX_LIST_ENTRIES = 500
MAX_SEARCH_MATCHES = 200
MAX_SEARCH_FILES = 5000
MAX_SEARCH_FILE_BYTES = 2 * 1024 * 1024
MAX_PATH_CHARS = 1024
_SKIPPED_DIRS = {"__pycache__", "node_modules"}  # plus every dot-directory (.git, .venv)


class SandboxError(ToolError):
    """A file tool refused a path; the message says which path and why."""


# --- the sandbox --------------------------------------------------------------------------


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


def _check_kind(path: Path, shown: str, want: str) -> os.stat_result:
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


def _open_regular(path: Path, shown: str, flags: int) -> int:
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


def _is_binary(sample: bytes) -> bool:
    return b"\x00" in sample[:8192]


# --- calculator ---------------------------------------------------------------------------

_BINARY_OPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY_OPS: dict[type, Callable[[Any], Any]] = {ast.UAdd: operator.pos, ast.USub: operator.neg}
_CONSTANTS = {"pi": math.pi, "e": math.e, "tau": math.tau}
_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "sqrt": math.sqrt, "sin": math.sin, "cos": math.cos, "tan": math.tan,
    "asin": math.asin, "acos": math.acos, "atan": math.atan, "exp": math.exp,
    "log": math.log, "log10": math.log10, "log2": math.log2,
    "degrees": math.degrees, "radians": math.radians, "floor": math.floor, "ceil": math.ceil,
    "abs": abs, "round": round, "min": min, "max": max,
}
MAX_EXPRESSION_CHARS = 1000
MAX_EXPONENT = 10_000
# Python refuses to print ints over 4300 digits; stop well before building one.
MAX_INT_BITS = 14_000


def calculate(expression: str) -> str:
    """Evaluate arithmetic by walking the AST; raises ValueError with a readable reason."""
    if len(expression) > MAX_EXPRESSION_CHARS:
        raise ValueError(f"expression is longer than {MAX_EXPRESSION_CHARS} characters")
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError as exc:
        raise ValueError(f"invalid expression: {exc.msg}") from None
    try:
        value = _eval(tree.body)
    except ZeroDivisionError:
        raise ValueError("division by zero") from None
    except OverflowError:
        raise ValueError("result too large") from None
    except RecursionError:
        raise ValueError("expression is nested too deeply") from None
    return _format_number(value)


def _eval(node: ast.AST) -> int | float:
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
            raise ValueError(f"only numbers are allowed, not {node.value!r}")
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY_OPS:
        left, right = _eval(node.left), _eval(node.right)
        if isinstance(node.op, ast.Pow):
            _check_power(left, right)
        return _check_size(_BINARY_OPS[type(node.op)](left, right))
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY_OPS:
        return _UNARY_OPS[type(node.op)](_eval(node.operand))
    if isinstance(node, ast.Name):
        if node.id in _CONSTANTS:
            return _CONSTANTS[node.id]
        raise ValueError(f"name '{node.id}' is not allowed (constants: {', '.join(_CONSTANTS)})")
    if isinstance(node, ast.Call):
        return _call(node)
    if isinstance(node, ast.Attribute):
        raise ValueError("attribute access is not allowed")
    raise ValueError(f"unsupported syntax: {type(node).__name__}")


def _call(node: ast.Call) -> int | float:
    if isinstance(node.func, ast.Attribute):
        raise ValueError("attribute access is not allowed")
    if not isinstance(node.func, ast.Name):
        raise ValueError("only the listed functions can be called, by name")
    if node.func.id not in _FUNCTIONS:
        allowed = ", ".join(_FUNCTIONS)
        raise ValueError(f"function '{node.func.id}' is not allowed (allowed: {allowed})")
    name = node.func.id
    if node.keywords or any(isinstance(arg, ast.Starred) for arg in node.args):
        raise ValueError(f"{name}: only plain positional arguments are allowed")
    args = [_eval(arg) for arg in node.args]
    if name == "round" and len(args) == 2:
        # round(x, -n) on an int computes 10**n internally.
        if not isinstance(args[1], int) or abs(args[1]) > 100:
            raise ValueError("round: ndigits must be an integer between -100 and 100")
    try:
        return _check_size(_FUNCTIONS[name](*args))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}: {exc}") from None


def _check_power(base: int | float, exponent: int | float) -> None:
    if abs(exponent) > MAX_EXPONENT:
        raise ValueError(f"exponent {exponent:g} is too large (limit {MAX_EXPONENT})")
    if isinstance(base, int) and isinstance(exponent, int) and abs(base) > 1 and exponent > 0:
        if base.bit_length() * exponent > MAX_INT_BITS:
            raise ValueError("result too large")


def _check_size(value: Any) -> Any:
    if isinstance(value, complex):  # (-8) ** 0.5
        raise ValueError("result is not a real number")
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise ValueError("result too large")
    return value


def _format_number(value: int | float) -> str:
    if isinstance(value, int):
        return str(value)
    if not math.isfinite(value):
        raise ValueError("result is not a finite number")
    # 15 significant digits hide binary noise: 0.1 + 0.2 shows as 0.3.
    return format(value, ".15g")


# --- the tools ----------------------------------------------------------------------------


def make_builtin_tools(
    workspace: Path, *, clock: Callable[[], datetime] | None = None
) -> list[Tool]:
    """The built-in tools bound to ``workspace``; ``clock`` (aware datetime) is a test seam."""
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
        _check_kind(target, path, "dir")
        try:
            with os.scandir(target) as it:
                entries = sorted(it, key=lambda entry: entry.name)
        except OSError as exc:
            raise SandboxError(f"'{path}' cannot be listed ({exc.strerror})") from None
        lines = [_describe_entry(entry) for entry in entries[:MAX_LIST_ENTRIES]]
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
        _check_kind(target, path, "file")
        fd = _open_regular(target, path, os.O_RDONLY)
        with os.fdopen(fd, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            data = handle.read(max_bytes + 1)
        truncated = len(data) > max_bytes
        data = data[:max_bytes]
        if _is_binary(data):
            return f"'{path}' is a binary file ({size} bytes); its content is not shown"
        # Incremental decoding keeps a multibyte character cut at the limit from becoming noise.
        text = codecs.getincrementaldecoder("utf-8")("replace").decode(data, final=not truncated)
        if truncated:
            text += f"\n[truncated: showed the first {max_bytes} of {size} bytes]"
        return text

    @tool
    def search_files(pattern: str, path: str = ".", regex: bool = False) -> str:
        """Search text files in the workspace for a string; returns 'file:line: text' matches.

        Args:
            pattern: Text to look for (case-sensitive), or a Python regular expression if regex is true.
            path: File or directory (searched recursively) relative to the workspace root.
            regex: Treat pattern as a regular expression.
        """
        if not pattern:
            raise ValueError("pattern must not be empty")
        try:
            matcher = re.compile(pattern if regex else re.escape(pattern))
        except re.error as exc:
            raise ValueError(f"invalid regular expression: {exc}") from None
        target = sandbox.resolve(path)
        info = _check_kind(target, path, "any")
        files = [target] if stat.S_ISREG(info.st_mode) else _walk_files(target)
        matches: list[str] = []
        more = False
        for count, file in enumerate(files):
            if count >= MAX_SEARCH_FILES:
                more = True
                break
            for lineno, line in _text_lines(file):
                if matcher.search(line):
                    if len(matches) == MAX_SEARCH_MATCHES:
                        more = True
                        break
                    shown = line if len(line) <= 200 else line[:200] + "..."
                    matches.append(f"{sandbox.relative(file)}:{lineno}: {shown}")
            if more:
                break
        if not matches:
            return f"no matches for {pattern!r} in '{path}'"
        if more:
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
            _check_kind(target, path, "file")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # e.g. a file where a folder should be
            raise SandboxError(f"cannot create the folders for '{path}' ({exc.strerror})") from None
        # The parents now exist: re-resolve so a link created meanwhile cannot redirect us.
        if sandbox.resolve(path) != target:
            raise SandboxError(f"path {path!r} refused: it changed while being written")
        fd = _open_regular(target, path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        return f"wrote {len(data)} bytes to '{sandbox.relative(target)}'"

    return [calculator, get_current_time, list_directory, read_file, search_files, write_file]


def build_default_registry(workspace: Path) -> ToolRegistry:
    """A registry holding the built-in tools for ``workspace`` (user tools are loaded apart)."""
    return ToolRegistry(make_builtin_tools(workspace))


def _describe_entry(entry: os.DirEntry[str]) -> str:
    if entry.is_symlink():
        return f"{entry.name}@ (symbolic link)"
    if entry.is_dir(follow_symlinks=False):
        return f"{entry.name}/"
    if entry.is_file(follow_symlinks=False):
        return f"{entry.name}  ({entry.stat(follow_symlinks=False).st_size} bytes)"
    return f"{entry.name}  (special file, not readable)"


def _walk_files(root: Path) -> list[Path]:
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


def _text_lines(file: Path) -> list[tuple[int, str]]:
    """Numbered lines of a text file; empty for binary, huge or unreadable files."""
    try:
        if os.lstat(file).st_size > MAX_SEARCH_FILE_BYTES:
            return []
        data = file.read_bytes()
    except OSError:
        return []
    if _is_binary(data):
        return []
    text = data.decode("utf-8", errors="replace")
    return list(enumerate(text.splitlines(), start=1))
