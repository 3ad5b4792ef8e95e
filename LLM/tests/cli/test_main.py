"""llmctl as a user runs it: a real subprocess against the fake server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from LLM.tests.cli.harness import llmctl, write_config
from LLM.tests.fakes.handle import REPO_ROOT, FakeServerHandle, wait_until


def test_cli_run_streams_answer(fake_server: FakeServerHandle, tmp_path: Path):
    fake_server.script({"text": "streamed answer"})
    out = llmctl(write_config(tmp_path, fake_server), "run", "-m", "fake", "hello")
    assert out.returncode == 0 and out.stdout.strip() == "streamed answer"


def test_cli_run_json_prints_inference_response(fake_server: FakeServerHandle, tmp_path: Path):
    fake_server.script({"text": "json answer"})
    out = llmctl(write_config(tmp_path, fake_server), "run", "-m", "fake", "--json", "hello")
    data = json.loads(out.stdout)
    assert data["generated_text"] == "json answer" and data["finish_reason"] == "stop"


def test_cli_run_json_ctrl_c_prints_the_partial_answer_as_cancelled(fake_server: FakeServerHandle, tmp_path: Path):
    import signal

    fake_server.script({"chunks": ["partial "] * 300, "delay_s": 0.05})
    config = write_config(tmp_path, fake_server)
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "LLM_STATE_DIR": str(tmp_path / "state")}
    proc = subprocess.Popen([sys.executable, "-m", "LLM", "--config", str(config), "run", "-m", "fake", "--json", "go"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        wait_until(lambda: fake_server.chunks_sent() >= 3, 20, "a few chunks streamed")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    data = json.loads(out)
    assert data["finish_reason"] == "cancelled" and data["error_type"] == "GenerationCancelled"
    assert data["generated_text"].startswith("partial ")


def test_cli_run_with_tools_shows_each_step(fake_server: FakeServerHandle, tmp_path: Path):
    fake_server.script({"tool_calls": [{"name": "calculator", "arguments": {"expression": "7*6"}}]}, {"text": "42!"})
    out = llmctl(write_config(tmp_path, fake_server), "run", "-m", "fake", "--tools", "calculator,get_current_time",
                 "--tool-mode", "native", "what is 7*6")
    assert out.returncode == 0, out.stderr
    assert "--- step 1 (native, tools sent)" in out.stdout
    assert '[call native] calculator({"expression": "7*6"})' in out.stdout
    assert "[result ok" in out.stdout and "] 42" in out.stdout and out.stdout.rstrip().endswith("ms]")
    assert "42!" in out.stdout


@pytest.mark.parametrize("tools", [
    pytest.param((), id="answer"),
    pytest.param(("--tools", "calculator", "--tool-mode", "native"), id="tool-run"),
])
def test_cli_run_json_stdout_is_one_json_document(fake_server: FakeServerHandle, tmp_path: Path,
                                                  tools: tuple[str, ...]):
    """Regression (#19, run --json): with --tools, the streamed trace came on stdout before the JSON, so
    `llmctl run --json ... | jq` failed. stdout carries only the document; a tool run's trace goes to stderr."""
    fake_server.script({"tool_calls": [{"name": "calculator", "arguments": {"expression": "7*6"}}]} if tools
                       else {"text": "42!"}, {"text": "42!"})
    out = llmctl(write_config(tmp_path, fake_server), "run", "-m", "fake", "--json", *tools, "what is 7*6")
    assert out.returncode == 0, out.stderr
    document = json.loads(out.stdout)  # the whole of stdout, nothing before or after
    if tools:
        assert document["final_text"] == "42!" and len(document["steps"]) == 2
        assert "--- step 1 (native, tools sent)" in out.stderr and '[call native] calculator' in out.stderr
    else:
        assert document["generated_text"] == "42!"


def _saved_chat(fake_server: FakeServerHandle, config: Path) -> str:
    fake_server.script({"text": "Paris."})
    out = llmctl(config, "chat", "-m", "fake", stdin="Capital of France?\n")
    assert out.returncode == 0, out.stderr
    [saved] = json.loads(llmctl(config, "history", "list", "--json").stdout)
    return saved["id"]


def test_cli_chat_resume_uses_the_saved_chats_model(fake_server: FakeServerHandle, tmp_path: Path):
    """Regression (#19, chat --resume): resuming refused to start without -m although the saved chat knows
    which model it was with."""
    config = write_config(tmp_path, fake_server)
    chat_id = _saved_chat(fake_server, config)
    fake_server.script({"text": "Yes, the Seine."})
    out = llmctl(config, "chat", "--resume", chat_id[:8], stdin="On a river?\n")
    assert out.returncode == 0, out.stderr
    assert "Chatting with fake" in out.stdout and "Yes, the Seine." in out.stdout
    sent = fake_server.requests()[-1]["body"]["messages"]
    assert [m["content"] for m in sent] == ["Capital of France?", "Paris.", "On a river?"]


def test_cli_chat_resume_names_a_saved_model_no_longer_configured(fake_server: FakeServerHandle, tmp_path: Path):
    config = write_config(tmp_path, fake_server)
    chat_id = _saved_chat(fake_server, config)
    config.write_text(f"models:\n  other:\n    backend: openai\n    server_url: {fake_server.url}/v1\n"
                      "    model_name: fake-model\n  second:\n    backend: openai\n"
                      f"    server_url: {fake_server.url}/v1\n    model_name: fake-model\n")
    out = llmctl(config, "chat", "--resume", chat_id[:8], stdin="hello?\n")
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert "'fake'" in out.stderr and "other, second" in out.stderr and "-m" in out.stderr
    assert len(fake_server.requests()) == 1  # only the first chat's question


def test_cli_chat_needs_a_model_or_a_chat_to_resume(fake_server: FakeServerHandle, tmp_path: Path):
    out = llmctl(write_config(tmp_path, fake_server), "chat")
    assert out.returncode == 2 and "-m/--model" in out.stderr and "--resume" in out.stderr


def test_cli_errors_are_one_line_without_traceback(fake_server: FakeServerHandle, tmp_path: Path):
    config = write_config(tmp_path, fake_server)
    for args, expected in [
        (("run", "-m", "missing", "hi"), "error: Model 'missing' not found in config"),
        (("run", "-m", "broken", "hi"), "models.broken.port: must be 1-65535, got 99999"),
        (("run", "-m", "fake", "--temperature", "9", "hi"), "temperature"),
    ]:
        out = llmctl(config, *args)
        assert out.returncode == 1, out
        assert expected in out.stderr and "Traceback" not in out.stderr
        assert len(out.stderr.strip().splitlines()) == 1, out.stderr


def test_cli_models_lists_valid_and_invalid_entries(fake_server: FakeServerHandle, tmp_path: Path):
    out = llmctl(write_config(tmp_path, fake_server), "models")
    lines = out.stdout.splitlines()
    assert lines[0].split()[:3] == ["fake", "openai", "external"]
    assert lines[1].startswith("broken") and "invalid" in lines[1]


def test_cli_probe_reports_steps(fake_server: FakeServerHandle, tmp_path: Path):
    out = llmctl(write_config(tmp_path, fake_server), "probe", "-m", "fake")
    assert out.returncode == 0
    assert [line.split()[0] for line in out.stdout.splitlines()] == ["ok", "ok", "ok"]


def test_cli_chat_keeps_history_and_ctrl_c_stops_only_the_answer(fake_server: FakeServerHandle, tmp_path: Path):
    import signal

    config = write_config(tmp_path, fake_server)
    fake_server.script({"text": "first answer"}, {"text": "slow " * 500, "delay_s": 0.05}, {"text": "third"})
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "LLM_STATE_DIR": str(tmp_path / "state")}
    proc = subprocess.Popen([sys.executable, "-m", "LLM", "--config", str(config), "chat", "-m", "fake"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        proc.stdin.write("hello\n")
        proc.stdin.flush()
        wait_until(lambda: len(fake_server.requests()) == 1, 20, "first request")
        proc.stdin.write("tell me more\n")
        proc.stdin.flush()
        wait_until(lambda: len(fake_server.requests()) == 2, 20, "second request")
        proc.send_signal(signal.SIGINT)
        assert fake_server.wait_for_event("disconnect", 10)["after_chunks"] < 500
        proc.stdin.write("and now?\n/exit\n")
        proc.stdin.flush()
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "first answer" in out and "[cancelled]" in out and "third" in out
    contents = [m["content"] for m in fake_server.requests()[2]["body"]["messages"]]
    assert contents[:2] == ["hello", "first answer"] and contents[-1] == "and now?"
    # The stopped answer's partial text is kept, as in the window; stopped before its first chunk
    # arrived, the empty exchange is left out (never two user turns in a row).
    kept = contents[2:-1]
    assert kept == [] or (kept[0] == "tell me more" and kept[1].startswith("slow ") and len(kept) == 2), contents


def test_cli_models_lists_a_shared_server_with_its_adapters(tmp_path: Path):
    """The guide's one-entry-per-adapter yaml: one server line, then the base and each adapter under it."""
    for name in ("pirate", "poet"):
        (tmp_path / name).mkdir()
    config = tmp_path / "backends.yaml"
    config.write_text("models:\n"
                      "  base: {base_model: fake.gguf, port: 9301}\n"
                      "  pirate: {base_model: fake.gguf, port: 9302, adapter_dir: pirate}\n"
                      "  poet: {base_model: fake.gguf, port: 9303, adapter_dir: poet}\n"
                      "  alone: {base_model: fake.gguf, port: 9304, share_server: false}\n")
    out = llmctl(config, "models")
    lines = out.stdout.splitlines()
    assert out.returncode == 0, out.stderr
    assert lines[0].startswith("server base: llama_cpp, base fake.gguf, port 9301, pid -") and "2 adapter(s)" in lines[0]
    assert [line.split()[0] for line in lines[1:4]] == ["base", "pirate", "poet"]
    assert all(line.startswith("  ") for line in lines[1:4])
    assert lines[1].endswith("[no adapter]") and lines[2].endswith("[pirate]") and lines[3].endswith("[poet]")
    assert lines[4].strip() == f"model file not found: {tmp_path / 'fake.gguf'}"  # under the server: what it can do
    assert lines[5].split()[:2] == ["alone", "llama_cpp"]


def test_cli_config_explains_a_port_shared_across_servers(tmp_path: Path):
    config = tmp_path / "backends.yaml"
    config.write_text("models:\n"
                      "  a: {base_model: one.gguf, port: 9301}\n"
                      "  b: {base_model: two.gguf, port: 9301}\n")
    out = llmctl(config, "models")
    assert "b" in out.stdout and "port 9301 is already used by model 'a'" in out.stdout
    assert "base_model differs" in out.stdout and "share a port only when they share a server" in out.stdout


def test_cli_run_json_max_tokens_spent_reasoning_exits_1(fake_server: FakeServerHandle, tmp_path: Path):
    """Regression (#20 review): with the session, `run --json` printed MaxTokensExhaustedError in the document
    but exited 0 (and said it saved the run), so scripts took an empty answer for a success."""
    fake_server.script({"reasoning": "thinking hard", "text": "", "finish_reason": "length"})
    out = llmctl(write_config(tmp_path, fake_server), "run", "-m", "fake", "--json", "Hi")
    document = json.loads(out.stdout)
    assert out.returncode == 1 and document["error_type"] == "MaxTokensExhaustedError"
    assert "saved as" not in out.stderr
    assert "thinking hard" not in out.stderr  # --json: the answer is in the document only


def test_cli_run_saves_and_says_how_to_resume(fake_server: FakeServerHandle, tmp_path: Path):
    fake_server.script({"text": "Paris."}, {"text": "On the Seine."})
    config = write_config(tmp_path, fake_server)
    out = llmctl(config, "run", "-m", "fake", "Capital of France?")
    assert out.returncode == 0 and out.stdout == "Paris.\n"
    short_id = out.stderr.split("llmctl chat --resume ")[1].split(")")[0]
    resumed = llmctl(config, "chat", "--resume", short_id, stdin="On a river?\n")
    assert "On the Seine." in resumed.stdout
    assert [m["content"] for m in fake_server.requests()[-1]["body"]["messages"]] == [
        "Capital of France?", "Paris.", "On a river?"]
    unsaved = llmctl(config, "run", "-m", "fake", "--no-save", "Capital of Italy?")
    assert unsaved.returncode == 0 and "saved as" not in unsaved.stderr


def test_cli_run_base_model_continues_the_prompt_as_written(fake_server: FakeServerHandle, tmp_path: Path):
    """Regression (#20 review): a base model's prompt went through a chat message, which trims newlines; the
    text it continues is sent as written, and a continuation is no chat to save."""
    fake_server.script({"text": "Chapter one."})
    config = tmp_path / "backends.yaml"
    config.write_text(f"models:\n  base:\n    backend: openai\n    server_url: {fake_server.url}/v1\n"
                      "    model_name: fake-model\n    model_type: base\n")
    out = llmctl(config, "run", "-m", "base", "Title: Foo\n\n")
    assert out.returncode == 0 and out.stdout == "Chapter one.\n" and "saved as" not in out.stderr
    assert fake_server.requests()[-1]["body"]["prompt"] == "Title: Foo\n\n"


def test_cli_run_failure_is_one_line_on_stderr_and_nothing_on_stdout(fake_server: FakeServerHandle, tmp_path: Path):
    fake_server.script({"status": 500})
    out = llmctl(write_config(tmp_path, fake_server), "run", "-m", "fake", "Hi")
    assert out.returncode == 1 and out.stdout == ""
    (line,) = out.stderr.strip().splitlines()
    assert line.startswith("error: ") and "500" in line


def test_cli_run_a_tool_call_without_tools_says_what_the_model_tried(fake_server: FakeServerHandle, tmp_path: Path):
    """#22: a model that calls a tool in a plain chat got an empty answer; the session records a notice, which
    llmctl prints."""
    fake_server.script({"tool_calls": [{"name": "calculator", "arguments": {"expression": "6*7"}}]})
    out = llmctl(write_config(tmp_path, fake_server), "run", "-m", "fake", "What is 6*7?")
    assert out.returncode == 0, out.stderr
    assert '[note] The model tried to call calculator({"expression": "6*7"})' in out.stdout
    assert "llmctl run --tools" in out.stdout
