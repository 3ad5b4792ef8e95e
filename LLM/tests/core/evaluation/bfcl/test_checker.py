"""BFCL's AST checker: one passing and one failing case per rule, in BFCL's own data format."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from LLM.core.evaluation.bfcl import Verdict, check_ast, check_relevance, decoder_failure, no_call_verdict
from LLM.core.evaluation.bfcl.checker import standardize


def doc(name: str, properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    """A function doc as BFCL's question files write it."""
    return {"name": name, "description": f"{name} does things.",
            "parameters": {"type": "dict", "properties": properties, "required": required}}


FACTORIAL = doc("math.factorial", {"number": {"type": "integer", "description": "n"}}, ["number"])
AREA = doc("geometry.area", {"base": {"type": "integer", "description": "b"},
                             "height": {"type": "integer", "description": "h"},
                             "unit": {"type": "string", "description": "u"}}, ["base", "height"])
SCALE = doc("calc.scale", {"factor": {"type": "float", "description": "f"}}, ["factor"])
FLAG = doc("set_flag", {"enabled": {"type": "boolean", "description": "e"}}, ["enabled"])
CITY = doc("weather.get", {"city": {"type": "string", "description": "c"}}, ["city"])
SORT = doc("sort_items", {"items": {"type": "array", "items": {"type": "string"}, "description": "i"}}, ["items"])
SUM = doc("sum_numbers", {"numbers": {"type": "array", "items": {"type": "integer"}, "description": "n"}},
          ["numbers"])
POINT = doc("plot.point", {"xy": {"type": "tuple", "items": {"type": "integer"}, "description": "p"}}, ["xy"])
HOTEL = doc("book_hotel", {"room": {"type": "dict", "description": "r", "properties": {
    "kind": {"type": "string"}, "nights": {"type": "integer"}, "breakfast": {"type": "boolean"}}}}, ["room"])
ORDER = doc("order.place", {"lines": {"type": "array", "items": {"type": "dict"}, "description": "l"}}, ["lines"])
ANY = doc("echo", {"value": {"type": "any", "description": "v"}}, ["value"])

ROOM_ANSWER = [{"room": [{"kind": ["double"], "nights": [2], "breakfast": ["", True]}]}]
LINES_ANSWER = [[{"sku": ["a"], "qty": [1]}, {"sku": ["b"], "qty": [2]}]]

# (id, category, functions, calls, ground_truth, valid, error_type); each case names the BFCL rule it mirrors.
CASES = [
    # simple_function_checker: every parameter has an accepted value -> valid
    ("right_answer", "simple_python", [FACTORIAL], [{"math.factorial": {"number": 5}}],
     [{"math.factorial": {"number": [5]}}], True, ""),
    # simple_function_checker: the doc's name must be the call's key
    ("wrong_func_name", "simple_python", [FACTORIAL], [{"math.fact": {"number": 5}}],
     [{"math.factorial": {"number": [5]}}], False, "simple_function_checker:wrong_func_name"),
    # ast_checker: a simple category expects exactly one call
    ("simple_one_call", "live_simple", [FACTORIAL], [{"math.factorial": {"number": 5}}],
     [{"math.factorial": {"number": [5]}}], True, ""),
    ("simple_two_calls_wrong_count", "live_simple", [FACTORIAL],
     [{"math.factorial": {"number": 5}}, {"math.factorial": {"number": 5}}],
     [{"math.factorial": {"number": [5]}}], False, "simple_function_checker:wrong_count"),
    # simple_function_checker: parameters in "required" must be present
    ("required_present", "simple_python", [AREA], [{"geometry.area": {"base": 3, "height": 4}}],
     [{"geometry.area": {"base": [3], "height": [4], "unit": ["", "units"]}}], True, ""),
    ("required_missing", "simple_python", [AREA], [{"geometry.area": {"base": 3}}],
     [{"geometry.area": {"base": [3], "height": [4], "unit": ["", "units"]}}], False,
     "simple_function_checker:missing_required"),
    # simple_function_checker: a parameter must be in the doc's properties
    ("param_not_in_properties", "simple_python", [FACTORIAL], [{"math.factorial": {"number": 5, "exact": True}}],
     [{"math.factorial": {"number": [5]}}], False, "simple_function_checker:unexpected_param"),
    # simple_function_checker: ... and in the possible answer
    ("param_in_answer", "simple_python", [AREA], [{"geometry.area": {"base": 3, "height": 4, "unit": "cm"}}],
     [{"geometry.area": {"base": [3], "height": [4], "unit": ["cm"]}}], True, ""),
    ("param_absent_from_answer", "simple_python", [AREA], [{"geometry.area": {"base": 3, "height": 4, "unit": "cm"}}],
     [{"geometry.area": {"base": [3], "height": [4]}}], False, "simple_function_checker:unexpected_param"),
    # type_checker: type(value) must be the declared type
    ("wrong_type_string_for_integer", "simple_python", [FACTORIAL], [{"math.factorial": {"number": "5"}}],
     [{"math.factorial": {"number": [5]}}], False, "type_error:simple"),
    # simple_function_checker: Python's int -> float auto conversion
    ("int_accepted_for_float", "simple_python", [SCALE], [{"calc.scale": {"factor": 2}}],
     [{"calc.scale": {"factor": [2.0]}}], True, ""),
    ("string_not_accepted_for_float", "simple_python", [SCALE], [{"calc.scale": {"factor": "2"}}],
     [{"calc.scale": {"factor": [2.0]}}], False, "type_error:simple"),
    # type_checker: type(x) == int, so True (a bool) is not an integer
    ("int_for_integer", "simple_python", [FACTORIAL], [{"math.factorial": {"number": 1}}],
     [{"math.factorial": {"number": [1]}}], True, ""),
    ("bool_not_accepted_for_integer", "simple_python", [FACTORIAL], [{"math.factorial": {"number": True}}],
     [{"math.factorial": {"number": [1]}}], False, "type_error:simple"),
    # type_checker: ... and 1 is not a boolean
    ("bool_for_boolean", "simple_python", [FLAG], [{"set_flag": {"enabled": False}}],
     [{"set_flag": {"enabled": [False]}}], True, ""),
    ("int_not_accepted_for_boolean", "simple_python", [FLAG], [{"set_flag": {"enabled": 0}}],
     [{"set_flag": {"enabled": [False]}}], False, "type_error:simple"),
    # value_error:others: a number must equal an accepted value
    ("integer_wrong_value", "simple_python", [FACTORIAL], [{"math.factorial": {"number": 6}}],
     [{"math.factorial": {"number": [5]}}], False, "value_error:others"),
    # string_checker / standardize_string: case, spaces and ,./-_*^ ignored
    ("string_standardized", "simple_python", [CITY], [{"weather.get": {"city": "new-york, N.Y."}}],
     [{"weather.get": {"city": ["New York NY"]}}], True, ""),
    # standardize_string: single quotes read as double quotes
    ("string_single_quotes", "simple_python", [CITY], [{"weather.get": {"city": "Martha's Vineyard"}}],
     [{"weather.get": {"city": ['Martha"s Vineyard']}}], True, ""),
    # string_checker: other punctuation counts
    ("string_exclamation_not_removed", "simple_python", [CITY], [{"weather.get": {"city": "New York!"}}],
     [{"weather.get": {"city": ["New York"]}}], False, "value_error:string"),
    ("string_not_accepted", "simple_python", [CITY], [{"weather.get": {"city": "Boston"}}],
     [{"weather.get": {"city": ["New York", "NYC"]}}], False, "value_error:string"),
    # PYTHON_TYPE_MAPPING: "any" is checked as a string
    ("any_is_string", "simple_python", [ANY], [{"echo": {"value": "Hi"}}], [{"echo": {"value": ["hi"]}}], True, ""),
    ("any_rejects_number", "simple_python", [ANY], [{"echo": {"value": 1}}], [{"echo": {"value": ["1"]}}],
     False, "type_error:simple"),
    # list_checker: strings inside a list are standardized, order matters
    ("list_same_order", "simple_python", [SORT], [{"sort_items": {"items": ["A", "b c"]}}],
     [{"sort_items": {"items": [["a", "bc"]]}}], True, ""),
    ("list_other_order", "simple_python", [SORT], [{"sort_items": {"items": ["b", "a"]}}],
     [{"sort_items": {"items": [["a", "b"]]}}], False, "value_error:list/tuple"),
    # list_checker: the "" of an optional list parameter reads as an empty list
    ("list_empty_matches_optional_marker", "simple_python", [SORT], [{"sort_items": {"items": []}}],
     [{"sort_items": {"items": ["", ["a"]]}}], True, ""),
    # type_checker: array items are checked against items.type (one level deep)
    ("nested_types_ok", "simple_python", [SUM], [{"sum_numbers": {"numbers": [1, 2]}}],
     [{"sum_numbers": {"numbers": [[1, 2]]}}], True, ""),
    ("nested_type_wrong", "simple_python", [SUM], [{"sum_numbers": {"numbers": [1, "2"]}}],
     [{"sum_numbers": {"numbers": [[1, 2]]}}], False, "type_error:nested"),
    # simple_function_checker: a tuple parameter takes a list (JSON has no tuples)
    ("tuple_as_list", "simple_python", [POINT], [{"plot.point": {"xy": [1, 2]}}],
     [{"plot.point": {"xy": [[1, 2]]}}], True, ""),
    ("tuple_wrong_values", "simple_python", [POINT], [{"plot.point": {"xy": [2, 1]}}],
     [{"plot.point": {"xy": [[1, 2]]}}], False, "value_error:list/tuple"),
    # dict_checker: keys and standardized values; a key whose answers hold "" may be left out
    ("dict_optional_key_omitted", "simple_python", [HOTEL], [{"book_hotel": {"room": {"kind": "Double", "nights": 2}}}],
     [{"book_hotel": ROOM_ANSWER[0]}], True, ""),
    ("dict_optional_key_given", "simple_python", [HOTEL],
     [{"book_hotel": {"room": {"kind": "double", "nights": 2, "breakfast": True}}}],
     [{"book_hotel": ROOM_ANSWER[0]}], True, ""),
    ("dict_unexpected_key", "simple_python", [HOTEL],
     [{"book_hotel": {"room": {"kind": "double", "nights": 2, "view": "sea"}}}],
     [{"book_hotel": ROOM_ANSWER[0]}], False, "value_error:dict_key"),
    ("dict_missing_key", "simple_python", [HOTEL], [{"book_hotel": {"room": {"kind": "double"}}}],
     [{"book_hotel": ROOM_ANSWER[0]}], False, "value_error:dict_key"),
    ("dict_wrong_value", "simple_python", [HOTEL], [{"book_hotel": {"room": {"kind": "double", "nights": 3}}}],
     [{"book_hotel": ROOM_ANSWER[0]}], False, "value_error:dict_value"),
    # list_dict_checker: each dict against the answer's dict at the same position
    ("list_of_dicts_ok", "simple_python", [ORDER],
     [{"order.place": {"lines": [{"sku": "a", "qty": 1}, {"sku": "B", "qty": 2}]}}],
     [{"order.place": {"lines": LINES_ANSWER}}], True, ""),
    ("list_of_dicts_other_order", "simple_python", [ORDER],
     [{"order.place": {"lines": [{"sku": "b", "qty": 2}, {"sku": "a", "qty": 1}]}}],
     [{"order.place": {"lines": LINES_ANSWER}}], False, "value_error:dict_value"),
    ("list_of_dicts_wrong_count", "simple_python", [ORDER], [{"order.place": {"lines": [{"sku": "a", "qty": 1}]}}],
     [{"order.place": {"lines": LINES_ANSWER}}], False, "value_error:list_dict_count"),
    # simple_function_checker: a parameter left out needs "" among its accepted values
    ("optional_omitted_allowed", "simple_python", [AREA], [{"geometry.area": {"base": 3, "height": 4}}],
     [{"geometry.area": {"base": [3], "height": [4], "unit": ["", "cm"]}}], True, ""),
    ("optional_omitted_not_allowed", "simple_python", [AREA], [{"geometry.area": {"base": 3, "height": 4}}],
     [{"geometry.area": {"base": [3], "height": [4], "unit": ["cm"]}}], False,
     "simple_function_checker:missing_optional"),
    # type_checker is_variable: an answer of another type than declared accepts a value of its type, compared as is
    ("variable_accepted", "simple_python", [FACTORIAL], [{"math.factorial": {"number": "n"}}],
     [{"math.factorial": {"number": ["n"]}}], True, ""),
    ("variable_not_standardized", "simple_python", [FACTORIAL], [{"math.factorial": {"number": "N"}}],
     [{"math.factorial": {"number": ["n"]}}], False, "value_error:others"),
    # multiple_function_checker: the doc is the one the ground truth names
    ("multiple_right_function", "multiple", [FACTORIAL, AREA], [{"geometry.area": {"base": 3, "height": 4}}],
     [{"geometry.area": {"base": [3], "height": [4], "unit": [""]}}], True, ""),
    ("multiple_other_function", "multiple", [FACTORIAL, AREA], [{"math.factorial": {"number": 3}}],
     [{"geometry.area": {"base": [3], "height": [4], "unit": [""]}}], False, "simple_function_checker:wrong_func_name"),
    ("multiple_two_calls", "live_multiple", [FACTORIAL, AREA],
     [{"geometry.area": {"base": 3, "height": 4}}, {"math.factorial": {"number": 3}}],
     [{"geometry.area": {"base": [3], "height": [4], "unit": [""]}}], False, "multiple_function_checker:wrong_count"),
    # parallel_function_checker_no_order: every answer matched by a distinct call, in any order
    ("parallel_any_order", "parallel", [FACTORIAL],
     [{"math.factorial": {"number": 10}}, {"math.factorial": {"number": 5}}],
     [{"math.factorial": {"number": [5]}}, {"math.factorial": {"number": [10]}}], True, ""),
    ("parallel_one_call_missing", "parallel", [FACTORIAL], [{"math.factorial": {"number": 5}}],
     [{"math.factorial": {"number": [5]}}, {"math.factorial": {"number": [10]}}], False,
     "parallel_function_checker_no_order:wrong_count"),
    ("parallel_duplicate_instead_of_missing", "parallel", [FACTORIAL],
     [{"math.factorial": {"number": 5}}, {"math.factorial": {"number": 5}}],
     [{"math.factorial": {"number": [5]}}, {"math.factorial": {"number": [10]}}], False,
     "parallel_function_checker_no_order:cannot_find_match"),
    # ast_checker: "parallel" wins over "multiple" in the category name
    ("parallel_multiple_any_order", "live_parallel_multiple", [FACTORIAL, AREA],
     [{"geometry.area": {"base": 3, "height": 4}}, {"math.factorial": {"number": 5}}],
     [{"math.factorial": {"number": [5]}}, {"geometry.area": {"base": [3], "height": [4], "unit": [""]}}], True, ""),
    # eval_runner is_function_calling_format_output: each call is {name: {arguments}}
    ("arguments_not_a_dict", "simple_python", [FACTORIAL], [{"math.factorial": '{"number": 5}'}],
     [{"math.factorial": {"number": [5]}}], False, "ast_decoder:decoder_wrong_output_format"),
]


@pytest.mark.parametrize("category,functions,calls,ground_truth,valid,error_type",
                         [pytest.param(*case[1:], id=case[0]) for case in CASES])
def test_check_ast_follows_bfcl_rules(category, functions, calls, ground_truth, valid, error_type):
    verdict = check_ast(category, functions, calls, ground_truth)
    assert (verdict.valid, verdict.error_type) == (valid, error_type), verdict.reason


RELEVANCE = [
    # relevance_file_runner: irrelevance passes when nothing was called
    ("irrelevance_no_call", "irrelevance", [], True, ""),
    ("irrelevance_call", "live_irrelevance", [{"math.factorial": {"number": 5}}], False,
     "irrelevance_error:decoder_success"),
    # relevance_file_runner: relevance passes on any call, arguments not checked
    ("relevance_call", "live_relevance", [{"math.factorial": {}}], True, ""),
    ("relevance_no_call", "live_relevance", [], False, "relevance_error:decoder_failed"),
    # is_empty_output: [{}] is no call
    ("relevance_empty_dict", "live_relevance", [{}], False, "relevance_error:decoder_failed"),
]


@pytest.mark.parametrize("category,calls,valid,error_type", [pytest.param(*c[1:], id=c[0]) for c in RELEVANCE])
def test_check_relevance_counts_calls(category, calls, valid, error_type):
    verdict = check_relevance(category, calls)
    assert (verdict.valid, verdict.error_type) == (valid, error_type)


MESSAGES = [
    ("wrong_func_name", [{"f": {"number": 5}}], "Function name 'math.factorial' not found in model output."),
    ("missing_required", [{"math.factorial": {}}], "Missing required parameter: 'number'."),
    ("wrong_type", [{"math.factorial": {"number": "5"}}],
     "Incorrect type for parameter 'number'. Expected type integer, got str. Parameter value: '5'."),
    ("wrong_value", [{"math.factorial": {"number": 6}}],
     "Invalid value for parameter 'number': 6. Expected one of [5]."),
]


@pytest.mark.parametrize("calls,message", [pytest.param(*m[1:], id=m[0]) for m in MESSAGES])
def test_check_ast_writes_bfcl_messages(calls, message):
    verdict = check_ast("simple_python", [FACTORIAL], calls, [{"math.factorial": {"number": [5]}}])
    assert verdict.errors == (message,)
    assert verdict.reason == message


def test_check_ast_parallel_mismatch_lists_every_candidate():
    verdict = check_ast("parallel", [FACTORIAL], [{"math.factorial": {"number": 5}}] * 2,
                        [{"math.factorial": {"number": [5]}}, {"math.factorial": {"number": [10]}}])
    assert verdict.errors[0] == ("Could not find a matching function among index [1] of model output "
                                 "for index 1 of possible answers.")
    assert verdict.errors[1].startswith("Model Result Index 1: value_error:others: Invalid value")


def test_check_ast_does_not_mutate_its_inputs():
    functions = [HOTEL, POINT]
    calls = [{"book_hotel": {"room": {"kind": "Double", "nights": 2}}}, {"plot.point": {"xy": (1, 2)}}]
    ground_truth = [{"book_hotel": ROOM_ANSWER[0]}, {"plot.point": {"xy": [[1, 2]]}}]
    before = copy.deepcopy((functions, calls, ground_truth))
    assert check_ast("parallel_multiple", functions, calls, ground_truth).valid
    assert (functions, calls, ground_truth) == before
    assert type(calls[1]["plot.point"]["xy"]) is tuple


def test_decoder_failure_is_bfcls_decoder_error():
    verdict = decoder_failure("Expecting value: line 1 column 1 (char 0)")
    assert verdict == Verdict(False, "ast_decoder:decoder_failed",
                              ("Invalid syntax. Failed to decode AST. Expecting value: line 1 column 1 (char 0)",))


def test_no_call_verdict_is_a_decoder_failure():
    """BFCL's OpenAI handler fails to decode a text reply; it never reaches the format check."""
    verdict = no_call_verdict()
    assert not verdict.valid
    assert verdict.error_type == "ast_decoder:decoder_failed"
    assert verdict.reason.startswith("Invalid syntax. Failed to decode AST. ")


def test_verdict_reason_is_empty_when_valid():
    assert Verdict(True).reason == ""
    assert Verdict(False, "x", ("a", "b")).reason == "a; b"


@pytest.mark.parametrize("text,standard", [
    pytest.param("April 1, 2024", "april12024", id="spaces_and_comma"),
    pytest.param("a.b/c-d_e*f^g", "abcdefg", id="all_removed_punctuation"),
    pytest.param("It's", 'it"s', id="single_quote_to_double"),
    pytest.param("x!y", "x!y", id="other_punctuation_kept"),
])
def test_standardize_matches_bfcl(text, standard):
    assert standardize(text) == standard
