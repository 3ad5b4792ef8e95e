"""llmctl eval tools as a user runs it: a real subprocess against the fake server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from LLM.tests.fakes.handle import REPO_ROOT, FakeServerHandle

SMALL_SUITE = [
    {"tool": {"name": "get_weather", "result": "sunny", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}},
    {"id": "weather", "category": "single", "prompt": "Weather in Paris?", "tools": ["get_weather"],
     "expect": [{"name": "get_weather", "arguments": {"city": {"match": "icase", "value": "paris"}}}]},
    {"id": "hello", "category": "abstain", "prompt": "Hi!", "tools": ["get_weather"], "expect": []},
]
CALL_TEXT = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'


def llmctl(tmp_path: Path, server: FakeServerHandle, *args: str) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "backends.yaml"
    config.write_text(f"models:\n  fake:\n    backend: openai\n    server_url: {server.url}/v1\n"
                      "    model_name: fake-model\n")
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "LLM_STATE_DIR": str(tmp_path / "state"),
           "LLM_DATA_DIR": str(tmp_path / "data"), "XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    return subprocess.run([sys.executable, "-m", "LLM", "--config", str(config), *args], capture_output=True,
                          text=True, timeout=120, env=env, stdin=subprocess.DEVNULL, cwd=tmp_path)


def write_suite(tmp_path: Path, lines: list) -> Path:
    path = tmp_path / "small.jsonl"
    path.write_text("\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n")
    return path


def test_cli_eval_tools_json_has_every_mode_and_task(fake_server: FakeServerHandle, tmp_path: Path):
    fake_server.script(
        {"tool_calls": [{"name": "get_weather", "arguments": {"city": "paris"}}]}, {"text": "Hello!"},  # native
        {"text": CALL_TEXT}, {"text": "Hello!"},  # fallback
        {"text": "I think " + CALL_TEXT}, {"text": CALL_TEXT},  # constrained: the abstention task calls
    )
    suite = write_suite(tmp_path, SMALL_SUITE)
    out = llmctl(tmp_path, fake_server, "eval", "tools", "-m", "fake", "--suite", str(suite), "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["model"] == "fake" and list(data["modes"]) == ["native", "fallback", "constrained"]
    for mode in ("native", "fallback"):
        metrics = {k: v for k, v in data["modes"][mode].items() if k != "median_latency_ms"}
        assert metrics == {"tasks": 2, "valid_call_rate": 1.0, "tool_accuracy": 1.0, "argument_accuracy": 1.0,
                           "abstention_accuracy": 1.0}
    assert data["modes"]["constrained"]["abstention_accuracy"] == 0.0
    assert data["modes"]["constrained"]["valid_call_rate"] == 1.0
    assert set(data["modes"]["native"]) == {"tasks", "valid_call_rate", "tool_accuracy", "argument_accuracy",
                                            "abstention_accuracy", "median_latency_ms"}
    assert [(t["mode"], t["id"], t["passed"]) for t in data["tasks"]] == [
        ("native", "weather", True), ("native", "hello", True), ("fallback", "weather", True),
        ("fallback", "hello", True), ("constrained", "weather", True), ("constrained", "hello", False)]
    # Progress goes to stderr, one line per task, so stdout stays one JSON document.
    assert "[native 1/2] weather ... pass" in out.stderr and "[constrained 2/2] hello ... fail" in out.stderr


def test_cli_eval_tools_table_lists_modes_and_failures(fake_server: FakeServerHandle, tmp_path: Path):
    fake_server.script({"text": "It is sunny."}, {"text": "Hello!"})
    suite = write_suite(tmp_path, SMALL_SUITE)
    out = llmctl(tmp_path, fake_server, "eval", "tools", "-m", "fake", "--suite", str(suite), "--modes", "fallback")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("mode "))
    assert lines[header].split() == ["mode", "tasks", "valid", "calls", "tool", "acc", "args", "acc", "abstention",
                                     "median", "ms"]
    assert lines[header + 1].split()[:6] == ["fallback", "2", "0.00", "0.00", "0.00", "1.00"]
    assert "failures (fallback, 1 of 2):" in out.stdout
    assert "  weather [single]: no call (expected get_weather); answered 'It is sunny.'" in out.stdout


def test_cli_eval_tools_bad_suite_is_one_line_naming_line_and_key(fake_server: FakeServerHandle, tmp_path: Path):
    suite = write_suite(tmp_path, [SMALL_SUITE[0], {**SMALL_SUITE[1], "expect": [{"name": "nope"}]}])
    out = llmctl(tmp_path, fake_server, "eval", "tools", "-m", "fake", "--suite", str(suite))
    assert out.returncode == 1
    assert out.stderr.strip().splitlines()[-1] == (
        f"error: {suite}:2: expect[0].name: 'nope' is not one of the task's tools (get_weather)")
    assert "Traceback" not in out.stderr and fake_server.requests() == []


def test_cli_eval_tools_unknown_mode_is_an_error(fake_server: FakeServerHandle, tmp_path: Path):
    out = llmctl(tmp_path, fake_server, "eval", "tools", "-m", "fake", "--modes", "native,auto")
    assert out.returncode == 1 and "error: modes: unknown mode 'auto'" in out.stderr
