"""The JSON Schema subset of tools without code: which schemas pass, and what arguments they accept (pure)."""

from __future__ import annotations

import pytest

from LLM.core.tools.json_schema import schema_problems, value_problems, with_defaults

OBJ = {"type": "object"}


@pytest.mark.parametrize("schema", [
    pytest.param({"type": "object"}, id="bare-object"),
    pytest.param({"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object", "properties": {}},
                 id="schema-annotation-at-root"),
    pytest.param({"type": "object", "properties": {
        "city": {"type": "string", "description": "The city", "minLength": 1, "maxLength": 80, "pattern": "^[A-Z]"},
        "unit": {"type": "string", "enum": ["C", "F"], "default": "C"},
        "days": {"type": ["integer", "null"], "minimum": 1, "exclusiveMaximum": 15},
        "tags": {"type": "array", "items": {"type": "string"}, "minItems": 0, "maxItems": 3},
        "where": {"type": "object", "properties": {"lat": {"type": "number"}}, "required": ["lat"],
                  "additionalProperties": {"type": "number"}},
        "either": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
        "one": {"oneOf": [{"const": 1}, {"const": "one"}], "title": "One", "examples": [1]},
    }, "required": ["city"], "additionalProperties": False}, id="every-supported-keyword"),
])
def test_json_schema_accepts_the_supported_subset(schema):
    assert schema_problems(schema) == []


@pytest.mark.parametrize("schema, expected", [
    pytest.param([], [("", "must be a JSON object (a schema), got []")], id="not-an-object"),
    pytest.param({}, [("type", 'required: "object" (a tool takes named arguments)')], id="root-type-missing"),
    pytest.param({"type": "array"}, [("type", 'must be "object" (a tool takes named arguments), got "array"')],
                 id="root-not-object"),
    pytest.param({**OBJ, "properties": {"a": {"type": "strin"}}},
                 [("properties.a.type", 'unknown type "strin" (did you mean "string"?)')], id="typo-in-type"),
    pytest.param({**OBJ, "requried": ["a"]}, [("requried", "unknown keyword (did you mean 'required'?)")],
                 id="typo-in-keyword-is-reported-not-ignored"),
    pytest.param({**OBJ, "properties": {"a": {"$ref": "#/$defs/A"}}},
                 [("properties.a.$ref", "references are not supported: write the schema out in place")],
                 id="references"),
    pytest.param({**OBJ, "properties": {"a": {"type": "string"}}, "required": ["b"]},
                 [("required", "names 'b', which is not in properties (declared: a)")], id="required-undeclared"),
    pytest.param({**OBJ, "properties": {"a": {"type": "string", "pattern": "("}}},
                 [("properties.a.pattern", "not a valid regular expression: missing ), unterminated subpattern "
                                           "at position 0")], id="bad-pattern"),
    pytest.param({**OBJ, "properties": {"a": {"type": "array", "items": 3, "minItems": -1}}},
                 [("properties.a.minItems", "must be a whole number >= 0, got -1"),
                  ("properties.a.items", "must be a schema (a JSON object), got 3")], id="bad-array-keywords"),
    pytest.param({**OBJ, "properties": {"a": {"enum": []}, "b": {"anyOf": {}}, "c": {"minimum": "1"}}},
                 [("properties.a.enum", "must be a non-empty list of allowed values, got []"),
                  ("properties.b.anyOf", "must be a non-empty list of schemas, got {}"),
                  ("properties.c.minimum", 'must be a number, got "1"')], id="bad-value-keywords"),
    pytest.param({**OBJ, "properties": []}, [("properties", "must be an object of name -> schema, got []")],
                 id="properties-not-an-object"),
])
def test_json_schema_problems_name_the_key(schema, expected):
    assert schema_problems(schema) == expected


WEATHER = {"type": "object", "properties": {
    "city": {"type": "string", "minLength": 2},
    "unit": {"enum": ["C", "F"]},
    "days": {"type": "integer", "minimum": 1, "maximum": 14},
    "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 2},
    "where": {"type": "object", "properties": {"lat": {"type": "number"}}, "required": ["lat"],
              "additionalProperties": False},
    "id": {"oneOf": [{"type": "integer"}, {"type": "number"}]},
}, "required": ["city"], "additionalProperties": False}


@pytest.mark.parametrize("value, expected", [
    pytest.param({"city": "Paris"}, [], id="minimal"),
    pytest.param({"city": "Paris", "days": 3.0, "unit": "F", "tags": ["a"], "where": {"lat": 48.8}}, [],
                 id="integral-float-is-an-integer"),
    pytest.param({}, [("city", "required, but missing")], id="missing-required"),
    pytest.param({"city": 3}, [("city", "expected a string, got 3")], id="no-coercion"),
    pytest.param({"city": "P"}, [("city", "must have at least 2 characters, got 1")], id="too-short"),
    pytest.param({"city": "Paris", "days": True}, [("days", "expected an integer, got true")],
                 id="bool-is-not-an-integer"),
    pytest.param({"city": "Paris", "days": 30}, [("days", "must be <= 14, got 30")], id="above-maximum"),
    pytest.param({"city": "Paris", "unit": "K"}, [("unit", 'must be one of "C", "F", got "K"')], id="not-in-enum"),
    pytest.param({"city": "Paris", "tags": ["a", 1, "c"]},
                 [("tags", "must have at most 2 items, got 3"), ("tags[1]", "expected a string, got 1")],
                 id="list-items"),
    pytest.param({"city": "Paris", "where": {"lat": "x", "lon": 2}},
                 [("where", "unknown key 'lon' (expected: lat)"), ("where.lat", 'expected a number, got "x"')],
                 id="nested-object"),
    pytest.param({"city": "Paris", "cty": "Rome"}, [("", "unknown argument 'cty' (expected: city, unit, days, "
                                                        "tags, where, id)")], id="unknown-argument"),
    pytest.param({"city": "Paris", "id": 3}, [("id", "matches 2 of the oneOf choices, exactly one allowed")],
                 id="one-of-ambiguous"),
])
def test_json_schema_value_problems(value, expected):
    assert value_problems(WEATHER, value) == expected


def test_json_schema_enum_compares_as_json_does():
    """``true`` is not ``1`` in JSON, though it is in Python."""
    schema = {"enum": [1, [1, 2]]}
    assert value_problems(schema, True) == [("", "must be one of 1, [1, 2], got true")]
    assert value_problems(schema, 1.0) == [] and value_problems(schema, [1, 2]) == []


def test_json_schema_with_defaults_fills_left_out_arguments_only():
    schema = {"type": "object", "properties": {"unit": {"default": "C"}, "tags": {"default": []}}}
    filled = with_defaults(schema, {"unit": "F"})
    assert filled == {"unit": "F", "tags": []}
    filled["tags"].append("x")
    assert schema["properties"]["tags"]["default"] == []  # a default is copied, never shared


PATTERNS = {"type": "object", "properties": {
    "code": {"type": "string", "pattern": r"^[A-Z]{3}$"},
    "words": {"type": "array", "items": {"type": "string", "pattern": r"^(\w+\s?)*$"}},
    "either": {"anyOf": [{"type": "string", "pattern": "^a"}, {"type": "string", "pattern": "^b"}]},
}}


@pytest.mark.parametrize("value, expected", [
    pytest.param({"code": "OSL", "words": ["hello world"], "either": "b1"}, [], id="all-match"),
    pytest.param({"code": "osl"}, [("code", "must match the pattern '^[A-Z]{3}$', got \"osl\"")], id="no-match"),
    pytest.param({"words": ["ok", "not ok!"]}, [("words[1]", "must match the pattern '^(\\\\w+\\\\s?)*$', got "
                                                            "\"not ok!\"")], id="checked-in-the-child"),
    pytest.param({"either": "c"}, [("either", 'matches none of the anyOf choices, got "c"')], id="any-of"),
])
def test_json_schema_pattern_checks(value, expected):
    assert value_problems(PATTERNS, value) == expected


def test_json_schema_pattern_check_is_stopped_at_its_deadline():
    """Regression (#19 item 8): a catastrophic ``pattern`` ran unbounded in-process (30 characters: about a
    minute, holding the GIL); the check is stopped at its deadline and the problem says why."""
    from LLM.tests.core.tools.test_safe_regex import within_deadline

    problems = within_deadline(lambda: value_problems(PATTERNS, {"words": ["a" * 30 + "!"]}, pattern_deadline_s=0.5))
    assert len(problems) == 1
    path, message = problems[0]
    assert path == "words[0]"
    assert "took longer than 0.5 s" in message and "may be catastrophic" in message


def test_json_schema_pattern_python_cannot_read_is_not_enforced():
    """An MCP server's schema may use ECMA-only syntax; that is the server's to enforce, not a fault of the call."""
    assert value_problems({"type": "string", "pattern": r"^\p{L}+$"}, "Zoë") == []


def test_json_schema_an_unknown_type_name_leaves_the_rest_checked():
    """Review of #19 item 4: an MCP server's schema with a type name outside JSON Schema's (`int64`) raised
    KeyError, which switched off the whole argument check, unknown keys included."""
    schema = {"type": "object", "properties": {"a": {"type": "int64"}, "b": {"type": ["string", "uuid"]}},
              "additionalProperties": False}
    assert value_problems(schema, {"a": 1, "b": "x"}) == []
    assert sorted(value_problems(schema, {"a": 1, "b": 2, "c": 3})) == [
        ("", "unknown argument 'c' (expected: a, b)"), ("b", "expected a string, got 2")]
