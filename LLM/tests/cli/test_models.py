"""llmctl models as a user runs it (a real subprocess): list with capabilities and fit, inspect, recommend, add
and remove; bad input gets one line, never a traceback. Nothing here starts a model server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from LLM.core.config import SHIPPED_CONFIG, load_backends
from LLM.tests.cli.harness import llmctl
from LLM.tests.fakes.fake_hub import FakeHub
from LLM.tests.fakes.gguf_models import HERMES_TOOLS, write_model_gguf
from LLM.tests.fakes.handle import REPO_ROOT
from LLM.tests.fakes.lora_assets import write_gguf_lora


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "llm_backends.yaml"
    path.write_text(SHIPPED_CONFIG.read_text())
    return path


def _json(out) -> object:
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr
    return json.loads(out.stdout)


def test_cli_models_json_lists_each_model_with_capabilities_and_fit(config: Path):
    models = _json(llmctl(config, "models", "--json"))
    default = next(m for m in models if m["id"] == "default")
    assert default["architecture"] == "llama" and default["quantization"] == "Q4_1"
    assert set(default["capabilities"]) >= {"chat", "tools", "reasoning", "vision", "system_role"}
    tools = default["capabilities"]["tools"]
    assert tools["value"] is False and tools["confidence"] >= 0.6 and tools["source"] == "template"
    assert default["capabilities"]["chat"]["value"] is True
    assert isinstance(default["memory"], int) and default["memory"] > 98_000_000
    assert default["fit"]["fits"] is True and default["state"] == "stopped"


def test_cli_models_lists_badges_and_fit_under_each_model(config: Path):
    out = llmctl(config, "models")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    row = next(i for i, line in enumerate(lines) if line.startswith("default"))
    assert "needs about" in lines[row + 1] and "free" in lines[row + 1]


def test_cli_models_inspect_a_file_prints_the_contract_keys(config: Path, tmp_path: Path):
    model = write_model_gguf(tmp_path / "Tiny-Qwen-Instruct.gguf", arch="qwen2", template=HERMES_TOOLS,
                             vocab=("<|im_start|>", "<tool_call>", "</tool_call>"), context=32768)
    data = _json(llmctl(config, "models", "inspect", str(model), "--json"))
    assert data["architecture"] == "qwen2" and data["context_length"] == 32768 and data["quantization"] == "F16"
    assert data["parameters"] == 2 * 64 * 64
    tools = data["capabilities"]["tools"]
    assert tools["value"] is True and tools["source"] == "template" and 0 <= tools["confidence"] <= 1
    assert isinstance(data["memory"], int) and data["memory"] > 0


def test_cli_models_inspect_an_id_in_words(config: Path):
    out = llmctl(config, "models", "inspect", "default")
    assert out.returncode == 0, out.stderr
    assert "capabilities:" in out.stdout and "from template" in out.stdout and "memory at context 2048" in out.stdout


@pytest.mark.parametrize("target", ["/no/such/model.gguf", "nonsense-id"])
def test_cli_models_inspect_what_is_no_model_is_one_line(config: Path, target: str):
    out = llmctl(config, "models", "inspect", target)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert out.stderr.startswith("error: ") and target in out.stderr and len(out.stderr.splitlines()) == 1


def test_cli_models_add_then_remove_round_trips_the_file(config: Path, tmp_path: Path):
    before = config.read_text()
    model = write_model_gguf(tmp_path / "Tiny-Chat.gguf")
    out = llmctl(config, "models", "add", str(model), "--id", "tiny")
    assert out.returncode == 0, out.stderr
    assert "added 'tiny'" in out.stdout and "llmctl chat -m tiny" in out.stdout
    text = config.read_text()
    assert text.startswith(before.rstrip("\n")) and "# Added by `llmctl models add`" in text
    listed = _json(llmctl(config, "models", "--json"))
    tiny = next(m for m in listed if m["id"] == "tiny")
    assert tiny["backend"] == "llama_cpp" and tiny["path"] == str(model.resolve())
    out = llmctl(config, "models", "remove", "tiny")
    assert out.returncode == 0, out.stderr
    assert config.read_text() == before


@pytest.mark.parametrize("make, message", [
    ("lora", "a LoRA adapter"),
    ("taken", "already exists"),
], ids=["adapter", "taken-id"])
def test_cli_models_add_refuses_with_one_line_and_writes_nothing(config: Path, tmp_path: Path, make, message):
    before = config.read_text()
    path = write_gguf_lora(tmp_path / "a.gguf", seed=1) if make == "lora" else write_model_gguf(tmp_path / "m.gguf")
    out = llmctl(config, "models", "add", str(path), *(["--id", "default"] if make == "taken" else []))
    assert out.returncode == 1 and "Traceback" not in out.stderr and message in out.stderr, out.stderr
    assert config.read_text() == before


def test_cli_models_recommend_ranks_for_a_task_and_keeps_the_users_choice(config: Path):
    recs = _json(llmctl(config, "models", "recommend", "--task", "tools", "--json"))
    assert recs and all("tools" in r["tasks"] for r in recs)
    assert all(isinstance(r["reason"], str) and "\n" not in r["reason"] for r in recs)
    fits = [r["fits"] for r in recs]
    assert fits == sorted(fits, reverse=True)  # what fits comes first
    last = recs[-1]["id"]
    out = llmctl(config, "models", "recommend", "--task", "tools", "--set", last)
    assert out.returncode == 0, out.stderr
    again = _json(llmctl(config, "models", "recommend", "--task", "tools", "--json"))
    assert again[0]["id"] == last and again[0]["reason"].startswith("your choice")
    assert llmctl(config, "models", "recommend", "--task", "tools", "--reset").returncode == 0
    assert _json(llmctl(config, "models", "recommend", "--task", "tools", "--json"))[0]["id"] == recs[0]["id"]


def test_cli_models_recommend_refuses_an_unknown_id(config: Path):
    out = llmctl(config, "models", "recommend", "--task", "tools", "--set", "qwen3-4bb")
    assert out.returncode == 1 and "Traceback" not in out.stderr and "qwen3-4b" in out.stderr, out.stderr


def _llmctl_hub(config: Path, hub: FakeHub, *args: str) -> subprocess.CompletedProcess[str]:
    """llmctl with huggingface_hub pointed at the fake hub (and its cache kept in the test's folder)."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "LLM_STATE_DIR": str(config.parent / "state"),
           "LLM_DATA_DIR": str(config.parent / "data"), "XDG_CONFIG_HOME": str(config.parent / "xdg"),
           "HF_ENDPOINT": hub.url, "HF_HOME": str(config.parent / "hf"), "HF_HUB_DISABLE_TELEMETRY": "1"}
    env.pop("HF_TOKEN", None)
    return subprocess.run([sys.executable, "-m", "LLM", "--config", str(config), *args], capture_output=True,
                          text=True, timeout=120, env=env, stdin=subprocess.DEVNULL)


def test_cli_models_download_then_add_from_the_hub(config: Path, tmp_path: Path):
    repo = tmp_path / "hub" / "someone" / "Tiny-GGUF"
    repo.mkdir(parents=True)
    write_model_gguf(repo / "tiny-q8.gguf", template=HERMES_TOOLS, vocab=("<tool_call>", "x"))
    with FakeHub(tmp_path / "hub") as hub:
        out = _llmctl_hub(config, hub, "models", "download", "someone/Tiny-GGUF", "tiny-q8.gguf", "--add",
                          "--id", "tiny")
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr
    saved = tmp_path / "data" / "models" / "someone__Tiny-GGUF" / "tiny-q8.gguf"
    assert f"saved {saved}" in out.stdout and "100.0%" in out.stdout  # the progress line, finished
    assert saved.read_bytes() == (repo / "tiny-q8.gguf").read_bytes()
    assert "added 'tiny'" in out.stdout and "tools" in out.stdout  # the badge of what it can do
    assert "tiny" in load_backends(config).models


@pytest.mark.parametrize("flags, args, message", [
    (("--gated", "someone/Tiny-GGUF"), ("someone/Tiny-GGUF", "tiny-q8.gguf"), "HF_TOKEN"),
    ((), ("someone/Tiny-GGUF", "nope.gguf"), "nope.gguf"),
    ((), ("someone/Tiny-GGUF",), "name the file"),
    ((), ("qwen3-4bb",), "qwen3-4b"),
], ids=["gated", "no-such-file", "repo-without-file", "unknown-catalog-id"])
def test_cli_models_download_failures_are_one_line(config: Path, tmp_path: Path, flags, args, message):
    repo = tmp_path / "hub" / "someone" / "Tiny-GGUF"
    repo.mkdir(parents=True)
    write_model_gguf(repo / "tiny-q8.gguf")
    with FakeHub(tmp_path / "hub", *flags) as hub:
        out = _llmctl_hub(config, hub, "models", "download", *args)
    assert out.returncode in (1, 2) and "Traceback" not in out.stderr, out.stderr
    assert message in out.stderr and len(out.stderr.strip().splitlines()) == 1, out.stderr
