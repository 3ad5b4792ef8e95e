"""PEFT LoRA directory -> GGUF LoRA for llama-server, with llama.cpp's own converter from the pinned source.

Converted once and cached by the adapter's files and the base model, so an unchanged adapter is never
converted twice. The converter needs the base model's Hugging Face config (never its weights); a GGUF base
has none beside it, so one is written from the GGUF header, and the hub is never asked.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from ..errors import AdapterConversionError, EngineBuildError
from ..logfiles import open_private
from ..models.gguf import read_metadata
from .llama_build import LLAMA_CPP_COMMIT, default_build, extract_source, source_archive
from .process import log_tail

CONVERTER = "convert_lora_to_gguf.py"
CONVERTER_PATHS = (CONVERTER, "conversion/", "gguf-py/")
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors", "adapter_model.bin")
NEEDS = ("torch", "transformers", "safetensors", "numpy", "yaml")

# GGUF architecture -> (HF architectures entry, model_type) for the config written from a GGUF header.
HF_ARCHITECTURES = {
    "llama": ("LlamaForCausalLM", "llama"),
    "qwen2": ("Qwen2ForCausalLM", "qwen2"),
    "qwen3": ("Qwen3ForCausalLM", "qwen3"),
}


def cache_dir() -> Path:
    return default_build("").cache_dir / "lora"


def converted_path(adapter_dir: Path, base_model: Path) -> Path:
    """Where the GGUF of ``adapter_dir`` converted for ``base_model`` lives (whether converted yet or not)."""
    digest = hashlib.sha256(f"{LLAMA_CPP_COMMIT}\0{base_model}\0{adapter_dir.resolve()}".encode())
    for name in ADAPTER_FILES:
        try:
            stat = (adapter_dir / name).stat()
        except OSError:
            continue
        digest.update(f"\0{name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return cache_dir() / f"{adapter_dir.name}-{digest.hexdigest()[:16]}.gguf"


def convert_adapter(
    adapter_dir: Path, out: Path, base_model: Path, progress: Callable[[str], None] = lambda line: None
) -> Path:
    """Convert unless ``out`` exists; raises AdapterConversionError naming the adapter on any failure."""
    if out.is_file():
        return out
    name = str(adapter_dir)
    if not (adapter_dir / "adapter_config.json").is_file():
        raise AdapterConversionError(name, "it has no adapter_config.json (is it a PEFT LoRA directory?)")
    missing = [m for m in NEEDS if importlib.util.find_spec(m) is None]
    if missing:
        raise AdapterConversionError(name, f"the converter needs {', '.join(missing)}: pip install "
                                           "'llm-workbench[transformers]', or convert it yourself and give the .gguf")
    converter = _converter(progress)
    out.parent.mkdir(parents=True, exist_ok=True)
    log_path = out.with_suffix(".log")
    with tempfile.TemporaryDirectory(prefix="lora-base-", dir=out.parent) as tmp:
        base_config = _base_config_dir(adapter_dir, base_model, Path(tmp))
        staged = out.with_name(f".{out.name}.{os.getpid()}.tmp")
        command = [sys.executable, str(converter), "--base", str(base_config), "--outfile", str(staged),
                   str(adapter_dir)]
        progress(f"converting the PEFT adapter {adapter_dir.name} to GGUF")
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
        env.pop("NO_LOCAL_GGUF", None)  # use the gguf-py of the same pinned source
        with open_private(log_path, "w", encoding="utf-8") as log:
            code = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, env=env).returncode
        if code != 0 or not staged.is_file():
            staged.unlink(missing_ok=True)
            raise AdapterConversionError(name, f"llama.cpp's {CONVERTER} failed (exit {code})", str(log_path),
                                         log_tail(log_path, 8))
        os.replace(staged, out)
    progress(f"converted {adapter_dir.name} -> {out.name}")
    return out


def _converter(progress: Callable[[str], None]) -> Path:
    """The converter script of the pinned llama.cpp, extracted once into the engine cache."""
    build = default_build("")
    root = build.cache_dir / f"llama.cpp-{LLAMA_CPP_COMMIT}-convert"
    script = root / CONVERTER
    if script.is_file():
        return script
    try:
        archive = source_archive(build.cache_dir, lambda p: progress(p.message))
        with tempfile.TemporaryDirectory(prefix="convert-", dir=build.cache_dir) as tmp:
            tree = extract_source(archive, Path(tmp), CONVERTER_PATHS)
            staged = build.cache_dir / f".convert-{os.getpid()}"
            os.replace(tree, staged)
            try:
                os.replace(staged, root)
            except OSError:  # another process extracted it meanwhile
                if not script.is_file():
                    raise
    except (EngineBuildError, OSError) as exc:
        raise AdapterConversionError("(any)", f"cannot get llama.cpp's {CONVERTER}: {exc}") from exc
    return script


def _base_config_dir(adapter_dir: Path, base_model: Path, tmp: Path) -> Path:
    """A directory holding the base model's config.json: the adapter's own base when it is a local
    directory, else one written from the GGUF header."""
    try:
        declared = json.loads((adapter_dir / "adapter_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise AdapterConversionError(str(adapter_dir), f"adapter_config.json is not readable JSON: {exc}") from exc
    local = declared.get("base_model_name_or_path")
    if isinstance(local, str) and (Path(local) / "config.json").is_file():
        return Path(local)
    (tmp / "config.json").write_text(json.dumps(hf_config_from_gguf(base_model, str(adapter_dir))), encoding="utf-8")
    return tmp


def hf_config_from_gguf(base_model: Path, adapter: str) -> dict[str, object]:
    """The Hugging Face config.json keys the converter reads, from a GGUF's header (pure apart from the read)."""
    meta = read_metadata(base_model)
    arch = str(meta.get("general.architecture"))
    if arch not in HF_ARCHITECTURES:
        raise AdapterConversionError(adapter, f"the base {base_model.name} is a '{arch}' model, whose config cannot "
                                              "be rebuilt from the GGUF; set base_model_name_or_path in "
                                              "adapter_config.json to the base model's local directory")
    architecture, model_type = HF_ARCHITECTURES[arch]
    heads = int(meta[f"{arch}.attention.head_count"])
    config: dict[str, object] = {
        "architectures": [architecture],
        "model_type": model_type,
        "hidden_size": int(meta[f"{arch}.embedding_length"]),
        "num_hidden_layers": int(meta[f"{arch}.block_count"]),
        "intermediate_size": int(meta[f"{arch}.feed_forward_length"]),
        "num_attention_heads": heads,
        "num_key_value_heads": int(meta.get(f"{arch}.attention.head_count_kv", heads)),
        "rms_norm_eps": float(meta.get(f"{arch}.attention.layer_norm_rms_epsilon", 1e-5)),
        "rope_theta": float(meta.get(f"{arch}.rope.freq_base", 10000.0)),
        "max_position_embeddings": int(meta.get(f"{arch}.context_length", 2048)),
        # Arrays come back as their length: the token list's length is the vocabulary size.
        "vocab_size": int(meta.get(f"{arch}.vocab_size") or meta.get("tokenizer.ggml.tokens") or 0),
    }
    if f"{arch}.attention.key_length" in meta:
        config["head_dim"] = int(meta[f"{arch}.attention.key_length"])
    return config
