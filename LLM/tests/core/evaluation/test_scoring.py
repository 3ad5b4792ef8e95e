"""Scoring: argument rules, call validity, per-task scores (parallel, two-step, abstention) and the metrics."""

from __future__ import annotations

import json
from typing import Any

import pytest

from LLM.core.evaluation import MadeCall, TaskOutcome, parse_suite, score_task, summarize
from LLM.core.evaluation.scoring import call_problems, failed_score, rule_problem

WEATHER = {"name": "get_weather", "parameters": {
    "type": "object", "additionalProperties": False, "required": ["city"],
    "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}}}}
TIME = {"name": "get_time", "parameters": {"type": "object", "properties": {"timezone": {"type": "string"}},
                                           "required": ["timezone"]}}


def rule(raw: Any):
    """The rule as a suite line spells it, parsed the way a suite file is."""
    line = {"id": "t", "prompt": "p", "tools": [{"name": "f"}], "expect": [{"name": "f", "arguments": {"arg": raw}}]}
    return parse_suite(json.dumps(line)).tasks[0].steps[0][0].arguments["arg"]


RULES = [
    ("exact_equal", "Paris", "Paris", True),
    ("exact_other_case", "Paris", "paris", False),
    ("exact_int_equals_float", 2, 2.0, True),
    ("exact_true_is_not_1", True, 1, False),
    ("exact_nested_object", {"a": [1, {"b": None}]}, {"a": [1, {"b": None}]}, True),
    ("exact_object_with_match_key_wrapped", {"match": "exact", "value": {"match": 1}}, {"match": 1}, True),
    ("number_within_tolerance", {"match": "number", "value": 21.5, "tolerance": 0.1}, 21.58, True),
    ("number_outside_tolerance", {"match": "number", "value": 21.5, "tolerance": 0.1}, 21.7, False),
    ("number_float_noise", {"match": "number", "value": 0.3}, 0.1 + 0.2, True),
    ("number_string_is_not_a_number", {"match": "number", "value": 15}, "15", False),
    ("number_bool_is_not_a_number", {"match": "number", "value": 1}, True, False),
    ("icase_other_case_and_spaces", {"match": "icase", "value": "Paris"}, "  PARIS ", True),
    ("icase_one_of_values", {"match": "icase", "values": ["Spanish", "es"]}, "ES", True),
    ("icase_substring_is_not_enough", {"match": "icase", "value": "Paris"}, "Paris, France", False),
    ("one_of_hit", {"match": "one_of", "values": ["window", "aisle"]}, "aisle", True),
    ("one_of_is_case_sensitive", {"match": "one_of", "values": ["window"]}, "Window", False),
    ("contains_substring_any_case", {"match": "contains", "value": "tokyo"}, "Asia/Tokyo", True),
    ("contains_every_value", {"match": "contains", "values": ["37", "43"]}, "37 * 43", True),
    ("contains_missing_one", {"match": "contains", "values": ["37", "43"]}, "37 * 42", False),
    ("contains_array_element", {"match": "contains", "value": "MILK"}, ["eggs", "milk"], True),
    ("contains_number_is_neither", {"match": "contains", "value": "1"}, 1, False),
    ("any_value", {"match": "any"}, None, True),
    ("object_fields_others_ignored", {"match": "object", "fields": {"city": {"match": "icase", "value": "oslo"}}},
     {"city": "Oslo", "zip": "0150"}, True),
    ("object_field_wrong", {"match": "object", "fields": {"city": "Oslo"}}, {"city": "Bergen"}, False),
    ("object_not_an_object", {"match": "object", "fields": {"city": "Oslo"}}, "Oslo", False),
    ("array_any_order", {"match": "array", "items": [{"match": "icase", "value": "milk"}, "eggs"]},
     ["eggs", "Milk"], True),
    ("array_extra_element", {"match": "array", "items": ["milk", "eggs"]}, ["milk", "eggs", "eggs"], False),
    ("array_duplicate_cannot_fill_two_slots", {"match": "array", "items": ["milk", "eggs"]}, ["milk", "milk"], False),
    ("array_ordered_wrong_order", {"match": "array", "ordered": True, "items": ["a", "b"]}, ["b", "a"], False),
    ("array_ordered_right_order", {"match": "array", "ordered": True, "items": ["a", "b"]}, ["a", "b"], True),
]


@pytest.mark.parametrize("raw, value, passes", [r[1:] for r in RULES], ids=[r[0] for r in RULES])
def test_scoring_rule_matches(raw: Any, value: Any, passes: bool):
    problem = rule_problem(rule(raw), True, value, "arg")
    assert (problem is None) == passes, problem


PRESENCE = [
    ("missing_required", {"match": "any"}, False, "arg: missing (expected any)"),
    ("missing_optional", {"match": "icase", "value": "x", "optional": True}, False, None),
    ("optional_given_must_match", {"match": "icase", "value": "x", "optional": True}, True,
     'arg: expected "x" (any case), got "y"'),
    ("absent_not_given", {"match": "absent"}, False, None),
    ("absent_given", {"match": "absent"}, True, 'arg: should not be given, got "y"'),
]


@pytest.mark.parametrize("raw, present, problem", [p[1:] for p in PRESENCE], ids=[p[0] for p in PRESENCE])
def test_scoring_rule_presence(raw: Any, present: bool, problem: str | None):
    assert rule_problem(rule(raw), present, "y" if present else None, "arg") == problem


def task(expect: list, then: list | None = None, tools: tuple = (WEATHER, TIME)):
    line: dict[str, Any] = {"id": "t", "prompt": "p", "tools": list(tools), "expect": expect}
    if then is not None:
        line["then"] = then
    return parse_suite(json.dumps(line)).tasks[0]


# The schema subset itself is tools/json_schema's (tested there); these pin how a call is judged with it.
VALIDITY = [
    ("valid", MadeCall("get_weather", {"city": "Oslo", "unit": "celsius"}), []),
    ("wrong_type", MadeCall("get_weather", {"city": 42}), ["city: expected a string, got 42"]),
    ("required_missing", MadeCall("get_weather", {"unit": "celsius"}), ["city: required, but missing"]),
    ("unknown_argument", MadeCall("get_weather", {"city": "Oslo", "country": "NO"}),
     ["unknown argument 'country' (expected: city, unit)"]),
    ("extra_allowed_by_default", MadeCall("get_time", {"timezone": "UTC", "x": 1}), []),
    ("tool_not_offered", MadeCall("search", {}), ["'search' is not one of the offered tools (get_weather, get_time)"]),
    ("native_arguments_not_an_object", MadeCall("get_time", {}, "native", "[1, 2]"),
     ["arguments are not a JSON object: [1, 2]"]),
]


@pytest.mark.parametrize("made, problems", [v[1:] for v in VALIDITY], ids=[v[0] for v in VALIDITY])
def test_scoring_call_validity_against_the_schema(made: MadeCall, problems: list[str]):
    assert call_problems(made, task([])) == problems


def call(name: str, **arguments: Any) -> MadeCall:
    return MadeCall(name, arguments)


def expected(name: str, **arguments: Any) -> dict:
    return {"name": name, "arguments": arguments}


CITY = {"match": "icase", "value": "london"}
PARALLEL = [expected("get_weather", city=CITY), expected("get_weather", city={"match": "icase", "value": "madrid"})]
# (valid_call, tool_match, arguments_match, abstained)
TASKS = [
    ("single_right", [expected("get_weather", city=CITY)], None, [[call("get_weather", city="London")]],
     (True, True, True, None), []),
    ("single_wrong_argument", [expected("get_weather", city=CITY)], None, [[call("get_weather", city="Paris")]],
     (True, True, False, None), ['get_weather: city: expected "london" (any case), got "Paris"']),
    ("single_wrong_tool", [expected("get_weather", city=CITY)], None, [[call("get_time", timezone="UTC")]],
     (True, False, False, None), ['called get_time({"timezone": "UTC"}) (expected get_weather)']),
    ("single_no_call", [expected("get_weather", city=CITY)], None, [[]],
     (False, False, False, None), ["no call (expected get_weather)"]),
    ("invalid_but_right_name_and_rule", [expected("get_weather", city=CITY)], None,
     [[call("get_weather", city="London", unit="kelvin")]], (False, True, True, None),
     ['invalid call get_weather({"city": "London", "unit": "kelvin"}): unit: must be one of "celsius", '
      '"fahrenheit", got "kelvin"']),
    ("unknown_tool_is_invalid", [expected("get_weather", city=CITY)], None, [[call("search", q="x")]],
     (False, False, False, None), None),
    ("native_arguments_not_an_object", [expected("get_weather", city=CITY)], None,
     [[MadeCall("get_weather", {}, "native", "[1, 2]")]], (False, True, False, None), None),
    ("parallel_any_order", PARALLEL, None,
     [[call("get_weather", city="Madrid"), call("get_weather", city="London")]], (True, True, True, None), []),
    ("parallel_one_missing", PARALLEL, None, [[call("get_weather", city="London")]], (True, False, False, None),
     None),
    ("parallel_duplicate_call", PARALLEL, None,
     [[call("get_weather", city="London"), call("get_weather", city="London")]], (True, True, False, None),
     ['get_weather: city: expected "madrid" (any case), got "London"']),
    ("parallel_extra_call", PARALLEL, None,
     [[call("get_weather", city="London"), call("get_weather", city="Madrid"), call("get_time", timezone="x")]],
     (True, False, False, None), None),
    ("two_step_right", [expected("get_time", timezone="UTC")], [expected("get_weather", city=CITY)],
     [[call("get_time", timezone="UTC")], [call("get_weather", city="london")]], (True, True, True, None), []),
    ("two_step_second_missing", [expected("get_time", timezone="UTC")], [expected("get_weather", city=CITY)],
     [[call("get_time", timezone="UTC")]], (True, False, False, None), ["step 2: no call (expected get_weather)"]),
    ("two_step_first_wrong_ends_scoring", [expected("get_time", timezone="UTC")],
     [expected("get_weather", city=CITY)],
     [[call("get_time", timezone="CET")], [call("get_weather", city="Oslo")]], (True, True, False, None),
     ['step 1: get_time: timezone: expected "UTC", got "CET"']),
    ("abstain_right", [], None, [[]], (None, None, None, True), []),
    ("abstain_called", [], None, [[call("get_weather", city="x")]], (None, None, None, False),
     ['called get_weather({"city": "x"}) though no tool should be called']),
]


@pytest.mark.parametrize("expect, then, made, flags, problems", [t[1:] for t in TASKS], ids=[t[0] for t in TASKS])
def test_scoring_task(expect, then, made, flags, problems):
    score = score_task(task(expect, then), made)
    assert (score.valid_call, score.tool_match, score.arguments_match, score.abstained) == flags
    if problems is not None:
        assert list(score.problems) == problems
    assert score.passed == (flags == (True, True, True, None) or flags[3] is True)


def test_scoring_no_call_reports_what_the_model_said():
    score = score_task(task([expected("get_weather", city=CITY)]), [[]], ["It is   sunny\nin London."])
    assert score.problems == ("no call (expected get_weather); answered 'It is sunny in London.'",)


def test_scoring_summary_metrics_and_empty_kinds():
    call_task, abstain_task = task([expected("get_weather", city=CITY)]), task([])
    outcomes = [
        TaskOutcome("m", call_task, score_task(call_task, [[call("get_weather", city="London")]]), latency_ms=30),
        TaskOutcome("m", call_task, score_task(call_task, [[call("get_weather", city="Paris")]]), latency_ms=10),
        TaskOutcome("m", call_task, score_task(call_task, [[call("get_time", timezone="x")]]), latency_ms=20),
        TaskOutcome("m", call_task, failed_score(call_task, "error: boom"), latency_ms=40, error="boom"),
        TaskOutcome("m", abstain_task, score_task(abstain_task, [[]]), latency_ms=50, notices=["n: once"]),
        TaskOutcome("m", abstain_task, failed_score(abstain_task, "error: boom"), latency_ms=60, error="boom",
                    notices=["n: once"]),
    ]
    summary = summarize("m", outcomes)
    assert (summary.tasks, summary.call_tasks, summary.abstention_tasks) == (6, 4, 2)
    assert summary.to_dict() == {"tasks": 6, "valid_call_rate": 0.75, "tool_accuracy": 0.5,
                                 "argument_accuracy": 0.25, "abstention_accuracy": 0.5, "median_latency_ms": 35.0}
    assert summary.notes == ("n: once",)
    only_calls = summarize("m", outcomes[:1])
    assert only_calls.abstention_accuracy is None and only_calls.valid_call_rate == 1.0
    assert summarize("m", []).median_latency_ms is None


def test_scoring_catastrophic_pattern_is_an_invalid_call_not_a_hang():
    """Regression (#19 item 8): scoring checked a tool's ``pattern`` with an unbounded in-process regex, so a
    catastrophic one stalled the eval (and the window's event loop) for minutes; the check is now stopped at its
    deadline and the call judged invalid, saying why."""
    from LLM.tests.core.tools.test_safe_regex import within_deadline

    greet = {"name": "greet", "parameters": {"type": "object", "required": ["who"],
                                             "properties": {"who": {"type": "string", "pattern": r"^(\w+\s?)*$"}}}}
    scored = task([expected("greet", who={"match": "any"})], tools=(greet,))
    score = within_deadline(score_task, scored, [[call("greet", who="a" * 30 + "!")]])
    assert score.valid_call is False and score.tool_match is True
    (problem,) = score.problems
    assert problem.startswith('invalid call greet({"who": "aaaa') and "took longer than" in problem
    assert score_task(scored, [[call("greet", who="Ada Lovelace")]]).passed
