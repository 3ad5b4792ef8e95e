"""What inspecting a model file or folder found (plain data; inspection.py fills it, capabilities read it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

ModelKind = Literal["gguf", "hf", "peft_adapter", "gguf_lora", "mmproj"]


@dataclass(frozen=True)
class ModelInfo:
    """A model as its files describe it, read without loading it. None: the files do not say."""

    path: str
    kind: ModelKind
    size_bytes: int  # on disk: every part of a split GGUF, every weight file of a folder
    name: str | None = None  # general.name, or the folder's name
    architecture: str | None = None  # llama, qwen2, LlamaForCausalLM, ...
    parameters: int | None = None
    quantization: str | None = None  # Q4_1, Q4_K_M, F16, BF16, ...
    context_length: int | None = None  # native (training) context
    layers: int | None = None
    heads: int | None = None
    kv_heads: int | None = None
    head_size: int | None = None
    embedding_length: int | None = None
    feed_forward_length: int | None = None
    vocab_size: int | None = None
    chat_template: str | None = None  # the default template (untrusted: render only in the sandbox)
    license: str | None = None
    base_model: str | None = None  # an adapter's base, or the model a fine-tune came from
    tags: tuple[str, ...] = ()  # general.tags, or an HF README's tags
    files: tuple[str, ...] = ()  # the files read: split parts, weight files
    vision: bool | None = None  # a vision tower / projector is part of it (or it *is* an mmproj)
    audio: bool | None = None
    embedding: bool | None = None  # an embedding model (pooling, no LM head)
    response_template: str | None = None  # tokenizer_config.json's response_template (a tool-call schema)
    special_tokens: tuple[str, ...] = ()  # added tokens that mark formats: <tool_call>, <think>, [TOOL_CALLS]
    metadata: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def kv_bytes_per_token(self) -> int | None:
        """K and V bytes one context token costs in an f16 cache; None when the shape is unknown."""
        if not all(isinstance(v, int) and v > 0 for v in (self.layers, self.kv_heads, self.head_size)):
            return None
        return 2 * self.layers * self.kv_heads * self.head_size * 2  # type: ignore[operator]
