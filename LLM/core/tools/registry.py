"""The tool registry: Tools from Python functions or JSON files, argument validation, safe execution.

A :class:`Tool` gets its JSON schema from the function's signature (via pydantic) and its
description from the docstring; a tool without code gets both from a JSON file (``canned``).
:func:`execute` never raises for a failing tool: validation errors, exceptions and timeouts
all become an error :class:`ToolResult` the model can read.
Only cancellation propagates, so Stop still stops.
"""

from __future__ import annotations

import asyncio
import copy
import importlib.util
import inspect
import json
import re
import sys
import time
import traceback
import typing
import uuid
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field, is_dataclass
from pathlib import Path
from typing import Any, overload

import platformdirs
import pydantic
from pydantic import BaseModel

from ..config import APP_NAME
from ..errors import ToolError
from ..validation import FieldProblem, field_problems
from .canned import SUFFIX as CANNED_SUFFIX
from .canned import CannedTool, CannedToolError, read_canned_tool, remove_canned_tool, write_canned_tool
from .json_schema import value_problems
from .schema import arguments_model, openai_schema, parse_docstring

DEFAULT_TIMEOUT_S = 30.0
# A tool result goes back into the model's context; a runaway output must not flood it.
MAX_OUTPUT_CHARS = 100_000
# What OpenAI-compatible servers accept as a function name.
_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class ToolArgumentsError(ToolError):
    """The arguments a model sent do not match the tool's schema; the message names the field."""

    def __init__(self, tool_name: str, problems: list[str]) -> None:
        super().__init__(f"{tool_name}: " + "; ".join(problems))
        self.tool_name = tool_name
        self.problems = problems


@dataclass(frozen=True, eq=False)
class Tool:
    """A function the model may call. Build one with ``@tool`` or :meth:`Tool.from_function`."""

    name: str
    description: str
    parameters: dict[str, Any]  # JSON Schema, type "object"
    fn: Callable[..., Any]
    needs_approval: bool = False
    timeout_s: float = DEFAULT_TIMEOUT_S
    _args_model: type[BaseModel] | None = field(default=None, repr=False)
    canned: CannedTool | None = None  # the JSON definition of a tool without code; None for Python tools
    server: str | None = None  # the MCP server that provides it (LLM.core.mcp); None for local tools
    server_tool: str | None = None  # an MCP tool's own name on its server (approvals are kept by server and this)

    @classmethod
    def from_function(
        cls,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        description: str | None = None,
        needs_approval: bool = False,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> Tool:
        name = name or getattr(fn, "__name__", "")
        if not _NAME_RE.match(name):
            raise ToolError(f"invalid tool name {name!r}: use 1-64 letters, digits, '_' or '-'")
        if not timeout_s > 0:
            raise ToolError(f"tool '{name}': timeout_s must be positive, got {timeout_s!r}")
        summary, arg_docs = parse_docstring(inspect.getdoc(fn) or "")
        model = arguments_model(name, fn, arg_docs)
        return cls(
            name=name,
            description=summary if description is None else description,
            parameters=openai_schema(name, model),
            fn=fn,
            needs_approval=needs_approval,
            timeout_s=float(timeout_s),
            _args_model=model,
        )

    @classmethod
    def from_canned(cls, definition: CannedTool) -> Tool:
        """A tool that answers every valid call with the definition's canned reply."""

        def reply(**arguments: Any) -> str:
            return definition.reply_for(arguments)

        return cls(name=definition.name, description=definition.description,
                   parameters=copy.deepcopy(definition.parameters), fn=reply, canned=definition)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the underlying function directly (no validation, no timeout)."""
        return self.fn(*args, **kwargs)

    def to_openai(self) -> dict[str, Any]:
        """The entry for the ``tools`` list of an OpenAI-compatible chat request."""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": copy.deepcopy(self.parameters),
            },
        }

    def validate(self, arguments: Any) -> dict[str, Any]:
        """Check and coerce model-sent arguments; raise ToolArgumentsError naming each bad field."""
        if not isinstance(arguments, dict):
            raise ToolArgumentsError(
                self.name, [f"arguments must be a JSON object, got {type(arguments).__name__}"]
            )
        model = self._args_model
        if model is None and (self.canned is not None or self.server is not None):
            # A tool without code, or an MCP tool: its JSON Schema is the contract (an MCP server would coerce
            # or drop what does not fit, after the user approved the call).
            problems = _schema_problems(self, arguments)
            if problems:
                raise ToolArgumentsError(self.name, [f"argument '{path}': {message}" if path else message
                                                     for path, message in problems])
            return dict(arguments)
        if model is None:  # hand-built Tool without a model: accept as given
            return dict(arguments)
        known = list(model.model_fields)
        unknown = [key for key in arguments if key not in model.model_fields]
        if unknown:
            names = ", ".join(f"'{key}'" for key in unknown)
            expected = ", ".join(known) or "no arguments"
            plural = "s" if len(unknown) > 1 else ""
            raise ToolArgumentsError(
                self.name, [f"unknown argument{plural} {names} (expected: {expected})"]
            )
        try:
            instance = model.model_validate(arguments)
        except pydantic.ValidationError as exc:
            raise ToolArgumentsError(self.name, [_argument_problem(p) for p in field_problems(exc)]) from exc
        return {key: value for key, value in instance}


@dataclass(frozen=True)
class ToolResult:
    """The outcome of one tool call; ``text`` is what goes back to the model."""

    ok: bool
    output: str
    error: str | None
    duration_ms: float

    @property
    def text(self) -> str:
        return self.output if self.ok else f"Error: {self.error}"


@overload
def tool(fn: Callable[..., Any], /) -> Tool: ...


@overload
def tool(
    *,
    name: str | None = None,
    description: str | None = None,
    needs_approval: bool = False,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> Callable[[Callable[..., Any]], Tool]: ...


def tool(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    needs_approval: bool = False,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> Tool | Callable[[Callable[..., Any]], Tool]:
    """Turn a function into a Tool; usable bare (``@tool``) or with options (``@tool(...)``)."""

    def wrap(f: Callable[..., Any]) -> Tool:
        return Tool.from_function(
            f, name=name, description=description, needs_approval=needs_approval, timeout_s=timeout_s
        )

    return wrap(fn) if fn is not None else wrap


async def execute(tool: Tool, arguments: Any, *, max_output_chars: int = MAX_OUTPUT_CHARS) -> ToolResult:
    """Validate and run one call. Never raises for a tool failure; CancelledError propagates.

    Sync functions run in a worker thread. On timeout a thread cannot be killed: it is
    abandoned and finishes on its own, so sync tools should keep their own work bounded.
    """
    start = time.perf_counter()

    def finish(ok: bool, output: str = "", error: str | None = None) -> ToolResult:
        return ToolResult(ok, output, error, (time.perf_counter() - start) * 1000)

    try:
        # In a thread: a schema `pattern` check may wait on a child process (tools/safe_regex).
        kwargs = await asyncio.to_thread(tool.validate, arguments)
    except ToolArgumentsError as exc:
        return finish(False, error=f"invalid arguments for {exc}")

    async def run() -> tuple[bool, Any]:
        # Tool exceptions are caught in here, so a TimeoutError a tool raises itself is not
        # mistaken for ours from wait_for below.
        try:
            if inspect.iscoroutinefunction(tool.fn):
                value = await tool.fn(**kwargs)
            else:
                value = await asyncio.to_thread(tool.fn, **kwargs)
                if inspect.isawaitable(value):
                    value = await typing.cast(Awaitable[Any], value)
            return True, value
        except Exception as exc:  # noqa: BLE001 - every tool failure becomes a result
            return False, exc

    try:
        ok, value = await asyncio.wait_for(run(), tool.timeout_s)
    except asyncio.TimeoutError:  # not the builtin TimeoutError before Python 3.11
        return finish(False, error=f"tool '{tool.name}' timed out after {tool.timeout_s:g} s")
    if not ok:
        message = str(value)
        return finish(False, error=f"{type(value).__name__}: {message}" if message else type(value).__name__)
    output = _serialise(value)
    if len(output) > max_output_chars:
        output = output[:max_output_chars] + f"\n[output truncated to {max_output_chars} characters]"
    return finish(True, output)


class ToolRegistry:
    """Named tools, in registration order. The composition root builds one; there is no global."""

    def __init__(self, tools: Iterable[Tool] = ()) -> None:
        self._tools: dict[str, Tool] = {}
        for t in tools:
            self.register(t)

    def register(self, tool: Tool) -> Tool:
        if not isinstance(tool, Tool):
            raise ToolError(f"expected a Tool, got {type(tool).__name__} (decorate it with @tool)")
        if tool.name in self._tools:
            raise ToolError(f"a tool named '{tool.name}' is already registered")
        self._tools[tool.name] = tool
        return tool

    def unregister(self, name: str) -> Tool | None:
        """Remove a tool (MCP tools come and go with their servers); returns it, or None if there was none."""
        return self._tools.pop(name, None)

    def get(self, name: str) -> Tool:
        try:
            return self._tools[name]
        except KeyError:
            raise ToolError(f"unknown tool '{name}' (known tools: {self._known()})") from None

    def names(self) -> list[str]:
        return list(self._tools)

    def select(self, names: Iterable[str] | None = None) -> list[Tool]:
        """The tools with these names, in the given order; ``None`` means all."""
        if names is None:
            return list(self._tools.values())
        return [self.get(name) for name in names]

    def openai_tools(self, names: Iterable[str] | None = None) -> list[dict[str, Any]]:
        return [t.to_openai() for t in self.select(names)]

    async def execute(self, name: str, arguments: Any) -> ToolResult:
        """Run a tool by name; a name the model made up becomes an error result, not a raise."""
        if name not in self._tools:
            return ToolResult(False, "", f"unknown tool '{name}' (available: {self._known()})", 0.0)
        return await execute(self._tools[name], arguments)

    def load_directory(self, path: Path) -> list[str]:
        """Register the Tools defined at module level in every ``*.py`` file of ``path``, then
        the tools without code in its ``*.json`` files (format: ``canned``).

        A file loads completely or not at all; each broken file is skipped and described in
        the returned list of problems. A missing directory simply has no tools. A name that is
        already registered (a built-in, an earlier file) wins over a later file's.
        """
        path = Path(path)
        if not path.exists():
            return []
        if not path.is_dir():
            return [f"{path}: not a directory"]
        problems: list[str] = []
        for file in sorted(path.glob("*.py")):
            label = f"{path.name}/{file.name}"
            try:
                tools = _load_tool_file(file)
            except _LoadProblem as exc:
                problems.append(f"{label}: {exc}")
                continue
            if not tools:
                problems.append(f"{label}: defines no tools (decorate functions with @tool)")
                continue
            names = [t.name for t in tools]
            clashes = sorted({n for n in names if n in self._tools or names.count(n) > 1})
            if clashes:
                problems.append(
                    f"{label}: tool name clash ({', '.join(clashes)}) with a tool already "
                    "registered or defined twice; file skipped"
                )
                continue
            for t in tools:
                self.register(t)
        for file in sorted(path.glob(f"*{CANNED_SUFFIX}")):
            try:
                definition = read_canned_tool(file, label=f"{path.name}/{file.name}", taken=self._tools)
            except CannedToolError as exc:
                problems.append(str(exc))
                continue
            self.register(Tool.from_canned(definition))
        return problems

    def save_canned(self, definition: CannedTool, directory: Path, *, replacing: str | None = None) -> Tool:
        """Write a tool without code to ``directory`` and register it, so the next request can use it.

        ``replacing`` names the JSON tool being edited: the new one takes its place in the order,
        and its file goes when the name changed. The file is written first, so a failed save leaves
        the registry as it was.
        """
        if replacing is not None:
            self._require_canned(replacing)
        if definition.name in self._tools and definition.name != replacing:
            raise ToolError(f"a tool named '{definition.name}' is already registered")
        new = Tool.from_canned(definition)
        write_canned_tool(definition, directory)
        if replacing is None:
            return self.register(new)
        self._tools = {(new.name if name == replacing else name): (new if name == replacing else t)
                       for name, t in self._tools.items()}
        if replacing != definition.name:
            remove_canned_tool(replacing, directory)
        return new

    def delete_canned(self, name: str, directory: Path) -> None:
        """Remove a tool without code: its file, then its registration."""
        self._require_canned(name)
        remove_canned_tool(name, directory)
        del self._tools[name]

    def _require_canned(self, name: str) -> None:
        if self.get(name).canned is None:
            raise ToolError(f"tool '{name}' is defined in Python, not in a JSON file: edit its file instead")

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __iter__(self) -> Iterator[Tool]:
        return iter(list(self._tools.values()))

    def __len__(self) -> int:
        return len(self._tools)

    def _known(self) -> str:
        return ", ".join(self._tools) or "none"


def default_tools_dir() -> Path:
    """Where users drop their own ``*.py`` tool files, and where the window saves ``*.json`` tools without code."""
    return Path(platformdirs.user_config_dir(APP_NAME)) / "tools"


# --- loading user files -------------------------------------------------------------------


class _LoadProblem(Exception):
    pass


def _load_tool_file(file: Path) -> list[Tool]:
    # A unique module name per load, so two files called utils.py (or a reload) never collide.
    stem = re.sub(r"\W", "_", file.stem)
    module_name = f"llm_user_tools_{uuid.uuid4().hex[:12]}_{stem}"
    spec = importlib.util.spec_from_file_location(module_name, file)
    if spec is None or spec.loader is None:
        raise _LoadProblem("cannot be loaded as a Python module")
    module = importlib.util.module_from_spec(spec)
    # In sys.modules while executing, as dataclasses and pydantic look their module up there.
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        del sys.modules[module_name]
        raise _LoadProblem(f"SyntaxError line {exc.lineno}: {exc.msg}") from None
    except (Exception, SystemExit) as exc:  # a user file calling sys.exit() must not end the app
        del sys.modules[module_name]
        line = _line_in(file, exc)
        where = f" at line {line}" if line else " at import"
        message = f": {exc}" if str(exc) else ""
        raise _LoadProblem(f"{type(exc).__name__}{where}{message}") from None
    found: dict[int, Tool] = {}
    for value in vars(module).values():
        if isinstance(value, Tool):
            found.setdefault(id(value), value)
    return list(found.values())


def _line_in(file: Path, exc: BaseException) -> int | None:
    """The deepest line of ``file`` in the traceback: where the user's code went wrong."""
    line = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if Path(frame.filename) == file:
            line = frame.lineno
    return line


def _schema_problems(tool: Tool, arguments: dict[str, Any]) -> list[tuple[str, str]]:
    if tool.canned is not None:
        return value_problems(tool.parameters, arguments)
    try:
        return value_problems(tool.parameters, arguments)
    except (KeyError, TypeError, ValueError, AttributeError, re.error, RecursionError):
        return []  # an MCP server's schema beyond the subset the checker reads: the server checks the call itself


def _argument_problem(problem: FieldProblem) -> str:
    message = problem.message[:1].lower() + problem.message[1:]
    return f"argument '{problem.path or 'arguments'}': {message}"


def _serialise(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    elif is_dataclass(value) and not isinstance(value, type):
        value = asdict(value)
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):  # circular structures and the like
        return str(value)
