"""A configured model (or any path) judged before loading: its files inspected, what the yaml declares, what a
running engine reports, and this machine's memory, folded into one ModelReport (blocking: run it in a thread)."""

from __future__ import annotations

import importlib.util
import shutil
from collections.abc import Mapping
from pathlib import Path

from .config import ModelEntry
from .errors import ConfigError, InspectionError, ResourceNotAvailableError
from .models.inspection import Inspector
from .models.report import ModelReport, build_report
from .models.system import Machine, missing_cpu_features
from .protocol.props import EngineProps
from .servers import find_llama_server
from .servers.model_files import resolve_model_path, resolve_optional


def report_for_entry(entry: ModelEntry, inspector: Inspector, *, engine: EngineProps | None = None,
                     probe: Mapping[str, bool] | None = None, machine: Machine | None = None) -> ModelReport:
    """The entry's model as its files, its yaml and (when running) its engine describe it."""
    info = problem = path = None
    if entry.base_model:
        try:
            resolved = resolve_model_path(entry.base_model)
            path = str(resolved)
            info = inspector.inspect(resolved)
        except (InspectionError, ResourceNotAvailableError, ConfigError) as exc:
            problem = str(exc)
    mmproj = resolve_optional(entry.mmproj)
    declared = dict(entry.capabilities)
    if entry.mmproj and "vision" not in declared:
        declared["vision"] = True  # the entry names a projector: its server takes images
    extra = mmproj.stat().st_size if mmproj is not None and mmproj.is_file() else 0
    report = build_report(
        model_id=entry.id, path=path, info=info, problem=problem,
        name=" ".join(filter(None, (entry.model_name, entry.display_name, entry.id, Path(path or "").name))),
        model_type=entry.model_type, declared=declared, engine=engine, probe=probe,
        context_size=entry.context_size if entry.launchable else None, quantized_4bit=entry.use_4bit,
        gpu_layers=entry.gpu_layers, extra_bytes=extra, machine=machine if entry.launchable else None,
    )
    # Only with a machine to judge against: capabilities alone (the tool loop's question) need none of it.
    report.extra["requirements"] = requirement_problems(entry, machine) if machine is not None else []
    return report


def requirement_problems(entry: ModelEntry, machine: Machine | None) -> list[str]:
    """What this machine lacks to serve the entry, one sentence each: the engine build, the CPU features the
    portable build needs, the packages a backend needs. Empty when nothing is missing (or it cannot tell)."""
    problems = []
    if entry.backend == "llama_cpp" and not entry.llama_server_bin:
        if find_llama_server() is None and importlib.util.find_spec("llama_cpp") is None:
            problems.append("llama-server is not built here: `make install` or `llmctl engine build`")
        missing = missing_cpu_features(machine.cpu_flags) if machine is not None else []
        if missing:
            problems.append(f"this CPU lacks {', '.join(missing)}, which the portable llama-server build uses; "
                            "build one for it: llmctl engine build --cmake-args \"-DGGML_AVX2=OFF -DGGML_FMA=OFF\"")
    if entry.backend == "transformers":
        absent = [m for m in ("torch", "transformers", "peft") if importlib.util.find_spec(m) is None]
        if absent:
            problems.append(f"the transformers backend needs {', '.join(absent)}: pip install -e '.[transformers]'")
    if entry.backend == "vllm" and shutil.which("vllm") is None:
        problems.append("the vllm backend needs vLLM on this machine: pip install vllm")
    return problems


def report_for_path(path: Path, inspector: Inspector, *, context_size: int | None = None,
                    machine: Machine | None = None) -> ModelReport:
    """Any model file or folder, configured or not (``llmctl models inspect PATH``, the add-model dialog).
    InspectionError when it is not a model."""
    info = inspector.inspect(path)
    return build_report(model_id=None, path=str(path), info=info, name=path.name, context_size=context_size,
                        machine=machine)
