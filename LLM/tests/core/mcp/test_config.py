"""mcp.json parsing (pure): the shapes other apps write, ${env:NAME}, and problems that name the key."""

from __future__ import annotations

import json

import pytest

from LLM.core.errors import ConfigError, McpConfigError
from LLM.core.mcp.config import (
    DEFAULT_TIMEOUT_S,
    McpServerConfig,
    default_mcp_config_path,
    load_mcp_config,
    masked_url,
    parse_mcp_config,
)

ENV = {"TOKEN": "s3cret", "HOME": "/home/u"}


def parse(servers: dict, environ: dict = ENV):
    return parse_mcp_config(json.dumps({"mcpServers": servers}), "mcp.json", environ)


VALID = [
    pytest.param({"command": "npx", "args": ["-y", "server"]},
                 {"transport": "stdio", "command": "npx", "args": ("-y", "server"), "disabled": False,
                  "timeout_s": DEFAULT_TIMEOUT_S}, id="claude-desktop-stdio"),
    pytest.param({"command": "uvx", "args": ["srv"], "env": {"API_KEY": "${env:TOKEN}"}, "cwd": "${env:HOME}/x"},
                 {"env": {"API_KEY": "s3cret"}, "cwd": "/home/u/x"}, id="env-expansion"),
    pytest.param({"url": "https://example.com/mcp", "headers": {"Authorization": "Bearer ${env:TOKEN}"}},
                 {"transport": "http", "url": "https://example.com/mcp",
                  "headers": {"Authorization": "Bearer s3cret"}}, id="cursor-remote"),
    pytest.param({"url": "http://127.0.0.1:9/sse"}, {"transport": "sse"}, id="sse-by-path"),
    pytest.param({"url": "http://127.0.0.1:9/x", "type": "streamableHttp"}, {"transport": "http"}, id="cline-type"),
    pytest.param({"command": "x", "disabled": True, "timeout": 5, "autoApprove": ["read"], "alwaysAllow": ["list"],
                  "disabledTools": ["rm"]},
                 {"disabled": True, "timeout_s": 5.0, "auto_approve": frozenset({"read", "list"}),
                  "disabled_tools": frozenset({"rm"})}, id="cline-keys"),
    pytest.param({"command": "x", "someOtherAppKey": {"a": 1}}, {"command": "x"}, id="unknown-keys-ignored"),
]


@pytest.mark.parametrize("entry, expected", VALID)
def test_mcp_config_valid_entries(entry, expected):
    config = parse({"srv": entry})
    assert config.invalid == {}
    server = config.servers["srv"]
    for key, value in expected.items():
        assert getattr(server, key) == value, key


INVALID = [
    pytest.param({"args": ["x"]}, "mcpServers.srv: needs \"command\"", id="neither-command-nor-url"),
    pytest.param({"command": "x", "url": "http://a"}, "not both", id="both"),
    pytest.param({"command": 3}, "mcpServers.srv.command: must be a string, got 3", id="command-type"),
    pytest.param({"command": " "}, "mcpServers.srv.command: must not be empty", id="command-empty"),
    pytest.param({"command": "x", "args": "a b"}, "mcpServers.srv.args: must be a list of strings", id="args-string"),
    pytest.param({"command": "x", "args": ["a", 1]}, "mcpServers.srv.args[1]: must be a string", id="args-item"),
    pytest.param({"command": "x", "env": {"K": 1}}, "mcpServers.srv.env.K: must be a string", id="env-value"),
    pytest.param({"command": "x", "env": {"K": "${env:NOPE}"}}, "mcpServers.srv.env.K: uses ${env:NOPE}, which "
                 "is not set", id="env-unset"),
    pytest.param({"url": "ftp://x"}, "mcpServers.srv.url: must start with http:// or https://", id="url-scheme"),
    pytest.param({"command": "x", "timeout": 0}, "mcpServers.srv.timeout: must be a positive number", id="timeout"),
    pytest.param({"command": "x", "disabled": "yes"}, "mcpServers.srv.disabled: must be true or false",
                 id="disabled-type"),
    pytest.param({"command": "x", "autoApprove": "all"}, "mcpServers.srv.autoApprove: must be a list of tool names",
                 id="auto-approve-type"),
    pytest.param({"url": "http://x", "type": "carrier-pigeon"}, "mcpServers.srv.type: must be stdio, http or sse",
                 id="type"),
    pytest.param("npx server", "mcpServers.srv: must be an object", id="not-an-object"),
]


@pytest.mark.parametrize("entry, problem", INVALID)
def test_mcp_config_invalid_entry_names_the_key_and_others_still_load(entry, problem):
    config = parse({"srv": entry, "good": {"command": "ok"}})
    assert list(config.servers) == ["good"]
    (first, *_), = config.invalid.values()
    assert first.startswith("mcp.json: ") and problem in first, first


FILE_PROBLEMS = [
    pytest.param("{not json", "not valid JSON (line 1", id="not-json"),
    pytest.param("[]", "must be a JSON object", id="not-object"),
    pytest.param('{"mcpServers": []}', "mcpServers: must be an object", id="servers-not-object"),
]


@pytest.mark.parametrize("text, message", FILE_PROBLEMS)
def test_mcp_config_unusable_file_raises_a_config_error(text, message):
    with pytest.raises(McpConfigError, match="^mcp.json: ") as info:
        parse_mcp_config(text, "mcp.json", ENV)
    assert message in str(info.value) and isinstance(info.value, ConfigError)


def test_mcp_config_empty_file_and_missing_file_have_no_servers(tmp_path):
    assert parse_mcp_config("  ", "mcp.json").servers == {}
    assert load_mcp_config(tmp_path / "absent.json").servers == {}


def test_mcp_config_keeps_file_order_and_target_hides_env(tmp_path):
    config = parse({"b": {"command": "run", "args": ["--x"], "env": {"K": "${env:TOKEN}"}}, "a": {"url": "http://h/m"}})
    assert list(config.servers) == ["b", "a"]
    assert config.servers["b"].target == "run --x" and "s3cret" not in config.servers["b"].target


@pytest.mark.parametrize("entry, shown", [
    pytest.param({"command": "srv", "args": ["--token", "${env:TOKEN}"]}, "srv --token ${env:TOKEN}", id="args"),
    pytest.param({"command": "srv", "args": ["--key=${env:TOKEN}", "https://h/x?k=${env:TOKEN}&plain=1"]},
                 "srv --key=${env:TOKEN} https://h/x?k=***&plain=***", id="url-in-args"),
    pytest.param({"url": "https://h/mcp?token=${env:TOKEN}"}, "https://h/mcp?token=***", id="url-query"),
    pytest.param({"url": "https://me:${env:TOKEN}@h:8443/mcp"}, "https://me:***@h:8443/mcp", id="url-password"),
    pytest.param({"url": "https://${env:TOKEN}@h/mcp"}, "https://***@h/mcp", id="url-user-token"),
    pytest.param({"url": "https://h/mcp?literal-key#frag=x"}, "https://h/mcp?***#frag=***", id="literal-query"),
])
def test_mcp_config_display_form_never_holds_a_secret(entry, shown):
    """Regression (#19 item 2): the target people see showed ${env:NAME} values of `args` and `url` expanded."""
    server = parse({"s": entry}).servers["s"]
    assert server.target == shown and "s3cret" not in server.target


def test_mcp_config_redact_puts_env_values_back_as_written():
    server = parse({"s": {"url": "https://h/mcp?token=${env:TOKEN}"}}).servers["s"]
    message = "Client error '401' for url 'https://h/mcp?token=s3cret'; token s3cret refused"
    assert server.redact(message) == "Client error '401' for url 'https://h/mcp?token=***'; token ${env:TOKEN} refused"
    built = McpServerConfig(name="x", transport="http", url="https://h/?k=v")  # built in code: masked all the same
    assert built.target == "https://h/?k=***" and masked_url("http://[::1/x?a=b") == "http://[::1/x?***"


def test_mcp_config_path_env_override(tmp_path, monkeypatch):
    monkeypatch.setenv("LLM_MCP_CONFIG", str(tmp_path / "m.json"))
    assert default_mcp_config_path() == tmp_path / "m.json"
    monkeypatch.delenv("LLM_MCP_CONFIG")
    assert default_mcp_config_path().name == "mcp.json"
