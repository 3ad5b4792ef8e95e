"""Building the command line that starts a model's server, per engine (pure: no processes)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from dataclasses import dataclass, field
from typing import Literal

from ..config import ModelEntry
from ..errors import ResourceNotAvailableError
from .model_files import resolve_model_path

# How readiness is probed. llama-cpp-python has no /health and its /v1/models takes the
# engine's global lock (it waits behind, or interrupts, a running generation), so it is
# probed with GET /openapi.json; llama-server, vLLM and our HF server answer /health.
Readiness = Literal["openapi", "health"]


@dataclass(frozen=True)
class LaunchSpec:
    engine: str
    argv: list[str]
    readiness: Readiness
    served_model_name: str
    model_path: str | None = None  # weights to check against free memory before starting
    env: dict[str, str] = field(default_factory=dict)

    def config_hash(self) -> str:
        """Identifies the launch settings; a running server with another hash is stale."""
        blob = json.dumps({"argv": self.argv, "env": self.env}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class HostFacts:
    """What the launchers need to know about this machine (injected so tests can vary it)."""

    python: str = sys.executable
    cpu_count: int = os.cpu_count() or 1
    llama_server_on_path: str | None = None

    @classmethod
    def detect(cls) -> "HostFacts":
        return cls(llama_server_on_path=shutil.which("llama-server"))


def build_launch(entry: ModelEntry, facts: HostFacts) -> LaunchSpec:
    if entry.backend == "llama_cpp":
        binary = entry.llama_server_bin or facts.llama_server_on_path
        return _llama_server(entry, binary, facts) if binary else _llama_cpp_python(entry, facts)
    if entry.backend == "transformers":
        return _transformers(entry, facts)
    if entry.backend == "vllm":
        return _vllm(entry)
    raise ValueError(f"backend '{entry.backend}' is attached, never launched")


def _threads(entry: ModelEntry, facts: HostFacts) -> str:
    # llama-cpp-python defaults to half the cores; a desktop model server should use them all.
    return str(entry.threads or facts.cpu_count)


def _llama_cpp_python(entry: ModelEntry, facts: HostFacts) -> LaunchSpec:
    model = str(resolve_model_path(str(entry.base_model)))
    argv = [
        facts.python, "-m", "llama_cpp.server",
        "--model", model,
        "--model_alias", entry.request_model_name,
        "--host", entry.host,
        "--port", str(entry.port),
        "--n_ctx", str(entry.context_size),
        "--n_threads", _threads(entry, facts),
        "--n_threads_batch", _threads(entry, facts),
        # The default cuts a running generation short when another request arrives.
        "--interrupt_requests", "False",
    ]
    if entry.adapter_dir:
        argv += ["--lora_path", str(resolve_model_path(entry.adapter_dir))]
    if entry.chat_format:
        argv += ["--chat_format", entry.chat_format]
    argv += entry.extra_args
    return LaunchSpec("llama-cpp-python", argv, "openapi", entry.request_model_name, model)


def _llama_server(entry: ModelEntry, binary: str, facts: HostFacts) -> LaunchSpec:
    model = str(resolve_model_path(str(entry.base_model)))
    argv = [
        binary, "-m", model,
        "--host", entry.host,
        "--port", str(entry.port),
        "-c", str(entry.context_size),
        "-t", _threads(entry, facts),
        "--alias", entry.request_model_name,
        "--jinja",
    ]
    if entry.adapter_dir:
        argv += ["--lora", str(resolve_model_path(entry.adapter_dir))]
    argv += entry.extra_args
    return LaunchSpec("llama-server", argv, "health", entry.request_model_name, model)


def _transformers(entry: ModelEntry, facts: HostFacts) -> LaunchSpec:
    model = str(resolve_model_path(str(entry.base_model)))
    argv = [
        facts.python, "-m", "LLM.core.servers.hf_server",
        "--model", model,
        "--host", entry.host,
        "--port", str(entry.port),
        "--served-model-name", entry.request_model_name,
        "--context-size", str(entry.context_size),
    ]
    if entry.adapter_dir:
        argv += ["--adapter", str(resolve_model_path(entry.adapter_dir))]
    if entry.use_4bit:
        argv.append("--4bit")
    argv += entry.extra_args
    return LaunchSpec("transformers", argv, "health", entry.request_model_name, model)


def _vllm(entry: ModelEntry) -> LaunchSpec:
    binary = shutil.which("vllm")
    if binary is None:
        binary = "vllm"  # reported as a missing engine when spawning fails
    base = str(entry.base_model)
    served = entry.request_model_name
    argv = [
        binary, "serve", base,
        "--host", entry.host,
        "--port", str(entry.port),
        # With an adapter, requests name the LoRA module; the bare base gets another name.
        "--served-model-name", f"{served}-base" if entry.adapter_dir else served,
        "--max-model-len", str(entry.context_size),
        "--tensor-parallel-size", str(entry.tensor_parallel_size),
        "--pipeline-parallel-size", str(entry.pipeline_parallel_size),
    ]
    if entry.adapter_dir:
        argv += ["--enable-lora", "--lora-modules", f"{served}={entry.adapter_dir}"]
    if entry.use_4bit:
        argv += ["--quantization", "bitsandbytes"]
    if entry.tools != "off":
        argv += ["--enable-auto-tool-choice", "--tool-call-parser", "hermes"]
    argv += entry.extra_args
    return LaunchSpec("vllm", argv, "health", served, None)


def ensure_engine_installed(spec: LaunchSpec) -> None:
    """A clear error before spawning when the engine's package or binary is missing."""
    import importlib.util

    if spec.engine == "llama-cpp-python" and importlib.util.find_spec("llama_cpp") is None:
        raise ResourceNotAvailableError(
            "the llama_cpp backend needs llama-cpp-python: pip install 'llama-cpp-python[server]'"
        )
    if spec.engine == "transformers":
        missing = [m for m in ("torch", "transformers", "peft") if importlib.util.find_spec(m) is None]
        if missing:
            raise ResourceNotAvailableError(
                f"the transformers backend needs {', '.join(missing)}: pip install 'llm-workbench[transformers]'"
            )
    if spec.engine in ("vllm", "llama-server") and shutil.which(spec.argv[0]) is None and not os.path.exists(spec.argv[0]):
        raise ResourceNotAvailableError(f"the {spec.engine} engine is not installed ('{spec.argv[0]}' not found)")
