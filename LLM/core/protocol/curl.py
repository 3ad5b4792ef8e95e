"""A request as a shell command (pure): the inspector's "Copy as curl"."""

from __future__ import annotations

import json
import shlex
from typing import Any


def curl_command(url: str, body: dict[str, Any], key_expression: str | None = None) -> str:
    """``curl`` that sends ``body`` to ``url``; ``key_expression`` is shell text that yields the API key
    (``$(cat KEYFILE)``, ``$OPENAI_API_KEY``): the key itself is never written into the command."""
    lines = [f"curl -sN {shlex.quote(url)}", "  -H 'Content-Type: application/json'"]
    if key_expression:
        lines.append(f'  -H "Authorization: Bearer {key_expression}"')
    lines.append("  --data-binary @- <<'JSON'")
    # A JSON document never has a line that is exactly JSON (strings are quoted), so the here-document ends right.
    return " \\\n".join(lines) + "\n" + json.dumps(body, indent=2, ensure_ascii=False) + "\nJSON\n"


def key_file_expression(path: str) -> str:
    return f"$(cat {shlex.quote(path)})"
