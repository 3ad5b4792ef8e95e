"""A tool's JSON schema and argument model, derived from the function's signature and docstring (pure)."""

from __future__ import annotations

import inspect
import re
import typing
import warnings
from collections.abc import Callable
from typing import Any

import pydantic
from pydantic import BaseModel, ConfigDict

from ..errors import ToolError


# --- schema derivation --------------------------------------------------------------------


def parse_docstring(doc: str) -> tuple[str, dict[str, str]]:
    """First paragraph as the summary, plus Google-style ``Args:`` descriptions by name."""
    paragraphs = re.split(r"\n\s*\n", doc.strip(), maxsplit=1)
    summary = " ".join(paragraphs[0].split()) if doc.strip() else ""
    if summary.lower().rstrip(":") in {"args", "arguments", "parameters"}:
        summary = ""
    args: dict[str, str] = {}
    current: str | None = None
    section_indent: int | None = None
    in_args = False
    for raw in doc.splitlines():
        stripped = raw.strip()
        indent = len(raw) - len(raw.lstrip())
        if re.fullmatch(r"(Args|Arguments|Parameters):", stripped):
            in_args, current, section_indent = True, None, None
            continue
        if not in_args:
            continue
        if not stripped:
            continue
        if section_indent is None:
            section_indent = indent
        if indent < section_indent:  # back at the outer level: the section ended
            in_args = False
            continue
        match = re.match(r"^\*{0,2}(\w+)\s*(\([^)]*\))?\s*:\s*(.*)$", stripped)
        if indent == section_indent and match:
            current = match.group(1)
            args[current] = match.group(3)
        elif current is not None:  # continuation line of the previous argument
            args[current] = f"{args[current]} {stripped}".strip()
    return summary, args


def arguments_model(name: str, fn: Callable[..., Any], arg_docs: dict[str, str]) -> type[BaseModel]:
    try:
        signature = inspect.signature(fn)
        hints = typing.get_type_hints(fn, include_extras=True)
    except (TypeError, ValueError, NameError) as exc:
        raise ToolError(f"tool '{name}': cannot read its signature: {exc}") from exc
    fields: dict[str, Any] = {}
    for param in signature.parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD, param.POSITIONAL_ONLY):
            raise ToolError(
                f"tool '{name}': parameter '{param.name}' must be a plain named parameter "
                "(no *args, **kwargs or positional-only)"
            )
        if param.name.startswith("_"):
            raise ToolError(f"tool '{name}': parameter '{param.name}' must not start with '_'")
        # Unannotated parameters are taken as strings, the commonest thing a model sends.
        annotation = hints.get(param.name, str)
        default = ... if param.default is param.empty else param.default
        fields[param.name] = (annotation, pydantic.Field(default, description=arg_docs.get(param.name)))
    config = ConfigDict(extra="forbid", protected_namespaces=())
    try:
        with warnings.catch_warnings():
            # A parameter called e.g. "json" shadows a BaseModel method; harmless for a pure
            # argument container, and we read values by iteration, not attribute.
            warnings.simplefilter("ignore")
            return pydantic.create_model(f"{name}_arguments", __config__=config, **fields)
    except (TypeError, ValueError, NameError, pydantic.PydanticUserError) as exc:
        raise ToolError(f"tool '{name}': unsupported parameter types: {exc}") from exc


def openai_schema(name: str, model: type[BaseModel]) -> dict[str, Any]:
    """A plain self-contained schema: refs inlined, titles dropped, optional nulls removed."""
    try:
        raw = model.model_json_schema()
    except pydantic.PydanticUserError as exc:  # e.g. a type with no JSON schema
        raise ToolError(f"tool '{name}': cannot derive a JSON schema: {exc}") from exc
    defs = raw.pop("$defs", {})
    schema = _clean(_inline(name, raw, defs, ()))
    schema["type"] = "object"
    schema.setdefault("properties", {})
    required = set(schema.get("required", ()))
    for prop_name, prop in schema["properties"].items():
        # "x: int | None = None" means "may be omitted"; a bare type reads better to small
        # models than anyOf-with-null. Validation still accepts an explicit null.
        if prop_name not in required and prop.get("default", 0) is None and "anyOf" in prop:
            branches = [b for b in prop["anyOf"] if b != {"type": "null"}]
            if len(branches) == 1:
                del prop["anyOf"]
                prop.update({k: v for k, v in branches[0].items() if k not in prop})
    return schema


def _inline(tool_name: str, node: Any, defs: dict[str, Any], seen: tuple[str, ...]) -> Any:
    if isinstance(node, list):
        return [_inline(tool_name, item, defs, seen) for item in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        key = ref.removeprefix("#/$defs/")
        if key in seen:
            raise ToolError(f"tool '{tool_name}': recursive parameter type '{key}' is not supported")
        target = _inline(tool_name, defs[key], defs, (*seen, key))
        siblings = {k: v for k, v in node.items() if k != "$ref"}
        return {**target, **_inline(tool_name, siblings, defs, seen)}
    return {k: _inline(tool_name, v, defs, seen) for k, v in node.items()}


def _clean(node: Any) -> Any:
    if isinstance(node, list):
        return [_clean(item) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "title" and isinstance(value, str):
            continue  # pydantic's generated titles are noise to a model
        if key == "properties" and isinstance(value, dict):
            out[key] = {prop: _clean(sub) for prop, sub in value.items()}  # keys are names
        else:
            out[key] = _clean(value)
    return out
