"""BFCL's AST checker for Python single-turn categories: decoded calls vs. possible answers (pure).

A faithful re-implementation of ``bfcl_eval/eval_checker/ast_eval/ast_checker.py`` (its Python
branch) and of how ``eval_runner.py`` scores decoder failures and (ir)relevance: the same rules, the
same error types, the same messages (the two small exceptions say so where they are). Where BFCL's rules look odd (``""`` standing in for an empty list,
a value of the possible answer's type passing as a "variable") they are kept, since the point is a
score comparable with the leaderboard's.

Shapes, as BFCL's decoder writes them: ``calls`` is ``[{"math.factorial": {"number": 5}}, ...]`` with
BFCL's original names; ``ground_truth`` is ``[{"math.factorial": {"number": [5, ""]}}, ...]``, each
argument a list of accepted values, ``""`` meaning it may be omitted.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# BFCL's PYTHON_TYPE_MAPPING; checks use ``type(x) == t``, so True is not an int.
PYTHON_TYPES: dict[str, type] = {
    "string": str, "integer": int, "float": float, "boolean": bool,
    "array": list, "tuple": list, "dict": dict, "any": str,
}
NESTED_TYPES = ("array", "tuple")  # whose items are type-checked too (one level deep, as in BFCL)

_PUNCTUATION = re.compile(r"[ ,./\-_*^]")


@dataclass(frozen=True)
class Verdict:
    """A checker's answer: valid, or BFCL's error type and messages."""

    valid: bool
    error_type: str = ""
    errors: tuple[str, ...] = ()

    @property
    def reason(self) -> str:
        return "" if self.valid else "; ".join(self.errors)


VALID = Verdict(True)


def _fail(error_type: str, *errors: str) -> Verdict:
    return Verdict(False, error_type, errors)


def decoder_failure(detail: str) -> Verdict:
    """What BFCL gives an output it cannot decode into calls (e.g. arguments that are not JSON)."""
    return _fail("ast_decoder:decoder_failed", f"Invalid syntax. Failed to decode AST. {detail}")


def no_call_verdict() -> Verdict:
    """What BFCL gives a function-calling model that answered in text where a call was expected.

    With no tool calls BFCL's OpenAI handler keeps the reply's text, and its ``decode_ast`` fails on it
    (BFCL's message ends in "'str' object has no attribute 'keys'"): a decoder failure, not a wrong
    format. A reply with no text at all decodes to ``[]``; ``check_ast`` with no calls scores that one
    (a ``wrong_count``).
    """
    return decoder_failure("The model replied in text and made no function call.")


def check_relevance(category: str, calls: Sequence[Mapping[str, Any]]) -> Verdict:
    """Irrelevance categories pass when no call was made; any other (live_relevance) when one was.

    Pass ``[]`` when the output could not be decoded: BFCL counts a decoder failure as no call.
    """
    made_call = _is_call_format(calls) and len(calls) > 0
    if "irrelevance" in category:
        if not made_call:
            return VALID
        return _fail("irrelevance_error:decoder_success", "Valid syntax. Successfully decode AST when it should not.")
    if made_call:
        return VALID
    # BFCL appends the decoder's exception here, "None" when the output decoded to no call.
    return _fail("relevance_error:decoder_failed", "Invalid syntax. Failed to decode AST when it should have.")


def check_ast(category: str, functions: Sequence[Mapping[str, Any]], calls: Sequence[Mapping[str, Any]],
              ground_truth: Sequence[Mapping[str, Any]]) -> Verdict:
    """The model's decoded calls against the possible answers, by the checker BFCL picks for ``category``."""
    if not _is_call_format(calls):
        return _fail("ast_decoder:decoder_wrong_output_format",
                     "Did not output in the specified format. Note: the model_result is wrapped in a string "
                     "to ensure json serializability.")
    if "parallel" in category:
        return _parallel_no_order(functions, calls, ground_truth)
    if "multiple" in category:
        if len(calls) != len(ground_truth):
            return _fail("multiple_function_checker:wrong_count", "Wrong number of functions.")
        return _simple(_find(functions, ground_truth[0]), calls[0], ground_truth[0])
    if len(calls) != 1:
        return _fail("simple_function_checker:wrong_count", "Wrong number of functions.")
    return _simple(functions[0], calls[0], ground_truth[0])  # BFCL checks the first doc, whatever its name


def _is_call_format(calls: Any) -> bool:
    """BFCL's is_function_calling_format_output: a list of ``{name: {arg: value}}``."""
    return isinstance(calls, (list, tuple)) and all(
        type(c) is dict and len(c) == 1 and type(next(iter(c.values()))) is dict for c in calls)


def _find(functions: Sequence[Mapping[str, Any]], answer: Mapping[str, Any]) -> Mapping[str, Any]:
    name = next(iter(answer))
    for doc in functions:
        if doc["name"] == name:
            return doc
    raise ValueError(f"the ground truth names {name!r}, which is not among the task's functions")


def _parallel_no_order(functions: Sequence[Mapping[str, Any]], calls: Sequence[Mapping[str, Any]],
                       ground_truth: Sequence[Mapping[str, Any]]) -> Verdict:
    """Each possible answer, in order, takes the first unmatched call that passes against it."""
    if len(calls) != len(ground_truth):
        return _fail("parallel_function_checker_no_order:wrong_count", "Wrong number of functions.")
    matched: set[int] = set()
    for i, answer in enumerate(ground_truth):
        doc = _find(functions, answer)
        errors = []
        for index, call in enumerate(calls):
            if index in matched:
                continue
            verdict = _simple(doc, call, answer)
            if verdict.valid:
                matched.add(index)
                break
            # BFCL nests these as dicts; one line each keeps Verdict.errors a tuple of strings.
            errors.append(f"Model Result Index {index}: {verdict.error_type}: {verdict.reason}")
        else:
            considered = [j for j in range(len(calls)) if j not in matched]
            return _fail("parallel_function_checker_no_order:cannot_find_match",
                         f"Could not find a matching function among index {considered} of model output "
                         f"for index {i} of possible answers.", *errors)
    return VALID


def _simple(doc: Mapping[str, Any], call: Mapping[str, Any], answer: Mapping[str, Any]) -> Verdict:
    """BFCL's simple_function_checker, Python branch: one call against one possible answer."""
    possible = next(iter(answer.values()))
    name = doc["name"]
    properties = doc["parameters"]["properties"]
    if name not in call:
        return _fail("simple_function_checker:wrong_func_name", f"Function name {name!r} not found in model output.")
    arguments = call[name]
    for param in doc["parameters"].get("required", []):
        if param not in arguments:
            return _fail("simple_function_checker:missing_required", f"Missing required parameter: {param!r}.")

    for param, value in arguments.items():
        if param not in properties or param not in possible:
            return _fail("simple_function_checker:unexpected_param", f"Unexpected parameter: {param!r}.")
        declared = properties[param].get("type")
        expected = _python_type(param, declared)
        nested = None
        if declared in NESTED_TYPES:
            nested = _python_type(param, (properties[param].get("items") or {}).get("type"))
        if declared == "tuple" and type(value) is tuple:
            value = list(value)  # JSON round trips turn the possible answers' tuples into lists
        if declared == "float" and type(value) is int:
            value = float(value)  # Python would convert an int argument silently
        verdict, is_variable = _type_check(param, value, possible[param], declared, expected, nested)
        if not verdict.valid:
            return verdict
        # A "variable" (a value of the possible answer's type, not the declared one) skips the
        # structured checks and is compared as it is.
        if is_variable:
            verdict = _others_check(param, value, possible[param])
        elif expected is dict:
            verdict = _dict_check(value, possible[param])
        elif expected is list and nested is dict:
            verdict = _list_dict_check(value, possible[param])
        elif expected is str:
            verdict = _string_check(param, value, possible[param])
        elif expected is list:
            verdict = _list_check(param, value, possible[param])
        else:
            verdict = _others_check(param, value, possible[param])
        if not verdict.valid:
            return verdict

    for param, accepted in possible.items():
        if param not in arguments and "" not in accepted:
            return _fail("simple_function_checker:missing_optional",
                         f"Optional parameter {param!r} not provided and not marked as optional.")
    return VALID


def _python_type(param: str, declared: Any) -> type:
    # BFCL raises a KeyError here; we say which parameter is at fault.
    if not isinstance(declared, str) or declared not in PYTHON_TYPES:
        raise ValueError(f"parameter {param!r} has type {declared!r}, which BFCL's Python checker does not know")
    return PYTHON_TYPES[declared]


def _answer_type(accepted: Sequence[Any]) -> type | None:
    """The type of the first accepted value that is not the ``""`` marking an optional parameter."""
    return next((type(a) for a in accepted if a != ""), None)


def _type_check(param: str, value: Any, accepted: Sequence[Any], declared: str, expected: type,
                nested: type | None) -> tuple[Verdict, bool]:
    """BFCL's type_checker: (verdict, is_variable). Kept branch for branch, quirks included."""
    answer_type = _answer_type(accepted)
    is_variable = answer_type is not None and answer_type != expected
    errors: list[str] = []
    if type(value) == expected:  # noqa: E721 - exact type, as BFCL: a bool is not an int
        if nested is None:
            return VALID, is_variable
        for item_answers in accepted:
            # An accepted value that is not a list (the "" of an optional one) passes unchecked, as in BFCL.
            if type(item_answers) is not list or all(
                    _type_check(param, item, item_answers, nested.__name__, nested, None)[0].valid for item in value):
                return VALID, is_variable
        errors.append(f"Nested type checking failed for parameter {param!r}. Expected outer type {declared} "
                      f"with inner type {nested}. Parameter value: {value!r}.")
        # BFCL then goes on to the variable test below, which returns this nested failure as is.
        if answer_type is not None and type(value) == answer_type:  # noqa: E721
            return _fail("type_error:nested", *errors), True
    elif answer_type is not None and type(value) == answer_type:  # noqa: E721
        return VALID, True
    errors.append(f"Incorrect type for parameter {param!r}. Expected type {declared}, got {type(value).__name__}. "
                  f"Parameter value: {value!r}.")
    return _fail("type_error:simple", *errors), is_variable


def standardize(text: str) -> str:
    """BFCL's standardize_string: no spaces or ``,./-_*^``, lower case, single quotes made double."""
    return _PUNCTUATION.sub("", text).lower().replace("'", '"')


def _std(value: Any) -> Any:
    return standardize(value) if type(value) is str else value


def _string_check(param: str, value: str, accepted: Sequence[Any]) -> Verdict:
    if standardize(value) in [standardize(a) for a in accepted if type(a) is str]:
        return VALID
    return _fail("value_error:string", f"Invalid value for parameter {param!r}: {value!r}. "
                                       f"Expected one of {list(accepted)}. Case insensitive.")


def _list_check(param: str, value: list[Any], accepted: Sequence[Any]) -> Verdict:
    """Order matters; only the list's own strings are standardized. BFCL iterates each accepted value,
    so the ``""`` of an optional parameter reads as an empty list."""
    candidates = [[_std(x) for x in a] for a in accepted if isinstance(a, (list, tuple, str))]
    if [_std(x) for x in value] in candidates:
        return VALID
    return _fail("value_error:list/tuple",
                 f"Invalid value for parameter {param!r}: {value!r}. Expected one of {list(accepted)}.")


def _others_check(param: str, value: Any, accepted: Sequence[Any]) -> Verdict:
    if value in accepted:  # Python equality, as in BFCL: 1 == 1.0 == True
        return VALID
    return _fail("value_error:others",
                 f"Invalid value for parameter {param!r}: {value!r}. Expected one of {list(accepted)}.")


def _dict_check(value: Any, accepted: Sequence[Any]) -> Verdict:
    """The dict against each accepted dict in turn; passes on the first that fits, else the last one's error."""
    if type(value) is not dict:  # BFCL raises here (a list-of-dicts item that is not a dict)
        return _fail("type_error:nested", f"Expected a dict, got {type(value).__name__}. Parameter value: {value!r}.")
    verdict = _fail("dict_checker:unclear")
    for answer in accepted:
        if type(answer) is not dict:  # the "" of an optional dict (anything else would crash BFCL)
            continue
        errors: list[str] = []
        error_type = "dict_checker:unclear"
        for key, item in value.items():
            if key not in answer:
                errors.append(f"Unexpected dict key parameter: '{key}'.")
                error_type = "value_error:dict_key"
                break
            allowed = [_std(a) for a in answer[key]]
            if _std(item) not in allowed:
                errors.append(f"Invalid value for parameter {key!r}: {item!r}. Expected one of {allowed}.")
                error_type = "value_error:dict_value"
                break
        # BFCL looks for missing keys even after an error above, and the last error's type wins.
        for key, allowed_values in answer.items():
            if key not in value and "" not in allowed_values:
                errors.append(f"Missing dict key parameter: '{key}'.")
                error_type = "value_error:dict_key"
                break
        if not errors:
            return VALID
        verdict = _fail(error_type, *errors)
    return verdict


def _list_dict_check(value: list[Any], accepted: Sequence[Any]) -> Verdict:
    """A list of dicts, in order, against each accepted list in turn (``""`` counts as an empty list)."""
    verdict = _fail("list_dict_checker:unclear")
    for answer in accepted:
        if len(answer) != len(value):
            verdict = _fail("value_error:list_dict_count", "Wrong number of dictionaries in the list.")
            continue
        for item, item_answer in zip(value, answer):
            verdict = _dict_check(item, [item_answer])
            if not verdict.valid:
                break
        else:
            return VALID
    return verdict
