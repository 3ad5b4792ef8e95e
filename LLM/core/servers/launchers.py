"""Building the command line that starts a model's server, per engine (pure: no processes)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ..config import ModelEntry
from ..errors import ResourceNotAvailableError
from ..server_groups import Member, ServerGroup
from .llama_build import BINARY as LLAMA_SERVER
from .llama_build import build_hint, find_llama_server
from .lora_convert import converted_path
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
    # The server answers only requests bearing the key in this file (0600, made before spawning).
    # Given on the command line as a *path* (a command line is visible to every local user);
    # ``api_key_env`` names the variable that carries the key instead, for engines without a key-file flag.
    api_key_file: str | None = None
    api_key_env: str | None = None
    # (adapter_dir as configured, the file or name the engine loads), in the engine's load order.
    adapters: tuple[tuple[str, str], ...] = ()
    # PEFT directories to convert to GGUF LoRA files before spawning: (directory, output file).
    conversions: tuple[tuple[str, str], ...] = ()
    # llama-server group: each model id of the group gets its own slot (`id_slot`, its index in the group).
    pinned_slots: bool = False

    def engine_adapter(self, adapter_dir: str | None) -> str | None:
        """What the engine calls the configured adapter (its file, or its served name)."""
        return next((engine for configured, engine in self.adapters if configured == adapter_dir), None)

    def config_hash(self) -> str:
        """Identifies the launch settings; a running server with another hash is stale."""
        blob = json.dumps({"argv": self.argv, "env": self.env}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class HostFacts:
    """What the launchers need to know about this machine (injected so tests can vary it)."""

    python: str = sys.executable
    cpu_count: int = os.cpu_count() or 1
    llama_server: str | None = None  # our llama-server binary, when one is built or installed
    llama_cpp_python: bool = False  # the optional llama-cpp-python package is importable

    @classmethod
    def detect(cls) -> "HostFacts":
        import importlib.util

        binary = find_llama_server()
        return cls(llama_server=str(binary) if binary else None,
                   llama_cpp_python=importlib.util.find_spec("llama_cpp") is not None)


def build_launch(
    entry: ModelEntry, facts: HostFacts, key_file: Path | None = None, group: ServerGroup | None = None
) -> LaunchSpec:
    """The command line for the server of ``entry`` (its group's leader) loading every adapter of ``group``
    (default: the entry alone); ``key_file``: where the server's API key lives (None: no key)."""
    key = str(key_file) if key_file is not None else None
    group = group or ServerGroup(entry.id, (Member(entry.id, entry.request_model_name, entry.adapter_dir,
                                                   entry.adapter_scale),))
    if entry.backend == "llama_cpp":
        if entry.llama_server_bin or facts.llama_server or not facts.llama_cpp_python:
            # A missing binary gives a spec that fails before spawning with the command that builds it.
            binary = entry.llama_server_bin or facts.llama_server or LLAMA_SERVER
            return _llama_server(entry, group, binary, facts, key)
        return _llama_cpp_python(entry, group, facts)
    if entry.backend == "transformers":
        return _transformers(entry, group, facts, key)
    if entry.backend == "vllm":
        return _vllm(entry, group, key)
    raise ValueError(f"backend '{entry.backend}' is attached, never launched")


def _threads(entry: ModelEntry, facts: HostFacts) -> str:
    # llama-cpp-python defaults to half the cores; a desktop model server should use them all.
    return str(entry.threads or facts.cpu_count)


def _llama_cpp_python(entry: ModelEntry, group: ServerGroup, facts: HostFacts) -> LaunchSpec:
    if len(group.members) > 1:
        raise ResourceNotAvailableError(
            f"'{entry.id}' shares its server with {', '.join(group.model_ids[1:])}, which llama-cpp-python (the "
            f"fallback GGUF engine) cannot do: {build_hint()}, or set share_server: false on these entries")
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


def _llama_server(
    entry: ModelEntry, group: ServerGroup, binary: str, facts: HostFacts, key_file: str | None
) -> LaunchSpec:
    model = str(resolve_model_path(str(entry.base_model)))
    argv = [
        binary, "-m", model,
        "--host", entry.host,
        "--port", str(entry.port),
        "-c", str(entry.context_size),
        "-t", _threads(entry, facts),
        "--alias", entry.request_model_name,
        "--jinja",
        # The bundled web UI would be one more thing answering on the port; the workbench is the UI.
        "--no-webui",
    ]
    if entry.gpu_layers is not None:
        argv += ["-ngl", str(entry.gpu_layers)]
    adapters, conversions = [], []
    for adapter_dir in group.adapters:
        path = resolve_model_path(adapter_dir)
        if path.is_dir():  # a PEFT adapter: converted to a GGUF LoRA once, before the first start
            gguf = converted_path(path, Path(model))
            conversions.append((str(path), str(gguf)))
            path = gguf
        adapters.append((adapter_dir, str(path)))
    pinned = bool(adapters) and len(group.members) > 1
    if adapters:
        # Loaded once, applied per request: each request's `lora` field sets the scales (ServerManager).
        argv += ["--lora", ",".join(engine for _, engine in adapters), "--lora-init-without-apply"]
    if pinned:
        # A change of adapter empties a slot's KV cache, so each model id of the group keeps a slot of its own:
        # going back to an adapter continues from its cached prompt. The host-RAM prompt cache would swap a
        # slot's cache out whenever another slot runs; the unified KV lets each slot use the whole context.
        argv += ["-np", str(max(4, len(group.members))), "--kv-unified", "--cache-ram", "0"]
    if entry.mmproj:
        argv += ["--mmproj", str(resolve_model_path(entry.mmproj))]
    if key_file:
        argv += ["--api-key-file", key_file]
    argv += entry.extra_args
    return LaunchSpec("llama-server", argv, "health", entry.request_model_name, model, api_key_file=key_file,
                      adapters=tuple(adapters), conversions=tuple(conversions), pinned_slots=pinned)


def _transformers(entry: ModelEntry, group: ServerGroup, facts: HostFacts, key_file: str | None) -> LaunchSpec:
    model = str(resolve_model_path(str(entry.base_model)))
    argv = [
        facts.python, "-m", "LLM.core.servers.hf_server",
        "--model", model,
        "--host", entry.host,
        "--port", str(entry.port),
        "--context-size", str(entry.context_size),
    ]
    for name in group.served_base_names:
        argv += ["--served-model-name", name]
    adapters = []
    for member in group.members:
        if member.adapter:
            path = str(resolve_model_path(member.adapter))
            argv += ["--adapter", f"{member.request_name}={path}"]
            adapters.append((member.adapter, member.request_name))
    if entry.use_4bit:
        argv.append("--4bit")
    if entry.device_map is not None:
        device_map = entry.device_map
        argv += ["--device-map", device_map if isinstance(device_map, str) else json.dumps(device_map)]
    if entry.max_memory is not None:
        argv += ["--max-memory", json.dumps({str(k): v for k, v in entry.max_memory.items()})]
    if entry.torch_dtype is not None:
        argv += ["--torch-dtype", entry.torch_dtype]
    if entry.attn_implementation is not None:
        argv += ["--attn-implementation", entry.attn_implementation]
    if key_file:
        argv += ["--api-key-file", key_file]
    argv += entry.extra_args
    return LaunchSpec("transformers", argv, "health", group.served_base_names[0], model, api_key_file=key_file,
                      adapters=tuple(adapters))


def _vllm(entry: ModelEntry, group: ServerGroup, key_file: str | None) -> LaunchSpec:
    binary = shutil.which("vllm")
    if binary is None:
        binary = "vllm"  # reported as a missing engine when spawning fails
    base = str(entry.base_model)
    argv = [
        binary, "serve", base,
        "--host", entry.host,
        "--port", str(entry.port),
        # The bare base answers to these names; each adapter entry's requests name its LoRA module.
        "--served-model-name", *group.served_base_names,
        "--max-model-len", str(entry.context_size),
        "--tensor-parallel-size", str(entry.tensor_parallel_size),
        "--pipeline-parallel-size", str(entry.pipeline_parallel_size),
    ]
    modules = [(m.adapter, m.request_name) for m in group.members if m.adapter]
    if modules:
        argv += ["--enable-lora", "--lora-modules", *(f"{name}={path}" for path, name in modules)]
        rank = max_lora_rank(path for path, _ in modules)
        if rank is not None:
            argv += ["--max-lora-rank", str(rank)]
    if entry.use_4bit:
        argv += ["--quantization", "bitsandbytes"]
    if entry.tools != "off":
        argv += ["--enable-auto-tool-choice", "--tool-call-parser", "hermes"]
    argv += entry.extra_args
    # vLLM takes its key only as --api-key (visible to every local user) or VLLM_API_KEY: the latter.
    # Adapters added to the yaml later load without a restart (the server is keyed and on loopback, so only
    # the workbench can use these routes).
    env = {VLLM_RUNTIME_LORA: "True"} if modules else {}
    return LaunchSpec("vllm", argv, "health", group.served_base_names[0], None, env, api_key_file=key_file,
                      api_key_env="VLLM_API_KEY" if key_file else None,
                      adapters=tuple((path, name) for path, name in modules))


VLLM_RUNTIME_LORA = "VLLM_ALLOW_RUNTIME_LORA_UPDATING"
# The ranks vLLM accepts for --max-lora-rank (its default, 16, rejects larger adapters at load time).
VLLM_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)


def max_lora_rank(adapter_dirs: Iterable[str]) -> int | None:
    """The smallest rank vLLM accepts that holds every adapter (``r`` in adapter_config.json); None when no
    adapter's config can be read (a hub name vLLM resolves itself): vLLM's default then applies."""
    ranks = []
    for adapter_dir in adapter_dirs:
        try:
            ranks.append(int(json.loads((Path(adapter_dir) / "adapter_config.json").read_text())["r"]))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    if not ranks:
        return None
    need = max(ranks)
    return next((r for r in VLLM_LORA_RANKS if r >= need), need)


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
    if spec.engine in ("vllm", "llama-server"):
        binary = spec.argv[0]
        found = binary if os.path.sep in binary else shutil.which(binary)
        hint = build_hint() if spec.engine == "llama-server" else "install vLLM (pip install vllm) on this machine"
        if found is None or not os.path.isfile(found):
            raise ResourceNotAvailableError(f"the {spec.engine} engine is not installed ('{binary}' not found); {hint}")
        if not os.access(found, os.X_OK):
            raise ResourceNotAvailableError(f"the {spec.engine} engine '{found}' is not executable "
                                            f"(chmod +x it, or {hint})")
