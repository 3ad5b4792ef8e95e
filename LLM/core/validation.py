"""pydantic ValidationError -> one readable problem per field (pure; the only place that reads ``exc.errors()``).

Config loading, request parameters, tool arguments and the HF server's request bodies all report
validation problems through this, each in its own sentence shape, so a message always names the
key and says what was wrong (and what was given, when that helps).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

_NOISE = ("Value error, ", "Assertion failed, ")
# Union validation adds the member it tried to the location ("literal['session','forever']", "float").
_MEMBER_TAGS = frozenset({"float", "int", "str", "bool", "list", "dict", "none"})


@dataclass(frozen=True)
class FieldProblem:
    path: str  # dotted location of the field, "" for the object as a whole
    message: str  # what is wrong; ends with ", got <input>" where the input tells more

    def joined(self, prefix: str) -> str:
        """``prefix.path: message`` (or ``prefix: message`` for the whole object)."""
        where = ".".join(p for p in (prefix, self.path) if p)
        return f"{where}: {self.message}" if where else self.message


def field_problems(exc: ValidationError, *, max_input_chars: int = 200) -> list[FieldProblem]:
    return [_problem(err, max_input_chars) for err in exc.errors()]


def _problem(err: Any, max_input_chars: int) -> FieldProblem:
    loc = [str(part) for part in err.get("loc", ())]
    loc = [part for part in loc if not _is_member_tag(part)]
    message = str(err.get("msg", "invalid value"))
    for noise in _NOISE:
        message = message.replace(noise, "")
    kind = err.get("type")
    if kind not in ("value_error", "assertion_error", "missing") and "input" in err:
        shown = repr(err["input"])
        if len(shown) > max_input_chars:
            shown = shown[: max_input_chars - 3] + "..."
        message += f", got {shown}"
    return FieldProblem(".".join(loc), message)


def _is_member_tag(part: str) -> bool:
    return part.startswith(("function-", "literal[")) or part in _MEMBER_TAGS
