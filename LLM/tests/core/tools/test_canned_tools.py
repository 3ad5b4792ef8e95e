"""Tools without code (LLM.core.tools.canned): the JSON file format, its checks, the reply, loading and saving."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from LLM.core.errors import ToolError
from LLM.core.tools import Tool, ToolRegistry
from LLM.core.tools.builtin import build_default_registry
from LLM.core.tools.canned import (
    CannedTool,
    CannedToolError,
    canned_tool_from_dict,
    canned_tool_from_form,
    canned_tool_problems,
    parse_canned_tool,
    write_canned_tool,
)
from LLM.tests.fakes.handle import FakeServerHandle
from LLM.tests.cli.harness import llmctl, write_config

WEATHER: dict[str, Any] = {
    "name": "get_weather",
    "description": "The weather in a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["C", "F"], "default": "C"},
                       "days": {"type": "integer"}},
        "required": ["city"],
        "additionalProperties": False,
    },
    "reply": {"template": "It is sunny in {city}."},
}


def weather(**changes: Any) -> dict[str, Any]:
    data = {**WEATHER, **changes}
    return {k: v for k, v in data.items() if v is not None}


def problems(data: Any, taken: tuple[str, ...] = ()) -> list[str]:
    return [p.joined("") for p in canned_tool_problems(data, taken=taken)]


# --- the format's checks ------------------------------------------------------------------


@pytest.mark.parametrize("data, expected", [
    pytest.param(WEATHER, [], id="valid"),
    pytest.param(weather(parameters=None, reply={"text": "Sunny."}), [], id="parameters-default-to-none"),
    pytest.param(weather(reply={"json": {"sky": "clear", "temperature": 21}}), [], id="json-reply"),
    pytest.param("[]", ["must be a JSON object with the keys name, description, parameters, reply"], id="not-object"),
    pytest.param(weather(name=None), ["name: required"], id="name-missing"),
    pytest.param(weather(name="get weather"), ['name: must be 1-64 letters, digits or \'_\', not starting with a '
                                               'digit, got "get weather"'], id="name-not-identifier"),
    pytest.param(weather(name="../evil"), ['name: must be 1-64 letters, digits or \'_\', not starting with a '
                                            'digit, got "../evil"'], id="name-cannot-leave-the-folder"),
    pytest.param(weather(description="  "), ["description: required: a sentence saying what the tool does (the "
                                             "model reads it to decide when to call)"], id="description-blank"),
    pytest.param(weather(extra=1), ["extra: unknown key (expected: name, description, parameters, reply)"],
                 id="unknown-key"),
    pytest.param(weather(parameters={"type": "array"}),
                 ['parameters.type: must be "object" (a tool takes named arguments), got "array"'],
                 id="schema-not-object"),
    pytest.param(weather(parameters={"type": "object", "properties": {"city": {"type": "strng"}}}),
                 ['parameters.properties.city.type: unknown type "strng" (did you mean "string"?)'],
                 id="schema-invalid"),
    pytest.param(weather(reply={"text": "a", "json": 1}),
                 ['reply: must be exactly one of {"text": ...} or {"json": ...} or {"template": ...}, got keys '
                  "'text', 'json'"], id="reply-two-kinds"),
    pytest.param(weather(reply="Sunny."),
                 ['reply: must be exactly one of {"text": ...} or {"json": ...} or {"template": ...}, got "Sunny."'],
                 id="reply-not-an-object"),
    pytest.param(weather(reply={"template": 3}), ["reply.template: must be a string, got 3"], id="template-not-text"),
    pytest.param(weather(reply={"template": "In {town}."}),
                 ["reply.template: placeholder {town} names no declared parameter (declared: city, unit, days; a "
                  "placeholder is a plain parameter name, with no attribute, index or format)"],
                 id="placeholder-undeclared"),
    pytest.param(weather(reply={"template": "{city} }"}),
                 ["reply.template: unmatched '}' at character 8 (write }} for a literal brace)"], id="lone-brace"),
])
def test_canned_tool_problems_name_the_key(data, expected):
    assert problems(data) == expected


def test_canned_tool_name_taken_says_what_wins():
    assert problems(weather(name="calculator"), taken=("calculator",)) == [
        "name: 'calculator' is already a tool (a built-in or another file in your tools folder); choose another name"]


@pytest.mark.parametrize("template", [
    pytest.param("{city.__class__}", id="attribute"),
    pytest.param("{city.__class__.__mro__}", id="attribute-chain"),
    pytest.param("{city[0]}", id="index"),
    pytest.param("{city!r}", id="conversion"),
    pytest.param("{city:>99999}", id="format-spec"),
    pytest.param("{0}", id="positional"),
    pytest.param("{}", id="empty"),
])
def test_canned_template_never_evaluates_anything(template):
    """A placeholder is a plain name: what str.format would evaluate is an undeclared name, refused at load."""
    with pytest.raises(CannedToolError, match=r"get_weather\.json: reply\.template: placeholder .* names no declared"):
        canned_tool_from_dict(weather(reply={"template": template}), source="get_weather.json")


# --- the canned reply ---------------------------------------------------------------------


@pytest.mark.parametrize("reply, arguments, expected", [
    pytest.param({"text": "Sunny {city}."}, {"city": "Paris"}, "Sunny {city}.", id="text-is-returned-as-is"),
    pytest.param({"json": {"sky": "clear", "temp": 21}}, {"city": "Paris"}, '{"sky": "clear", "temp": 21}',
                 id="json-as-json-text"),
    pytest.param({"template": "It is sunny in {city}."}, {"city": "Paris"}, "It is sunny in Paris.",
                 id="template"),
    pytest.param({"template": "{city} in °{unit}"}, {"city": "Köln"}, "Köln in °C", id="left-out-gets-default"),
    pytest.param({"template": "[{days}]"}, {"city": "Paris"}, "[]", id="left-out-without-default-is-empty"),
    pytest.param({"template": "{days} days"}, {"city": "Paris", "days": 3}, "3 days", id="non-string-as-json"),
    pytest.param({"template": "{{{city}}} {{city}}"}, {"city": "Paris"}, "{Paris} {city}", id="escaped-braces"),
    pytest.param({"template": "{city}"}, {"city": "{unit}"}, "{unit}", id="argument-text-is-not-re-expanded"),
])
def test_canned_reply_for_each_kind(reply, arguments, expected):
    definition = canned_tool_from_dict(weather(reply=reply), source="test")
    assert definition.reply_for(arguments) == expected


def test_canned_tool_round_trips_through_its_file_text():
    definition = canned_tool_from_dict(WEATHER, source="test")
    text = definition.to_json()
    assert json.loads(text) == WEATHER
    assert parse_canned_tool(text, source="get_weather.json") == definition


def test_canned_tool_from_form_reports_json_syntax_by_key_with_line_and_column():
    missing_comma = '{\n  "type": "object"\n  "properties": {}\n}'
    definition, found = canned_tool_from_form("get_weather", "Weather.", missing_comma, "template",
                                              "It is sunny in {city}.")
    assert definition is None
    # The template is not checked against a schema nobody can read: only the syntax error is reported.
    assert [p.joined("") for p in found] == [
        "parameters: not valid JSON: Expecting ',' delimiter (line 3, column 3)"]
    definition, found = canned_tool_from_form("get_weather", "Weather.", json.dumps(WEATHER["parameters"]), "json",
                                              '{"sky": }')
    assert [p.joined("") for p in found] == ["reply.json: not valid JSON: Expecting value (line 1, column 9)"]
    definition, found = canned_tool_from_form(" get_weather ", "Weather.", json.dumps(WEATHER["parameters"]), "json",
                                              '{"sky": "clear"}')
    assert found == [] and definition == CannedTool("get_weather", "Weather.", WEATHER["parameters"], "json",
                                                    {"sky": "clear"})


# --- as a Tool: arguments checked at call time ---------------------------------------------


def test_canned_tool_arguments_are_validated_at_call_time():
    registry = ToolRegistry([Tool.from_canned(canned_tool_from_dict(WEATHER, source="test"))])
    ok = asyncio.run(registry.execute("get_weather", {"city": "Paris"}))
    assert ok.ok and ok.output == "It is sunny in Paris."
    bad = asyncio.run(registry.execute("get_weather", {"city": 3, "unit": "K", "cty": "x"}))
    assert not bad.ok and bad.error == (
        "invalid arguments for get_weather: unknown argument 'cty' (expected: city, unit, days); "
        "argument 'city': expected a string, got 3; argument 'unit': must be one of \"C\", \"F\", got \"K\"")
    missing = asyncio.run(registry.execute("get_weather", {}))
    assert missing.error == "invalid arguments for get_weather: argument 'city': required, but missing"
    assert registry.openai_tools() == [{"type": "function", "function": {
        "name": "get_weather", "description": "The weather in a city.", "parameters": WEATHER["parameters"]}}]


# --- the user tools folder ------------------------------------------------------------------


def test_registry_load_directory_loads_json_tools_and_skips_broken_files(tmp_path: Path):
    tools_dir = tmp_path / "tools"
    tools_dir.mkdir()
    (tools_dir / "get_weather.json").write_text(json.dumps(WEATHER))
    (tools_dir / "truncated.json").write_text('{"name": "truncated", ')
    (tools_dir / "bad_schema.json").write_text(json.dumps(weather(name="bad_schema", parameters={"type": "list"})))
    (tools_dir / "renamed.json").write_text(json.dumps(WEATHER))
    (tools_dir / "calculator.json").write_text(json.dumps(weather(name="calculator", reply={"text": "4"})))
    (tools_dir / "latin1.json").write_bytes(b'{"name": "caf\xe9"}')
    (tools_dir / "shout.py").write_text("from LLM.core.tools import tool\n\n@tool\ndef shout(text: str) -> str:\n"
                                        '    """Shout."""\n    return text.upper()\n')
    (tools_dir / "shout.json").write_text(json.dumps(weather(name="shout", reply={"text": "quiet"})))
    (tmp_path / "ws").mkdir()
    registry = build_default_registry(tmp_path / "ws")

    found = registry.load_directory(tools_dir)

    assert registry.names()[-2:] == ["shout", "get_weather"]
    assert asyncio.run(registry.execute("get_weather", {"city": "Oslo"})).output == "It is sunny in Oslo."
    assert asyncio.run(registry.execute("calculator", {"expression": "2+2"})).output == "4"  # the built-in won
    assert asyncio.run(registry.execute("shout", {"text": "hi"})).output == "HI"  # Python files load first
    assert found == [
        'tools/bad_schema.json: parameters.type: unknown type "list" (use one of: string, integer, number, boolean, '
        'array, object, null)',
        "tools/calculator.json: name: 'calculator' is already a tool (a built-in or another file in your tools "
        "folder); choose another name",
        "tools/latin1.json: not UTF-8 text",
        "tools/renamed.json: name: 'get_weather' does not match the file name renamed.json (they must agree, so "
        "the window can find the file)",
        "tools/shout.json: name: 'shout' is already a tool (a built-in or another file in your tools folder); "
        "choose another name",
        "tools/truncated.json: not valid JSON: Expecting property name enclosed in double quotes (line 1, "
        "column 23)",
    ]


def test_registry_save_canned_registers_edits_in_place_and_deletes(tmp_path: Path):
    tools_dir = tmp_path / "user" / "tools"  # created on first save
    registry = ToolRegistry()
    registry.register(Tool.from_function(lambda: "x", name="first"))
    definition = canned_tool_from_dict(WEATHER, source="test")

    saved = registry.save_canned(definition, tools_dir)

    assert registry.names() == ["first", "get_weather"] and saved.canned == definition
    assert json.loads((tools_dir / "get_weather.json").read_text()) == WEATHER
    assert [p.name for p in tools_dir.iterdir()] == ["get_weather.json"]  # no temporary file left behind
    registry.register(Tool.from_function(lambda: "y", name="last"))

    renamed = canned_tool_from_dict(weather(name="weather_now", reply={"text": "Rain."}), source="test")
    registry.save_canned(renamed, tools_dir, replacing="get_weather")

    assert registry.names() == ["first", "weather_now", "last"]  # in the edited tool's place
    assert sorted(p.name for p in tools_dir.iterdir()) == ["weather_now.json"]
    assert asyncio.run(registry.execute("weather_now", {"city": "Oslo"})).output == "Rain."
    fresh = ToolRegistry()
    assert fresh.load_directory(tools_dir) == [] and fresh.names() == ["weather_now"]

    with pytest.raises(ToolError, match="a tool named 'first' is already registered"):
        registry.save_canned(canned_tool_from_dict(weather(name="first"), source="test"), tools_dir)
    with pytest.raises(ToolError, match="tool 'first' is defined in Python, not in a JSON file"):
        registry.delete_canned("first", tools_dir)

    registry.delete_canned("weather_now", tools_dir)
    assert registry.names() == ["first", "last"] and list(tools_dir.iterdir()) == []


def test_registry_save_canned_that_cannot_write_leaves_the_registry_as_it_was(tmp_path: Path):
    not_a_folder = tmp_path / "tools"
    not_a_folder.write_text("")
    registry = ToolRegistry()
    with pytest.raises(ToolError, match=r"cannot save tool 'get_weather' to .*tools/get_weather\.json"):
        registry.save_canned(canned_tool_from_dict(WEATHER, source="test"), not_a_folder)
    assert "get_weather" not in registry


def test_write_canned_tool_replaces_the_file_whole(tmp_path: Path):
    first = canned_tool_from_dict(WEATHER, source="test")
    path = write_canned_tool(first, tmp_path)
    second = canned_tool_from_dict(weather(reply={"text": "x" * 100_000}), source="test")
    assert write_canned_tool(second, tmp_path) == path
    assert parse_canned_tool(path.read_text(), source=path.name) == second
    assert sorted(p.name for p in tmp_path.iterdir()) == ["get_weather.json"]


# --- the CLI loads the same files ------------------------------------------------------------


def test_canned_tool_cli_loads_json_tools_from_the_user_tools_folder(fake_server: FakeServerHandle, tmp_path: Path):
    """llmctl finds the folder as the window does (XDG_CONFIG_HOME/llm-workbench/tools on Linux) and reports
    a broken file on stderr without stopping."""
    config = write_config(tmp_path, fake_server)
    tools_dir = tmp_path / "xdg" / "llm-workbench" / "tools"  # where llmctl() points XDG_CONFIG_HOME
    tools_dir.mkdir(parents=True)
    (tools_dir / "get_weather.json").write_text(json.dumps(WEATHER))
    (tools_dir / "broken.json").write_text("{")
    fake_server.script({"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]}, {"text": "done"})

    out = llmctl(config, "run", "-m", "fake", "--tools", "get_weather", "--tool-mode", "native", "weather?")

    assert out.returncode == 0, out.stderr
    assert '[call native] get_weather({"city": "Paris"})' in out.stdout
    assert "] It is sunny in Paris.\n" in out.stdout and "\ndone\n" in out.stdout
    assert "[tools] skipped: tools/broken.json: not valid JSON: Expecting property name enclosed in double " \
           "quotes (line 1, column 2)" in out.stderr
    first = fake_server.requests()[0]["body"]
    assert [t["function"]["name"] for t in first["tools"]] == ["get_weather"]
    assert first["tools"][0]["function"]["parameters"] == WEATHER["parameters"]
