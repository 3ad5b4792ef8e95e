"""Tool-use eval suites: JSONL text -> validated Suite (pure; errors name the line and the key).

A suite is a JSONL file: one JSON object per line. Blank lines and lines starting with ``#`` or
``//`` are skipped (so a suite can explain itself). Two kinds of line:

**Tool lines** declare a tool that tasks may offer::

    {"tool": {"name": "get_weather", "description": "Current weather for a city",
              "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                             "required": ["city"]},
              "result": "{\\"temperature\\": 18}"}}

``name`` (1-64 letters, digits, ``_`` or ``-``) is required; ``description`` defaults to "";
``parameters`` is the JSON schema of the arguments (``type`` must be ``object``; default: no
arguments), in the subset the workbench's JSON tools use (``tools/json_schema``: an unknown keyword is
an error); ``result`` is the canned text the tool answers with (default ``"ok"``): eval tools never
do anything, they only give the model something to read in a two-step task.

**Task lines** (they have an ``id``)::

    {"id": "weather_paris", "category": "single", "prompt": "What's the weather in Paris?",
     "tools": ["get_weather", "calculator"],
     "expect": [{"name": "get_weather", "arguments": {"city": {"match": "icase", "value": "paris"}}}]}

* ``id`` (unique) and ``prompt``: required strings. ``system``: an optional system prompt.
* ``tools``: the tools offered, at least one: names of tool lines (anywhere in the file), or tool
  objects written inline (same keys as a tool line's ``tool``, local to the task).
* ``expect``: the calls the first step should make, in any order; ``[]`` means the model should call
  nothing (an abstention task). Each call: ``name`` (one of the task's tools) and ``arguments``, a map
  from argument name to a rule. Arguments not named are not checked (the schema check still applies).
* ``then``: optional, the calls expected in the second step, after the model has read the canned
  results of the first (a two-step task). ``results``: optional map tool name -> canned text for this
  task, overriding the tool's ``result`` (e.g. what ``get_user`` says about this task's user).
* ``category``: an optional label (single, types, parallel, two_step, abstain, ...) shown in reports.

**Argument rules.** A plain JSON value means ``exact``. An object with a ``match`` key is a rule:

==========  ==========================================================================================
match       passes when the argument ...
==========  ==========================================================================================
exact       equals ``value`` as JSON (1 == 1.0; true is not 1)
number      is a number within ``tolerance`` (absolute, default 0) of ``value``
icase       is a string equal to ``value`` (or one of ``values``) ignoring case and outer whitespace
one_of      equals one of ``values`` exactly
contains    a string: contains ``value`` / every one of ``values``, ignoring case;
            an array: has an element equal (strings ignoring case) to each
any         is present, whatever its value
absent      is not given at all
object      is an object whose ``fields`` each match their rule (other keys not checked)
array       is an array of exactly ``len(items)`` elements matching the ``items`` rules one to one,
            in any order unless ``"ordered": true``
==========  ==========================================================================================

Every rule but ``absent`` takes ``"optional": true``: a missing argument then passes, a given one
must match.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..tools.json_schema import schema_problems

_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # what OpenAI-compatible servers accept as a function name
TOOL_KEYS = {"name", "description", "parameters", "result"}
TASK_KEYS = {"id", "prompt", "system", "tools", "expect", "then", "results", "category"}
CALL_KEYS = {"name", "arguments"}
RULE_KEYS = {
    "exact": {"value"},
    "number": {"value", "tolerance"},
    "icase": {"value", "values"},
    "one_of": {"values"},
    "contains": {"value", "values"},
    "any": set(),
    "absent": set(),
    "object": {"fields"},
    "array": {"items", "ordered"},
}


class SuiteError(ConfigError):
    """A suite file that cannot be used; the message names the file, the line and the key."""

    def __init__(self, source: str, line: int | None, key: str | None, problem: str) -> None:
        where = source + (f":{line}" if line is not None else "")
        super().__init__(f"{where}: {key}: {problem}" if key else f"{where}: {problem}")
        self.source = source
        self.line = line
        self.key = key
        self.problem = problem


@dataclass(frozen=True)
class ToolSpec:
    """A tool as an eval offers it: its schema and the canned text it answers with."""

    name: str
    description: str
    parameters: dict[str, Any]
    result: str = "ok"

    def to_openai(self) -> dict[str, Any]:
        return {"type": "function", "function": {"name": self.name, "description": self.description,
                                                 "parameters": self.parameters}}


@dataclass(frozen=True)
class ArgRule:
    """How one expected argument is matched; see the module docstring for each ``kind``."""

    kind: str
    value: Any = None
    values: tuple[Any, ...] = ()
    tolerance: float = 0.0
    optional: bool = False
    fields: dict[str, ArgRule] = field(default_factory=dict)
    items: tuple[ArgRule, ...] = ()
    ordered: bool = False

    def describe(self) -> str:
        """The rule in a few words, for failure reports."""
        if self.kind == "exact":
            return json.dumps(self.value, ensure_ascii=False)
        if self.kind == "number":
            return f"{self.value:g}" + (f" ± {self.tolerance:g}" if self.tolerance else "")
        if self.kind in ("icase", "one_of"):
            options = self.values or (self.value,)
            shown = " / ".join(json.dumps(v, ensure_ascii=False) for v in options)
            return f"{shown} (any case)" if self.kind == "icase" else f"one of {shown}"
        if self.kind == "contains":
            needles = self.values or (self.value,)
            return "containing " + ", ".join(json.dumps(v, ensure_ascii=False) for v in needles)
        if self.kind == "object":
            return "{" + ", ".join(f"{k}: {r.describe()}" for k, r in self.fields.items()) + "}"
        if self.kind == "array":
            inner = ", ".join(r.describe() for r in self.items)
            return f"[{inner}]" + ("" if self.ordered else " (any order)")
        return self.kind  # any, absent


@dataclass(frozen=True)
class ExpectedCall:
    name: str
    arguments: dict[str, ArgRule]


@dataclass(frozen=True)
class Task:
    id: str
    prompt: str
    tools: tuple[ToolSpec, ...]
    steps: tuple[tuple[ExpectedCall, ...], ...]  # per step, the calls expected; ((),) = call nothing
    system: str | None = None
    results: dict[str, str] = field(default_factory=dict)
    category: str = ""
    line: int = 0

    @property
    def expects_call(self) -> bool:
        return bool(self.steps[0])

    def tool(self, name: str) -> ToolSpec | None:
        return next((t for t in self.tools if t.name == name), None)


@dataclass(frozen=True)
class Suite:
    name: str
    source: str
    tasks: tuple[Task, ...]

    def head(self, n: int) -> Suite:
        """The first ``n`` tasks (quick runs, tests)."""
        return Suite(self.name, self.source, self.tasks[:n])


def default_suite_path() -> Path:
    """The suite shipped with the workbench (about 30 tasks)."""
    return Path(str(resources.files(__package__).joinpath("suites", "default.jsonl")))


def load_suite(path: str | Path | None = None) -> Suite:
    """Read and validate a suite file (the shipped default when ``path`` is None)."""
    path = Path(path) if path is not None else default_suite_path()
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SuiteError(str(path), None, None, f"cannot read the suite file: {exc}") from exc
    return parse_suite(text, source=str(path), name=path.stem)


def parse_suite(text: str, source: str = "<suite>", name: str | None = None) -> Suite:
    """Validate a suite's JSONL text; the first problem raises SuiteError naming its line and key."""
    tool_lines: dict[str, ToolSpec] = {}
    raw_tasks: list[tuple[int, dict[str, Any]]] = []
    for number, raw_line in enumerate(text.splitlines(), start=1):
        stripped = raw_line.strip()
        if not stripped or stripped.startswith(("#", "//")):
            continue
        where = _Where(source, number)
        try:
            obj = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise where.error(None, f"not valid JSON: {exc.msg} (column {exc.colno})") from None
        if not isinstance(obj, dict):
            raise where.error(None, f"each line must be a JSON object, got {_kind(obj)}")
        if "tool" in obj:
            extra = sorted(set(obj) - {"tool"})
            if extra:
                raise where.error(extra[0], "unknown key on a tool line (a tool line has only 'tool')")
            spec = _tool(obj["tool"], where, "tool")
            if spec.name in tool_lines:
                raise where.error("tool.name", f"tool '{spec.name}' is declared twice")
            tool_lines[spec.name] = spec
        elif "id" in obj:
            raw_tasks.append((number, obj))
        else:
            raise where.error(None, "a line must be a tool ({\"tool\": {...}}) or a task (with an \"id\")")
    tasks: list[Task] = []
    seen: set[str] = set()
    for number, obj in raw_tasks:  # after all tool lines, so a task may name a tool declared below it
        task = _task(obj, _Where(source, number), tool_lines)
        if task.id in seen:
            raise SuiteError(source, number, "id", f"task id '{task.id}' is used twice")
        seen.add(task.id)
        tasks.append(task)
    if not tasks:
        raise SuiteError(source, None, None, "the suite has no tasks (a task line has an \"id\")")
    return Suite(name or Path(source).stem or "suite", source, tuple(tasks))


# ----- lines -----

@dataclass(frozen=True)
class _Where:
    source: str
    line: int

    def error(self, key: str | None, problem: str) -> SuiteError:
        return SuiteError(self.source, self.line, key, problem)


def _kind(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number")


def _tool(raw: Any, where: _Where, key: str) -> ToolSpec:
    if not isinstance(raw, dict):
        raise where.error(key, f"a tool must be an object, got {_kind(raw)}")
    extra = sorted(set(raw) - TOOL_KEYS)
    if extra:
        raise where.error(f"{key}.{extra[0]}", f"unknown key (a tool has {', '.join(sorted(TOOL_KEYS))})")
    name = raw.get("name")
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise where.error(f"{key}.name", f"must be 1-64 letters, digits, '_' or '-', got {name!r}")
    description = raw.get("description", "")
    if not isinstance(description, str):
        raise where.error(f"{key}.description", f"must be a string, got {_kind(description)}")
    parameters = raw.get("parameters", {"type": "object", "properties": {}})
    # The subset the workbench's tools use (tools/json_schema): a typo such as "requried" is an error here,
    # not a schema that silently accepts anything.
    problems = schema_problems(parameters)
    if problems:
        path, message = problems[0]
        raise where.error(f"{key}.parameters" + (f".{path}" if path else ""), message)
    result = raw.get("result", "ok")
    if not isinstance(result, str):
        raise where.error(f"{key}.result", f"must be a string (the canned answer), got {_kind(result)}")
    return ToolSpec(name, description, parameters, result)


def _task(obj: dict[str, Any], where: _Where, tool_lines: dict[str, ToolSpec]) -> Task:
    extra = sorted(set(obj) - TASK_KEYS)
    if extra:
        raise where.error(extra[0], f"unknown key (a task has {', '.join(sorted(TASK_KEYS))})")
    task_id = obj["id"]
    if not isinstance(task_id, str) or not task_id.strip():
        raise where.error("id", "must be a non-empty string")
    prompt = obj.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise where.error("prompt", "required: a non-empty string")
    system = obj.get("system")
    if system is not None and not isinstance(system, str):
        raise where.error("system", f"must be a string, got {_kind(system)}")
    category = obj.get("category", "")
    if not isinstance(category, str):
        raise where.error("category", f"must be a string, got {_kind(category)}")
    tools = _task_tools(obj.get("tools"), where, tool_lines)
    if "expect" not in obj:
        raise where.error("expect", "required: the expected calls, or [] when no tool should be called")
    steps = [_calls(obj["expect"], where, "expect", tools)]
    if "then" in obj:
        if not steps[0]:
            raise where.error("then", "a second step needs calls in 'expect' first")
        then = _calls(obj["then"], where, "then", tools)
        if not then:
            raise where.error("then", "must list at least one call (leave 'then' out for a one-step task)")
        steps.append(then)
    results = obj.get("results", {})
    if not isinstance(results, dict):
        raise where.error("results", f"must be an object (tool name -> canned text), got {_kind(results)}")
    for tool_name, text in results.items():
        if tool_name not in {t.name for t in tools}:
            raise where.error(f"results.{tool_name}", "not one of the task's tools")
        if not isinstance(text, str):
            raise where.error(f"results.{tool_name}", f"must be a string, got {_kind(text)}")
    return Task(task_id, prompt, tools, tuple(steps), system, dict(results), category, where.line)


def _task_tools(raw: Any, where: _Where, tool_lines: dict[str, ToolSpec]) -> tuple[ToolSpec, ...]:
    if not isinstance(raw, list) or not raw:
        raise where.error("tools", "required: a non-empty list of tool names or tool objects")
    tools: list[ToolSpec] = []
    for i, entry in enumerate(raw):
        if isinstance(entry, str):
            if entry not in tool_lines:
                known = ", ".join(tool_lines) or "none declared"
                raise where.error(f"tools[{i}]", f"unknown tool '{entry}' (tool lines: {known})")
            spec = tool_lines[entry]
        else:
            spec = _tool(entry, where, f"tools[{i}]")
        if any(t.name == spec.name for t in tools):
            raise where.error(f"tools[{i}]", f"tool '{spec.name}' is offered twice")
        tools.append(spec)
    return tuple(tools)


def _calls(raw: Any, where: _Where, key: str, tools: tuple[ToolSpec, ...]) -> tuple[ExpectedCall, ...]:
    if not isinstance(raw, list):
        raise where.error(key, f"must be a list of calls ([] for none), got {_kind(raw)}")
    calls = []
    for i, call in enumerate(raw):
        at = f"{key}[{i}]"
        if not isinstance(call, dict):
            raise where.error(at, f"a call must be an object with name and arguments, got {_kind(call)}")
        extra = sorted(set(call) - CALL_KEYS)
        if extra:
            raise where.error(f"{at}.{extra[0]}", "unknown key (a call has name and arguments)")
        name = call.get("name")
        spec = next((t for t in tools if t.name == name), None)
        if spec is None:
            offered = ", ".join(t.name for t in tools)
            raise where.error(f"{at}.name", f"{name!r} is not one of the task's tools ({offered})")
        arguments = call.get("arguments", {})
        if not isinstance(arguments, dict):
            raise where.error(f"{at}.arguments", f"must be an object (argument -> rule), got {_kind(arguments)}")
        properties = spec.parameters.get("properties") or {}
        rules = {}
        for arg, rule in arguments.items():
            if properties and arg not in properties:
                raise where.error(f"{at}.arguments.{arg}",
                                  f"'{name}' has no such argument (it has {', '.join(properties)})")
            rules[arg] = _rule(rule, where, f"{at}.arguments.{arg}")
        calls.append(ExpectedCall(name, rules))
    return tuple(calls)


def _rule(raw: Any, where: _Where, key: str) -> ArgRule:
    if not (isinstance(raw, dict) and "match" in raw):
        return ArgRule("exact", value=raw)
    kind = raw["match"]
    if kind not in RULE_KEYS:
        raise where.error(f"{key}.match", f"unknown match {kind!r} (use {', '.join(RULE_KEYS)})")
    allowed = RULE_KEYS[kind] | {"match"} | ({"optional"} if kind != "absent" else set())
    extra = sorted(set(raw) - allowed)
    if extra:
        raise where.error(f"{key}.{extra[0]}", f"not a key of the '{kind}' rule (it takes "
                                               f"{', '.join(sorted(allowed - {'match'})) or 'nothing else'})")
    optional = raw.get("optional", False)
    if not isinstance(optional, bool):
        raise where.error(f"{key}.optional", "must be true or false")
    value, values = raw.get("value"), raw.get("values")
    if kind == "exact":
        if "value" not in raw:
            raise where.error(f"{key}.value", "required for an 'exact' rule")
        return ArgRule(kind, value=value, optional=optional)
    if kind == "number":
        if not _is_number(value):
            raise where.error(f"{key}.value", f"must be a number, got {_kind(value)}")
        tolerance = raw.get("tolerance", 0)
        if not _is_number(tolerance) or tolerance < 0:
            raise where.error(f"{key}.tolerance", "must be a number >= 0")
        return ArgRule(kind, value=value, tolerance=float(tolerance), optional=optional)
    if kind in ("icase", "contains"):
        if ("value" in raw) == ("values" in raw):
            raise where.error(key, f"a '{kind}' rule takes either 'value' or 'values'")
        given = "value" if "value" in raw else "values"
        options = [value] if given == "value" else values
        if not isinstance(options, list) or not options:
            raise where.error(f"{key}.values", "must be a non-empty list")
        if kind == "icase" and not all(isinstance(v, str) for v in options):
            raise where.error(f"{key}.{given}", "must be a string (or a list of strings) for an 'icase' rule")
        return ArgRule(kind, value=value, values=tuple(values or ()), optional=optional)
    if kind == "one_of":
        if not isinstance(values, list) or not values:
            raise where.error(f"{key}.values", "required: a non-empty list")
        return ArgRule(kind, values=tuple(values), optional=optional)
    if kind == "object":
        fields = raw.get("fields")
        if not isinstance(fields, dict) or not fields:
            raise where.error(f"{key}.fields", "required: an object (field -> rule)")
        return ArgRule(kind, fields={k: _rule(v, where, f"{key}.fields.{k}") for k, v in fields.items()},
                       optional=optional)
    if kind == "array":
        items = raw.get("items")
        if not isinstance(items, list):
            raise where.error(f"{key}.items", "required: a list of rules, one per expected element")
        ordered = raw.get("ordered", False)
        if not isinstance(ordered, bool):
            raise where.error(f"{key}.ordered", "must be true or false")
        return ArgRule(kind, items=tuple(_rule(v, where, f"{key}.items[{i}]") for i, v in enumerate(items)),
                       ordered=ordered, optional=optional)
    return ArgRule(kind, optional=optional)  # any, absent


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
