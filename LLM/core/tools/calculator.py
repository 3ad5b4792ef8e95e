"""The calculator: arithmetic evaluated by walking the AST (no eval), with bounds on what it may build."""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable
from typing import Any


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
# Our own limit, so every Python refuses the same expressions with the same words (3.13's parser and
# stack take "-" * 990 + "1", older ones ran out of recursion); a chain such as 1 + 2 + ... + 400 is flat.
MAX_NESTING = 100
# Python refuses to print ints over 4300 digits; stop well before building one.
MAX_INT_BITS = 14_000


def calculate(expression: str) -> str:
    """Evaluate arithmetic by walking the AST; raises ValueError with a readable reason."""
    if len(expression) > MAX_EXPRESSION_CHARS:
        raise ValueError(f"expression is longer than {MAX_EXPRESSION_CHARS} characters")
    too_deep = f"expression is nested too deeply (more than {MAX_NESTING} levels)"
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError as exc:
        raise ValueError(f"invalid expression: {exc.msg}") from None
    except (RecursionError, MemoryError):  # a parser's own limit, on Pythons that have a lower one
        raise ValueError(too_deep) from None
    try:
        value = _eval(tree.body, 0)
    except ZeroDivisionError:
        raise ValueError("division by zero") from None
    except OverflowError:
        raise ValueError("result too large") from None
    except (_TooDeep, RecursionError):  # RecursionError: a caller already deep in its stack
        raise ValueError(too_deep) from None
    return _format_number(value)


class _TooDeep(Exception):
    pass


def _eval(node: ast.AST, depth: int) -> int | float:
    if depth > MAX_NESTING:
        raise _TooDeep
    depth += 1
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
            raise ValueError(f"only numbers are allowed, not {node.value!r}")
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY_OPS:
        # A left-leaning chain (1 + 2 + 3 ...) is walked in a loop: it is long, not nested.
        chain = [node]
        while isinstance(chain[-1].left, ast.BinOp) and type(chain[-1].left.op) in _BINARY_OPS:
            chain.append(chain[-1].left)
        value = _eval(chain[-1].left, depth)
        for link in reversed(chain):
            value = _apply(link.op, value, _eval(link.right, depth))
        return value
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY_OPS:
        return _UNARY_OPS[type(node.op)](_eval(node.operand, depth))
    if isinstance(node, ast.Name):
        if node.id in _CONSTANTS:
            return _CONSTANTS[node.id]
        raise ValueError(f"name '{node.id}' is not allowed (constants: {', '.join(_CONSTANTS)})")
    if isinstance(node, ast.Call):
        return _call(node, depth)
    if isinstance(node, ast.Attribute):
        raise ValueError("attribute access is not allowed")
    raise ValueError(f"unsupported syntax: {type(node).__name__}")


def _apply(op: ast.operator, left: int | float, right: int | float) -> int | float:
    if isinstance(op, ast.Pow):
        _check_power(left, right)
    return _check_size(_BINARY_OPS[type(op)](left, right))


def _call(node: ast.Call, depth: int) -> int | float:
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
    args = [_eval(arg, depth) for arg in node.args]
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
