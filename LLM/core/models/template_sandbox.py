"""Rendering an untrusted chat template: jinja2's immutable sandbox, tightened with limits.

Templates come from model files downloaded from anywhere; a chat template in a GGUF was a remote
code execution in llama-cpp-python (CVE-2024-34359). Rendering happens in jinja2's
``ImmutableSandboxedEnvironment`` (no ``_`` attributes, no mutation of lists and dicts), tightened here:

* attributes of functions, methods, types, modules, frames and generators are refused outright;
* no loader (``include``/``import``/``extends`` fail), no ``lipsum``; ``namespace`` refuses ``_`` names;
* every call, attribute, item, operator, filter and loop iteration ticks a per-render step budget and checks
  the wall-clock deadline of the whole probe, so no loop nest or recursion runs past ``time_budget_s``;
* nested calls (macros, recursive loops) are capped at ``MAX_CALL_DEPTH``, well before Python's own limit;
* everything that can make data grow (``*``, ``**``, ``+``, ``%``, ``~``, str methods such as ``ljust`` or
  ``replace``, filters such as ``center``, ``join`` or ``format``, printed values) is size-checked *before* it
  runs, so no single step can allocate more than ``MAX_VALUE_SIZE``; what all steps produce together is
  capped at ``MAX_PRODUCED`` per render, and the output at ``MAX_OUTPUT_CHARS``.

Hitting a limit or a sandbox refusal stops the whole probe: such a template is hostile or broken, and
``TemplateFindings.error`` says which limit.
"""

from __future__ import annotations

import json
import math
import re
import time
import types
from datetime import datetime
from typing import Any, Callable, Iterable, Iterator

from jinja2 import nodes
from jinja2.compiler import CodeGenerator, Frame, optimizeconst
from jinja2.exceptions import SecurityError, TemplateError
from jinja2.ext import Extension, loopcontrols
from jinja2.runtime import LoopContext, markup_join, str_join
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import Namespace

MAX_TEMPLATE_CHARS = 200_000  # real chat templates are under 30 KB
MAX_OUTPUT_CHARS = 1_000_000
MAX_VALUE_SIZE = 1_000_000  # characters (or items) of any one value a template builds
MAX_PRODUCED = 16_000_000  # characters all the steps of one render produce together
MAX_STEPS = 200_000  # ticks of one render; a real template's probe render takes a few hundred
MAX_CALL_DEPTH = 40
MAX_INT_BITS = 10_000
# strftime_now gives this fixed time, so two renders differ only by what a probe changes.
FIXED_NOW = datetime(2024, 7, 26, 12, 0, 0)


class TemplateLimitError(SecurityError):
    """A probe render went past a size, step, depth or time limit."""


class TemplateRaised(TemplateError):
    """The template called raise_exception: its own answer, e.g. 'System role not supported'."""


# ---------------------------------------------------------------------------------------------------------
# The sandbox.

_OPAQUE_TYPES = (types.FunctionType, types.MethodType, types.BuiltinFunctionType, types.BuiltinMethodType,
                 types.ModuleType, type, types.CodeType, types.FrameType, types.GeneratorType,
                 types.TracebackType, types.CoroutineType, types.AsyncGeneratorType)
_HUGE_WIDTH = re.compile(r"\d{7,}")  # a format width of a million or more


def _size(value: Any, limit: int = MAX_VALUE_SIZE) -> int:
    """Characters and items in value, a shared part counted each time it is referenced; past limit, any number
    above it (a cycle, or nesting deeper than any chat template's data, counts as past it)."""
    sizes: dict[int, int | None] = {}  # container id -> its size; None while it is being measured

    def measure(v: Any, depth: int) -> int:
        if isinstance(v, str):
            return len(v)
        if isinstance(v, range):
            return len(v)
        if isinstance(v, Namespace):
            v = v._Namespace__attrs  # type: ignore[attr-defined]
        if not isinstance(v, (list, tuple, dict, set, frozenset)):
            return 1
        key = id(v)
        if key in sizes:
            known = sizes[key]
            return limit + 1 if known is None else known
        if depth > 64:
            return limit + 1
        sizes[key] = None
        total = len(v)
        for item in (v.items() if isinstance(v, dict) else v):
            if total > limit:
                break
            if isinstance(item, tuple) and isinstance(v, dict):
                total += measure(item[0], depth + 1) + measure(item[1], depth + 1)
            else:
                total += measure(item, depth + 1)
        sizes[key] = total
        return total

    return measure(value, 0)


def _check(size: int, what: str) -> None:
    if size > MAX_VALUE_SIZE:
        raise TemplateLimitError(f"{what} would exceed {MAX_VALUE_SIZE} characters")


def _check_int(n: Any, what: str) -> None:
    if isinstance(n, int) and n > MAX_VALUE_SIZE:
        raise TemplateLimitError(f"{what} of {n} is too large")


def _check_format(fmt: Any) -> None:
    if isinstance(fmt, str) and _HUGE_WIDTH.search(fmt):
        raise TemplateLimitError("format width too large")


class _Budget:
    """The limits of one render; the deadline is the whole probe's."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.reset()

    def reset(self) -> None:
        self.steps = 0
        self.produced = 0
        self.depth = 0

    def tick(self) -> None:
        self.steps += 1
        if self.steps > MAX_STEPS:
            raise TemplateLimitError(f"render took more than {MAX_STEPS} steps")
        if time.perf_counter() > self.deadline:
            raise TemplateLimitError("probe time budget exhausted")

    def charge(self, amount: int) -> None:
        self.produced += amount
        if self.produced > MAX_PRODUCED:
            raise TemplateLimitError(f"render produced more than {MAX_PRODUCED} characters")

    def made(self, value: Any) -> Any:
        """Account for a value a step produced; refuse one too large to keep."""
        if isinstance(value, (str, list, tuple, dict, set, frozenset, Namespace)):
            size = _size(value)
            _check(size, "a value")
            self.charge(size)
        return value


def _raise_exception(message: Any = "") -> None:
    raise TemplateRaised(str(message)[:1000])


def _strftime_now(fmt: Any) -> str:
    if not isinstance(fmt, str) or len(fmt) > 1000:
        raise TemplateLimitError("strftime_now format too long")
    return FIXED_NOW.strftime(fmt)


class _TemplateDict:
    """``dict(...)`` for templates, without the class's attributes (as transformers gives it)."""

    def __call__(self, *args: Any, **kwargs: Any) -> dict[Any, Any]:
        return dict(*args, **kwargs)


class _ProbeNamespace(Namespace):
    """``namespace()`` that refuses ``_`` names and oversized values (Namespace hides methods, hence functions)."""

    def __init__(*args: Any, **kwargs: Any) -> None:  # noqa: N805 - Namespace's signature trick
        self, args = args[0], args[1:]
        attrs = dict(*args, **kwargs)
        for name, value in attrs.items():
            _check_namespace_item(name, value)
        Namespace.__init__(self, attrs)

    def __setitem__(self, name: str, value: Any) -> None:
        _check_namespace_item(name, value)
        Namespace.__setitem__(self, name, value)


def _check_namespace_item(name: Any, value: Any) -> None:
    if isinstance(name, str) and name.startswith("_"):
        raise SecurityError(f"namespace attribute {name!r} starts with an underscore")
    _check(_size(value), "a namespace value")


class _LoopGuard(Extension):
    """Wraps every ``for`` loop's iterable: each item ticks the budget and pays for the loop body's text."""

    def iterate(self, iterable: Iterable[Any], body_text: int = 0) -> Iterator[Any]:
        budget = self.environment.budget  # type: ignore[attr-defined]
        for item in iterable:
            budget.tick()
            budget.charge(body_text + 1)
            yield item


class _ProbeCodeGenerator(CodeGenerator):
    """Compiles loops through _LoopGuard.iterate and ``~`` through a size-checked join."""

    def visit_For(self, node: nodes.For, frame: Frame) -> None:
        body_text = sum(len(data.data) for data in node.find_all(nodes.TemplateData))
        if node.recursive:
            self.environment.recursive_text = max(  # type: ignore[attr-defined]
                self.environment.recursive_text, body_text)  # type: ignore[attr-defined]
        guard = nodes.ExtensionAttribute(_LoopGuard.identifier, "iterate", lineno=node.lineno)
        node.iter = nodes.Call(guard, [node.iter, nodes.Const(body_text)], [], None, None, lineno=node.lineno)
        super().visit_For(node, frame)

    @optimizeconst
    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        if frame.eval_ctx.volatile:
            markup = "context.eval_ctx.volatile"
        else:
            markup = "True" if frame.eval_ctx.autoescape else "False"
        self.write("environment.probe_concat((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write(f"), {markup})")


def _width_estimate(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> int:
    """An upper bound of the size a growing filter's result, from its input and arguments."""
    value = args[0] if args else None
    rest = args[1:]
    base = _size(value) + _size(rest) + _size(kwargs)
    for n in list(rest) + list(kwargs.values()):
        _check_int(n, f"{name}'s argument")
    if name == "center":
        return max(base, rest[0] if rest and isinstance(rest[0], int) else 80)
    if name == "indent":
        width = kwargs.get("width", rest[0] if rest else 4)
        width_len = width if isinstance(width, int) else _size(width)
        return base + (str(value).count("\n") + 1) * width_len
    if name == "wordwrap":
        wrap = kwargs.get("wrapstring", rest[2] if len(rest) > 2 else "\n")
        return base * (1 + _size(wrap))
    if name == "format":
        _check_format(value)
        return base
    if name == "replace" and isinstance(value, str) and len(rest) >= 2:
        old, new = str(rest[0]), str(rest[1])
        count = value.count(old) if old else len(value) + 1
        return len(value) + count * max(0, len(new) - len(old))
    if name == "join" and isinstance(value, (list, tuple)):
        sep = kwargs.get("d", rest[0] if rest else "")
        return base + len(value) * _size(sep)
    return base


def _str_method_estimate(owner: str, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> int:
    """An upper bound of the size a str method's result, from the string and the arguments."""
    base = len(owner) + _size(args) + _size(kwargs)
    for n in list(args) + list(kwargs.values()):
        _check_int(n, f"str.{method}'s argument")
    if method in ("ljust", "rjust", "center", "zfill") and args and isinstance(args[0], int):
        return max(len(owner), args[0])
    if method == "expandtabs":
        size = args[0] if args and isinstance(args[0], int) else kwargs.get("tabsize", 8)
        return len(owner) * max(1, size if isinstance(size, int) else 8)
    if method == "replace" and len(args) >= 2 and isinstance(args[0], str) and isinstance(args[1], str):
        count = owner.count(args[0]) if args[0] else len(owner) + 1
        return len(owner) + count * max(0, len(args[1]) - len(args[0]))
    if method == "join" and args and isinstance(args[0], (list, tuple)):
        return _size(args[0]) + len(args[0]) * len(owner)
    if method in ("format", "format_map"):
        _check_format(owner)
    return base


class SandboxEnvironment(ImmutableSandboxedEnvironment):
    """The sandbox of one probe: jinja2's immutable sandbox plus the bounds described in the module docstring."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})
    code_generator_class = _ProbeCodeGenerator

    def __init__(self, deadline: float) -> None:
        self.budget = _Budget(deadline)
        self.recursive_text = 0  # the largest body text of a recursive loop, charged per recursive item
        super().__init__(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols, _LoopGuard],
                         finalize=self._finalize)
        self.globals.pop("lipsum", None)
        self.globals.update(raise_exception=_raise_exception, strftime_now=_strftime_now,
                            dict=_TemplateDict(), namespace=_ProbeNamespace)
        self.filters = {name: self._guard_filter(name, f) for name, f in self.filters.items()}
        self.filters["tojson"] = self._guard_filter("tojson", _tojson)

    def render(self, compiled: Any, context: dict[str, Any]) -> str:
        self.budget.reset()
        chunks, size = [], 0
        stream = compiled.generate(**context)
        try:
            for chunk in stream:
                size += len(chunk)
                if size > MAX_OUTPUT_CHARS:
                    raise TemplateLimitError(f"output longer than {MAX_OUTPUT_CHARS} characters")
                self.budget.tick()
                chunks.append(chunk)
        finally:
            stream.close()
        return "".join(chunks)

    # What jinja2 routes through the environment: attributes, items, calls, operators, printed values.

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if isinstance(obj, _OPAQUE_TYPES):
            return False
        return super().is_safe_attribute(obj, attr, value)

    def unsafe_undefined(self, obj: Any, attribute: str) -> Any:
        # jinja2 returns an Undefined that fails only when used; a probe stops at the attempt itself.
        raise SecurityError(f"access to attribute {attribute!r} of a {type(obj).__name__!r} object is unsafe")

    def getattr(self, obj: Any, attribute: str) -> Any:
        self.budget.tick()
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        self.budget.tick()
        return self.budget.made(super().getitem(obj, argument))  # a slice is a copy

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        budget = __self.budget
        budget.tick()
        target = getattr(__obj, "__wrapped__", __obj)  # str.format comes wrapped by the sandbox
        owner = getattr(target, "__self__", None)
        if isinstance(owner, str) and isinstance(target, types.BuiltinMethodType):
            _check(_str_method_estimate(owner, target.__name__, args, kwargs), f"str.{target.__name__}")
        if isinstance(__obj, LoopContext) and args:  # a recursive loop's next level
            args = (_LoopGuard.iterate(__context.environment.extensions[_LoopGuard.identifier],
                                       args[0], __self.recursive_text),) + args[1:]
        budget.depth += 1
        try:
            if budget.depth > MAX_CALL_DEPTH:
                raise TemplateLimitError(f"calls nested deeper than {MAX_CALL_DEPTH}")
            result = super().call(__context, __obj, *args, **kwargs)
        finally:
            budget.depth -= 1
        return budget.made(result)

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        self.budget.tick()
        if operator == "**" and isinstance(left, int) and isinstance(right, int) and abs(left) > 1 and right > 0:
            if right * math.log2(abs(left)) > MAX_INT_BITS:
                raise TemplateLimitError("power too large")
        elif operator == "*":
            if isinstance(left, int) and isinstance(right, int):
                if left.bit_length() + right.bit_length() > MAX_INT_BITS:
                    raise TemplateLimitError("product too large")
            elif isinstance(right, int) and not isinstance(left, (int, float)):
                _check(_size(left) * max(right, 0), "repetition")
            elif isinstance(left, int) and not isinstance(right, (int, float)):
                _check(_size(right) * max(left, 0), "repetition")
        elif operator == "%" and isinstance(left, str):
            _check_format(left)
            _check(len(left) + _size(right), "formatting")
        elif operator == "+":
            _check(_size(left) + _size(right), "concatenation")
        return self.budget.made(super().call_binop(context, operator, left, right))

    def probe_concat(self, parts: tuple[Any, ...], markup: bool) -> str:
        self.budget.tick()
        _check(sum(_size(p) for p in parts), "concatenation")
        return self.budget.made(markup_join(parts) if markup else str_join(parts))

    def _finalize(self, value: Any) -> Any:
        self.budget.tick()
        return self.budget.made(value)

    def _guard_filter(self, name: str, f: Callable[..., Any]) -> Callable[..., Any]:
        budget = self.budget
        passes = getattr(f, "jinja_pass_arg", None)

        def guarded(*args: Any, **kwargs: Any) -> Any:
            budget.tick()
            data = args[1:] if passes is not None else args  # the context/environment goes first
            _check(_width_estimate(name, data, kwargs), f"filter {name}")
            return budget.made(f(*args, **kwargs))

        if passes is not None:
            guarded.jinja_pass_arg = passes  # type: ignore[attr-defined]
        guarded.__name__ = getattr(f, "__name__", name)
        return guarded


def _tojson(value: Any, ensure_ascii: bool = False, indent: Any = None, separators: Any = None,
            sort_keys: bool = False) -> str:
    """transformers' tojson: plain JSON (no HTML escaping), with its indent/ensure_ascii/sort_keys options."""
    width = indent if isinstance(indent, int) else _size(indent) if indent is not None else 0
    _check_int(width, "tojson's indent")
    _check(_size(value) * (8 + width), "tojson")
    return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)
