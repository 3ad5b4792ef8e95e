"""Reading a GGUF file's header: metadata key/values and tensor descriptions (tensor data is never read).

The memory budget needs a model's shape (layers, KV heads, head size) to estimate its KV cache; inspection
needs everything else the header says (template, license, parameter count, quantization).
Long arrays (the tokenizer's vocabulary) are skipped without decoding.
"""

from __future__ import annotations

import mmap
import struct
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

MAGIC = b"GGUF"
# GGUF value types: size in bytes and struct format of the fixed-size ones.
_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9
MAX_KEYS = 100_000  # a corrupt count must not make us loop for ever


class GGUFError(ValueError):
    """Not a GGUF file, or its header is damaged."""


def read_metadata(path: Path, wanted: frozenset[str] | None = None, *, required: frozenset[str] = frozenset(),
                  stop_prefix: str | None = None) -> dict[str, Any]:
    """The header's key/value pairs (only ``wanted`` ones when given; arrays come back as their length).

    Reading stops at the first key starting with ``stop_prefix`` once every ``required`` key was found:
    writers put the model's hyperparameters before its tokenizer, whose vocabulary is most of the header."""
    with open(path, "rb") as f:
        if f.read(4) != MAGIC:
            raise GGUFError(f"{path}: not a GGUF file")
        version = _unpack(f, "<I")
        if version < 2:
            raise GGUFError(f"{path}: GGUF version {version} is not supported")
        _unpack(f, "<Q")  # tensor count
        count = _unpack(f, "<Q")
        if count > MAX_KEYS:
            raise GGUFError(f"{path}: implausible metadata count {count}")
        found: dict[str, Any] = {}
        for _ in range(count):
            key = _string(f)
            if stop_prefix and key.startswith(stop_prefix) and required <= found.keys():
                break
            value_type = _unpack(f, "<I")
            keep = wanted is None or key in wanted
            found_value = _value(f, value_type, keep)
            if keep:
                found[key] = found_value
            if wanted is not None and len(found) == len(wanted):
                break
        return found


def kv_bytes_per_token(metadata: dict[str, Any]) -> int | None:
    """K and V bytes one context token costs in an f16 cache; None when the header does not say."""
    arch = metadata.get("general.architecture")
    if not isinstance(arch, str):
        return None
    layers = metadata.get(f"{arch}.block_count")
    embedding = metadata.get(f"{arch}.embedding_length")
    heads = metadata.get(f"{arch}.attention.head_count")
    kv_heads = metadata.get(f"{arch}.attention.head_count_kv", heads)
    if not all(isinstance(v, int) and v > 0 for v in (layers, embedding, heads, kv_heads)):
        return None
    head_size = metadata.get(f"{arch}.attention.key_length") or embedding // heads
    return 2 * layers * kv_heads * head_size * 2  # K and V, 2 bytes each


def read_shape(path: Path) -> dict[str, Any]:
    """The keys ``kv_bytes_per_token`` needs (the architecture first, then its hyperparameters)."""
    arch = read_metadata(path, frozenset({"general.architecture"})).get("general.architecture", "")
    required = frozenset({"general.architecture", f"{arch}.block_count", f"{arch}.embedding_length",
                          f"{arch}.attention.head_count"})
    optional = frozenset({f"{arch}.attention.head_count_kv", f"{arch}.attention.key_length"})
    return read_metadata(path, required | optional, required=required, stop_prefix="tokenizer.")


def _unpack(f: BinaryIO, fmt: str) -> Any:
    size = struct.calcsize(fmt)
    data = f.read(size)
    if len(data) != size:
        raise GGUFError("the GGUF header ends early")
    return struct.unpack(fmt, data)[0]


def _string(f: BinaryIO, keep: bool = True) -> str:
    length = _unpack(f, "<Q")
    if length > 1 << 24:
        raise GGUFError(f"implausible string length {length} in the GGUF header")
    if not keep:  # a vocabulary holds tens of thousands: step over them
        f.seek(length, 1)
        return ""
    return f.read(length).decode("utf-8", errors="replace")


def _value(f: BinaryIO, value_type: int, keep: bool) -> Any:
    if value_type in _SCALARS:
        return _unpack(f, _SCALARS[value_type])
    if value_type == _STRING:
        return _string(f, keep)
    if value_type == _ARRAY:
        item_type, length = _unpack(f, "<I"), _unpack(f, "<Q")
        if item_type in _SCALARS:  # fixed size: skip in one seek
            f.seek(struct.calcsize(_SCALARS[item_type]) * length, 1)
        else:
            for _ in range(length):
                _value(f, item_type, False)
        return length
    raise GGUFError(f"unknown GGUF value type {value_type}")


# llama.cpp's llama_ftype (general.file_type) and ggml_type (a tensor's type) names.
FILE_TYPES = {0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1", 10: "Q2_K", 11: "Q3_K_S",
              12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M", 16: "Q5_K_S", 17: "Q5_K_M", 18: "Q6_K",
              19: "IQ2_XXS", 20: "IQ2_XS", 21: "Q2_K_S", 22: "IQ3_XS", 23: "IQ3_XXS", 24: "IQ1_S", 25: "IQ4_NL",
              26: "IQ3_S", 27: "IQ3_M", 28: "IQ2_S", 29: "IQ2_M", 30: "IQ4_XS", 31: "IQ1_M", 32: "BF16",
              36: "TQ1_0", 37: "TQ2_0", 38: "MXFP4_MOE"}
TENSOR_TYPES = {0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 6: "Q5_0", 7: "Q5_1", 8: "Q8_0", 9: "Q8_1", 10: "Q2_K",
                11: "Q3_K", 12: "Q4_K", 13: "Q5_K", 14: "Q6_K", 15: "Q8_K", 16: "IQ2_XXS", 17: "IQ2_XS",
                18: "IQ3_XXS", 19: "IQ1_S", 20: "IQ4_NL", 21: "IQ3_S", 22: "IQ2_S", 23: "IQ4_XS", 24: "I8",
                25: "I16", 26: "I32", 27: "I64", 28: "F64", 29: "IQ1_M", 30: "BF16", 34: "TQ1_0", 35: "TQ2_0",
                39: "MXFP4"}
# Vocabulary entries that tell a model's formats apart (looked for as bytes inside the token array; an HF
# folder's added tokens are searched for the same): tool-call markers, thinking markers, image and chat markers.
MARKER_TOKENS = (
    "<tool_call>", "<tool_response>", "[TOOL_CALLS]", "[AVAILABLE_TOOLS]", "<|python_tag|>", "<|tool_call|>",
    "<｜tool▁calls▁begin｜>", "<｜tool▁call▁begin｜>", "<|tool_calls_section_begin|>", "<TOOLCALL>",
    "<start_function_call>", "<minimax:tool_call>", "<seed:tool_call>", "<tools>", "<function_call>", "<|tool|>",
    "<think>", "</think>", "<seed:think>", "[THINK]", "◁think▷", "<|START_THINKING|>",
    "<|image|>", "<image>", "<|vision_start|>", "<start_of_image>", "<|audio|>",
    "<|im_start|>", "<|start_header_id|>",
)
_U64 = struct.Struct("<Q").unpack_from
_U32 = struct.Struct("<I").unpack_from


@dataclass(frozen=True)
class GGUFHeader:
    """A whole header: every metadata value (arrays of strings as their length, short scalar arrays kept),
    the parameter count and tensor types from the tensor descriptions, and marker tokens of the vocabulary."""

    metadata: dict[str, Any]
    parameters: int
    tensor_types: Counter[str] = field(default_factory=Counter)  # parameters per tensor type
    markers: frozenset[str] = frozenset()


def read_header(path: Path) -> GGUFHeader:
    """Everything the header of ``path`` says, in one pass over a memory map (about 10 ms for the default
    model: its 49,152-token vocabulary and 48,900 merges are stepped over, not decoded)."""
    with open(path, "rb") as f:
        try:
            buf = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except ValueError:  # an empty file cannot be mapped
            raise GGUFError(f"{path}: not a GGUF file (empty)") from None
        with buf:
            try:
                return _parse_header(buf, path)
            except struct.error:
                raise GGUFError(f"{path}: the GGUF header ends early") from None


def _parse_header(buf: mmap.mmap, path: Path) -> GGUFHeader:
    if buf[:4] != MAGIC:
        raise GGUFError(f"{path}: not a GGUF file")
    version, tensor_count, count = struct.unpack_from("<IQQ", buf, 4)
    if version < 2:
        raise GGUFError(f"{path}: GGUF version {version} is not supported")
    if count > MAX_KEYS or tensor_count > 10 * MAX_KEYS:
        raise GGUFError(f"{path}: implausible metadata count {count}")
    off = 24
    metadata: dict[str, Any] = {}
    markers: set[str] = set()
    for _ in range(count):
        key, off = _read_str(buf, off)
        value_type = _U32(buf, off)[0]
        off += 4
        start = off
        value, off = _read_value(buf, off, value_type)
        metadata[key] = value
        if key == "tokenizer.ggml.tokens":
            region = buf[start:off]
            markers.update(m for m in MARKER_TOKENS if m.encode() in region)
    parameters = 0
    types: Counter[str] = Counter()
    for _ in range(tensor_count):
        _, off = _read_str(buf, off, keep=False)
        dims = _U32(buf, off)[0]
        if dims > 8:
            raise GGUFError(f"{path}: implausible tensor with {dims} dimensions")
        shape = struct.unpack_from(f"<{dims}Q", buf, off + 4)
        off += 4 + 8 * dims
        tensor_type = _U32(buf, off)[0]
        off += 12  # type and data offset
        elements = 1
        for d in shape:
            elements *= d
        parameters += elements
        types[TENSOR_TYPES.get(tensor_type, f"type {tensor_type}")] += elements
    return GGUFHeader(metadata, parameters, types, frozenset(markers))


def _read_str(buf: mmap.mmap, off: int, keep: bool = True) -> tuple[str, int]:
    length = _U64(buf, off)[0]
    if length > 1 << 24:
        raise GGUFError(f"implausible string length {length} in the GGUF header")
    end = off + 8 + length
    if end > len(buf):
        raise struct.error("past the end")
    return (buf[off + 8:end].decode("utf-8", errors="replace") if keep else ""), end


def _read_value(buf: mmap.mmap, off: int, value_type: int) -> tuple[Any, int]:
    if value_type in _SCALARS:
        fmt = _SCALARS[value_type]
        return struct.unpack_from(fmt, buf, off)[0], off + struct.calcsize(fmt)
    if value_type == _STRING:
        return _read_str(buf, off)
    if value_type == _ARRAY:
        item_type, length = struct.unpack_from("<IQ", buf, off)
        off += 12
        if item_type in _SCALARS:
            size = struct.calcsize(_SCALARS[item_type])
            if length <= 64:  # short arrays carry meaning (per-layer head counts, sliding window patterns)
                return list(struct.unpack_from(f"<{length}{_SCALARS[item_type][1]}", buf, off)), off + size * length
            return length, off + size * length
        if item_type == _STRING:
            if length > 1 << 26:
                raise GGUFError(f"implausible array length {length} in the GGUF header")
            if length <= 64:  # tags, languages: kept
                items = []
                for _ in range(length):
                    item, off = _read_str(buf, off)
                    items.append(item)
                return items, off
            for _ in range(length):  # the hot loop: a vocabulary's strings, stepped over
                off += 8 + _U64(buf, off)[0]
            if off > len(buf):
                raise struct.error("past the end")
            return length, off
        for _ in range(length):
            _, off = _read_value(buf, off, item_type)
        return length, off
    raise GGUFError(f"unknown GGUF value type {value_type}")
