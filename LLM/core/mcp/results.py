"""An MCP ``CallToolResult`` (as its wire JSON) -> the text the model reads (pure).

Text parts are joined; structured content goes as JSON when the server sent no text (a server that sends
both mirrors the structure in its text, as the spec asks); images, audio and other binary parts are noted
with their type and size, never inlined; embedded resources give their text or are noted; resource links
are listed.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ConvertedResult:
    ok: bool  # False when the server set isError
    text: str


def convert_result(result: dict[str, Any]) -> ConvertedResult:
    """``result``: a CallToolResult as JSON (``content``, ``structuredContent``, ``isError``)."""
    parts: list[str] = []
    for block in result.get("content") or []:
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text":
            parts.append(str(block.get("text", "")))
        elif kind in ("image", "audio"):
            parts.append(f"[{kind}: {block.get('mimeType', 'unknown type')}, {_size(block.get('data'))} (not shown "
                         "to the model)]")
        elif kind == "resource":
            resource = block.get("resource") or {}
            if "text" in resource:
                parts.append(str(resource["text"]))
            else:
                parts.append(f"[resource {resource.get('uri', '')}: {resource.get('mimeType', 'binary')}, "
                             f"{_size(resource.get('blob'))}]")
        elif kind == "resource_link":
            label = block.get("name") or block.get("uri", "")
            parts.append(f"[resource link: {label} <{block.get('uri', '')}>]")
        else:
            parts.append(f"[unsupported content: {json.dumps(block, ensure_ascii=False)[:200]}]")
    text = "\n".join(p for p in parts if p)
    structured = result.get("structuredContent")
    if structured is not None and not any(isinstance(b, dict) and b.get("type") == "text"
                                          for b in result.get("content") or []):
        dumped = json.dumps(structured, ensure_ascii=False)
        text = f"{text}\n{dumped}" if text else dumped
    is_error = bool(result.get("isError"))
    if is_error and not text:
        text = "the tool reported an error without a message"
    return ConvertedResult(not is_error, text)


def _size(data: Any) -> str:
    if not isinstance(data, str):
        return "no data"
    try:
        size = len(base64.b64decode(data, validate=True))
    except (binascii.Error, ValueError):
        size = len(data)
    return f"{size:,} bytes"
