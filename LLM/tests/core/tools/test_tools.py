"""Tests for the tool registry (LLM.core.tools) and the built-in tools (LLM.core.builtin_tools)."""

from __future__ import annotations

import asyncio
import os
import sys
import textwrap
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal, Optional

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from LLM.core.tools.builtin import (
    MAX_LIST_ENTRIES,
    MAX_READ_BYTES,
    MAX_SEARCH_MATCHES,
    MAX_WRITE_BYTES,
    build_default_registry,
    make_builtin_tools,
)
from LLM.core.tools.sandbox import Sandbox, SandboxError
from LLM.core.errors import ToolError
from LLM.core.tools import (
    Tool,
    ToolArgumentsError,
    ToolRegistry,
    ToolResult,
    default_tools_dir,
    execute,
    tool,
)
from LLM.tests.fakes.handle import async_wait_until, wait_until

needs_symlinks = pytest.mark.skipif(os.name == "nt", reason="symlinks need privileges on Windows")


def run(coro: Any) -> Any:
    return asyncio.run(coro)


# --- schema derivation --------------------------------------------------------------------


def _plain(text: str) -> str:
    """Say something.

    Args:
        text: The words to say.
    """
    return text


def _optional(limit: Optional[int] = None, unit: str | None = None) -> str:
    """Optional parameters."""
    return ""


def _defaults(count: int = 3, ratio: float = 0.5, loud: bool = False) -> str:
    """Defaults."""
    return ""


def _lists(numbers: list[int], tags: list[str] | None = None) -> str:
    """Lists."""
    return ""


def _literal(mode: Literal["fast", "slow"] = "fast") -> str:
    """Literal."""
    return ""


def _unannotated(name, title: str) -> str:  # type: ignore[no-untyped-def]
    """Unannotated parameter, and one called 'title' (pydantic's own key)."""
    return ""


def _nothing() -> str:
    """No parameters."""
    return ""


class _Point(BaseModel):
    x: int
    y: int


def _nested(point: _Point) -> str:
    """Nested model."""
    return ""


@pytest.mark.parametrize(
    ("fn", "properties", "required"),
    [
        pytest.param(
            _plain, {"text": {"type": "string", "description": "The words to say."}}, ["text"],
            id="str-with-doc",
        ),
        pytest.param(
            _optional,
            {"limit": {"type": "integer", "default": None}, "unit": {"type": "string", "default": None}},
            None,
            id="optional-drops-null",
        ),
        pytest.param(
            _defaults,
            {
                "count": {"type": "integer", "default": 3},
                "ratio": {"type": "number", "default": 0.5},
                "loud": {"type": "boolean", "default": False},
            },
            None,
            id="defaults",
        ),
        pytest.param(
            _lists,
            {
                "numbers": {"type": "array", "items": {"type": "integer"}},
                "tags": {"type": "array", "items": {"type": "string"}, "default": None},
            },
            ["numbers"],
            id="list-int",
        ),
        pytest.param(
            _literal, {"mode": {"type": "string", "enum": ["fast", "slow"], "default": "fast"}}, None,
            id="literal",
        ),
        pytest.param(
            _unannotated, {"name": {"type": "string"}, "title": {"type": "string"}}, ["name", "title"],
            id="unannotated-is-str-and-title-kept",
        ),
        pytest.param(_nothing, {}, None, id="no-parameters"),
        pytest.param(
            _nested,
            {
                "point": {
                    "type": "object",
                    "properties": {"x": {"type": "integer"}, "y": {"type": "integer"}},
                    "required": ["x", "y"],
                }
            },
            ["point"],
            id="nested-model-inlined",
        ),
    ],
)
def test_tool_schema_derived_from_hints_and_docstring(
    fn: Any, properties: dict[str, Any], required: list[str] | None
) -> None:
    schema = tool(fn).parameters
    assert schema["type"] == "object"
    assert schema["additionalProperties"] is False
    assert schema["properties"] == properties
    assert schema.get("required") == required
    assert "$defs" not in str(schema) and "$ref" not in str(schema)


def test_tool_description_is_first_docstring_paragraph() -> None:
    def lookup(city: str, days: int = 1) -> str:
        """Look up the weather
        for a city.

        Longer explanation that the model does not need.

        Args:
            city: Name of the city,
                in English.
            days (int): How many days ahead.

        Returns:
            A forecast.
        """
        return ""

    t = tool(lookup)
    assert t.description == "Look up the weather for a city."
    assert t.parameters["properties"]["city"]["description"] == "Name of the city, in English."
    assert t.parameters["properties"]["days"]["description"] == "How many days ahead."


def test_tool_decorator_bare_and_with_options() -> None:
    @tool
    def bare(x: int) -> int:
        """Bare."""
        return x * 2

    @tool(name="renamed", needs_approval=True, timeout_s=5, description="Custom.")
    def options(x: int) -> int:
        """Ignored."""
        return x

    assert isinstance(bare, Tool) and bare.name == "bare" and not bare.needs_approval
    assert bare.timeout_s == 30.0
    assert bare(4) == 8 and bare.fn(4) == 8
    assert (options.name, options.needs_approval, options.timeout_s) == ("renamed", True, 5.0)
    assert options.description == "Custom."


def test_tool_to_openai_shape() -> None:
    entry = tool(_plain).to_openai()
    assert entry == {
        "type": "function",
        "function": {"name": "_plain", "description": "Say something.", "parameters": tool(_plain).parameters},
    }


def _star(*args: int) -> str:
    """Star."""
    return ""


def _kwargs(**kwargs: int) -> str:
    """Kwargs."""
    return ""


def _private(_x: int) -> str:
    """Private."""
    return ""


def _valid(x: int) -> str:
    """Valid."""
    return ""


@pytest.mark.parametrize(
    ("fn", "options", "message"),
    [
        pytest.param(_star, {}, "'args'", id="var-positional"),
        pytest.param(_kwargs, {}, "'kwargs'", id="var-keyword"),
        pytest.param(_private, {}, "'_x'", id="underscore-param"),
        pytest.param(_valid, {"name": "has space"}, "invalid tool name", id="bad-name"),
        pytest.param(_valid, {"timeout_s": 0}, "timeout_s", id="zero-timeout"),
    ],
)
def test_tool_definition_errors_raise_tool_error(fn: Any, options: dict[str, Any], message: str) -> None:
    with pytest.raises(ToolError, match=message):
        tool(**options)(fn)


# --- validation ---------------------------------------------------------------------------


@tool
def calc(expression: str, precision: int = 2, mode: Literal["exact", "approx"] = "exact") -> str:
    """Pretend calculator."""
    return expression


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        pytest.param({}, "calc: argument 'expression': field required", id="missing"),
        pytest.param(
            {"expression": "1", "precision": "many"}, "calc: argument 'precision': input should be a valid integer",
            id="wrong-type",
        ),
        pytest.param({"expression": "1", "mode": "fuzzy"}, "argument 'mode'", id="literal-mismatch"),
        pytest.param({"expression": 1}, "argument 'expression'", id="int-for-str"),
        pytest.param(
            {"expression": "1", "bogus": 2}, "calc: unknown argument 'bogus' (expected: expression, precision, mode)",
            id="unknown-argument",
        ),
        pytest.param({"expression": "1", "a": 1, "b": 2}, "unknown arguments 'a', 'b'", id="unknown-arguments"),
        pytest.param(["1"], "arguments must be a JSON object", id="not-an-object"),
    ],
)
def test_validate_rejects_with_field_name(arguments: Any, message: str) -> None:
    with pytest.raises(ToolArgumentsError) as info:
        calc.validate(arguments)
    assert message in str(info.value)
    assert isinstance(info.value, ToolError)


def test_validate_fills_defaults_and_coerces() -> None:
    assert calc.validate({"expression": "1", "precision": "3"}) == {
        "expression": "1", "precision": 3, "mode": "exact",
    }


# --- execution ----------------------------------------------------------------------------


@tool
def sync_add(a: int, b: int) -> int:
    """Add."""
    return a + b


@tool
async def async_greet(name: str) -> str:
    """Greet."""
    await asyncio.sleep(0)
    return f"hello {name}"


@tool
def boom() -> str:
    """Fails."""
    raise RuntimeError("the disk is on fire")


@tool
def own_timeout() -> str:
    """Raises TimeoutError itself."""
    raise TimeoutError("socket timed out")


@dataclass
class _Pair:
    left: int
    right: int


class _Opaque:
    def __repr__(self) -> str:
        return "<opaque>"


@tool
def returns_dict() -> dict[str, Any]:
    """Dict."""
    return {"a": [1, 2], "ü": None}


@tool
def returns_dataclass() -> _Pair:
    """Dataclass."""
    return _Pair(1, 2)


@tool
def returns_opaque() -> Any:
    """Opaque object inside JSON."""
    return {"x": _Opaque()}


@tool
def returns_circular() -> Any:
    """Circular list."""
    items: list[Any] = []
    items.append(items)
    return items


@pytest.mark.parametrize(
    ("t", "arguments", "ok", "text"),
    [
        pytest.param(sync_add, {"a": 2, "b": 3}, True, "5", id="sync"),
        pytest.param(async_greet, {"name": "Ada"}, True, "hello Ada", id="async"),
        pytest.param(boom, {}, False, "RuntimeError: the disk is on fire", id="exception"),
        pytest.param(own_timeout, {}, False, "TimeoutError: socket timed out", id="tool-own-timeout"),
        pytest.param(sync_add, {"a": 2}, False, "invalid arguments for sync_add: argument 'b'", id="invalid"),
        pytest.param(returns_dict, {}, True, '{"a": [1, 2], "ü": null}', id="json-dict"),
        pytest.param(returns_dataclass, {}, True, '{"left": 1, "right": 2}', id="json-dataclass"),
        pytest.param(returns_opaque, {}, True, '{"x": "<opaque>"}', id="json-str-fallback"),
        pytest.param(returns_circular, {}, True, "[[...]]", id="circular-str-fallback"),
    ],
)
def test_execute_outcomes(t: Tool, arguments: dict[str, Any], ok: bool, text: str) -> None:
    result = run(execute(t, arguments))
    assert isinstance(result, ToolResult)
    assert result.ok is ok
    if ok:
        assert result.output == text and result.error is None
    else:
        assert result.error is not None and result.error.startswith(text)
        assert "Traceback" not in result.error
        assert result.text == f"Error: {result.error}"
    assert result.duration_ms >= 0


def test_execute_times_out_async_tool() -> None:
    @tool(timeout_s=0.2)
    async def hang() -> str:
        """Never finishes."""
        await asyncio.Event().wait()
        return ""

    result = run(execute(hang, {}))
    assert not result.ok
    assert result.error == "tool 'hang' timed out after 0.2 s"


def test_execute_times_out_sync_tool_and_abandons_thread() -> None:
    release = threading.Event()

    @tool(timeout_s=0.2)
    def block() -> str:
        """Blocks until released."""
        release.wait(10)
        return "done"

    async def scenario() -> ToolResult:
        try:
            return await execute(block, {})
        finally:
            release.set()  # let the abandoned worker thread finish so asyncio.run can exit

    result = run(scenario())
    assert not result.ok and "timed out after 0.2 s" in (result.error or "")


def test_execute_propagates_cancellation() -> None:
    async def scenario() -> None:
        started = asyncio.Event()

        @tool
        async def wait_forever() -> str:
            """Waits."""
            started.set()
            await asyncio.Event().wait()
            return ""

        task = asyncio.create_task(execute(wait_forever, {}))
        await asyncio.wait_for(started.wait(), 5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    run(scenario())


def test_execute_caps_huge_output() -> None:
    @tool
    def flood() -> str:
        """Floods."""
        return "x" * 10

    result = run(execute(flood, {}, max_output_chars=4))
    assert result.output == "xxxx\n[output truncated to 4 characters]"


# --- registry -----------------------------------------------------------------------------


def test_registry_get_select_and_openai_tools() -> None:
    registry = ToolRegistry([sync_add, async_greet])
    assert registry.names() == ["sync_add", "async_greet"]
    assert registry.get("sync_add") is sync_add
    assert registry.select(["async_greet"]) == [async_greet]
    assert registry.select(None) == [sync_add, async_greet]
    assert [t["function"]["name"] for t in registry.openai_tools(["sync_add"])] == ["sync_add"]
    assert "sync_add" in registry and len(registry) == 2


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda r: r.get("nope"), id="get"),
        pytest.param(lambda r: r.select(["sync_add", "nope"]), id="select"),
        pytest.param(lambda r: r.openai_tools(["nope"]), id="openai_tools"),
    ],
)
def test_registry_unknown_name_lists_known(call: Any) -> None:
    registry = ToolRegistry([sync_add])
    with pytest.raises(ToolError, match=r"unknown tool 'nope' \(known tools: sync_add\)"):
        call(registry)


def test_registry_register_rejects_duplicates_and_non_tools() -> None:
    registry = ToolRegistry([sync_add])
    with pytest.raises(ToolError, match="already registered"):
        registry.register(sync_add)
    with pytest.raises(ToolError, match="@tool"):
        registry.register(_plain)  # type: ignore[arg-type]


def test_registry_execute_unknown_name_is_error_result() -> None:
    result = run(ToolRegistry([sync_add]).execute("made_up", {}))
    assert not result.ok and result.error == "unknown tool 'made_up' (available: sync_add)"


USER_FILES = {
    "good.py": """
        from LLM.core.tools import tool

        @tool
        def shout(text: str) -> str:
            '''Upper-case text.'''
            return text.upper()

        @tool(needs_approval=True)
        async def whisper(text: str) -> str:
            '''Lower-case text.'''
            return text.lower()

        helper = 42
        """,
    "syntax.py": """
        from LLM.core.tools import tool

        def broken(:
            pass
        """,
    "raises.py": """
        from LLM.core.tools import tool

        raise RuntimeError("missing API key")
        """,
    "clash.py": """
        from LLM.core.tools import tool

        @tool
        def calculator(expression: str) -> str:
            '''Shadow the built-in.'''
            return expression

        @tool
        def innocent() -> str:
            '''Would be fine alone.'''
            return ""
        """,
    "empty.py": "x = 1\n",
    "exits.py": "import sys\nsys.exit(3)\n",
    "badtool.py": """
        from LLM.core.tools import tool

        @tool
        def nope(*args: int) -> str:
            '''Bad signature.'''
            return ""
        """,
}


def test_registry_load_directory_reports_problems_and_keeps_good_tools(tmp_path: Path) -> None:
    tools_dir = tmp_path / "tools"
    tools_dir.mkdir()
    for name, source in USER_FILES.items():
        (tools_dir / name).write_text(textwrap.dedent(source).lstrip())
    (tmp_path / "ws").mkdir()
    registry = build_default_registry(tmp_path / "ws")

    problems = registry.load_directory(tools_dir)

    assert registry.names()[-2:] == ["shout", "whisper"]
    assert "innocent" not in registry  # the clashing file is skipped as a whole
    assert registry.get("whisper").needs_approval
    assert run(registry.execute("shout", {"text": "hi"})).output == "HI"
    # A decorator's failure is reported at the decorator line (3.11+) or the def line below it (3.10).
    decorator_line = 3 if sys.version_info >= (3, 11) else 4
    assert sorted(problems) == sorted([
        f"tools/badtool.py: ToolError at line {decorator_line}: tool 'nope': parameter 'args' must be a plain named "
        "parameter (no *args, **kwargs or positional-only)",
        "tools/clash.py: tool name clash (calculator) with a tool already registered or defined "
        "twice; file skipped",
        "tools/empty.py: defines no tools (decorate functions with @tool)",
        "tools/exits.py: SystemExit at line 2: 3",
        "tools/raises.py: RuntimeError at line 3: missing API key",
        "tools/syntax.py: SyntaxError line 3: invalid syntax",
    ])
    assert not any(name.startswith("llm_user_tools_") and "syntax" in name for name in sys.modules)


def test_registry_load_directory_missing_dir_has_no_tools(tmp_path: Path) -> None:
    registry = ToolRegistry()
    assert registry.load_directory(tmp_path / "absent") == []
    (tmp_path / "file").write_text("")
    assert registry.load_directory(tmp_path / "file") == [f"{tmp_path / 'file'}: not a directory"]


def test_default_tools_dir_is_under_user_config() -> None:
    path = default_tools_dir()
    assert path.name == "tools" and path.parent.name == "llm-workbench"


# --- built-ins: calculator and clock ------------------------------------------------------


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    return ws


@pytest.fixture
def builtins(workspace: Path) -> ToolRegistry:
    return build_default_registry(workspace)


def call(registry: ToolRegistry, name: str, **arguments: Any) -> ToolResult:
    return run(registry.execute(name, arguments))


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        pytest.param("2+3", "5", id="int-add"),
        pytest.param("2 * (3 + 4) ** 2", "98", id="parentheses-power"),
        pytest.param("7 // 2", "3", id="floordiv"),
        pytest.param("7 % 3", "1", id="mod"),
        pytest.param("10 / 4", "2.5", id="truediv"),
        pytest.param("10 / 2", "5", id="truediv-integral"),
        pytest.param("-3 + +2", "-1", id="unary"),
        pytest.param("0.1 + 0.2", "0.3", id="float-trimmed"),
        pytest.param("2 ** 100", "1267650600228229401496703205376", id="big-int-exact"),
        pytest.param("2 ** -1", "0.5", id="negative-exponent"),
        pytest.param("1e3", "1000", id="scientific"),
        pytest.param("sqrt(16)", "4", id="sqrt"),
        pytest.param("pi", "3.14159265358979", id="pi"),
        pytest.param("log(e)", "1", id="log-e"),
        pytest.param("log(8, 2)", "3", id="log-base"),
        pytest.param("round(2.567, 2)", "2.57", id="round"),
        pytest.param("max(1, 5, 3) + min(4, 2)", "7", id="min-max"),
        pytest.param("floor(2.7) + ceil(2.1)", "5", id="floor-ceil"),
        pytest.param("abs(-4)", "4", id="abs"),
        pytest.param("cos(0) + sin(0) + tan(0)", "1", id="trig"),
        pytest.param("10 - 2 - 3 * 2 ** 2", "-4", id="precedence-and-left-to-right"),
        pytest.param("+".join(["1"] * 450), "450", id="long-flat-sum-is-not-nesting"),
        pytest.param("-" * 100 + "1", "1", id="deepest-nesting-allowed"),
    ],
)
def test_calculator_evaluates(builtins: ToolRegistry, expression: str, expected: str) -> None:
    result = call(builtins, "calculator", expression=expression)
    assert (result.ok, result.output) == (True, expected)


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        pytest.param("__import__('os').system('id')", "attribute access is not allowed", id="import-call-attr"),
        pytest.param("__import__('os')", "function '__import__' is not allowed", id="import-call"),
        pytest.param("__builtins__", "name '__builtins__' is not allowed", id="dunder-name"),
        pytest.param("(1).real", "attribute access is not allowed", id="attribute"),
        pytest.param("open('/etc/passwd')", "function 'open' is not allowed", id="open"),
        pytest.param("eval('1')", "function 'eval' is not allowed", id="eval"),
        pytest.param("x + 1", "name 'x' is not allowed", id="unknown-name"),
        pytest.param("2 ** 100000", "exponent 100000 is too large", id="huge-exponent"),
        pytest.param("9 ** 9 ** 9", "too large", id="power-tower"),
        pytest.param("10 ** 5000", "result too large", id="huge-int-result"),
        pytest.param("10.0 ** 400", "result too large", id="float-overflow"),
        pytest.param("exp(1000)", "result too large", id="exp-overflow"),
        pytest.param("1e400", "not a finite number", id="infinite"),
        pytest.param("1 / 0", "division by zero", id="div-zero"),
        pytest.param("1 // 0", "division by zero", id="floordiv-zero"),
        pytest.param("1 % 0", "division by zero", id="mod-zero"),
        pytest.param("sqrt(-1)", "sqrt: math domain error", id="domain"),
        pytest.param("(-8) ** 0.5", "not a real number", id="complex"),
        pytest.param("round(5, -1000)", "ndigits", id="round-huge-ndigits"),
        pytest.param("sqrt(x=4)", "only plain positional", id="keyword-arg"),
        pytest.param("True + 1", "only numbers", id="bool"),
        pytest.param("'a' * 3", "only numbers", id="string"),
        pytest.param("1 < 2", "unsupported syntax: Compare", id="comparison"),
        pytest.param("(lambda: 1)()", "only the listed functions can be called", id="lambda"),
        pytest.param("[1, 2]", "unsupported syntax: List", id="list"),
        pytest.param("2 +", "invalid expression", id="syntax-error"),
        pytest.param("1" * 1001, "longer than 1000", id="too-long"),
        pytest.param("-" * 990 + "1", "nested too deeply", id="too-deep"),
        # Regression (#19, newer Pythons): the limit was whatever the parser and stack of the running Python
        # allowed (3.13 took the line above); it is the calculator's own now, the same on every Python.
        pytest.param("-" * 101 + "1", "nested too deeply (more than 100 levels)", id="too-deep-own-limit"),
        pytest.param("sqrt(" * 101 + "4" + ")" * 101, "nested too deeply", id="too-deep-calls"),
    ],
)
def test_calculator_refuses(builtins: ToolRegistry, expression: str, reason: str) -> None:
    result = call(builtins, "calculator", expression=expression)
    assert not result.ok
    assert result.error is not None and reason in result.error


FIXED_NOW = datetime(2024, 1, 15, 12, 0, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("tz", "expected"),
    [
        pytest.param(None, "2024-01-15T12:00:00+00:00", id="local"),
        pytest.param("Asia/Tokyo", "2024-01-15T21:00:00+09:00", id="tokyo"),
        pytest.param("America/New_York", "2024-01-15T07:00:00-05:00", id="new-york"),
        pytest.param("UTC", "2024-01-15T12:00:00+00:00", id="utc"),
    ],
)
def test_get_current_time_formats_iso(workspace: Path, tz: str | None, expected: str) -> None:
    registry = ToolRegistry(make_builtin_tools(workspace, clock=lambda: FIXED_NOW))
    result = call(registry, "get_current_time", timezone=tz)
    assert (result.ok, result.output) == (True, expected)


def test_get_current_time_real_clock_is_aware(builtins: ToolRegistry) -> None:
    result = call(builtins, "get_current_time")
    parsed = datetime.fromisoformat(result.output)
    assert parsed.tzinfo is not None
    assert abs((datetime.now(timezone.utc) - parsed).total_seconds()) < 60


@pytest.mark.parametrize("tz", ["Mars/Olympus_Mons", "../../etc/passwd", "/etc/localtime", ""])
def test_get_current_time_unknown_zone_is_clear_error(builtins: ToolRegistry, tz: str) -> None:
    result = call(builtins, "get_current_time", timezone=tz)
    assert not result.ok and f"unknown time zone {tz!r}" in (result.error or "")


# --- built-ins: files ---------------------------------------------------------------------


def test_builtin_write_file_needs_approval_and_no_shell(builtins: ToolRegistry) -> None:
    assert builtins.names() == [
        "calculator", "get_current_time", "list_directory", "read_file", "search_files", "write_file",
    ]
    assert [t.name for t in builtins if t.needs_approval] == ["write_file"]


def test_make_builtin_tools_requires_existing_workspace(tmp_path: Path) -> None:
    with pytest.raises(ToolError, match="not an existing directory"):
        make_builtin_tools(tmp_path / "missing")


def test_file_tools_happy_path(builtins: ToolRegistry, workspace: Path) -> None:
    (workspace / "notes.txt").write_text("alpha\nbeta gamma\n")
    (workspace / "docs").mkdir()
    (workspace / "docs" / "guide.md").write_text("# Guide\nuse beta carefully\n")

    assert call(builtins, "list_directory").output == "docs/\nnotes.txt  (17 bytes)"
    assert call(builtins, "list_directory", path="docs").output == "guide.md  (27 bytes)"
    assert call(builtins, "read_file", path="docs/guide.md").output == "# Guide\nuse beta carefully\n"
    assert call(builtins, "search_files", pattern="beta").output == (
        "docs/guide.md:2: use beta carefully\nnotes.txt:2: beta gamma"
    )
    assert call(builtins, "search_files", pattern=r"^b\w+", regex=True).output == "notes.txt:2: beta gamma"
    assert call(builtins, "search_files", pattern="beta", path="notes.txt").output == "notes.txt:2: beta gamma"
    assert call(builtins, "search_files", pattern="zeta").output == "no matches for 'zeta' in '.'"

    written = call(builtins, "write_file", path="out/deep/new.txt", content="héllo")
    assert written.output == "wrote 6 bytes to 'out/deep/new.txt'"
    assert (workspace / "out" / "deep" / "new.txt").read_text(encoding="utf-8") == "héllo"
    call(builtins, "write_file", path="notes.txt", content="replaced")
    assert (workspace / "notes.txt").read_text() == "replaced"


@pytest.mark.parametrize(
    ("name", "arguments", "reason"),
    [
        pytest.param("read_file", {"path": "docs"}, "is a directory, not a file", id="read-dir"),
        pytest.param("list_directory", {"path": "notes.txt"}, "is a file, not a directory", id="list-file"),
        pytest.param("read_file", {"path": "missing.txt"}, "'missing.txt' does not exist", id="missing"),
        pytest.param("write_file", {"path": "docs", "content": "x"}, "is a directory", id="write-over-dir"),
        pytest.param("write_file", {"path": ".", "content": "x"}, "workspace root", id="write-root"),
        pytest.param("search_files", {"pattern": "("}, "invalid regular expression", id="bad-regex-literal-ok"),
        pytest.param("read_file", {"path": "notes.txt", "max_bytes": 0}, "argument 'max_bytes'", id="max-bytes-0"),
        pytest.param(
            "read_file", {"path": "notes.txt", "max_bytes": MAX_READ_BYTES + 1}, "argument 'max_bytes'",
            id="max-bytes-over-cap",
        ),
    ],
)
def test_file_tools_clear_errors(
    builtins: ToolRegistry, workspace: Path, name: str, arguments: dict[str, Any], reason: str
) -> None:
    (workspace / "notes.txt").write_text("alpha\n")
    (workspace / "docs").mkdir()
    if arguments.get("pattern") == "(":
        # A literal '(' is fine; only regex=True compiles it.
        assert call(builtins, name, **arguments).ok
        arguments = {**arguments, "regex": True}
    result = call(builtins, name, **arguments)
    assert not result.ok and reason in (result.error or "")


def test_read_file_truncates_with_notice(builtins: ToolRegistry, workspace: Path) -> None:
    (workspace / "big.txt").write_text("a" * (MAX_READ_BYTES + 100))
    result = call(builtins, "read_file", path="big.txt")
    assert result.output == "a" * MAX_READ_BYTES + (
        f"\n[truncated: showed the first {MAX_READ_BYTES} of {MAX_READ_BYTES + 100} bytes]"
    )
    small = call(builtins, "read_file", path="big.txt", max_bytes=10).output
    assert small.startswith("a" * 10 + "\n[truncated: showed the first 10 of")


def test_read_file_cut_multibyte_character_is_dropped(builtins: ToolRegistry, workspace: Path) -> None:
    """A limit that splits 'é' (2 bytes) must not show a replacement character."""
    (workspace / "accent.txt").write_text("aé", encoding="utf-8")
    assert call(builtins, "read_file", path="accent.txt", max_bytes=2).output.startswith("a\n[truncated")


def test_read_file_binary_is_described_not_dumped(builtins: ToolRegistry, workspace: Path) -> None:
    (workspace / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    result = call(builtins, "read_file", path="image.png")
    assert result.output == "'image.png' is a binary file (16 bytes); its content is not shown"


def test_list_directory_caps_entries(builtins: ToolRegistry, workspace: Path) -> None:
    for i in range(MAX_LIST_ENTRIES + 3):
        (workspace / f"f{i:04}.txt").touch()
    lines = call(builtins, "list_directory").output.splitlines()
    assert len(lines) == MAX_LIST_ENTRIES + 1
    assert lines[-1] == "[truncated: 3 more entries not shown]"
    (workspace / "sub").mkdir()
    assert call(builtins, "list_directory", path="sub").output == "(empty directory)"


def test_search_files_caps_matches_and_skips_binary(builtins: ToolRegistry, workspace: Path) -> None:
    (workspace / "many.txt").write_text("hit\n" * (MAX_SEARCH_MATCHES + 50))
    (workspace / "blob.bin").write_bytes(b"hit\x00hit")
    (workspace / ".git").mkdir()
    (workspace / ".git" / "config").write_text("hit\n")
    lines = call(builtins, "search_files", pattern="hit").output.splitlines()
    assert len(lines) == MAX_SEARCH_MATCHES + 1
    assert all(line.startswith("many.txt:") for line in lines[:-1])
    assert lines[-1].startswith(f"[truncated: stopped after {MAX_SEARCH_MATCHES} matches")


CATASTROPHIC = r"(a+)+$"
needs_proc = pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="child processes are read from /proc")


def write_catastrophic_lines(workspace: Path, lines: int, width: int) -> None:
    """Lines on which ``CATASTROPHIC`` backtracks for seconds (25 characters) to hours (40)."""
    (workspace / "lines.txt").write_text(("a" * width + "b\n") * lines)


def search_children() -> list[int]:
    return [pid for pid in child_pids() if "search_files" in cmdline(pid)]


def child_pids() -> list[int]:
    pids: list[int] = []
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        children = (task / "children").read_text().split()
        pids += [int(pid) for pid in children]
    return pids


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def test_search_files_catastrophic_regex_keeps_the_event_loop_responsive(workspace: Path) -> None:
    """Regression (tool path fixes, bug 4): ``search_files(regex=True)`` ran the model's pattern with ``re``, which
    never releases the GIL, so `(a+)+$` on a 31-character line froze the event loop for 71 s.

    Here a 25-character line (seconds of backtracking per line) and a short deadline: the call must come back
    with a clear error while other coroutines keep running: a loop frozen for the search would tick once or
    twice in all, a free one ticks every few milliseconds of the deadline (its speed is the bench's business).
    """
    write_catastrophic_lines(workspace, lines=2, width=25)
    registry = ToolRegistry(make_builtin_tools(workspace, search_deadline_s=1.0))

    async def go():
        gaps: list[float] = []
        done = asyncio.Event()

        async def ticker():
            last = time.perf_counter()
            while not done.is_set():
                await asyncio.sleep(0.005)
                now = time.perf_counter()
                gaps.append(now - last)
                last = now

        task = asyncio.ensure_future(ticker())
        try:
            result = await registry.execute("search_files", {"pattern": CATASTROPHIC, "regex": True})
        finally:
            done.set()
            await task
        return result, len(gaps)

    result, ticks = run(go())
    assert not result.ok and "took too long" in (result.error or "")
    assert "(a+)+$" in result.error
    assert ticks >= 10


@needs_proc
def test_search_files_catastrophic_regex_child_is_killed(workspace: Path) -> None:
    """Regression (tool path fixes, bug 4): the regex search now runs in a child process with a deadline; on
    timeout the child is gone, not left running."""
    write_catastrophic_lines(workspace, lines=1, width=40)  # hours of backtracking if not killed
    registry = ToolRegistry(make_builtin_tools(workspace, search_deadline_s=0.5))
    result = call(registry, "search_files", pattern=CATASTROPHIC, regex=True)
    assert not result.ok and "took too long" in (result.error or "")
    assert search_children() == []


@needs_proc
def test_search_files_cancelled_kills_the_child(workspace: Path) -> None:
    """Regression (tool path fixes, bug 4): Stop (or the tool's own timeout) cancels the call: the search's child
    process goes at once, not at its deadline."""
    write_catastrophic_lines(workspace, lines=1, width=40)
    registry = ToolRegistry(make_builtin_tools(workspace, search_deadline_s=120))

    async def go():
        task = asyncio.ensure_future(registry.execute("search_files", {"pattern": CATASTROPHIC, "regex": True}))
        await async_wait_until(lambda: search_children(), 10, "the search child to start")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    run(go())
    wait_until(lambda: not search_children(), 10, "the search child to be gone")


def test_search_files_regex_still_finds_and_reports_invalid_patterns(builtins: ToolRegistry, workspace: Path) -> None:
    """Regression (tool path fixes, bug 4): the regex search moved to a child process; it still finds matches and
    names an invalid pattern."""
    (workspace / "sub").mkdir()
    (workspace / "sub" / "a.py").write_text("def alpha():\n    return 1\n")
    found = call(builtins, "search_files", pattern=r"^def \w+\(", regex=True)
    assert found.output == "sub/a.py:1: def alpha():"
    bad = call(builtins, "search_files", pattern="a{2,1}", regex=True)
    assert not bad.ok and "invalid regular expression" in bad.error


def test_write_file_refuses_oversized_content(builtins: ToolRegistry, workspace: Path) -> None:
    result = call(builtins, "write_file", path="huge.txt", content="x" * (MAX_WRITE_BYTES + 1))
    assert not result.ok and "limit" in (result.error or "")
    assert not (workspace / "huge.txt").exists()


# --- sandbox escapes ----------------------------------------------------------------------

SECRET = "TOP SECRET"


def _setup_escape(ws: Path, outside: Path, case: str) -> None:
    """Build the links and special files an escape attempt needs."""
    if case == "symlink-file":
        (ws / "link.txt").symlink_to(outside / "secret.txt")
    elif case == "symlink-dir":
        (ws / "linkdir").symlink_to(outside, target_is_directory=True)
    elif case == "symlink-chain":
        (ws / "hop2").symlink_to(outside / "secret.txt")
        (ws / "hop1").symlink_to(ws / "hop2")
    elif case == "relative-symlink":
        (ws / "sub" / "up").symlink_to(Path("..") / ".." / "outside" / "secret.txt")
    elif case == "dangling-symlink":
        (ws / "dangling").symlink_to(outside / "created.txt")
    elif case == "symlink-loop":
        (ws / "loop").symlink_to(ws / "loop")
    elif case == "proc-symlink":
        (ws / "proc").symlink_to("/proc", target_is_directory=True)
    elif case == "fifo":
        os.mkfifo(ws / "pipe")


ESCAPES = [
    # (id, tool, arguments, reason fragment, setup case)
    ("dotdot", "read_file", {"path": "../outside/secret.txt"}, "'..' components", ""),
    ("nested-dotdot", "read_file", {"path": "sub/../../outside/secret.txt"}, "'..' components", ""),
    ("dotdot-dot", "read_file", {"path": "./sub/./../.."}, "'..' components", ""),
    ("absolute", "read_file", {"path": "{outside}/secret.txt"}, "absolute paths", ""),
    ("etc-passwd", "read_file", {"path": "/etc/passwd"}, "absolute paths", ""),
    ("proc-absolute", "read_file", {"path": "/proc/self/environ"}, "absolute paths", ""),
    ("home-tilde", "read_file", {"path": "~/.bashrc"}, "home-directory", ""),
    ("tilde-user", "list_directory", {"path": "~root"}, "home-directory", ""),
    ("nul-byte", "read_file", {"path": "notes.txt\x00../../etc/passwd"}, "NUL byte", ""),
    ("backslash-dotdot", "read_file", {"path": "..\\outside\\secret.txt"}, "backslashes", ""),
    ("drive-letter", "read_file", {"path": "C:/Windows/win.ini"}, "drive-letter", ""),
    ("drive-relative", "read_file", {"path": "C:secret.txt"}, "drive-letter", ""),
    ("unc", "read_file", {"path": "//server/share/x"}, "absolute paths", ""),
    ("very-long", "read_file", {"path": "a/" * 600 + "x"}, "longer than", ""),
    ("long-component", "write_file", {"path": "x" * 300, "content": "x"}, "longer than 255", ""),
    ("symlink-file", "read_file", {"path": "link.txt"}, "outside the workspace", "symlink-file"),
    ("symlink-dir", "read_file", {"path": "linkdir/secret.txt"}, "outside the workspace", "symlink-dir"),
    ("symlink-dir-list", "list_directory", {"path": "linkdir"}, "outside the workspace", "symlink-dir"),
    ("symlink-chain", "read_file", {"path": "hop1"}, "outside the workspace", "symlink-chain"),
    ("relative-symlink", "read_file", {"path": "sub/up"}, "outside the workspace", "relative-symlink"),
    # Regression (#19, newer Pythons): 3.13 resolves a loop without error and said "Too many levels of symbolic
    # links" later; the sandbox's own words are the same on every Python.
    ("symlink-loop", "read_file", {"path": "loop"}, "cannot be resolved (symlink loop)", "symlink-loop"),
    ("symlink-loop-inside", "read_file", {"path": "loop/x.txt"}, "cannot be resolved (symlink loop)", "symlink-loop"),
    ("symlink-loop-write", "write_file", {"path": "loop", "content": "x"}, "cannot be resolved (symlink loop)",
     "symlink-loop"),
    ("proc-symlink", "read_file", {"path": "proc/self/environ"}, "outside the workspace", "proc-symlink"),
    ("fifo", "read_file", {"path": "pipe"}, "only regular files", "fifo"),
    ("fifo-write", "write_file", {"path": "pipe", "content": "x"}, "only regular files", "fifo"),
    ("write-dotdot", "write_file", {"path": "../outside/new.txt", "content": "x"}, "'..' components", ""),
    ("write-absolute", "write_file", {"path": "{outside}/new.txt", "content": "x"}, "absolute paths", ""),
    ("write-symlink-dir", "write_file", {"path": "linkdir/new.txt", "content": "x"}, "outside", "symlink-dir"),
    ("write-dangling", "write_file", {"path": "dangling", "content": "x"}, "outside", "dangling-symlink"),
    ("search-dotdot", "search_files", {"pattern": "SECRET", "path": ".."}, "'..' components", ""),
    ("search-symlink-dir", "search_files", {"pattern": "SECRET", "path": "linkdir"}, "outside", "symlink-dir"),
    ("list-root", "list_directory", {"path": "/"}, "absolute paths", ""),
]


@pytest.mark.parametrize(
    ("name", "arguments", "reason", "setup"),
    [pytest.param(*case[1:], id=case[0]) for case in ESCAPES],
)
def test_sandbox_refuses_escape(
    tmp_path: Path, name: str, arguments: dict[str, Any], reason: str, setup: str
) -> None:
    if setup and os.name == "nt":
        pytest.skip("symlinks and FIFOs need POSIX")
    ws, outside = tmp_path / "ws", tmp_path / "outside"
    (ws / "sub").mkdir(parents=True)
    (ws / "notes.txt").write_text("fine\n")
    outside.mkdir()
    (outside / "secret.txt").write_text(SECRET)
    _setup_escape(ws, outside, setup)
    registry = build_default_registry(ws)
    arguments = {k: v.replace("{outside}", str(outside)) for k, v in arguments.items()}

    result = call(registry, name, **arguments)

    assert not result.ok, result.output
    assert reason in (result.error or "")
    assert "refused" in (result.error or "")
    assert SECRET not in result.output + (result.error or "")
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]  # nothing written outside


@needs_symlinks
def test_search_files_does_not_follow_symlinks_out(tmp_path: Path) -> None:
    ws, outside = tmp_path / "ws", tmp_path / "outside"
    ws.mkdir()
    outside.mkdir()
    (outside / "secret.txt").write_text(SECRET)
    (ws / "linkdir").symlink_to(outside, target_is_directory=True)
    (ws / "link.txt").symlink_to(outside / "secret.txt")
    result = call(build_default_registry(ws), "search_files", pattern="SECRET")
    assert result.output == "no matches for 'SECRET' in '.'"


@needs_symlinks
def test_sandbox_allows_symlink_staying_inside(builtins: ToolRegistry, workspace: Path) -> None:
    (workspace / "real.txt").write_text("inside")
    (workspace / "alias.txt").symlink_to(workspace / "real.txt")
    assert call(builtins, "read_file", path="alias.txt").output == "inside"
    listing = call(builtins, "list_directory").output
    assert listing == "alias.txt@ (symbolic link)\nreal.txt  (6 bytes)"


@needs_symlinks
def test_sandbox_resolve_never_leaves_root(tmp_path: Path) -> None:
    """Property: any string either is refused or resolves under the root, links included."""
    ws, outside = tmp_path / "ws", tmp_path / "outside"
    (ws / "a" / "b").mkdir(parents=True)
    outside.mkdir()
    (ws / "a" / "out").symlink_to(outside, target_is_directory=True)
    (ws / "a" / "in").symlink_to(ws / "a" / "b", target_is_directory=True)
    sandbox = Sandbox(ws)
    parts = st.sampled_from(["a", "b", "out", "in", ".", "..", "", "~", "C:", "\\", "\x00", "/proc"])

    @settings(max_examples=300, deadline=None)
    @given(st.lists(parts, max_size=6).map("/".join))
    def check(path: str) -> None:
        try:
            resolved = sandbox.resolve(path)
        except SandboxError:
            return
        assert resolved.is_relative_to(sandbox.root), path

    check()


def test_write_file_through_a_file_is_clear_error(builtins: ToolRegistry, workspace: Path) -> None:
    (workspace / "notes.txt").write_text("x")
    result = call(builtins, "write_file", path="notes.txt/inner.txt", content="x")
    assert not result.ok
    assert result.error is not None and result.error.startswith("SandboxError: ")
    assert str(workspace) not in result.error  # the model sees workspace-relative paths only
