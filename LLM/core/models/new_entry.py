"""Turning an inspected model into a config entry: an id, a free port and a context size that fits (pure apart
from asking the OS which ports are taken)."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import BackendsConfig
from ..errors import ConfigError
from .fit import check_fit, estimate
from .report import ModelReport
from .system import Machine
from .yaml_entries import propose_id

FIRST_PORT = 9100
DEFAULT_CONTEXT = 4096


@dataclass(frozen=True)
class NewEntry:
    """The entry ``add_entry`` will write, and what was decided on the user's behalf (one line each)."""

    model_id: str
    fields: dict[str, Any]
    notes: list[str] = field(default_factory=list)


def propose_entry(report: ModelReport, config: BackendsConfig, machine: Machine | None, *,
                  model_id: str | None = None, context_size: int | None = None, port: int | None = None,
                  display_name: str | None = None, mmproj: Path | None = None,
                  id_hint: str | None = None) -> NewEntry:
    """The entry for the inspected model; ConfigError saying what to do for files that are no model to
    serve on their own (an adapter, a projector). ``id_hint`` (a catalog id) names it unless taken, where
    ``model_id`` is the user's own choice and must be free."""
    info = report.info
    if info is None or report.path is None:
        raise ConfigError(f"{report.path}: {report.problem or 'not inspected'}")
    if info.kind in ("peft_adapter", "gguf_lora"):
        base = f" (its base: {info.base_model})" if info.base_model else ""
        raise ConfigError(f"{report.path}: a LoRA adapter{base}, not a model: add the base model, then set "
                          "adapter_dir: to this path in a second entry with the same base_model")
    if info.kind == "mmproj":
        raise ConfigError(f"{report.path}: a multimodal projector, not a model: add its model and pass this "
                          "file as its mmproj (llmctl models add MODEL --mmproj THIS)")
    notes: list[str] = []
    taken = set(config.models) | set(config.invalid)
    new_id = model_id or propose_id(id_hint or Path(report.path).name, taken)
    if new_id in taken:
        raise ConfigError(f"models.{new_id}: already exists; choose another id")
    if mmproj is None and info.kind == "gguf":
        mmproj = _sibling_projector(Path(report.path))
        if mmproj is not None:
            notes.append(f"uses the projector beside it: {mmproj.name}")
    extra = mmproj.stat().st_size if mmproj is not None and mmproj.is_file() else 0
    context = context_size or min(info.context_length or DEFAULT_CONTEXT, DEFAULT_CONTEXT)
    if context_size is None and machine is not None and machine.available_memory is not None:
        fit = check_fit(estimate(info, context, extra_bytes=extra), machine.available_memory, context)
        if not fit.fits and fit.fitting_context:
            notes.append(f"context_size {fit.fitting_context} instead of {context}: {fit.describe()}")
            context = fit.fitting_context
        elif not fit.fits:
            notes.append(f"it may not fit this machine: {fit.describe()}")
    fields: dict[str, Any] = {
        "base_model": str(report.path),
        "display_name": display_name or _display_name(report),
        "backend": "llama_cpp" if info.kind == "gguf" else "transformers",
        "port": port or free_port(config),
        "context_size": context,
    }
    if mmproj is not None:
        fields["mmproj"] = str(mmproj)
    return NewEntry(new_id, fields, notes)


def free_port(config: BackendsConfig, first: int = FIRST_PORT) -> int:
    """The first port from ``first`` that no entry names and nothing on this machine listens on."""
    used = {entry.port for entry in config.models.values() if entry.port}
    port = first
    while port in used or _listening(port):
        port += 1
    return port


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def _sibling_projector(model: Path) -> Path | None:
    candidates = sorted(p for p in model.parent.glob("*.gguf") if "mmproj" in p.name.lower() and p != model)
    return candidates[0] if len(candidates) == 1 else None


def _display_name(report: ModelReport) -> str:
    info = report.info
    stem = Path(report.path or "").name.removesuffix(".gguf")
    quant = f" ({info.quantization})" if info and info.quantization and info.quantization not in stem else ""
    return f"{stem}{quant}"
