"""Which body fields a continued answer (the last turn the assistant's own, unfinished) adds per backend."""

from __future__ import annotations

import pytest

from LLM.core.chat import InferenceConfig
from LLM.core.chat.params import request_params
from LLM.core.config import parse_backends

CUT = [{"role": "user", "content": "Name the primary colours"}, {"role": "assistant", "content": "Red, "}]
ASKED = CUT[:1]


def entry(backend: str):
    keys = {"vllm": "base_model: Qwen/Qwen2.5-7B-Instruct\n    port: 8000",
            "llama_cpp": "base_model: /m.gguf\n    port: 8000",
            "openai": 'server_url: "http://127.0.0.1:1/v1"'}[backend]
    return parse_backends(f"models:\n  m:\n    backend: {backend}\n    {keys}\n", strict=False).models["m"]


@pytest.mark.parametrize("backend, messages, extra", [
    ("vllm", CUT, {"continue_final_message": True, "add_generation_prompt": False}),
    ("vllm", ASKED, {}),
    ("llama_cpp", CUT, {}),  # llama-server prefills a final assistant turn by default
    ("openai", CUT, {}),  # an unknown server: sent as it is
])
def test_request_params_continuation_fields(backend, messages, extra):
    params = request_params(InferenceConfig(model_id="m", messages=messages), entry(backend))
    added = {k: params[k] for k in ("continue_final_message", "add_generation_prompt") if k in params}
    assert added == extra


@pytest.mark.parametrize("value", [None, True, False], ids=["server-default", "true", "false"])
def test_request_params_parallel_tool_calls_only_when_set(value):
    from LLM.core.chat.params import ToolEnabledInferenceConfig

    plain = InferenceConfig(model_id="m", messages=ASKED, parallel_tool_calls=value)
    # The copy the CLI makes of a request for the tool loop (and a session's model_copy) keeps it.
    tools = ToolEnabledInferenceConfig(**plain.model_dump(exclude={"request_id"}), enable_tools=True)
    for cfg in (plain, tools, tools.model_copy(update={"messages": CUT})):
        params = request_params(cfg, entry("llama_cpp"))
        assert params.get("parallel_tool_calls", "absent") == ("absent" if value is None else value)
