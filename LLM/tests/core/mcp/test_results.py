"""CallToolResult -> the text the model reads (pure)."""

from __future__ import annotations

import base64

import pytest

from LLM.core.mcp.results import convert_result

PNG = base64.b64encode(b"x" * 10).decode()


@pytest.mark.parametrize("result, ok, text", [
    pytest.param({"content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}, True, "a\nb",
                 id="texts-joined"),
    pytest.param({"content": [], "structuredContent": {"n": 1}}, True, '{"n": 1}', id="structured-only"),
    pytest.param({"content": [{"type": "text", "text": "3"}], "structuredContent": {"result": 3}}, True, "3",
                 id="text-mirrors-structure"),
    pytest.param({"content": [{"type": "image", "data": PNG, "mimeType": "image/png"}]}, True,
                 "[image: image/png, 10 bytes (not shown to the model)]", id="image-noted"),
    pytest.param({"content": [{"type": "resource", "resource": {"uri": "file:///a", "text": "body"}}]}, True,
                 "body", id="embedded-text-resource"),
    pytest.param({"content": [{"type": "resource_link", "uri": "file:///a", "name": "a"}]}, True,
                 "[resource link: a <file:///a>]", id="resource-link"),
    pytest.param({"content": [{"type": "text", "text": "no such city"}], "isError": True}, False, "no such city",
                 id="is-error"),
    pytest.param({"content": [], "isError": True}, False, "the tool reported an error without a message",
                 id="is-error-empty"),
    pytest.param({"content": [{"type": "hologram"}]}, True, '[unsupported content: {"type": "hologram"}]',
                 id="unknown-block"),
])
def test_results_convert(result, ok, text):
    converted = convert_result(result)
    assert (converted.ok, converted.text) == (ok, text)
