"""What a server said in an HTTP error body, as one line: the shapes OpenAI-compatible servers answer with."""

from __future__ import annotations

import json
from typing import Any

MAX_CHARS = 300


def server_message(body: str) -> str | None:
    """The server's own message in an error ``body``, or None when it says nothing readable.

    Reads OpenAI's and llama.cpp's ``{"error": {"message": ...}}``, Ollama's ``{"error": "..."}``, vLLM's
    ``{"object": "error", "message": ...}``, FastAPI's ``{"detail": ...}`` and a short plain-text body; an HTML
    page (a proxy's error page) is not a message.
    """
    text = body.strip()
    if not text:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None if text.startswith("<") else _one_line(text)
    found = _message_in(data)
    return _one_line(found) if found else None


def _message_in(data: Any) -> str | None:
    if isinstance(data, str):
        return data
    if isinstance(data, list):  # FastAPI's validation errors: [{"msg": ...}, ...]
        return "; ".join(m for m in (_message_in(item) for item in data) if m) or None
    if not isinstance(data, dict):
        return None
    for key in ("error", "message", "detail", "msg"):
        if key in data:
            found = _message_in(data[key])
            if found:
                return found
    return None


def _one_line(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= MAX_CHARS else line[:MAX_CHARS] + "…"
