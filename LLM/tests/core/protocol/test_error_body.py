"""The server's own message in an HTTP error body, for every shape OpenAI-compatible servers answer with."""

from __future__ import annotations

import json

import pytest

from LLM.core.protocol.error_body import server_message
from LLM.tests.fakes.replies import LLAMA_CONTEXT_ERROR, OLLAMA_404, VLLM_CONTEXT_ERROR


@pytest.mark.parametrize("body, expected", [
    pytest.param(json.dumps({"error": {"message": "Invalid API key", "type": "invalid_request_error"}}),
                 "Invalid API key", id="openai"),
    pytest.param(json.dumps(LLAMA_CONTEXT_ERROR), LLAMA_CONTEXT_ERROR["error"]["message"], id="llama.cpp"),
    pytest.param(json.dumps(VLLM_CONTEXT_ERROR), VLLM_CONTEXT_ERROR["message"], id="vllm"),
    pytest.param(json.dumps(OLLAMA_404), OLLAMA_404["error"]["message"], id="ollama"),
    pytest.param(json.dumps({"error": "model not found"}), "model not found", id="error-string"),
    pytest.param(json.dumps({"detail": [{"msg": "field required"}, {"msg": "bad type"}]}),
                 "field required; bad type", id="fastapi-validation"),
    pytest.param(json.dumps({"detail": "Not authenticated"}), "Not authenticated", id="fastapi"),
    pytest.param("upstream\n  timed out", "upstream timed out", id="plain-text"),
    pytest.param("<html><body>502 Bad Gateway</body></html>", None, id="html-page"),
    pytest.param("", None, id="empty"),
    pytest.param(json.dumps({"error": {"code": 500}}), None, id="no-message"),
    pytest.param(json.dumps({"error": {"message": "x" * 400}}), "x" * 300 + "…", id="long-cut"),
])
def test_server_message_reads_each_shape(body, expected):
    assert server_message(body) == expected
