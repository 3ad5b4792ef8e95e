"""Tools without code: a tool defined in a JSON file by a name, a description, a JSON Schema and a canned reply.

The file sits in the user tools folder beside the Python tools (``default_tools_dir()``), one
tool per file, named after the tool (``get_weather.json``)::

    {
      "name": "get_weather",
      "description": "The weather in a city.",
      "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string", "description": "The city"}},
        "required": ["city"],
        "additionalProperties": false
      },
      "reply": {"template": "It is sunny in {city}."}
    }

Keys (no others are accepted, so a misspelt key is reported rather than ignored):

- ``name`` (required): 1-64 letters, digits and ``_``, not starting with a digit; the same as the
  file's name without ``.json``. A name already taken by a built-in tool or an earlier file
  (Python files load before JSON files, each set alphabetically) is reported and the file skipped:
  what is already registered wins.
- ``description`` (required): a non-empty string; the model reads it to decide when to call.
- ``parameters`` (default: no arguments): a JSON Schema with ``"type": "object"`` in the subset
  :mod:`.json_schema` documents. Arguments are checked against it at call time like any tool's.
- ``reply`` (required): exactly one of
  ``{"text": "..."}`` (returned as is), ``{"json": <any JSON value>}`` (returned as JSON text), or
  ``{"template": "It is sunny in {city}."}``. A template's ``{name}`` is replaced by that argument
  (strings as they are, other values as JSON; a left-out optional argument by its schema
  ``default``, else nothing); ``{{`` and ``}}`` are literal braces. Placeholders must name declared
  parameters, checked when the file loads. Nothing is evaluated: a placeholder is a plain name looked
  up in the arguments, so ``{city.__class__}`` is simply an undeclared name, an error.

Every problem is reported with the file and the key (``get_weather.json: reply.template: ...``).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ..atomic_files import write_text_atomically
from ..errors import ToolError
from ..validation import FieldProblem
from .json_schema import schema_problems, with_defaults

SUFFIX = ".json"
REPLY_KINDS = ("text", "json", "template")
ReplyKind = Literal["text", "json", "template"]
KEYS = ("name", "description", "parameters", "reply")
NO_PARAMETERS: dict[str, Any] = {"type": "object", "properties": {}, "additionalProperties": False}
# An identifier: safe as a file name on every system and accepted by every OpenAI-compatible server.
_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
# "{{" and "}}" are literal braces; "{...}" is a placeholder; any other brace is unmatched.
_TEMPLATE_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")


class CannedToolError(ToolError):
    """A tool definition that cannot be used; the message names the file (or the form) and each bad key."""

    def __init__(self, source: str, problems: list[FieldProblem]) -> None:
        super().__init__(f"{source}: " + "; ".join(p.joined("") for p in problems))
        self.source = source
        self.problems = problems


@dataclass(frozen=True)
class CannedTool:
    """A valid tool definition (build one with :func:`canned_tool_from_dict`, which checks it)."""

    name: str
    description: str
    parameters: dict[str, Any]
    reply_kind: ReplyKind
    reply: Any  # the text, the JSON value or the template

    def reply_for(self, arguments: dict[str, Any]) -> str:
        """The canned reply to a call with these (already validated) arguments."""
        if self.reply_kind == "text":
            return self.reply
        if self.reply_kind == "json":
            return json.dumps(self.reply, ensure_ascii=False)
        arguments = with_defaults(self.parameters, arguments)
        out = []
        for literal, placeholder in _template_parts(self.reply):
            out.append(literal)
            if placeholder is not None and placeholder in arguments:
                value = arguments[placeholder]
                out.append(value if isinstance(value, str) else json.dumps(value, ensure_ascii=False))
        return "".join(out)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "parameters": self.parameters,
                "reply": {self.reply_kind: self.reply}}

    def to_json(self) -> str:
        """The file's text: what :func:`parse_canned_tool` reads back to an equal definition."""
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n"


# --- checking and building (pure) ---------------------------------------------------------


def canned_tool_problems(data: Any, *, taken: Iterable[str] = ()) -> list[FieldProblem]:
    """Every problem with a definition, each naming its key; empty when it is usable.

    ``taken``: names already in use (the window passes the registry's other tools).
    """
    return _problems(data, taken, schema_readable=True)


def _problems(data: Any, taken: Iterable[str], *, schema_readable: bool) -> list[FieldProblem]:
    if not isinstance(data, dict):
        return [FieldProblem("", f"must be a JSON object with the keys {', '.join(KEYS)}")]
    problems = [FieldProblem(key, f"unknown key (expected: {', '.join(KEYS)})") for key in data if key not in KEYS]
    name = data.get("name")
    if name is None or name == "":
        problems.append(FieldProblem("name", "required"))
    elif not isinstance(name, str) or not _NAME_RE.match(name):
        problems.append(FieldProblem("name", "must be 1-64 letters, digits or '_', not starting with a digit, "
                                             f"got {json.dumps(name, ensure_ascii=False)}"))
    elif name in set(taken):
        problems.append(_taken(name))
    description = data.get("description")
    if description is not None and not isinstance(description, str):
        problems.append(FieldProblem("description", f"must be a string, got {type(description).__name__}"))
    elif description is None or not description.strip():
        problems.append(FieldProblem("description", "required: a sentence saying what the tool does (the model "
                                                    "reads it to decide when to call)"))
    parameters = data.get("parameters", NO_PARAMETERS)
    schema = schema_problems(parameters) if schema_readable else []
    problems += [FieldProblem(f"parameters.{path}" if path else "parameters", message) for path, message in schema]
    # Which names a template may use is known only from a usable schema.
    problems += _reply_problems(data.get("reply"), parameters if schema_readable and not schema else None)
    return problems


def canned_tool_from_dict(data: Any, *, source: str, taken: Iterable[str] = ()) -> CannedTool:
    """The checked definition; raises CannedToolError naming ``source`` and every bad key."""
    problems = canned_tool_problems(data, taken=taken)
    if problems:
        raise CannedToolError(source, problems)
    ((kind, reply),) = data["reply"].items()
    parameters = copy.deepcopy(data.get("parameters", NO_PARAMETERS))  # never shares the module's default
    return CannedTool(data["name"], data["description"].strip(), parameters, kind, reply)


def parse_canned_tool(text: str, *, source: str) -> CannedTool:
    """A definition from a file's text."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CannedToolError(source, [FieldProblem("", _json_problem(exc))]) from None
    return canned_tool_from_dict(data, source=source)


def canned_tool_from_form(name: str, description: str, parameters_text: str, reply_kind: str, reply_text: str,
                          *, taken: Iterable[str] = ()) -> tuple[CannedTool | None, list[FieldProblem]]:
    """What the window's tool editor shows: the definition, or every problem with its fields.

    The schema (and a JSON reply) arrive as text, so a JSON syntax error is one more problem,
    named by its key, with the line and column.
    """
    problems: list[FieldProblem] = []
    data: dict[str, Any] = {"name": name.strip(), "description": description}
    try:
        data["parameters"] = json.loads(parameters_text)
    except json.JSONDecodeError as exc:
        problems.append(FieldProblem("parameters", _json_problem(exc)))
    reply: Any = reply_text
    if reply_kind == "json":
        try:
            reply = json.loads(reply_text)
        except json.JSONDecodeError as exc:
            problems.append(FieldProblem("reply.json", _json_problem(exc)))
    data["reply"] = {reply_kind: reply}
    # A schema that is not JSON cannot be checked further; the rest of the form still can.
    problems += _problems(data, taken, schema_readable="parameters" in data)
    if problems:
        return None, problems
    return canned_tool_from_dict(data, source="form"), []


def _taken(name: str) -> FieldProblem:
    return FieldProblem("name", f"'{name}' is already a tool (a built-in or another file in your tools folder); "
                                "choose another name")


def _reply_problems(reply: Any, parameters: dict[str, Any] | None) -> list[FieldProblem]:
    choices = " or ".join(f'{{"{kind}": ...}}' for kind in REPLY_KINDS)
    if reply is None:
        return [FieldProblem("reply", f"required: {choices}")]
    if not isinstance(reply, dict) or len(reply) != 1 or next(iter(reply)) not in REPLY_KINDS:
        if isinstance(reply, dict):
            given = f"keys {', '.join(map(repr, reply))}" if reply else "no keys"
        else:
            given = json.dumps(reply, ensure_ascii=False)
        return [FieldProblem("reply", f"must be exactly one of {choices}, got {given}")]
    ((kind, value),) = reply.items()
    if kind == "json":
        return []  # any JSON value
    if not isinstance(value, str):
        return [FieldProblem(f"reply.{kind}", f"must be a string, got {json.dumps(value, ensure_ascii=False)}")]
    if kind == "text":
        return []
    if parameters is None:  # the schema is broken: which names are declared is unknown
        return []
    return [FieldProblem("reply.template", message) for message in template_problems(value, parameters)]


def template_problems(template: str, parameters: dict[str, Any]) -> list[str]:
    """Unmatched braces and placeholders that name no declared parameter."""
    declared = list(parameters.get("properties", {}))
    problems = []
    for match in _TEMPLATE_TOKEN.finditer(template):
        token, name = match.group(0), match.group(1)
        if token in ("{{", "}}"):
            continue
        if name is None:
            problems.append(f"unmatched '{token}' at character {match.start() + 1} (write {token * 2} for a "
                            "literal brace)")
        elif name not in declared:
            names = ", ".join(declared) or "none"
            problems.append(f"placeholder {token} names no declared parameter (declared: {names}; a placeholder "
                            "is a plain parameter name, with no attribute, index or format)")
    return problems


def _template_parts(template: str) -> list[tuple[str, str | None]]:
    """(literal text, placeholder name or None) pairs, for a template that passed template_problems."""
    parts: list[tuple[str, str | None]] = []
    start = 0
    for match in _TEMPLATE_TOKEN.finditer(template):
        literal = template[start:match.start()]
        token = match.group(0)
        if token in ("{{", "}}"):
            parts.append((literal + token[0], None))
        else:
            parts.append((literal, match.group(1)))
        start = match.end()
    parts.append((template[start:], None))
    return parts


def _json_problem(exc: json.JSONDecodeError) -> str:
    return f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"


# --- the files (I/O) ----------------------------------------------------------------------


def read_canned_tool(file: Path, *, label: str | None = None, taken: Iterable[str] = ()) -> CannedTool:
    """The definition in ``file``; its name must match the file's. ``label`` names it in errors."""
    label = label or file.name
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise CannedToolError(label, [FieldProblem("", "not UTF-8 text")]) from None
    except OSError as exc:
        raise CannedToolError(label, [FieldProblem("", f"cannot read: {exc.strerror or exc}")]) from exc
    definition = parse_canned_tool(text, source=label)
    if definition.name != file.stem:
        mismatch = (f"'{definition.name}' does not match the file name {file.name} (they must agree, so the window "
                    "can find the file)")
        raise CannedToolError(label, [FieldProblem("name", mismatch)])
    if definition.name in set(taken):
        raise CannedToolError(label, [_taken(definition.name)])
    return definition


def canned_tool_path(name: str, directory: Path) -> Path:
    return Path(directory) / f"{name}{SUFFIX}"


def write_canned_tool(definition: CannedTool, directory: Path) -> Path:
    """Save to ``directory/<name>.json`` atomically: a reader sees the old file or the new one, never half."""
    directory = Path(directory)
    path = canned_tool_path(definition.name, directory)
    try:
        write_text_atomically(path, definition.to_json())
    except OSError as exc:
        raise ToolError(f"cannot save tool '{definition.name}' to {path}: {exc.strerror or exc}") from exc
    return path


def remove_canned_tool(name: str, directory: Path) -> None:
    path = canned_tool_path(name, directory)
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:
        raise ToolError(f"cannot delete tool '{name}' ({path}): {exc.strerror or exc}") from exc
