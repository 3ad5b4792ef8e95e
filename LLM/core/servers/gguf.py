"""Reading a GGUF file's metadata (header key/values only; tensors are never read). Pure apart from the file read.

The memory budget needs a model's shape (layers, KV heads, head size) to estimate its KV cache.
The header is read sequentially; long arrays (the tokenizer's vocabulary) are skipped without decoding.
"""

from __future__ import annotations

import struct
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
