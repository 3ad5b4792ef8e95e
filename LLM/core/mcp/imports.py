"""Other apps' MCP configs (Claude Desktop, Cursor, LM Studio): where they live and their servers, for import."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import McpConfigError


@dataclass(frozen=True)
class ImportSource:
    app: str  # claude | cursor | lmstudio
    label: str
    path: Path


def known_sources(home: Path | None = None, platform: str = sys.platform,
                  appdata: str | None = None) -> list[ImportSource]:
    """Where each app keeps its file on this platform (present or not); the first for an app wins."""
    home = Path(home) if home is not None else Path.home()
    if platform == "darwin":
        claude = home / "Library" / "Application Support" / "Claude" / "claude_desktop_config.json"
    elif platform.startswith("win"):
        claude = Path(appdata or os.environ.get("APPDATA") or home / "AppData" / "Roaming") / "Claude" / \
            "claude_desktop_config.json"
    else:
        claude = home / ".config" / "Claude" / "claude_desktop_config.json"
    return [
        ImportSource("claude", "Claude Desktop", claude),
        ImportSource("cursor", "Cursor", home / ".cursor" / "mcp.json"),
        ImportSource("lmstudio", "LM Studio", home / ".lmstudio" / "mcp.json"),
        ImportSource("lmstudio", "LM Studio", home / ".cache" / "lm-studio" / "mcp.json"),
    ]


def present_sources(home: Path | None = None) -> list[ImportSource]:
    """The known files that exist here, one per app."""
    found: dict[str, ImportSource] = {}
    for source in known_sources(home):
        if source.app not in found and source.path.is_file():
            found[source.app] = source
    return list(found.values())


def servers_in(text: str, source: str) -> dict[str, Any]:
    """The raw ``mcpServers`` entries of another app's file (pure)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise McpConfigError(f"{source}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    servers = data.get("mcpServers") if isinstance(data, dict) else None
    if not isinstance(servers, dict):
        raise McpConfigError(f"{source}: has no \"mcpServers\" object to import")
    return {name: entry for name, entry in servers.items() if isinstance(entry, dict)}


def read_servers(source: ImportSource) -> dict[str, Any]:
    try:
        text = source.path.read_text(encoding="utf-8")
    except OSError as exc:
        raise McpConfigError(f"{source.path}: cannot be read: {exc}") from exc
    return servers_in(text, str(source.path))
