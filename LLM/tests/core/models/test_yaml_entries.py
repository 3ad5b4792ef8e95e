"""Adding and removing entries of llm_backends.yaml as text: comments and order kept, bad entries never written,
and the proposed entry for an inspected model (id, port, a context that fits)."""

from __future__ import annotations

from pathlib import Path

import pytest

from LLM.core.config import SHIPPED_CONFIG, load_backends, parse_backends
from LLM.core.errors import ConfigError
from LLM.core.models.inspection import inspect_path
from LLM.core.models.new_entry import free_port, propose_entry
from LLM.core.models.report import build_report
from LLM.core.models.system import Machine
from LLM.core.models.yaml_entries import add_entry, insert_entry, propose_id, remove_entry, writable_config_path
from LLM.tests.fakes.gguf_models import write_mmproj_gguf, write_model_gguf
from LLM.tests.fakes.lora_assets import write_gguf_lora

GIB = 2**30
USER_FILE = """# my models
defaults:
  max_loaded: 1   # one at a time

models:
  # the small one
  small:
    base_model: "/m/small.gguf"   # keep this comment
    backend: llama_cpp
    port: 9100

  # a remote one
  remote:
    backend: openai
    server_url: "http://127.0.0.1:11434/v1"
# trailing words
"""


def test_add_entry_keeps_every_comment_and_the_order(tmp_path: Path):
    path = tmp_path / "llm_backends.yaml"
    path.write_text(USER_FILE)
    text = add_entry(path, "new_one", {"base_model": "/m/new: one.gguf", "backend": "llama_cpp", "port": 9101,
                                       "capabilities": {"tools": True}}, comment="added in a test")
    assert text.startswith(USER_FILE.rsplit("# trailing words", 1)[0])  # everything before is untouched
    assert text.endswith("    capabilities: {tools: true}\n\n# trailing words\n")
    config = load_backends(path)
    assert list(config.models) == ["small", "remote", "new_one"]
    assert config.models["new_one"].base_model == "/m/new: one.gguf"  # quoted where YAML needs it
    assert config.models["new_one"].capabilities == {"tools": True}
    assert config.max_loaded == 1
    assert remove_entry(path, "new_one") == USER_FILE  # the inverse, byte for byte


def test_remove_entry_takes_its_comments_inside_and_leaves_the_next_entrys(tmp_path: Path):
    path = tmp_path / "llm_backends.yaml"
    path.write_text(USER_FILE)
    text = remove_entry(path, "small")
    assert "keep this comment" not in text and "# the small one" in text and "# a remote one" in text
    assert list(load_backends(path).models) == ["remote"]


def test_add_entry_to_a_missing_user_file_starts_from_the_shipped_one(tmp_path: Path):
    path = tmp_path / "config" / "llm_backends.yaml"
    add_entry(path, "mine", {"base_model": "/m/x.gguf", "backend": "llama_cpp", "port": 9101})
    text = path.read_text()
    assert text.startswith(SHIPPED_CONFIG.read_text().rstrip("\n"))
    assert list(load_backends(path).models) == ["default", "mine"]


@pytest.mark.parametrize(("model_id", "fields", "message"), [
    ("small", {"base_model": "/m/a.gguf", "backend": "llama_cpp", "port": 9102}, "already exists"),
    ("bad id!", {"base_model": "/m/a.gguf", "backend": "llama_cpp", "port": 9102}, "an id may hold"),
    ("noport", {"base_model": "/m/a.gguf", "backend": "llama_cpp"}, "port: required"),
    ("clash", {"base_model": "/m/a.gguf", "backend": "llama_cpp", "port": 9100}, "port"),
    ("badcap", {"base_model": "/m/a.gguf", "backend": "llama_cpp", "port": 9102, "capabilities": {"vison": True}},
     "did you mean 'vision'"),
], ids=["taken-id", "bad-id", "missing-port", "port-clash", "unknown-capability"])
def test_a_bad_entry_is_refused_and_nothing_is_written(tmp_path: Path, model_id, fields, message):
    path = tmp_path / "llm_backends.yaml"
    path.write_text(USER_FILE)
    with pytest.raises(ConfigError, match=message):
        add_entry(path, model_id, fields)
    assert path.read_text() == USER_FILE


def test_insert_entry_into_a_file_without_models_or_with_an_empty_mapping():
    for text in ("defaults:\n  max_loaded: 2\n", "models: {}\n", "models:\n"):
        new = insert_entry(text, "m", {"base_model": "/x.gguf", "backend": "llama_cpp", "port": 9100})
        assert list(parse_backends(new).models) == ["m"], new


def test_remove_refuses_the_shipped_file_and_an_unknown_id(tmp_path: Path):
    with pytest.raises(ConfigError, match="shipped config"):
        remove_entry(SHIPPED_CONFIG, "default")
    path = tmp_path / "llm_backends.yaml"
    path.write_text(USER_FILE)
    with pytest.raises(ConfigError, match="no such entry"):
        remove_entry(path, "nope")


def test_added_models_go_to_the_users_file_when_the_shipped_one_is_in_use(tmp_path: Path):
    user = tmp_path / "user.yaml"
    assert writable_config_path(SHIPPED_CONFIG, user) == user
    own = tmp_path / "own.yaml"
    assert writable_config_path(own, user) == own


@pytest.mark.parametrize(("name", "taken", "expected"), [
    ("Qwen2.5-1.5B-Instruct-Q4_K_M.gguf", set(), "qwen2_5-1_5b-instruct-q4_k_m"),
    ("bartowski/Llama-3.2-3B-Instruct-GGUF", set(), "llama-3_2-3b-instruct-gguf"),
    ("model.gguf", {"model"}, "model_2"),
    ("???.gguf", set(), "model"),
], ids=["file", "repo", "taken", "nothing-left"])
def test_propose_id(name, taken, expected):
    assert propose_id(name, taken) == expected


def _config(tmp_path: Path):
    return parse_backends(USER_FILE, base_dir=tmp_path)


def test_propose_entry_picks_a_free_port_a_fitting_context_and_the_projector_beside(tmp_path: Path):
    model = write_model_gguf(tmp_path / "Tiny-VL.gguf", layers=4, embedding=256, heads=4, kv_heads=4,
                             context=32768)
    write_mmproj_gguf(tmp_path / "mmproj-Tiny-VL-f16.gguf")
    info = inspect_path(model)
    report = build_report(model_id=None, path=str(model), info=info)
    per_token = info.kv_bytes_per_token
    machine = Machine(total_memory=GIB, available_memory=model.stat().st_size + 2048 * per_token + 4 * 2**20)
    new = propose_entry(report, _config(tmp_path), machine)
    assert new.model_id == "tiny-vl"
    assert new.fields["backend"] == "llama_cpp" and new.fields["port"] == free_port(_config(tmp_path)) != 9100
    assert new.fields["mmproj"].endswith("mmproj-Tiny-VL-f16.gguf")
    assert new.fields["context_size"] < 4096 and any("context_size" in note for note in new.notes)
    roomy = propose_entry(report, _config(tmp_path), Machine(total_memory=64 * GIB, available_memory=64 * GIB))
    assert roomy.fields["context_size"] == 4096  # what fits, at most 4096 unless asked


@pytest.mark.parametrize("kind", ["lora", "mmproj"])
def test_propose_entry_explains_files_that_are_no_model(tmp_path: Path, kind: str):
    path = write_gguf_lora(tmp_path / "a.gguf", seed=1) if kind == "lora" else write_mmproj_gguf(tmp_path / "p.gguf")
    report = build_report(model_id=None, path=str(path), info=inspect_path(path))
    with pytest.raises(ConfigError, match="adapter_dir" if kind == "lora" else "--mmproj"):
        propose_entry(report, _config(tmp_path), None)
