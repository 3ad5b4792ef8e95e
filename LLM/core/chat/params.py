"""Request parameters: validation of InferenceConfig and mapping to an engine's request body."""

from __future__ import annotations

import os
import uuid
import warnings
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..config import ModelEntry
from ..errors import ConfigError
from ..validation import field_problems

DEFAULT_MAX_NEW_TOKENS = 512


class InferenceConfig(BaseModel):
    """One chat request: a prompt (or a full message list) for a configured model."""

    model_config = ConfigDict(extra="forbid")

    prompt: str | None = None
    model_id: str | None = None
    system_prompt: str | None = None
    messages: list[dict[str, Any]] | None = None
    max_new_tokens: int | None = Field(None, ge=1, le=1_000_000)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    top_k: int | None = Field(None, ge=0)
    repetition_penalty: float | None = Field(None, gt=0, le=10)
    do_sample: bool | None = None
    stop: list[str] | None = None
    seed: int | None = None
    # OpenAI's: False allows at most one tool call per step (the tool loop holds any server to it); None leaves
    # it to the server. The tool loop sends it only with `tools`, which it qualifies.
    parallel_tool_calls: bool | None = None
    # Files sent with the prompt (the last user message): paths, (name, bytes) pairs or Attachments. Images go to
    # a model with vision, documents as text (LLM/core/attachments).
    files: list[Any] = Field(default_factory=list)
    request_id: str = Field(default_factory=lambda: uuid.uuid4().hex)
    # Legacy fields from when every request loaded its own model; accepted and ignored.
    base_model: str | None = None
    adapter_dir: str | None = None

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise ConfigError(format_validation_error(type(self).__name__, exc)) from exc

    @field_validator("stop", mode="before")
    @classmethod
    def _stop_as_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("files")
    @classmethod
    def _file_sources(cls, value: list[Any]) -> list[Any]:
        for i, source in enumerate(value):
            pair = isinstance(source, tuple) and len(source) == 2 and isinstance(source[0], str) \
                and isinstance(source[1], (bytes, bytearray, memoryview))
            attachment = hasattr(source, "sha256") and hasattr(source, "data")
            if not (isinstance(source, (str, os.PathLike)) or pair or attachment):
                raise ValueError(f"files[{i}]: a path, a (name, bytes) pair or an Attachment, not "
                                 f"{type(source).__name__}")
        return value

    @field_validator("messages")
    @classmethod
    def _messages_shape(cls, value: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
        for i, message in enumerate(value or []):
            if not isinstance(message.get("role"), str):
                raise ValueError(f"message {i} has no 'role'")
        return value

    @model_validator(mode="after")
    def _required(self) -> "InferenceConfig":
        if not self.model_id:
            raise ValueError("model_id not provided")
        if self.prompt is None and not self.messages:
            raise ValueError("prompt or messages must be provided")
        if self.base_model is not None or self.adapter_dir is not None:
            warnings.warn(
                "InferenceConfig.base_model / adapter_dir are ignored: the model comes from "
                "llm_backends.yaml via model_id",
                DeprecationWarning,
                stacklevel=4,
            )
        return self


class ToolEnabledInferenceConfig(InferenceConfig):
    """A request that may call tools. ``tools``: names of enabled tools (default: the safe built-ins)."""

    enable_tools: bool = False
    tools: list[str] | None = None
    max_iterations: int = Field(8, ge=1, le=100)
    tool_mode: Literal["auto", "native", "fallback", "off"] | None = None
    # auto: the model decides; required: the first step must call a tool; none: no calls; a tool's name: that
    # tool must be called. In fallback mode on llama-server a forced call is held to a grammar of the schemas.
    tool_choice: str = Field("auto", min_length=1, max_length=64)


def format_validation_error(owner: str, exc: ValidationError) -> str:
    return "; ".join(problem.joined(owner) for problem in field_problems(exc))


def merged_stop(cfg: InferenceConfig, entry: ModelEntry) -> list[str]:
    return list(cfg.stop if cfg.stop is not None else (entry.default_params.stop or []))


def max_new_tokens(requested: int | None, entry: ModelEntry | None) -> int:
    """The max_tokens a request sends: the request's own, else the model's default_params, else
    DEFAULT_MAX_NEW_TOKENS (the window shows this as the value of "model default")."""
    default = entry.default_params.max_new_tokens if entry is not None else None
    return requested or default or DEFAULT_MAX_NEW_TOKENS


def request_params(cfg: InferenceConfig, entry: ModelEntry) -> dict[str, Any]:
    """OpenAI-style body parameters: the request's values over the model's default_params."""
    defaults = entry.default_params

    def pick(name: str) -> Any:
        value = getattr(cfg, name)
        return value if value is not None else getattr(defaults, name)

    params: dict[str, Any] = {"max_tokens": max_new_tokens(cfg.max_new_tokens, entry)}
    temperature = 0.0 if cfg.do_sample is False else pick("temperature")
    for key, value in (("temperature", temperature), ("top_p", pick("top_p")), ("top_k", pick("top_k"))):
        if value is not None:
            params[key] = value
    penalty = pick("repetition_penalty")
    if penalty is not None:
        # llama.cpp servers call it repeat_penalty; vLLM and our HF server repetition_penalty.
        params["repeat_penalty" if entry.backend == "llama_cpp" else "repetition_penalty"] = penalty
    stop = merged_stop(cfg, entry)
    if stop:
        params["stop"] = stop
    if cfg.seed is not None:
        params["seed"] = cfg.seed
    if cfg.parallel_tool_calls is not None:
        params["parallel_tool_calls"] = cfg.parallel_tool_calls
    if entry.backend == "vllm" and cfg.messages and cfg.messages[-1].get("role") == "assistant":
        # A continued answer: vLLM writes on from the unfinished turn only when asked to (llama-server prefills it
        # by default, the built-in server sees it is the last turn).
        params["continue_final_message"], params["add_generation_prompt"] = True, False
    return params
