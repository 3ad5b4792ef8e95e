"""Model output and server error bodies as real ones look (measured), to script the fake server and feed parsers."""

from __future__ import annotations

# One Qwen/Hermes text-form call of the calculator, as a model writes it.
CALL_TEXT = '<tool_call>\n{"name": "calculator", "arguments": {"expression": "6*7"}}\n</tool_call>'

# A request longer than the model's context, as llama-server and vLLM answer it (HTTP 400).
LLAMA_CONTEXT_ERROR = {"error": {"code": 400, "message": "request (3112 tokens) exceeds the available context size "
                                 "(2048 tokens), try increasing it", "type": "exceed_context_size_error",
                                 "n_prompt_tokens": 3112, "n_ctx": 2048}}
VLLM_CONTEXT_ERROR = {"object": "error", "message": "This model's maximum context length is 2048 tokens. However, you "
                      "requested 3112 tokens (3000 in the messages, 112 in the completion). Please reduce the length "
                      "of the messages or completion.", "type": "BadRequestError", "param": None, "code": 400}

# Ollama's answer (HTTP 404) for a model name it does not serve.
OLLAMA_404 = {"error": {"message": 'model "llama3:8b" not found, try pulling it first', "type": "api_error"}}
