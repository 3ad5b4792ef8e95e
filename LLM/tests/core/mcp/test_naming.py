"""Function names for MCP tools (pure): <server>__<tool>, sanitised to [a-zA-Z0-9_-]{1,64}, collisions resolved."""

from __future__ import annotations

import re

import pytest

from LLM.core.mcp.naming import assign_names, prefixed_name, sanitise

VALID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@pytest.mark.parametrize("server, tool, expected", [
    pytest.param("files", "read_file", "files__read_file", id="plain"),
    pytest.param("my server", "get.weather", "my_server__get_weather", id="spaces-and-dots"),
    pytest.param("gh", "créer/issue", "gh__cr_er_issue", id="non-ascii-and-slash"),
    pytest.param("", "x", "___x", id="empty-server"),
    pytest.param("s" * 80, "tool", "s" * 58 + "__tool", id="long-server-cut-first"),
    pytest.param("srv", "t" * 80, "srv__" + "t" * 59, id="long-tool-cut"),
    pytest.param("s" * 40, "t" * 40, "s" * 22 + "__" + "t" * 40, id="both-long"),
])
def test_naming_prefixed_name(server, tool, expected):
    name = prefixed_name(server, tool)
    assert name == expected and VALID.match(name)


def test_naming_sanitise_keeps_allowed_characters():
    assert sanitise("a-B_9") == "a-B_9" and sanitise("") == "_"


def test_naming_collisions_get_a_suffix_and_are_reported():
    named, collisions = assign_names([("a.b", "c"), ("a_b", "c"), ("a b", "c"), ("x", "y")])
    assert [n.name for n in named] == ["a_b__c", "a_b__c_2", "a_b__c_3", "x__y"]
    assert len(collisions) == 2 and "'a_b__c'" in collisions[0] and "'a_b__c_2'" in collisions[0]


def test_naming_local_tool_names_are_never_taken():
    named, collisions = assign_names([("x", "y")], taken=["x__y"])
    assert named[0].name == "x__y_2" and "a local tool" in collisions[0]


def test_naming_suffix_stays_within_64_characters():
    long = ("s" * 30, "t" * 40)
    named, _ = assign_names([long, long])
    assert all(VALID.match(n.name) for n in named) and named[0].name != named[1].name
