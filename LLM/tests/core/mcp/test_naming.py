"""Function names for MCP tools (pure): <prefix>__<tool>, sanitised to [a-zA-Z0-9_-]{1,64}, stable per configuration,
collisions resolved."""

from __future__ import annotations

import itertools
import re

import pytest

from LLM.core.mcp.naming import (
    assign_names,
    log_file_name,
    prefix_collisions,
    prefixed_name,
    sanitise,
    server_prefixes,
)

VALID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@pytest.mark.parametrize("server, tool, expected", [
    pytest.param("files", "read_file", "files__read_file", id="plain"),
    pytest.param("my server", "get.weather", "my_server__get_weather", id="spaces-and-dots"),
    pytest.param("gh", "créer/issue", "gh__cr_er_issue", id="non-ascii-and-slash"),
    pytest.param("", "x", "mcp__x", id="empty-server"),
    pytest.param("s" * 80, "tool", "s" * 32 + "__tool", id="long-server-cut-to-32"),
    pytest.param("srv", "t" * 80, "srv__" + "t" * 59, id="long-tool-cut"),
    pytest.param("a__b_", "c", "a_b__c", id="no-double-underscore-or-trailing-underscore-in-a-prefix"),
])
def test_naming_prefixed_name(server, tool, expected):
    name = prefixed_name(server_prefixes([server])[server], tool)
    assert name == expected and VALID.match(name)


def test_naming_sanitise_keeps_allowed_characters():
    assert sanitise("a-B_9") == "a-B_9" and sanitise("") == "_"


@pytest.mark.parametrize("servers, expected", [
    pytest.param(["x.y", "x_y"], {"x.y": "x_y_2", "x_y": "x_y"}, id="a-name-that-is-its-prefix-keeps-it"),
    pytest.param(["x_y", "x.y"], {"x.y": "x_y_2", "x_y": "x_y"}, id="whatever-the-order"),
    pytest.param(["a.b", "a b", "a/b"], {"a.b": "a_b", "a b": "a_b_2", "a/b": "a_b_3"}, id="else-file-order"),
    pytest.param(["x.y", "x_y_2", "x_y"], {"x.y": "x_y_3", "x_y_2": "x_y_2", "x_y": "x_y"}, id="suffix-taken"),
    pytest.param(["s" * 40 + "1", "s" * 40 + "2"], {"s" * 40 + "1": "s" * 32, "s" * 40 + "2": "s" * 30 + "_2"},
                 id="long-names-cut-alike"),
])
def test_naming_server_prefixes_are_distinct(servers, expected):
    assert server_prefixes(servers) == expected


def test_naming_tools_of_servers_that_sanitise_alike_never_share_a_name():
    """Regression (#19 item 3): `x.y` and `x_y` (or long names cut alike) both named their tool `x_y__add`, and
    which one got it depended on which server became ready first."""
    servers = ["x.y", "x_y", "s" * 40 + "1", "s" * 40 + "2"]
    prefixes = server_prefixes(servers)
    tools = ["add", "t" * 70, "t" * 70 + "x"]
    names = [n.name for s in servers for n in assign_names(s, prefixes[s], tools)[0]]
    assert len(set(names)) == len(names) and all(VALID.match(n) for n in names)
    # The names of one server depend only on the configuration, not on which other servers are ready.
    for order in itertools.permutations(servers):
        again = server_prefixes(servers)
        assert {s: assign_names(s, again[s], tools)[0] for s in order} == \
            {s: assign_names(s, prefixes[s], tools)[0] for s in servers}


def test_naming_collisions_within_a_server_get_a_suffix_and_are_reported():
    named, collisions = assign_names("a", "a", ["b.c", "b_c", "b c", "x"])
    assert [n.name for n in named] == ["a__b_c", "a__b_c_2", "a__b_c_3", "a__x"]
    assert len(collisions) == 2 and "'a__b_c'" in collisions[0] and "'a__b_c_2'" in collisions[0]


def test_naming_local_tool_names_are_never_taken():
    named, collisions = assign_names("x", "x", ["y"], taken=["x__y"])
    assert named[0].name == "x__y_2" and "a local tool" in collisions[0]


def test_naming_suffix_stays_within_64_characters():
    named, _ = assign_names("s", "s" * 30, ["t" * 40, "t" * 40])
    assert all(VALID.match(n.name) for n in named) and named[0].name != named[1].name


def test_naming_prefix_collisions_are_reported():
    (note,) = prefix_collisions(server_prefixes(["x.y", "x_y"]))
    assert "'x.y'" in note and "'x_y_2__…'" in note and "server 'x_y' has 'x_y'" in note


def test_naming_log_files_of_servers_that_sanitise_alike_differ():
    assert log_file_name("broken") == "mcp-broken.log"
    assert log_file_name("x.y") != log_file_name("x_y") and log_file_name("x.y").startswith("mcp-x_y-")
