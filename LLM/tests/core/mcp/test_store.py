"""The app's edits to mcp.json (pure text changes, atomic writes) and imports from other apps' files."""

from __future__ import annotations

import json

import pytest

from LLM.core.errors import McpConfigError
from LLM.core.mcp import store
from LLM.core.mcp.imports import known_sources, present_sources, servers_in

BASE = {"mcpServers": {"s": {"command": "x", "otherApp": 1}}, "globalShortcut": "Ctrl+Space"}


@pytest.mark.parametrize("change, expected", [
    pytest.param(store.auto_approve("s", "read"), {"command": "x", "otherApp": 1, "autoApprove": ["read"]},
                 id="auto-approve"),
    pytest.param(store.server_disabled("s", True), {"command": "x", "otherApp": 1, "disabled": True}, id="disable"),
    pytest.param(store.server_disabled("s", False), {"command": "x", "otherApp": 1}, id="enable"),
    pytest.param(store.tool_disabled("s", "rm", True), {"command": "x", "otherApp": 1, "disabledTools": ["rm"]},
                 id="tool-disable"),
    pytest.param(store.tool_disabled("s", "rm", False), {"command": "x", "otherApp": 1}, id="tool-enable"),
])
def test_store_edit_keeps_everything_else(change, expected):
    data = json.loads(store.edit_text(json.dumps(BASE), change))
    assert data["mcpServers"]["s"] == expected and data["globalShortcut"] == "Ctrl+Space"


def test_store_auto_approve_twice_lists_once():
    text = store.edit_text(json.dumps(BASE), store.auto_approve("s", "read"))
    text = store.edit_text(text, store.auto_approve("s", "read"))
    assert json.loads(text)["mcpServers"]["s"]["autoApprove"] == ["read"]


def test_store_refuses_to_change_a_broken_file_or_unknown_server(tmp_path):
    with pytest.raises(McpConfigError, match="not valid JSON"):
        store.edit_text("{", store.auto_approve("s", "t"))
    with pytest.raises(McpConfigError, match="mcpServers.nope"):
        store.edit_text(json.dumps(BASE), store.auto_approve("nope", "t"))


def test_store_edit_file_is_atomic_and_keeps_the_mode(tmp_path):
    path = tmp_path / "mcp.json"
    path.write_text(json.dumps(BASE))
    path.chmod(0o600)
    store.edit_file(path, store.auto_approve("s", "read"))
    assert json.loads(path.read_text())["mcpServers"]["s"]["autoApprove"] == ["read"]
    assert path.stat().st_mode & 0o777 == 0o600 and [p.name for p in tmp_path.iterdir()] == ["mcp.json"]


def test_store_add_servers_skips_existing_names():
    added, skipped = [], []
    text = store.edit_text(json.dumps(BASE), store.add_servers({"s": {"command": "y"}, "n": {"url": "http://h"}},
                                                              added, skipped))
    assert added == ["n"] and skipped == ["s"]
    assert json.loads(text)["mcpServers"]["s"]["command"] == "x"


@pytest.mark.parametrize("platform, fragment", [
    ("linux", ".config/Claude/claude_desktop_config.json"),
    ("darwin", "Library/Application Support/Claude/claude_desktop_config.json"),
    ("win32", "Roaming/Claude/claude_desktop_config.json"),
])
def test_imports_claude_desktop_location_per_platform(tmp_path, platform, fragment):
    sources = known_sources(tmp_path, platform, appdata=str(tmp_path / "AppData" / "Roaming"))
    assert sources[0].app == "claude" and sources[0].path.as_posix().endswith(fragment)


def test_imports_present_sources_and_their_servers(tmp_path):
    cursor = tmp_path / ".cursor" / "mcp.json"
    cursor.parent.mkdir()
    cursor.write_text(json.dumps({"mcpServers": {"gh": {"command": "gh-mcp", "env": {"T": "${env:GH}"}}}}))
    (found,) = present_sources(tmp_path)
    assert found.label == "Cursor"
    assert servers_in(cursor.read_text(), str(cursor)) == {"gh": {"command": "gh-mcp", "env": {"T": "${env:GH}"}}}
    with pytest.raises(McpConfigError, match="no \"mcpServers\""):
        servers_in("{}", "x.json")
