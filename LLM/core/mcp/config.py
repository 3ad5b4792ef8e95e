"""mcp.json -> validated server entries: a pure function of the text, plus where the file lives.

The shape is the one LM Studio, Jan, Claude Desktop, Cursor and llama.cpp's server read, so a block
pasted from any of them loads unchanged::

    {"mcpServers": {
        "files":  {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-filesystem", "/tmp"],
                   "env": {"TOKEN": "${env:MY_TOKEN}"}, "cwd": "/tmp"},
        "remote": {"url": "https://example.com/mcp", "headers": {"Authorization": "Bearer ${env:KEY}"}},
        "off":    {"command": "...", "disabled": true, "timeout": 60, "autoApprove": ["read_file"]}}}

Every key has a default: ``args`` [], ``env`` {}, ``cwd`` the current directory, ``headers`` {},
``disabled`` false, ``timeout`` 60 (seconds each request may take; starting may take at least 30), ``autoApprove`` []
(tools called without asking), ``disabledTools`` [] (tools not offered to the model). ``alwaysAllow``
(Roo Code's name) is read as ``autoApprove``; ``type`` (``stdio``, ``http``/``streamable-http``/
``streamableHttp``, ``sse``) is optional. Other keys are ignored: other apps add their own.
A bad entry is reported naming its key and the other servers still load.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import platformdirs

from ..errors import McpConfigError

APP_NAME = "llm-workbench"
CONFIG_ENV_VAR = "LLM_MCP_CONFIG"
DEFAULT_TIMEOUT_S = 60.0
MIN_START_TIMEOUT_S = 30.0
_ENV_REF = re.compile(r"\$\{env:([^}]*)\}")
_HTTP_TYPES = {"http": "http", "streamable-http": "http", "streamablehttp": "http", "sse": "sse"}

Transport = Literal["stdio", "http", "sse"]


@dataclass(frozen=True)
class McpServerConfig:
    """One valid entry of ``mcpServers``, with ``${env:NAME}`` already expanded."""

    name: str
    transport: Transport
    command: str | None = None
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: str | None = None
    url: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    disabled: bool = False
    timeout_s: float = DEFAULT_TIMEOUT_S
    auto_approve: frozenset[str] = frozenset()
    disabled_tools: frozenset[str] = frozenset()

    @property
    def start_timeout_s(self) -> float:
        """Starting (spawn, initialize, list tools) may take at least 30 s: an ``npx`` server may download first."""
        return max(self.timeout_s, MIN_START_TIMEOUT_S)

    @property
    def target(self) -> str:
        """What it connects to, for people: the command line or the URL (never the env or headers)."""
        if self.transport == "stdio":
            return " ".join([self.command or "", *self.args])
        return str(self.url)


@dataclass
class McpConfig:
    """The servers of one mcp.json, in file order; ``invalid`` maps a server to its problems."""

    source: str = "mcp.json"
    servers: dict[str, McpServerConfig] = field(default_factory=dict)
    invalid: dict[str, list[str]] = field(default_factory=dict)

    @property
    def problems(self) -> list[str]:
        return [problem for problems in self.invalid.values() for problem in problems]


def parse_mcp_config(text: str, source: str = "mcp.json", environ: Mapping[str, str] | None = None) -> McpConfig:
    """Validate the text of an mcp.json. A file that is not JSON, or has no ``mcpServers`` object, raises
    McpConfigError; a bad server entry only lands in ``invalid``, named by its key."""
    environ = os.environ if environ is None else environ
    if not text.strip():
        return McpConfig(source)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise McpConfigError(f"{source}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    if not isinstance(data, dict):
        raise McpConfigError(f"{source}: must be a JSON object with an \"mcpServers\" object")
    servers = data.get("mcpServers", {})
    if not isinstance(servers, dict):
        raise McpConfigError(f"{source}: mcpServers: must be an object mapping a server name to its settings")
    config = McpConfig(source)
    for name, entry in servers.items():
        problems: list[str] = []
        server = _server(name, entry, environ, problems)
        if problems or server is None:
            config.invalid[name] = [f"{source}: mcpServers.{name}.{p}" if not p.startswith(":") else
                                    f"{source}: mcpServers.{name}{p}" for p in problems]
        else:
            config.servers[name] = server
    return config


def _server(name: str, entry: Any, environ: Mapping[str, str], problems: list[str]) -> McpServerConfig | None:
    if not name.strip():
        problems.append(": a server needs a non-empty name")
        return None
    if not isinstance(entry, dict):
        problems.append(f": must be an object with \"command\" or \"url\", got {type(entry).__name__}")
        return None

    def text(key: str, value: Any) -> str | None:
        if not isinstance(value, str):
            problems.append(f"{key}: must be a string, got {json.dumps(value)}")
            return None
        return _expand(key, value, environ, problems)

    def texts(key: str) -> tuple[str, ...]:
        value = entry.get(key, [])
        if not isinstance(value, list):
            problems.append(f"{key}: must be a list of strings, got {json.dumps(value)}")
            return ()
        out = [text(f"{key}[{i}]", item) for i, item in enumerate(value)]
        return tuple(item for item in out if item is not None)

    def mapping(key: str) -> dict[str, str]:
        value = entry.get(key, {})
        if not isinstance(value, dict):
            problems.append(f"{key}: must be an object of strings, got {json.dumps(value)}")
            return {}
        out = {k: text(f"{key}.{k}", v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v is not None}

    def names(*keys: str) -> frozenset[str]:
        found: set[str] = set()
        for key in keys:
            value = entry.get(key, [])
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                problems.append(f"{key}: must be a list of tool names, got {json.dumps(value)}")
            else:
                found.update(value)
        return frozenset(found)

    kind = entry.get("type", entry.get("transport"))
    if kind is not None and (not isinstance(kind, str) or kind.lower() not in ("stdio", *_HTTP_TYPES)):
        problems.append(f"type: must be stdio, http or sse, got {json.dumps(kind)}")
        kind = None
    has_command, has_url = "command" in entry, "url" in entry
    if has_command and has_url:
        problems.append(": give either \"command\" (a local server) or \"url\" (a remote one), not both")
    elif not has_command and not has_url:
        problems.append(": needs \"command\" (a local server) or \"url\" (a remote one)")
    disabled = entry.get("disabled", False)
    if not isinstance(disabled, bool):
        problems.append(f"disabled: must be true or false, got {json.dumps(disabled)}")
    timeout = entry.get("timeout", DEFAULT_TIMEOUT_S)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        problems.append(f"timeout: must be a positive number of seconds, got {json.dumps(timeout)}")
        timeout = DEFAULT_TIMEOUT_S
    common = dict(name=name, disabled=disabled is True, timeout_s=float(timeout),
                  auto_approve=names("autoApprove", "alwaysAllow"), disabled_tools=names("disabledTools"))
    if has_command and not has_url:
        command = text("command", entry["command"])
        if command is not None and not command.strip():
            problems.append("command: must not be empty")
        args, env = texts("args"), mapping("env")
        cwd = text("cwd", entry["cwd"]) if entry.get("cwd") is not None else None
        if problems:
            return None
        return McpServerConfig(transport="stdio", command=command, args=args, env=env, cwd=cwd, **common)
    if has_url and not has_command:
        url = text("url", entry["url"])
        if url is not None and not re.match(r"^https?://", url):
            problems.append(f"url: must start with http:// or https://, got {json.dumps(url)}")
        headers = mapping("headers")
        if problems:
            return None
        transport = _HTTP_TYPES.get(str(kind).lower(), "http") if kind else ("sse" if url.rstrip("/").endswith(
            "/sse") else "http")
        return McpServerConfig(transport=transport, url=url, headers=headers, **common)  # type: ignore[arg-type]
    return None


def _expand(key: str, value: str, environ: Mapping[str, str], problems: list[str]) -> str | None:
    """``${env:NAME}`` -> the variable's value; an unset variable is a problem naming the key."""
    missing = [m for m in _ENV_REF.findall(value) if m not in environ]
    if missing:
        problems.append(f"{key}: uses ${{env:{missing[0]}}}, which is not set")
        return None
    return _ENV_REF.sub(lambda m: environ[m.group(1)], value)


# ----- the file -----
def default_mcp_config_path() -> Path:
    """``$LLM_MCP_CONFIG``, else ``mcp.json`` in the user config dir (platformdirs)."""
    override = os.environ.get(CONFIG_ENV_VAR)
    if override:
        return Path(override).expanduser()
    return Path(platformdirs.user_config_dir(APP_NAME)) / "mcp.json"


def load_mcp_config(path: Path | None = None, environ: Mapping[str, str] | None = None) -> McpConfig:
    """Read and validate ``path`` (default: :func:`default_mcp_config_path`); a missing file has no servers."""
    path = Path(path) if path is not None else default_mcp_config_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return McpConfig(str(path))
    except (OSError, UnicodeDecodeError) as exc:
        raise McpConfigError(f"{path}: cannot be read: {exc}") from exc
    return parse_mcp_config(text, str(path), environ)
