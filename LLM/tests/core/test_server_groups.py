"""Server groups formed from llm_backends.yaml, and the transformers loading keys (pure: nothing starts)."""

from __future__ import annotations

from pathlib import Path

import pytest

from LLM.core.config import parse_backends
from LLM.core.errors import ConfigError


def yaml(*entries: str) -> str:
    return "models:\n" + "".join(f"  {e}\n" for e in entries)


@pytest.fixture
def adapters(tmp_path: Path) -> Path:
    for name in ("a", "b", "c"):
        (tmp_path / name).mkdir()
    return tmp_path


@pytest.mark.parametrize(
    "entries, groups",
    [
        pytest.param(["base: {base_model: m.gguf, port: 9100}", "a: {base_model: m.gguf, port: 9101, adapter_dir: a}",
                      "b: {base_model: m.gguf, port: 9102, adapter_dir: b}"],
                     {"base": ("base", "a", "b")}, id="guide-shape-one-server"),
        pytest.param(["a: {base_model: m.gguf, port: 9101, adapter_dir: a}", "base: {base_model: m.gguf, port: 9100}"],
                     {"base": ("base", "a")}, id="the-bare-base-leads-wherever-it-stands"),
        pytest.param(["a: {base_model: m.gguf, port: 9101, adapter_dir: a}",
                      "b: {base_model: m.gguf, port: 9102, adapter_dir: b}"],
                     {"a": ("a", "b")}, id="adapters-only-first-leads"),
        pytest.param(["base: {base_model: m.gguf, port: 9100}",
                      "a: {base_model: m.gguf, port: 9101, adapter_dir: a, share_server: false}"],
                     {"base": ("base",), "a": ("a",)}, id="share-server-false-opts-out"),
        pytest.param(["base: {base_model: m.gguf, port: 9100}",
                      "a: {base_model: m.gguf, port: 9101, adapter_dir: a, context_size: 1024}"],
                     {"base": ("base",), "a": ("a",)}, id="other-load-settings-other-server"),
        pytest.param(["base: {base_model: m.gguf, port: 9100}",
                      "a: {base_model: m.gguf, port: 9101, adapter_dir: a, display_name: A, request_timeout_s: 9}"],
                     {"base": ("base", "a")}, id="request-settings-do-not-split"),
        pytest.param(["base: {base_model: m.gguf, port: 9100}", "other: {base_model: n.gguf, port: 9101}",
                      "remote: {backend: openai, server_url: 'http://127.0.0.1:11434/v1'}"],
                     {"base": ("base",), "other": ("other",)}, id="attached-models-have-no-group"),
    ],
)
def test_server_groups_form_from_base_and_load_settings(adapters: Path, entries: list[str],
                                                        groups: dict[str, tuple[str, ...]]):
    config = parse_backends(yaml(*entries), strict=True, base_dir=adapters)
    assert {gid: g.model_ids for gid, g in config.groups.items()} == groups
    for group in config.groups.values():
        ports = {config.models[m].port for m in group.model_ids}
        assert ports == {config.models[group.id].port}, "a group answers on its leader's port"


def test_server_groups_adapters_and_scales_per_member(adapters: Path):
    config = parse_backends(yaml("base: {base_model: m.gguf, port: 9100}",
                                 "a: {base_model: m.gguf, port: 9101, adapter_dir: a, adapter_scale: 0.5}",
                                 "a_strong: {base_model: m.gguf, port: 9102, adapter_dir: a, adapter_scale: 2}",
                                 "b: {base_model: m.gguf, port: 9103, adapter_dir: b, model_name: b-lora}"),
                            strict=True, base_dir=adapters)
    group = config.groups["base"]
    assert group.adapters == (str(adapters / "a"), str(adapters / "b")), "one adapter loads once"
    assert [(m.model_id, m.scale) for m in group.members if m.adapter] == [("a", 0.5), ("a_strong", 2.0), ("b", 1.0)]
    assert group.member("b").request_name == "b-lora" and group.base_names == ("base",)


@pytest.mark.parametrize(
    "entries, expected",
    [
        pytest.param(["a: {base_model: one.gguf, port: 9100}", "b: {base_model: two.gguf, port: 9100}"],
                     "models.b.port: port 9100 is already used by model 'a', which runs another server "
                     "(base_model differs)", id="other-base"),
        pytest.param(["a: {base_model: m.gguf, port: 9100}", "b: {base_model: m.gguf, port: 9100, share_server: false}"],
                     "(share_server: false)", id="opted-out"),
        pytest.param(["a: {base_model: m.gguf, port: 9100}",
                      "b: {base_model: m.gguf, port: 9100, context_size: 512, threads: 2}"],
                     "(context_size, threads differ)", id="load-settings"),
        pytest.param(["a: {base_model: m.gguf, port: 9100}", "b: {base_model: m.gguf, port: 9101, adapter_scale: 0}"],
                     "models.b.adapter_scale: Input should be greater than 0", id="scale-zero"),
        pytest.param(["a: {base_model: m.gguf, port: 9100, device_map: auto}"],
                     "device_map: only the transformers backend takes it", id="hf-key-on-gguf"),
        pytest.param(["a: {base_model: m, backend: transformers, port: 9100, device_map: everywhere}"],
                     "models.a.device_map: must be one of auto, balanced", id="device-map-name"),
        pytest.param(["a: {base_model: m, backend: transformers, port: 9100, device_map: {lm_head: gpu7}}"],
                     "module 'lm_head' maps to 'gpu7', which is not a device", id="device-map-mapping"),
        pytest.param(["a: {base_model: m, backend: transformers, port: 9100, max_memory: {0: lots}}"],
                     "models.a.max_memory: '0': 'lots' is not a size", id="max-memory-size"),
        pytest.param(["a: {base_model: m, backend: transformers, port: 9100, max_memory: {gpu: 10GiB}}"],
                     "'gpu' is not a device", id="max-memory-device"),
        pytest.param(["a: {base_model: m, backend: transformers, port: 9100, torch_dtype: float8}"],
                     "models.a.torch_dtype: Input should be 'auto', 'float32', 'bfloat16' or 'float16'", id="dtype"),
        pytest.param(["a: {base_model: m, backend: transformers, port: 9100, attn_implementation: fast}"],
                     "models.a.attn_implementation: Input should be 'eager'", id="attention"),
    ],
)
def test_server_groups_bad_input_names_the_key(entries: list[str], expected: str):
    text = yaml(*entries)
    problems = [str(p) for p in parse_backends(text, source="llm_backends.yaml").problems]
    assert any(expected in p for p in problems), problems
    with pytest.raises(ConfigError):
        parse_backends(text, source="llm_backends.yaml", strict=True)


def test_server_groups_transformers_loading_keys_are_accepted():
    config = parse_backends(yaml("a: {base_model: m, backend: transformers, port: 9100, device_map: {model: 0, "
                                 "lm_head: cpu}, max_memory: {0: 10GiB, cpu: 30GiB}, torch_dtype: bfloat16, "
                                 "attn_implementation: sdpa}"), strict=True)
    entry = config.models["a"]
    assert entry.device_map == {"model": 0, "lm_head": "cpu"} and entry.max_memory == {0: "10GiB", "cpu": "30GiB"}
    assert (entry.torch_dtype, entry.attn_implementation) == ("bfloat16", "sdpa")


def test_server_groups_of_a_config_built_in_code(adapters: Path):
    """BackendsConfig(models=...) made by a program (not parsed) groups its models the same way."""
    from LLM.core.config import BackendsConfig

    parsed = parse_backends(yaml("base: {base_model: m.gguf, port: 9100}",
                                 "a: {base_model: m.gguf, port: 9101, adapter_dir: a, share_server: false}"),
                            strict=True, base_dir=adapters)
    shared = parsed.models["a"].model_copy(update={"share_server": True})
    built = BackendsConfig(source="code", models={"base": parsed.models["base"], "a": shared})
    assert {gid: g.model_ids for gid, g in built.groups.items()} == {"base": ("base", "a")}
    assert built.models["a"].base_url == "http://127.0.0.1:9100"
