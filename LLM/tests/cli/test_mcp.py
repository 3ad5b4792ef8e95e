"""llmctl mcp and llmctl run --tools with MCP tools, as a user runs them: real subprocesses, the fake MCP server over
stdio and the scripted fake OpenAI server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from LLM.tests.fakes.handle import REPO_ROOT, FakeServerHandle
from LLM.tests.fakes.mcp_handle import McpHttpServer, stdio_entry, write_mcp_json

pytest.importorskip("mcp", reason="the MCP SDK (pip install '.[mcp]') is not installed")

ADD = {"name": "fake__add", "arguments": {"a": 2, "b": 3}}


def llmctl(tmp_path: Path, *args: str, servers: dict | None = None, stdin: str = "", home: Path | None = None,
           backends: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    mcp_json = write_mcp_json(tmp_path / "mcp.json", servers if servers is not None else {"fake": stdio_entry()})
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "LLM_STATE_DIR": str(tmp_path / "state"),
           "XDG_CONFIG_HOME": str(tmp_path / "xdg"), "LLM_MCP_CONFIG": str(mcp_json), **(env or {})}
    if home is not None:
        env["HOME"] = str(home)
    config = ["--config", str(backends)] if backends is not None else []
    return subprocess.run([sys.executable, "-m", "LLM", *config, *args], capture_output=True, text=True, timeout=90,
                          env=env, input=stdin)


def backends_for(tmp_path: Path, server: FakeServerHandle) -> Path:
    path = tmp_path / "backends.yaml"
    path.write_text(f"models:\n  fake:\n    backend: openai\n    server_url: {server.url}/v1\n    model_name: fake-model\n"
                    "    tools: native\n")
    return path


def test_cli_mcp_list_shows_states_prefixed_tools_and_one_line_per_failure(tmp_path):
    servers = {"fake": stdio_entry(autoApprove=["env"]), "broken": stdio_entry("--exit-at-start"),
               "off": {"command": "nothing", "disabled": True}, "bad": {"args": []}}
    out = llmctl(tmp_path, "mcp", "list", servers=servers)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].endswith("mcp.json: 4 servers")
    assert any(line.startswith("fake ") and " ready " in line for line in lines)
    assert any(line.strip().startswith("fake__add") and "Add two integers." in line for line in lines)
    assert any(line.strip().startswith("fake__env") and "[auto-approved]" in line for line in lines)
    broken = lines.index(next(line for line in lines if line.startswith("broken ")))
    assert " failed " in lines[broken]
    assert "exited before it was ready (stderr: fake mcp server: cannot start: no such database)" in lines[broken + 1]
    assert any(line.startswith("off ") and "disabled" in line for line in lines)
    assert any(line.startswith("bad ") and "invalid" in line and "mcpServers.bad" in line for line in lines)


def test_cli_mcp_list_json(tmp_path):
    out = llmctl(tmp_path, "mcp", "list", "--json")
    data = json.loads(out.stdout)
    (fake,) = data["servers"]
    assert fake["state"] == "ready" and "fake__grow" in [t["name"] for t in fake["tools"]]


def test_cli_mcp_call_one_tool_directly(tmp_path):
    ok = llmctl(tmp_path, "mcp", "call", "fake", "add", '{"a": 2, "b": 3}')
    assert (ok.returncode, ok.stdout.strip()) == (0, "5")
    failed = llmctl(tmp_path, "mcp", "call", "fake", "boom", '{"message": "disk on fire"}')
    assert failed.returncode == 1 and "disk on fire" in failed.stdout
    bad = llmctl(tmp_path, "mcp", "call", "fake", "add", "{a: 1}")
    assert bad.returncode == 2 and "not JSON" in bad.stderr
    unknown = llmctl(tmp_path, "mcp", "call", "nope", "add")
    assert unknown.returncode == 1 and "no MCP server 'nope'" in unknown.stderr


def test_cli_run_tools_asks_before_an_mcp_call_and_runs_it_on_yes(fake_server, tmp_path):
    fake_server.script({"tool_calls": [ADD]}, {"text": "It is 5."})
    out = llmctl(tmp_path, "run", "-m", "fake", "--tools", "fake__add", "add 2 and 3",
                 backends=backends_for(tmp_path, fake_server), stdin="y\n")
    assert out.returncode == 0, out.stderr
    assert "MCP server 'fake' tool fake__add: Add two integers." in out.stdout and "[y/N]" in out.stdout
    assert "[result ok" in out.stdout and "It is 5." in out.stdout
    tool_message = fake_server.requests()[1]["body"]["messages"][-1]
    assert tool_message["role"] == "tool" and tool_message["content"] == "5"


def test_cli_run_tools_no_answer_denies_and_the_model_is_told(fake_server, tmp_path):
    fake_server.script({"tool_calls": [ADD]}, {"text": "Denied."})
    out = llmctl(tmp_path, "run", "-m", "fake", "--tools", "fake__add", "add", backends=backends_for(tmp_path, fake_server),
                 stdin="n\n")
    assert out.returncode == 0 and "denied" in out.stdout
    assert "denied" in fake_server.requests()[1]["body"]["messages"][-1]["content"]


def test_cli_run_tools_json_asks_on_stderr_and_stdout_is_one_document(fake_server, tmp_path):
    """Regression (#19, `run --json`): the approval question and the MCP tool's description were printed on
    stdout, before the JSON document, so `llmctl run --json ... | jq` failed whenever a call asked first."""
    fake_server.script({"tool_calls": [ADD]}, {"text": "It is 5."})
    out = llmctl(tmp_path, "run", "--json", "-m", "fake", "--tools", "fake__add", "add 2 and 3",
                 backends=backends_for(tmp_path, fake_server), stdin="y\n")
    assert out.returncode == 0, out.stderr
    json.loads(out.stdout)  # the whole of stdout is the one document
    assert "[y/N]" in out.stderr and "MCP server 'fake' tool fake__add" in out.stderr
    assert fake_server.requests()[1]["body"]["messages"][-1]["content"] == "5"


def test_cli_run_tools_yes_and_auto_approve_skip_the_question(fake_server, tmp_path):
    backends = backends_for(tmp_path, fake_server)
    fake_server.script({"tool_calls": [ADD]}, {"text": "5"})
    out = llmctl(tmp_path, "run", "-m", "fake", "--tools", "fake__add", "--yes", "add", backends=backends)
    assert out.returncode == 0 and "[y/N]" not in out.stdout and "[result ok" in out.stdout
    fake_server.script({"tool_calls": [ADD]}, {"text": "5"})
    out = llmctl(tmp_path, "run", "-m", "fake", "--tools", "fake__add", "add", backends=backends,
                 servers={"fake": stdio_entry(autoApprove=["add"])})
    assert out.returncode == 0 and "[y/N]" not in out.stdout and "[result ok" in out.stdout


def test_cli_run_tools_failed_mcp_server_is_one_line(fake_server, tmp_path):
    out = llmctl(tmp_path, "run", "-m", "fake", "--tools", "broken__add,calculator", "add",
                 backends=backends_for(tmp_path, fake_server), servers={"broken": stdio_entry("--exit-at-start")})
    assert out.returncode == 1
    (line,) = out.stderr.strip().splitlines()
    assert line.startswith("error: tool 'broken__add' is not available: its MCP server 'broken' failed")


def test_cli_mcp_import_from_cursor(tmp_path):
    home = tmp_path / "home"
    (home / ".cursor").mkdir(parents=True)
    (home / ".cursor" / "mcp.json").write_text(json.dumps({"mcpServers": {"gh": {"command": "gh-mcp"},
                                                                          "fake": {"command": "other"}}}))
    out = llmctl(tmp_path, "mcp", "import", "--from", "cursor", home=home)
    assert out.returncode == 0 and "added gh" in out.stdout and "already in mcp.json: fake" in out.stdout
    servers = json.loads((tmp_path / "mcp.json").read_text())["mcpServers"]
    assert servers["gh"] == {"command": "gh-mcp"} and servers["fake"]["command"] == sys.executable


def test_cli_mcp_list_never_shows_env_secrets(tmp_path):
    """Regression (#19 item 2): `llmctl mcp list` (text and --json) showed ${env:NAME} values of `args` and `url`
    expanded, keys included."""
    http = McpHttpServer().wait_ready()
    try:
        url = http.url.replace("http://", "http://me:${env:MCP_SECRET}@") + "?token=${env:MCP_SECRET}"
        servers = {"local": stdio_entry(args=["-X", "key=${env:MCP_SECRET}", "-m", "LLM.tests.fakes.mcp_server"]),
                   "remote": {"url": url, "timeout": 10}}
        env = {"MCP_SECRET": "s3cr3t-value-42"}
        text = llmctl(tmp_path, "mcp", "list", servers=servers, env=env)
        as_json = llmctl(tmp_path, "mcp", "list", "--json", servers=servers, env=env)
    finally:
        http.stop()
    assert text.returncode == 0 and as_json.returncode == 0, text.stderr + as_json.stderr
    for out in (text, as_json):
        assert "s3cr3t" not in out.stdout + out.stderr
    assert "key=${env:MCP_SECRET} -m LLM.tests.fakes.mcp_server" in text.stdout
    rows = {row["name"]: row for row in json.loads(as_json.stdout)["servers"]}
    assert [rows[name]["state"] for name in ("local", "remote")] == ["ready", "ready"]
    assert rows["remote"]["target"].endswith("/mcp?token=***") and "me:***@" in rows["remote"]["target"]


def test_cli_run_tools_always_allows_that_servers_tool_for_the_run(fake_server, tmp_path):
    """The answer "a" allows the tool for the rest of the run (kept by server and tool, in the core policy)."""
    second = {"name": "fake__add", "arguments": {"a": 1, "b": 1}}
    fake_server.script({"tool_calls": [ADD]}, {"tool_calls": [second]}, {"text": "Done."})
    out = llmctl(tmp_path, "run", "-m", "fake", "--tools", "fake__add", "add twice",
                 backends=backends_for(tmp_path, fake_server), stdin="a\n")
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("[y/N]") == 1 and out.stdout.count("[result ok") == 2 and "Done." in out.stdout
