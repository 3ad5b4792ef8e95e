"""The transformers server's command line: what each flag becomes, and one-line exit-2 errors for bad values."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from LLM.core.servers.hf_cli import parse_args
from LLM.tests.fakes.handle import REPO_ROOT


@pytest.fixture
def dirs(tmp_path: Path) -> Path:
    for name in ("model", "a1", "a2", "with=sign"):
        (tmp_path / name).mkdir()
    return tmp_path


def _argv(dirs: Path, *extra: str) -> list[str]:
    return ["--model", str(dirs / "model"), *(arg.replace("{d}", str(dirs)) for arg in extra)]


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ((), {"base_names": ("model",), "primary": "model", "adapters": ()}),
        (("--served-model-name", "base", "--served-model-name", "alias", "--adapter", "one={d}/a1",
          "--adapter", "two={d}/a2"),
         {"base_names": ("base", "alias"), "primary": "base", "adapters": (("one", "{d}/a1"), ("two", "{d}/a2"))}),
        (("--served-model-name", "tuned", "--adapter", "{d}/a1"),
         {"base_names": (), "primary": "tuned", "adapters": (("tuned", "{d}/a1"),)}),
        (("--served-model-name", "tuned", "--served-model-name", "plain", "--adapter", "{d}/a1",
          "--adapter", "x={d}/a2"),
         {"base_names": ("plain",), "primary": "tuned", "adapters": (("tuned", "{d}/a1"), ("x", "{d}/a2"))}),
        (("--served-model-name", "m", "--adapter", "{d}/with=sign"),
         {"adapters": (("m", "{d}/with=sign"),)}),
        (("--adapter", "org/lora={d}/a1"), {"adapters": (("org/lora", "{d}/a1"),)}),
        (("--torch-dtype", "bfloat16"), {"dtype": "bfloat16"}),
        (("--dtype", "float16"), {"dtype": "float16"}),
        (("--device-map", "auto"), {"device_map": "auto"}),
        (("--device-map", "cuda:1"), {"device_map": "cuda:1"}),
        (("--device-map", "0"), {"device_map": 0}),
        (("--device-map", '{"model": "0", "lm_head": "cpu"}'), {"device_map": {"model": 0, "lm_head": "cpu"}}),
        (("--max-memory", '{"0": "10GiB", "cpu": "30GiB"}'), {"max_memory": {0: "10GiB", "cpu": "30GiB"}}),
        (("--attn-implementation", "sdpa"), {"attn_implementation": "sdpa"}),
        (("--attn-implementation", "paged|eager"), {"attn_implementation": "paged|eager"}),
        (("--4bit", "--context-size", "512"), {"load_in_4bit": True, "context_size": 512}),
    ],
    ids=["defaults", "names-and-named-adapters", "one-adapter-form", "one-adapter-form-plus-named",
         "dir-with-equals-sign", "named-adapter-with-slash", "torch-dtype", "dtype-alias", "device-map-auto",
         "device-map-device", "device-map-index", "device-map-json", "max-memory", "attn-sdpa", "attn-paged",
         "4bit-and-context"],
)
def test_hf_cli_parses_flags_into_the_serve_config(dirs: Path, extra: tuple[str, ...], expected: dict[str, Any]) -> None:
    config = parse_args(_argv(dirs, *extra))
    seen = {"base_names": config.base_names, "primary": config.primary, **vars(config.load)}
    for key, value in expected.items():
        if key == "adapters":
            value = tuple((name, path.replace("{d}", str(dirs))) for name, path in value)
        assert seen[key] == value, key


def test_hf_cli_one_adapter_form_takes_the_adapters_tokenizer(dirs: Path) -> None:
    """An adapter trained with added tokens ships tokenizer files: the one-adapter form loads them (as before)."""
    (dirs / "a1" / "tokenizer_config.json").write_text("{}")
    assert parse_args(_argv(dirs, "--adapter", "{d}/a1")).load.tokenizer_dir == str(dirs / "a1")
    assert parse_args(_argv(dirs, "--adapter", "x={d}/a1")).load.tokenizer_dir is None


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--torch-dtype", "int8"), "argument --torch-dtype/--dtype: invalid choice: 'int8'"),
        (("--port", "http"), "argument --port: invalid int value: 'http'"),
        (("--port", "70000"), "argument --port: must be 0-65535; got 70000"),
        (("--context-size", "0"), "argument --context-size: must be a positive number of tokens; got 0"),
        (("--device-map", "everywhere"), "argument --device-map: must be one of auto, balanced"),
        (("--device-map", '{"model": "gpu"}'), "argument --device-map: module 'model': 'gpu' is not a device"),
        (("--device-map", "{nope"), "argument --device-map: is not valid JSON"),
        (("--max-memory", "10GiB"), "argument --max-memory: is not valid JSON"),
        (("--max-memory", '{"0": "lots"}'), "argument --max-memory: '0': 'lots' is not a size"),
        (("--attn-implementation", "fast"), "argument --attn-implementation: must be one of eager, sdpa"),
        (("--adapter", "x={d}/missing"), "argument --adapter: adapter directory not found: {d}/missing (adapter 'x')"),
        (("--adapter", "{d}/a1", "--adapter", "{d}/a2"), "argument --adapter: only one adapter may be given without"),
        (("--adapter", "x={d}/a1", "--adapter", "x={d}/a2"), "argument --adapter: the name 'x' is given twice"),
        (("--served-model-name", "x", "--adapter", "x={d}/a1"), "argument --adapter: the name 'x' is given twice"),
        (("--served-model-name", "x", "--served-model-name", "x"),
         "argument --served-model-name: the name 'x' is given twice"),
    ],
    ids=["dtype", "port-not-int", "port-range", "context-size", "device-map-word", "device-map-json-device",
         "device-map-bad-json", "max-memory-not-json", "max-memory-size", "attn-unknown", "adapter-missing-dir",
         "two-bare-adapters", "adapter-name-twice", "adapter-name-is-base-name", "served-name-twice"],
)
def test_hf_cli_bad_value_exits_2_with_one_line_naming_the_option(
    dirs: Path, capsys: pytest.CaptureFixture[str], extra: tuple[str, ...], message: str
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        parse_args(_argv(dirs, *extra))
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert err.count("\n") == 1 and err.startswith("error: "), err
    assert message.replace("{d}", str(dirs)) in err


def test_hf_cli_flash_attention_without_its_package_is_a_startup_error(
    dirs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import importlib.util

    if importlib.util.find_spec("flash_attn") is not None:
        pytest.skip("flash-attn is installed here")
    with pytest.raises(SystemExit) as exit_info:
        parse_args(_argv(dirs, "--attn-implementation", "flash_attention_2"))
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == (
        "error: argument --attn-implementation: flash_attention_2 needs the flash-attn package, which is not "
        "installed (pip install flash-attn, or use sdpa)\n"
    )


def test_hf_server_process_with_a_bad_value_exits_2_before_loading_anything(dirs: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "LLM.core.servers.hf_server", *_argv(dirs, "--torch-dtype", "int8")],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.startswith("error: argument --torch-dtype/--dtype: invalid choice: 'int8'")
    assert done.stderr.count("\n") == 1
