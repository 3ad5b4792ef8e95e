"""One model judged before loading: its inspection, capabilities, memory estimate and fit (pure: the caller
reads the files, the engine and the machine)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..protocol.props import EngineProps
from .capabilities import Capability, assess
from .fit import Fit, MemoryEstimate, check_fit, estimate
from .info import ModelInfo
from .system import Machine

BADGES = (("tools", "tools"), ("vision", "vision"), ("reasoning", "reasoning"), ("embedding", "embedding"),
          ("audio", "audio"))
CONFIDENT = 0.6  # below this a capability is a guess: shown with "?" and never acted on


@dataclass(frozen=True)
class ModelReport:
    """What the app knows about a model without loading it."""

    model_id: str | None
    path: str | None
    info: ModelInfo | None
    capabilities: dict[str, Capability]
    memory: MemoryEstimate | None = None
    fit: Fit | None = None
    problem: str | None = None  # why the files could not be inspected
    context_size: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def badges(self) -> list[str]:
        """Short labels for what it can do: "tools", "vision?" (a guess), ... in a fixed order."""
        out = []
        for name, label in BADGES:
            cap = self.capabilities.get(name)
            if cap is not None and cap.value:
                out.append(label if cap.confidence >= CONFIDENT else f"{label}?")
        return out

    def to_json(self) -> dict[str, Any]:
        info = self.info
        data: dict[str, Any] = {
            "id": self.model_id,
            "path": self.path,
            "kind": info.kind if info else None,
            "name": info.name if info else None,
            "architecture": info.architecture if info else None,
            "parameters": info.parameters if info else None,
            "quantization": info.quantization if info else None,
            "context_length": info.context_length if info else None,
            "size_bytes": info.size_bytes if info else None,
            "license": info.license if info else None,
            "base_model": info.base_model if info else None,
            "has_chat_template": bool(info and info.chat_template),
            "capabilities": {name: cap.to_json() for name, cap in self.capabilities.items()},
            "memory": self.memory.total if self.memory else None,
            "memory_detail": None if self.memory is None else {
                "weights": self.memory.weights, "kv_cache": self.memory.kv_cache, "buffers": self.memory.buffers,
                "gpu": self.memory.gpu, "context_size": self.context_size},
            "fit": None if self.fit is None else {
                "fits": self.fit.fits, "needed": self.fit.needed, "available": self.fit.available,
                "fitting_context": self.fit.fitting_context, "reason": self.fit.describe()},
            "badges": self.badges(),
            "problem": self.problem,
        }
        data.update(self.extra)
        return data


def build_report(*, model_id: str | None, path: str | None, info: ModelInfo | None, problem: str | None = None,
                 name: str = "", model_type: str = "instruct", declared: Mapping[str, bool] | None = None,
                 engine: EngineProps | None = None, probe: Mapping[str, bool] | None = None,
                 context_size: int | None = None, quantized_4bit: bool = False, gpu_layers: int | str | None = None,
                 extra_bytes: int = 0, machine: Machine | None = None) -> ModelReport:
    caps = assess(info=info, name=name or (info.name if info and info.name else "") or (path or ""),
                  model_type=model_type, declared=declared, engine=engine, probe=probe)
    memory = fit = None
    if info is not None and info.kind in ("gguf", "hf"):
        context = context_size or min(info.context_length or 4096, 4096)
        memory = estimate(info, context, quantized_4bit=quantized_4bit, gpu_layers=gpu_layers,
                          extra_bytes=extra_bytes)
        if machine is not None:
            fit = check_fit(memory, machine.available_memory, context, machine.gpu_memory)
        context_size = context
    return ModelReport(model_id, path, info, caps, memory, fit, problem, context_size)
