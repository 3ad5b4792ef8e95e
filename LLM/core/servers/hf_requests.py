"""The request bodies the transformers server accepts: chat messages checked by a pure function, and models."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from .hf_generation import SamplingParams

ROLES = ("system", "user", "assistant", "tool")
# OpenAI: an assistant turn may leave out its content only when it carries tool calls.
_CONTENT_OPTIONAL_WITH = ("tool_calls", "function_call")


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _content_problems(where: str, content: Any) -> list[str]:
    """A string, or a list of parts each with a 'type' (text parts need their 'text' string)."""
    if isinstance(content, str):
        return []
    if not isinstance(content, list):
        return [f"{where}: must be a string or a list of content parts; got {_kind(content)}"]
    problems = []
    for j, part in enumerate(content):
        if not isinstance(part, dict):
            problems.append(f"{where}[{j}]: must be an object; got {_kind(part)}")
        elif not isinstance(part.get("type"), str):
            problems.append(f"{where}[{j}].type: is required (a string such as 'text')")
        elif part["type"] == "text" and not isinstance(part.get("text"), str):
            problems.append(f"{where}[{j}].text: is required for a text part (a string)")
    return problems


def _tool_call_problems(where: str, calls: Any) -> list[str]:
    if not isinstance(calls, list):
        return [f"{where}: must be a list; got {_kind(calls)}"]
    problems = []
    for j, call in enumerate(calls):
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            problems.append(f"{where}[{j}].function.name: is required (a string)")
    return problems


def message_problems(messages: Any) -> list[str]:
    """What is wrong with a chat request's ``messages``, each problem naming where; [] when nothing is.

    The rules are OpenAI's: a non-empty list of objects, each with a known role; content is
    required except on an assistant turn that carries tool calls.
    """
    if not isinstance(messages, list):
        return [f"messages: must be a list of message objects; got {_kind(messages)}"]
    if not messages:
        return ["messages: must not be empty"]
    problems: list[str] = []
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            problems.append(f"{where}: must be an object; got {_kind(message)}")
            continue
        role = message.get("role")
        if "role" not in message:
            problems.append(f"{where}.role: is required (one of {', '.join(ROLES)})")
        elif role not in ROLES:
            problems.append(f"{where}.role: must be one of {', '.join(ROLES)}; got {role!r}")
        content = message.get("content")
        optional = role == "assistant" and any(message.get(key) for key in _CONTENT_OPTIONAL_WITH)
        if content is None:
            if not optional and role in ROLES:
                problems.append(f"{where}.content: is required for role {role!r}")
        else:
            problems.extend(_content_problems(f"{where}.content", content))
        if "tool_calls" in message and message["tool_calls"] is not None:
            problems.extend(_tool_call_problems(f"{where}.tool_calls", message["tool_calls"]))
        if "name" in message and not isinstance(message["name"], str):
            problems.append(f"{where}.name: must be a string; got {_kind(message['name'])}")
    return problems


class _SamplingRequest(BaseModel):
    """The sampling fields chat and text completions share; unknown fields are accepted and ignored."""

    model_config = ConfigDict(extra="allow")

    model: str | None = None
    stream: bool = False
    stream_options: dict[str, Any] | None = None
    max_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0)
    top_p: float | None = Field(default=None, gt=0, le=1)
    top_k: int | None = Field(default=None, ge=0)
    repetition_penalty: float | None = Field(default=None, gt=0)
    stop: str | list[str] | None = None
    seed: int | None = None

    @property
    def include_usage(self) -> bool:
        return bool((self.stream_options or {}).get("include_usage"))

    def _limit(self) -> int | None:
        return self.max_tokens

    def sampling(self) -> SamplingParams:
        stop = [self.stop] if isinstance(self.stop, str) else list(self.stop or [])
        return SamplingParams(
            max_tokens=self._limit(),
            temperature=self.temperature,
            top_p=self.top_p,
            top_k=self.top_k,
            repetition_penalty=self.repetition_penalty,
            seed=self.seed,
            stop=stop,
        )


class ChatRequest(_SamplingRequest):
    """An OpenAI chat request; ``messages`` is checked by message_problems before this model sees it."""

    messages: list[dict[str, Any]] = Field(min_length=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    # Strict: "false" or 0 is a mistake to report, not a value to guess at.
    parallel_tool_calls: StrictBool | None = None

    @property
    def native_tools(self) -> list[dict[str, Any]] | None:
        """The tools whose calls are parsed out of the answer into ``tool_calls``: None without tools, or when
        ``tool_choice`` is "none" (then the answer is the model's text as it is)."""
        return self.tools if self.tools and self.tool_choice != "none" else None

    @property
    def max_tool_calls(self) -> int | None:
        """The most ``tool_calls`` an answer carries: one where ``parallel_tool_calls`` is false (later calls are
        dropped, as OpenAI's and vLLM's servers do), else all of them."""
        return 1 if self.parallel_tool_calls is False else None

    def _limit(self) -> int | None:
        return self.max_tokens or self.max_completion_tokens


# OpenAI's default for /v1/completions (vLLM's too): a text completion without max_tokens is short.
DEFAULT_COMPLETION_TOKENS = 16


class CompletionRequest(_SamplingRequest):
    """An OpenAI (legacy) text completion request: one prompt, given as a string or a list of one string."""

    prompt: str | list[str]

    @property
    def prompt_text(self) -> str | None:
        """The one prompt, or None when the list does not hold exactly one string (we generate one at a time)."""
        if isinstance(self.prompt, str):
            return self.prompt
        return self.prompt[0] if len(self.prompt) == 1 else None

    def _limit(self) -> int | None:
        return self.max_tokens or DEFAULT_COMPLETION_TOKENS


class AdapterRequest(BaseModel):
    """POST /v1/adapters: load the PEFT adapter in ``path`` and serve it as model ``name``."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    path: str = Field(min_length=1)
