"""Edits to mcp.json the app makes for the user (autoApprove, disabled, disabledTools, imports).

The change itself is a pure function of the text (``edit_text``); ``edit_file`` reads, applies and writes
atomically (a temporary file renamed over the old one), so a crash never leaves half a file. Everything
else in the file, other apps' keys included, is kept as it was.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import McpConfigError

Change = Callable[[dict[str, Any]], None]  # changes the "mcpServers" object in place


def edit_text(text: str, change: Change, source: str = "mcp.json") -> str:
    try:
        data = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError as exc:
        raise McpConfigError(f"{source}: not valid JSON (line {exc.lineno}): not changed") from None
    if not isinstance(data, dict):
        raise McpConfigError(f"{source}: not a JSON object: not changed")
    servers = data.setdefault("mcpServers", {})
    if not isinstance(servers, dict):
        raise McpConfigError(f"{source}: mcpServers: not an object: not changed")
    change(servers)
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def edit_file(path: Path, change: Change) -> None:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8") if path.exists() else ""
        new = edit_text(text, change, str(path))
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".mcp-", suffix=".json", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(new)
            if path.exists():
                os.chmod(tmp, path.stat().st_mode & 0o777)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise McpConfigError(f"{path}: cannot be written: {exc}") from exc


def _entry(servers: dict[str, Any], server: str) -> dict[str, Any]:
    entry = servers.get(server)
    if not isinstance(entry, dict):
        raise McpConfigError(f"mcpServers.{server}: no such server in the file: not changed")
    return entry


def _toggle_name(server: str, key: str, tool: str, present: bool) -> Change:
    def change(servers: dict[str, Any]) -> None:
        entry = _entry(servers, server)
        names = [n for n in entry.get(key, []) if isinstance(n, str) and n != tool]
        if present:
            names.append(tool)
        if names:
            entry[key] = names
        else:
            entry.pop(key, None)
    return change


def auto_approve(server: str, tool: str, approved: bool = True) -> Change:
    """Add (or remove) ``tool`` in the server's ``autoApprove`` list."""
    return _toggle_name(server, "autoApprove", tool, approved)


def tool_disabled(server: str, tool: str, disabled: bool) -> Change:
    """Add (or remove) ``tool`` in the server's ``disabledTools`` list."""
    return _toggle_name(server, "disabledTools", tool, disabled)


def server_disabled(server: str, disabled: bool) -> Change:
    def change(servers: dict[str, Any]) -> None:
        entry = _entry(servers, server)
        if disabled:
            entry["disabled"] = True
        else:
            entry.pop("disabled", None)
    return change


def add_servers(entries: dict[str, Any], added: list[str], skipped: list[str]) -> Change:
    """Copy ``entries`` in as they are (``${env:...}`` references kept); a name already present is skipped."""
    def change(servers: dict[str, Any]) -> None:
        for name, entry in entries.items():
            if name in servers:
                skipped.append(name)
            else:
                servers[name] = entry
                added.append(name)
    return change
