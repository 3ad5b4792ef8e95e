"""Eval suite files: JSONL text -> tasks, and every bad line named by its line number and key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from LLM.core.errors import ConfigError
from LLM.core.evaluation import ArgRule, SuiteError, default_suite_path, load_suite, parse_suite

WEATHER = {"tool": {"name": "get_weather", "description": "Weather for a city.", "result": "sunny",
                    "parameters": {"type": "object", "properties": {"city": {"type": "string"},
                                                                    "unit": {"type": "string"}},
                                   "required": ["city"]}}}
TASK = {"id": "paris", "prompt": "Weather in Paris?", "tools": ["get_weather"],
        "expect": [{"name": "get_weather", "arguments": {"city": {"match": "icase", "value": "paris"}}}]}


def lines(*objects: object) -> str:
    return "\n".join(o if isinstance(o, str) else json.dumps(o) for o in objects) + "\n"


def with_task(**changes: object) -> str:
    task = {**TASK, **changes}
    return lines(WEATHER, {k: v for k, v in task.items() if v is not None})


def with_rule(rule: object) -> str:
    return with_task(expect=[{"name": "get_weather", "arguments": {"city": rule}}])


def test_suite_parses_tools_tasks_rules_and_skips_comments():
    text = lines("# a comment", "", "// another", WEATHER, TASK,
                 {"id": "chat", "prompt": "Hi", "tools": ["get_weather"], "expect": [], "category": "abstain"})
    suite = parse_suite(text, source="mine.jsonl")
    assert suite.name == "mine" and [t.id for t in suite.tasks] == ["paris", "chat"]
    paris, chat = suite.tasks
    assert paris.line == 5 and paris.expects_call and not chat.expects_call and chat.category == "abstain"
    assert paris.tools[0].result == "sunny" and paris.tools[0].to_openai()["function"]["name"] == "get_weather"
    assert paris.steps[0][0].arguments == {"city": ArgRule("icase", value="paris")}
    assert chat.steps == ((),)


def test_suite_two_step_task_inline_tool_results_and_rule_kinds():
    inline = {"name": "get_user", "parameters": {"type": "object", "properties": {"username": {"type": "string"}}}}
    task = {"id": "two", "prompt": "p", "tools": [inline, "get_weather"],
            "results": {"get_user": "{\"city\": \"Lyon\"}"},
            "expect": [{"name": "get_user", "arguments": {"username": "jdoe"}}],
            "then": [{"name": "get_weather", "arguments": {
                "city": {"match": "one_of", "values": ["Lyon", "lyon"]},
                "unit": {"match": "absent"}}}]}
    suite = parse_suite(lines(TASK, WEATHER, task))  # a task may name a tool declared below it
    two = suite.tasks[1]
    assert len(two.steps) == 2 and two.results == {"get_user": '{"city": "Lyon"}'}
    assert two.tools[0].result == "ok" and two.steps[0][0].arguments["username"] == ArgRule("exact", value="jdoe")
    assert two.steps[1][0].arguments["unit"].kind == "absent"


def test_suite_nested_object_and_array_rules():
    rule = {"match": "object", "fields": {"street": {"match": "contains", "value": "Oak"},
                                          "tags": {"match": "array", "ordered": True, "items": ["a", {"match": "any"}]}}}
    suite = parse_suite(with_rule(rule))
    parsed = suite.tasks[0].steps[0][0].arguments["city"]
    assert parsed.kind == "object" and parsed.fields["street"] == ArgRule("contains", value="Oak")
    assert parsed.fields["tags"].ordered and [r.kind for r in parsed.fields["tags"].items] == ["exact", "any"]


BAD = [
    ("not_json", lines(WEATHER, "{nope"), 2, None, "not valid JSON"),
    ("not_an_object", lines(WEATHER, "[1, 2]"), 2, None, "must be a JSON object, got an array"),
    ("neither_tool_nor_task", lines(WEATHER, {"prompt": "x"}), 2, None, "a line must be a tool"),
    ("tool_line_extra_key", lines({**WEATHER, "extra": 1}), 1, "extra", "unknown key on a tool line"),
    ("tool_bad_name", lines({"tool": {"name": "get weather"}}), 1, "tool.name", "letters, digits"),
    ("tool_unknown_key", lines({"tool": {"name": "t", "schema": {}}}), 1, "tool.schema", "unknown key"),
    ("tool_schema_not_object", lines({"tool": {"name": "t", "parameters": {"type": "string"}}}), 1,
     "tool.parameters.type", 'must be "object"'),
    ("tool_schema_keyword_typo", lines({"tool": {"name": "t", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}, "requried": ["city"]}}}), 1,
     "tool.parameters.requried", "did you mean 'required'?"),
    ("tool_schema_nested_problem", lines({"tool": {"name": "t", "parameters": {
        "type": "object", "properties": {"city": {"type": "strng"}}}}}), 1,
     "tool.parameters.properties.city.type", 'did you mean "string"?'),
    ("tool_result_not_text", lines({"tool": {"name": "t", "result": 3}}), 1, "tool.result", "must be a string"),
    ("tool_declared_twice", lines(WEATHER, WEATHER, TASK), 2, "tool.name", "declared twice"),
    ("task_unknown_key", with_task(expected=[]), 2, "expected", "unknown key"),
    ("task_empty_prompt", with_task(prompt=" "), 2, "prompt", "non-empty string"),
    ("task_id_not_text", with_task(id=7), 2, "id", "non-empty string"),
    ("task_without_tools", with_task(tools=[]), 2, "tools", "non-empty list"),
    ("task_unknown_tool", with_task(tools=["get_weather", "nope"]), 2, "tools[1]", "unknown tool 'nope'"),
    ("task_tool_offered_twice", with_task(tools=["get_weather", "get_weather"]), 2, "tools[1]", "offered twice"),
    ("task_without_expect", with_task(expect=None), 2, "expect", "required"),
    ("expect_not_a_list", with_task(expect={"name": "get_weather"}), 2, "expect", "must be a list"),
    ("expect_tool_not_offered", with_task(expect=[{"name": "calculator"}]), 2, "expect[0].name",
     "not one of the task's tools"),
    ("expect_unknown_argument", with_task(expect=[{"name": "get_weather", "arguments": {"town": "x"}}]), 2,
     "expect[0].arguments.town", "no such argument"),
    ("expect_call_unknown_key", with_task(expect=[{"name": "get_weather", "args": {}}]), 2, "expect[0].args",
     "unknown key"),
    ("rule_unknown_match", with_rule({"match": "fuzzy"}), 2, "expect[0].arguments.city.match", "unknown match"),
    ("rule_key_of_another_kind", with_rule({"match": "exact", "value": 1, "tolerance": 2}), 2,
     "expect[0].arguments.city.tolerance", "not a key of the 'exact' rule"),
    ("rule_number_not_a_number", with_rule({"match": "number", "value": "3"}), 2,
     "expect[0].arguments.city.value", "must be a number"),
    ("rule_negative_tolerance", with_rule({"match": "number", "value": 3, "tolerance": -1}), 2,
     "expect[0].arguments.city.tolerance", ">= 0"),
    ("rule_icase_not_text", with_rule({"match": "icase", "value": 3}), 2, "expect[0].arguments.city.value",
     "must be a string"),
    ("rule_icase_both_value_and_values", with_rule({"match": "icase", "value": "a", "values": ["b"]}), 2,
     "expect[0].arguments.city", "either 'value' or 'values'"),
    ("rule_one_of_empty", with_rule({"match": "one_of", "values": []}), 2, "expect[0].arguments.city.values",
     "non-empty list"),
    ("rule_nested_problem_names_the_path",
     with_rule({"match": "object", "fields": {"zip": {"match": "number", "value": None}}}), 2,
     "expect[0].arguments.city.fields.zip.value", "must be a number"),
    ("rule_array_without_items", with_rule({"match": "array"}), 2, "expect[0].arguments.city.items", "required"),
    ("rule_optional_not_bool", with_rule({"match": "any", "optional": "yes"}), 2,
     "expect[0].arguments.city.optional", "true or false"),
    ("then_without_expect", with_task(expect=[], then=[{"name": "get_weather"}]), 2, "then", "needs calls"),
    ("then_empty", with_task(then=[]), 2, "then", "at least one call"),
    ("results_for_a_tool_not_offered", with_task(results={"calculator": "1"}), 2, "results.calculator",
     "not one of the task's tools"),
    ("duplicate_task_id", lines(WEATHER, TASK, TASK), 3, "id", "used twice"),
]


@pytest.mark.parametrize("text, line, key, problem", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_suite_bad_line_names_line_and_key(text: str, line: int, key: str | None, problem: str):
    with pytest.raises(SuiteError) as caught:
        parse_suite(text, source="bad.jsonl")
    error = caught.value
    assert (error.line, error.key) == (line, key), str(error)
    assert problem in error.problem
    assert str(error).startswith(f"bad.jsonl:{line}: " + (f"{key}: " if key else ""))
    assert isinstance(error, ConfigError)  # the CLI's one-line error path catches it


def test_suite_without_tasks_is_an_error():
    with pytest.raises(SuiteError, match="the suite has no tasks"):
        parse_suite(lines(WEATHER, "# only a tool"), source="empty.jsonl")


def test_suite_missing_file_names_the_path(tmp_path: Path):
    missing = tmp_path / "nope.jsonl"
    with pytest.raises(SuiteError, match=f"{missing}: cannot read the suite file"):
        load_suite(missing)


def test_suite_shipped_default_loads_and_covers_every_kind_of_task():
    """The shipped suite is valid and has the kinds the issue asks for, about 30 tasks."""
    suite = load_suite()
    assert default_suite_path().name == "default.jsonl" and suite.name == "default"
    assert 25 <= len(suite.tasks) <= 40
    categories = {t.category for t in suite.tasks}
    assert {"single", "types", "nested", "arrays", "parallel", "two_step", "abstain"} <= categories
    assert any(len(t.steps[0]) > 1 for t in suite.tasks)  # parallel calls
    assert any(len(t.steps) == 2 for t in suite.tasks)  # two steps
    assert sum(not t.expects_call for t in suite.tasks) >= 5
    kinds = {rule.kind for t in suite.tasks for step in t.steps for call in step for rule in call.arguments.values()}
    assert {"exact", "number", "icase", "contains", "object", "array"} <= kinds
