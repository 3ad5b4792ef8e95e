"""Loading and validating llm_backends.yaml: a pure function of the text, plus file resolution."""

from __future__ import annotations

import difflib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import ConfigError, ModelNotFoundError
from .server_groups import ServerGroup, form_groups, port_clashes
from .validation import field_problems

APP_NAME = "llm-workbench"
CONFIG_ENV_VAR = "LLM_BACKENDS_CONFIG"
SHIPPED_CONFIG = Path(__file__).resolve().parent.parent / "configs" / "llm_backends.yaml"

Backend = Literal["llama_cpp", "transformers", "vllm", "openai"]
LAUNCHABLE_BACKENDS = frozenset({"llama_cpp", "transformers", "vllm"})
ToolMode = Literal["auto", "native", "fallback", "off"]
TorchDtype = Literal["auto", "float32", "bfloat16", "float16"]
# transformers' attention kernels; flash attention needs its package (the server says so when missing).
AttnImplementation = Literal["eager", "sdpa", "flash_attention_2", "flash_attention_3", "flex_attention"]
DEVICE_MAP_NAMES = ("auto", "balanced", "balanced_low_0", "sequential", "cpu", "mps")
_DEVICE_RE = re.compile(r"^(cpu|mps|disk|meta|cuda(:\d+)?|xpu(:\d+)?|\d+)$")
_MEMORY_RE = re.compile(r"^\d+(\.\d+)?\s*([KMGT]i?B|B)$", re.IGNORECASE)
# What a model can do (models/capabilities.py answers each with a confidence); a yaml entry may declare them.
CAPABILITY_NAMES = ("chat", "tools", "parallel_tool_calls", "reasoning", "system_role", "vision", "audio", "embedding")
TRANSFORMERS_ONLY = ("device_map", "max_memory", "torch_dtype", "attn_implementation")


class DefaultParams(BaseModel):
    """Generation parameters a model uses unless the request sets its own."""

    model_config = ConfigDict(extra="forbid")

    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    top_k: int | None = Field(None, ge=0)
    repetition_penalty: float | None = Field(None, gt=0, le=10)
    max_new_tokens: int | None = Field(None, ge=1)
    stop: list[str] | None = None

    @field_validator("stop", mode="before")
    @classmethod
    def _stop_as_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


class ModelEntry(BaseModel):
    """One validated model of llm_backends.yaml (the original keys plus the extensions)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    # The original format.
    base_model: str | None = None
    adapter_dir: str | None = None
    model_type: Literal["instruct", "base"] = "instruct"
    port: int | None = None
    use_4bit: bool = False
    # Extensions.
    backend: Backend
    server_url: str | None = None
    model_name: str | None = None
    api_key_env: str | None = None
    display_name: str | None = None
    host: str = "127.0.0.1"
    context_size: int = Field(4096, ge=16)
    usable_context: int | None = Field(None, ge=1)
    startup_timeout_s: float = Field(180.0, gt=0)
    request_timeout_s: float = Field(300.0, gt=0)
    connect_timeout_s: float = Field(5.0, gt=0)
    tools: ToolMode = "auto"
    system_prompt: str | None = None
    default_params: DefaultParams = Field(default_factory=DefaultParams)
    keep_alive: Union[Literal["session", "forever"], float] = "session"
    threads: int | None = Field(None, ge=1)
    chat_format: str | None = None
    llama_server_bin: str | None = None
    gpu_layers: Union[int, Literal["auto", "all"], None] = None
    mmproj: str | None = None
    # Attached images are downscaled to at most this many pixels on their longest side before they are sent.
    image_max_side: int = Field(1024, ge=64, le=8192)
    tensor_parallel_size: int = Field(1, ge=1)
    pipeline_parallel_size: int = Field(1, ge=1)
    extra_args: list[str] = Field(default_factory=list)
    # What the model can do, declared by the user: wins over anything detected (LLM/core/models/capabilities.py).
    capabilities: dict[str, bool] = Field(default_factory=dict)
    # Server groups (see server_groups.py).
    adapter_scale: float = Field(1.0, gt=0, le=100)
    share_server: bool = True
    # The transformers server's loading options (from_pretrained's keyword arguments).
    device_map: Union[str, dict[str, Union[int, str]], None] = None
    max_memory: dict[Union[int, str], Union[int, str]] | None = None
    torch_dtype: TorchDtype | None = None
    attn_implementation: AttnImplementation | None = None

    @field_validator("device_map")
    @classmethod
    def _device_map(cls, value: Any) -> Any:
        if isinstance(value, str) and value not in DEVICE_MAP_NAMES and not _DEVICE_RE.match(value):
            raise ValueError(f"must be one of {', '.join(DEVICE_MAP_NAMES)}, a device (cuda:0, 0) or a mapping of "
                             f"module names to devices, got {value!r}")
        if isinstance(value, dict):
            bad = {k: v for k, v in value.items() if not _DEVICE_RE.match(str(v))}
            if bad:
                module, device = next(iter(bad.items()))
                raise ValueError(f"module '{module}' maps to {device!r}, which is not a device (cpu, disk, cuda:0, 0)")
        return value

    @field_validator("max_memory")
    @classmethod
    def _max_memory(cls, value: Any) -> Any:
        for device, size in (value or {}).items():
            if not _DEVICE_RE.match(str(device)):
                raise ValueError(f"'{device}' is not a device (a GPU number, cpu, mps or disk)")
            if isinstance(size, bool) or not (isinstance(size, int) and size > 0 or _MEMORY_RE.match(str(size))):
                raise ValueError(f"'{device}': {size!r} is not a size (a number of bytes or e.g. \"10GiB\", \"500MB\")")
        return value

    @field_validator("capabilities")
    @classmethod
    def _known_capabilities(cls, value: dict[str, bool]) -> dict[str, bool]:
        unknown = [name for name in value if name not in CAPABILITY_NAMES]
        if unknown:
            close = difflib.get_close_matches(unknown[0], CAPABILITY_NAMES, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise ValueError(f"unknown capability '{unknown[0]}'{hint}; known: {', '.join(CAPABILITY_NAMES)}")
        return value

    @field_validator("port")
    @classmethod
    def _port_range(cls, value: int | None) -> int | None:
        if value is not None and not 1 <= value <= 65535:
            raise ValueError(f"must be 1-65535, got {value}")
        return value

    @field_validator("gpu_layers")
    @classmethod
    def _layers(cls, value: Any) -> Any:
        if isinstance(value, int) and value < 0:
            raise ValueError(f"must be >= 0, 'auto' or 'all', got {value}")
        return value

    @field_validator("tools", mode="before")
    @classmethod
    def _yaml_off(cls, value: Any) -> Any:
        # YAML 1.1 reads an unquoted `off` as false.
        return "off" if value is False else value

    @field_validator("keep_alive")
    @classmethod
    def _positive_ttl(cls, value: Any) -> Any:
        if isinstance(value, float) and value <= 0:
            raise ValueError(f"an idle TTL must be > 0 seconds, got {value:g}")
        return value

    @model_validator(mode="after")
    def _backend_requirements(self) -> "ModelEntry":
        if self.backend == "openai":
            if not self.server_url:
                raise ValueError("server_url: required when backend is 'openai'")
        else:
            if not self.base_model:
                raise ValueError(f"base_model: required for backend '{self.backend}'")
            if self.port is None:
                raise ValueError(f"port: required for backend '{self.backend}'")
        if self.backend != "transformers":
            for key in TRANSFORMERS_ONLY:
                if getattr(self, key) is not None:
                    raise ValueError(f"{key}: only the transformers backend takes it (this model's backend is "
                                     f"'{self.backend}')")
        if self.usable_context is not None and self.usable_context > self.context_size:
            raise ValueError(
                f"usable_context: must be <= context_size ({self.context_size}), got {self.usable_context}"
            )
        return self

    @property
    def label(self) -> str:
        return self.display_name or self.id

    @property
    def launchable(self) -> bool:
        return self.backend in LAUNCHABLE_BACKENDS

    @property
    def adapter_name(self) -> str | None:
        """The adapter's file or directory name, as the window and llmctl show it."""
        return Path(self.adapter_dir.removeprefix("pkg:")).name if self.adapter_dir else None

    @property
    def effective_usable_context(self) -> int:
        return self.usable_context or int(self.context_size * 0.75)

    @property
    def base_url(self) -> str:
        """Root URL of the server (no /v1) that serves this model."""
        if self.backend == "openai":
            url = (self.server_url or "").rstrip("/")
            return url[: -len("/v1")] if url.endswith("/v1") else url
        return f"http://{self.host}:{self.port}"

    @property
    def request_model_name(self) -> str:
        """What to send as ``model`` in requests."""
        return self.model_name or self.id


class EndpointSettings(BaseModel):
    """The `endpoint:` section: the one OpenAI-compatible endpoint other apps use (`llmctl serve`)."""

    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(8484, ge=1, le=65535)
    # Browser origins allowed to call the endpoint (CORS); none by default, so no web page can.
    cors_origins: list[str] = Field(default_factory=list)
    # Extra names the Host header may carry (e.g. "mybox.lan" when bound to 0.0.0.0); the bound ones always may.
    allowed_hosts: list[str] = Field(default_factory=list)
    # How long a request waits for its model to start before it is answered 503 (the start goes on).
    start_timeout_s: float = Field(600.0, gt=0)

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        for origin in value:
            if origin == "*":
                raise ValueError("'*' would let every web page use your models; list the origins instead")
            if not re.match(r"^https?://[^/\s]+/?$", origin):
                raise ValueError(f"an origin is scheme://host[:port] with no path, got {origin!r}")
        return [o.rstrip("/") for o in value]


MODEL_KEYS = frozenset(ModelEntry.model_fields) - {"id"}
TOP_KEYS = ("models", "defaults", "endpoint")
GLOBAL_KEYS = frozenset({"max_loaded", "models_dir"})  # settings of the whole file, given under `defaults`
DEFAULT_MAX_LOADED = 2  # a desktop: the model in use and the one before it
DEFAULT_PARAM_KEYS = frozenset(DefaultParams.model_fields)


@dataclass(frozen=True)
class ConfigProblem:
    """One reason an entry (or the whole file) was rejected."""

    source: str
    path: str  # e.g. "models.my_model.port"; "" for the whole file
    message: str
    model_id: str | None = None

    def __str__(self) -> str:
        return f"{self.source}: {self.path}: {self.message}" if self.path else f"{self.source}: {self.message}"


@dataclass
class BackendsConfig:
    """The valid models of a config file plus every problem found in it."""

    source: str
    models: dict[str, ModelEntry] = field(default_factory=dict)
    problems: list[ConfigProblem] = field(default_factory=list)
    # Raw entries that failed validation, by id, so a UI can list them disabled.
    invalid: dict[str, list[str]] = field(default_factory=dict)
    # How many model servers this process keeps loaded at once (defaults.max_loaded); the least recently
    # used idle one is unloaded to make room.
    max_loaded: int = DEFAULT_MAX_LOADED
    # Where downloads go (defaults.models_dir, relative to the file); None: <user data dir>/models.
    models_dir: Path | None = None
    # Launchable models by server group (each model id's entry carries its group's port).
    groups: dict[str, ServerGroup] = field(default_factory=dict)
    # The `endpoint:` section (llmctl serve, the window's "Serve models to other apps").
    endpoint: EndpointSettings = field(default_factory=EndpointSettings)

    def __post_init__(self) -> None:
        if self.models and not self.groups:  # built in code rather than parsed: group what it was given
            self.group_models()

    def group_models(self) -> None:
        """Form the server groups of the launchable models; each member answers on its group's port."""
        self.groups = {}
        for group in form_groups(list(self.models.values())):
            self.groups[group.id] = group
            port = self.models[group.id].port
            for model_id in group.model_ids:
                if self.models[model_id].port != port:
                    self.models[model_id] = self.models[model_id].model_copy(update={"port": port})

    def group_of(self, model_id: str) -> ServerGroup:
        """The server group a launchable model belongs to."""
        for group in self.groups.values():
            if model_id in group.model_ids:
                return group
        self.get(model_id)  # unknown or invalid: its own error
        raise ConfigError(f"model '{model_id}' is attached (backend openai): it has no server group")

    def get(self, model_id: str) -> ModelEntry:
        try:
            return self.models[model_id]
        except KeyError:
            if model_id in self.invalid:
                raise ConfigError("; ".join(self.invalid[model_id])) from None
            raise ModelNotFoundError(model_id, self.models) from None


def parse_backends(
    text: str, source: str = "llm_backends.yaml", strict: bool = False, base_dir: Path | None = None
) -> BackendsConfig:
    """Parse the YAML text into validated models; relative paths resolve against base_dir."""
    result = BackendsConfig(source=source)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        _add(result, ConfigProblem(source, "", f"YAML syntax error: {where}{problem}"), strict)
        return result
    if data is None:
        data = {}
    if not isinstance(data, dict):
        _add(result, ConfigProblem(source, "", f"top level must be a mapping, got {_type(data)}"), strict)
        return result
    for key in data:
        if key not in TOP_KEYS:
            _add(result, ConfigProblem(source, str(key), _unknown_key(key, TOP_KEYS)), strict)
    _read_endpoint(result, data.get("endpoint"), strict)

    defaults = data.get("defaults") or {}
    if not isinstance(defaults, dict):
        _add(result, ConfigProblem(source, "defaults", f"must be a mapping, got {_type(defaults)}"), strict)
        defaults = {}
    else:
        if "max_loaded" in defaults:
            value = defaults["max_loaded"]
            if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
                result.max_loaded = value
            else:
                problem = f"must be a whole number >= 1 (how many models stay loaded at once), got {value!r}"
                _add(result, ConfigProblem(source, "defaults.max_loaded", problem), strict)
        if "models_dir" in defaults:
            value = defaults["models_dir"]
            if isinstance(value, str) and value.strip():
                folder = Path(os.path.expandvars(value)).expanduser()
                result.models_dir = folder if folder.is_absolute() or base_dir is None else base_dir / folder
            else:
                problem = f"must be a folder path (where downloaded models are kept), got {value!r}"
                _add(result, ConfigProblem(source, "defaults.models_dir", problem), strict)
        known = MODEL_KEYS | GLOBAL_KEYS
        for key in defaults:
            if key not in known:
                _add(result, ConfigProblem(source, f"defaults.{key}", _unknown_key(key, known)), strict)
        defaults = {k: v for k, v in defaults.items() if k in MODEL_KEYS}

    models = data.get("models")
    if not isinstance(models, dict) or not models:
        got = "nothing" if not models else _type(models)
        _add(result, ConfigProblem(source, "models", f"must be a non-empty mapping of model ids, got {got}"), strict)
        return result

    for model_id, raw in models.items():
        entry, entry_problems = _validate_entry(str(model_id), raw, defaults, source, base_dir)
        if entry is None:
            result.invalid[str(model_id)] = [str(p) for p in entry_problems]
            for problem in entry_problems:
                _add(result, problem, strict)
            continue
        result.models[str(model_id)] = entry

    _form_groups(result, strict)
    return result


def _validate_entry(
    model_id: str, raw: Any, defaults: dict[str, Any], source: str, base_dir: Path | None
) -> tuple[ModelEntry | None, list[ConfigProblem]]:
    problems: list[ConfigProblem] = []
    prefix = f"models.{model_id}"
    if not isinstance(raw, dict):
        problems.append(ConfigProblem(source, prefix, f"must be a mapping of keys, got {_type(raw)}", model_id))
        return None, problems
    for key in raw:
        if key not in MODEL_KEYS:
            problems.append(ConfigProblem(source, f"{prefix}.{key}", _unknown_key(key, MODEL_KEYS), model_id))
    params = raw.get("default_params")
    if isinstance(params, dict):
        for key in params:
            if key not in DEFAULT_PARAM_KEYS:
                path = f"{prefix}.default_params.{key}"
                problems.append(ConfigProblem(source, path, _unknown_key(key, DEFAULT_PARAM_KEYS), model_id))
    if problems:
        return None, problems

    merged = {**defaults, **raw}
    if isinstance(defaults.get("default_params"), dict) and isinstance(raw.get("default_params"), dict):
        merged["default_params"] = {**defaults["default_params"], **raw["default_params"]}
    for key in ("base_model", "adapter_dir", "mmproj"):
        if isinstance(merged.get(key), str):
            merged[key] = _resolve_path(merged[key], base_dir, keep_names=merged.get("backend") == "vllm")
    if merged.get("backend") is None:
        backend = _infer_backend(merged)
        if backend is None:
            problems.append(
                ConfigProblem(
                    source,
                    f"{prefix}.backend",
                    "cannot infer the backend (base_model is neither a .gguf file nor a directory); "
                    "set backend: llama_cpp | transformers | vllm | openai",
                    model_id,
                )
            )
            return None, problems
        merged["backend"] = backend
    try:
        entry = ModelEntry(id=model_id, **merged)
    except ValidationError as exc:
        for problem in field_problems(exc):
            path = f"{prefix}.{problem.path}" if problem.path else prefix
            problems.append(ConfigProblem(source, path, problem.message, model_id))
        return None, problems
    if entry.adapter_dir and not entry.adapter_dir.startswith("pkg:") and not Path(entry.adapter_dir).exists():
        problems.append(
            ConfigProblem(source, f"{prefix}.adapter_dir", f"directory does not exist: {entry.adapter_dir}", model_id)
        )
        return None, problems
    return entry, problems


def _infer_backend(merged: dict[str, Any]) -> str | None:
    base = merged.get("base_model")
    if merged.get("server_url") and not base:
        return "openai"
    if not isinstance(base, str):
        return None
    if base.lower().endswith(".gguf"):
        return "llama_cpp"
    if not base.startswith("pkg:") and Path(base).is_dir():
        return "transformers"
    return None


def _resolve_path(value: str, base_dir: Path | None, keep_names: bool = False) -> str:
    if value.startswith("pkg:"):
        return value
    path = Path(os.path.expandvars(value)).expanduser()
    if not path.is_absolute() and base_dir is not None:
        candidate = base_dir / path
        # vLLM also takes a model name (Qwen/Qwen2.5-7B-Instruct) from its own cache: keep it as written.
        if candidate.exists() or not keep_names:
            return str(candidate)
    return str(path)


def _form_groups(result: BackendsConfig, strict: bool) -> None:
    for clash in port_clashes(list(result.models.values())):
        problem = ConfigProblem(result.source, f"models.{clash.model_id}.port", clash.message, clash.model_id)
        del result.models[clash.model_id]
        result.invalid[clash.model_id] = [str(problem)]
        _add(result, problem, strict)
    result.group_models()


def _unknown_key(key: Any, known: Any) -> str:
    close = difflib.get_close_matches(str(key), sorted(known), n=1, cutoff=0.6)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    return f"unknown key '{key}'{hint}"


def _type(value: Any) -> str:
    return type(value).__name__


def _read_endpoint(result: BackendsConfig, raw: Any, strict: bool) -> None:
    """A bad `endpoint:` section is reported and the defaults are kept: the models still load."""
    if raw is None:
        return
    if not isinstance(raw, dict):
        _add(result, ConfigProblem(result.source, "endpoint", f"must be a mapping, got {_type(raw)}"), strict)
        return
    try:
        result.endpoint = EndpointSettings(**raw)
    except ValidationError as exc:
        for problem in field_problems(exc):
            _add(result, ConfigProblem(result.source, f"endpoint.{problem.path}".rstrip("."), problem.message), strict)


def _add(result: BackendsConfig, problem: ConfigProblem, strict: bool) -> None:
    if strict:
        raise ConfigError(str(problem))
    result.problems.append(problem)


def user_config_file() -> Path:
    """The user's own llm_backends.yaml (which may not exist yet): where added models are written."""
    from platformdirs import user_config_dir

    return Path(user_config_dir(APP_NAME)) / "llm_backends.yaml"


def resolve_config_path(path: str | os.PathLike[str] | None = None) -> Path:
    """Explicit path > $LLM_BACKENDS_CONFIG > the user config dir (if a file is there) > the shipped file."""
    if path is not None:
        return Path(path)
    env = os.environ.get(CONFIG_ENV_VAR)
    if env:
        return Path(env)
    user_file = user_config_file()
    if user_file.is_file():
        return user_file
    return SHIPPED_CONFIG


def load_backends(path: str | os.PathLike[str] | None = None, strict: bool = False) -> BackendsConfig:
    """Read and parse the config file chosen by resolve_config_path."""
    resolved = resolve_config_path(path)
    try:
        text = resolved.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{resolved}: cannot read config file: {exc.strerror or exc}") from exc
    return parse_backends(text, source=str(resolved), strict=strict, base_dir=resolved.parent)
