"""BFCL function docs -> OpenAI tools: legal names and back, BFCL's type mapping, the input untouched."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from LLM.core.evaluation.bfcl import NameMap, to_openai_tools

LEGAL = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


def doc(name: str, properties: dict[str, Any] | None = None, required: list[str] | None = None) -> dict[str, Any]:
    return {"name": name, "description": "Does things.",
            "parameters": {"type": "dict", "properties": properties or {}, "required": required or []}}


def names_of(tools: list[dict[str, Any]]) -> list[str]:
    return [tool["function"]["name"] for tool in tools]


NAMES = [
    ("legal_name_kept", ["get_weather"], ["get_weather"]),
    ("dots_to_underscores", ["math.factorial"], ["math_factorial"]),
    ("deep_module_path", ["a.b.c-d"], ["a_b_c-d"]),
    ("other_characters", ["calc/area (v2)!"], ["calc_area__v2__"]),
    ("collisions_get_suffixes", ["math.sqrt", "math sqrt", "math/sqrt"], ["math_sqrt", "math_sqrt_2", "math_sqrt_3"]),
    ("legal_name_keeps_itself_over_a_converted_one", ["a.b", "a_b"], ["a_b_2", "a_b"]),
    ("suffix_skips_taken_names", ["a.b", "a_b", "a_b_2"], ["a_b_3", "a_b", "a_b_2"]),
    ("truncated_to_64", ["x." + "y" * 70], ["x_" + "y" * 62]),
    ("truncated_collision_stays_64", ["x." + "y" * 70, "x/" + "y" * 70], ["x_" + "y" * 62, "x_" + "y" * 60 + "_2"]),
    ("long_legal_name_truncated", ["z" * 65], ["z" * 64]),
]


@pytest.mark.parametrize("originals,legal", [pytest.param(*n[1:], id=n[0]) for n in NAMES])
def test_to_openai_tools_offers_legal_unique_names(originals, legal):
    tools, names = to_openai_tools([doc(name) for name in originals])
    assert names_of(tools) == legal
    assert all(LEGAL.match(name) for name in legal)
    assert [names.legal(o) for o in originals] == legal
    assert [names.original(n) for n in legal] == originals


def test_name_map_answers_none_for_a_name_never_offered():
    _, names = to_openai_tools([doc("math.factorial")])
    assert names.original("math_factorial") == "math.factorial"
    assert names.original("math.factorial") is None
    assert names.original("other") is None
    with pytest.raises(KeyError):
        names.legal("other")


def test_name_map_is_a_frozen_value():
    a = NameMap((("m.f", "m_f"),))
    assert a == NameMap((("m.f", "m_f"),))
    assert hash(a) == hash(NameMap((("m.f", "m_f"),)))
    with pytest.raises(AttributeError):
        a.pairs = ()  # type: ignore[misc]


TYPES = [
    # GORILLA_TO_OPENAPI, one property at a time: (id, BFCL schema, OpenAI schema)
    ("integer", {"type": "integer", "description": "n"}, {"type": "integer", "description": "n"}),
    ("string_keeps_enum", {"type": "string", "description": "s", "enum": ["a"]},
     {"type": "string", "description": "s", "enum": ["a"]}),
    ("boolean", {"type": "boolean", "description": "b"}, {"type": "boolean", "description": "b"}),
    ("float_note_and_format", {"type": "float", "description": "Ratio."},
     {"type": "number", "format": "float", "description": "Ratio. This is a float type value."}),
    ("float_without_description", {"type": "float"},
     {"type": "number", "format": "float", "description": " This is a float type value."}),
    ("any_to_string", {"type": "any", "description": "v"}, {"type": "string", "description": "v"}),
    ("unknown_to_string", {"type": "datetime", "description": "d"}, {"type": "string", "description": "d"}),
    ("missing_type_to_string", {"description": "d"}, {"type": "string", "description": "d"}),
    ("tuple_to_array", {"type": "tuple", "items": {"type": "integer"}, "description": "t"},
     {"type": "array", "items": {"type": "integer"}, "description": "t"}),
    ("array_of_float_items_no_note", {"type": "array", "items": {"type": "float"}, "description": "a"},
     {"type": "array", "items": {"type": "number"}, "description": "a"}),
    ("array_of_arrays", {"type": "array", "items": {"type": "tuple", "items": {"type": "float"}}, "description": "m"},
     {"type": "array", "items": {"type": "array", "items": {"type": "number"}}, "description": "m"}),
    ("array_of_dicts_with_properties",
     {"type": "array", "description": "l", "items": {"type": "dict", "properties": {
         "w": {"type": "float", "description": "W."}, "tags": {"type": "list", "items": {"type": "any"}}}}},
     {"type": "array", "description": "l", "items": {"type": "object", "properties": {
         "w": {"type": "number", "format": "float", "description": "W. This is a float type value."},
         "tags": {"type": "array", "items": {"type": "string"}}}}}),
    ("dict_with_nested_properties",
     {"type": "dict", "description": "r", "required": ["n"], "properties": {
         "n": {"type": "integer", "description": "N."}, "inner": {"type": "dict", "properties": {
             "x": {"type": "float", "description": "X."}}}}},
     {"type": "object", "description": "r", "required": ["n"], "properties": {
         "n": {"type": "integer", "description": "N."}, "inner": {"type": "object", "properties": {
             "x": {"type": "number", "format": "float", "description": "X. This is a float type value."}}}}}),
    ("dict_without_properties", {"type": "dict", "description": "d"}, {"type": "object", "description": "d"}),
]


@pytest.mark.parametrize("bfcl,openai", [pytest.param(*t[1:], id=t[0]) for t in TYPES])
def test_to_openai_tools_maps_types_like_bfcl(bfcl, openai):
    tools, _ = to_openai_tools([doc("f", {"p": bfcl}, ["p"])])
    assert tools[0]["function"]["parameters"] == {"type": "object", "properties": {"p": openai}, "required": ["p"]}


def test_to_openai_tools_builds_openai_function_tools():
    bfcl = doc("math.factorial", {"number": {"type": "integer", "description": "N."}}, ["number"])
    bfcl["response"] = {"type": "integer"}  # not part of OpenAI's function object
    tools, _ = to_openai_tools([bfcl])
    assert tools == [{"type": "function", "function": {
        "name": "math_factorial",
        "description": "Does things. Note that the provided function is in Python 3 syntax.",
        "parameters": {"type": "object", "properties": {"number": {"type": "integer", "description": "N."}},
                       "required": ["number"]},
    }}]


def test_to_openai_tools_does_not_mutate_its_input():
    functions = [doc("geo.area", {"shape": {"type": "dict", "description": "S.", "properties": {
        "side": {"type": "float", "description": "Side."}}},
        "pts": {"type": "array", "items": {"type": "dict", "properties": {"x": {"type": "float"}}}}}, ["shape"])]
    before = copy.deepcopy(functions)
    tools, _ = to_openai_tools(functions)
    assert functions == before
    tools[0]["function"]["parameters"]["properties"]["shape"]["properties"]["side"]["type"] = "changed"
    assert functions == before


def test_to_openai_tools_accepts_tuples_of_docs():
    tools, names = to_openai_tools((doc("a.b"), doc("c")))
    assert names_of(tools) == ["a_b", "c"]
    assert names.pairs == (("a.b", "a_b"), ("c", "c"))
