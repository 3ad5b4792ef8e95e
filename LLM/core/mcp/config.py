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

``${env:NAME}`` values are expanded only to launch or connect. What people see (``target``: ``llmctl mcp list``,
the MCP panel, the server's log) is the display form: the text as written in mcp.json, ``${env:NAME}`` unexpanded,
with URL query values and userinfo masked (``?token=***``), since that is where keys end up.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

import platformdirs

from ..config import APP_NAME
from ..errors import McpConfigError

CONFIG_ENV_VAR = "LLM_MCP_CONFIG"
DEFAULT_TIMEOUT_S = 60.0
MIN_START_TIMEOUT_S = 30.0
_ENV_REF = re.compile(r"\$\{env:([^}]*)\}")
_HTTP_TYPES = {"http": "http", "streamable-http": "http", "streamablehttp": "http", "sse": "sse"}

Transport = Literal["stdio", "http", "sse"]


@dataclass(frozen=True)
class McpServerConfig:
    """One valid entry of ``mcpServers``, with ``${env:NAME}`` already expanded (to launch with; never shown)."""

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
    display: str = ""  # the target as written in mcp.json, masked (see ``target``); "" when built in code
    secrets: Mapping[str, str] = field(default_factory=dict)  # an expanded ${env:NAME} value -> "${env:NAME}"

    @property
    def start_timeout_s(self) -> float:
        """Starting (spawn, initialize, list tools) may take at least 30 s: an ``npx`` server may download first."""
        return max(self.timeout_s, MIN_START_TIMEOUT_S)

    @property
    def target(self) -> str:
        """What it connects to, for people: the command line or the URL as written in mcp.json (``${env:NAME}``
        unexpanded, URL query values and userinfo masked); never the env or headers."""
        if self.display:
            return self.display
        if self.transport == "stdio":
            return display_command(self.command or "", self.args)
        return masked_url(str(self.url))

    def redact(self, text: str) -> str:
        """``text`` (an error, a stderr line) with the expanded URL and every expanded ``${env:NAME}`` value put
        back as written: what a server or the HTTP library says may quote them."""
        if self.url and self.display:
            text = text.replace(self.url, self.display)
        for value, written in sorted(self.secrets.items(), key=lambda item: -len(item[0])):
            text = text.replace(value, written)
        return text


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
        if server is not None and not problems:
            server = replace(server, secrets=_secrets(entry, environ))
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

    def raw_texts(key: str) -> tuple[str, ...]:  # as written, for the display form (valid: checked by texts)
        return tuple(entry.get(key, []))

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
        display = display_command(entry["command"], raw_texts("args"))
        return McpServerConfig(transport="stdio", command=command, args=args, env=env, cwd=cwd, display=display,
                               **common)
    if has_url and not has_command:
        url = text("url", entry["url"])
        if url is not None and not re.match(r"^https?://", url):
            problems.append(f"url: must start with http:// or https://, got {json.dumps(url)}")
        headers = mapping("headers")
        if problems:
            return None
        transport = _HTTP_TYPES.get(str(kind).lower(), "http") if kind else ("sse" if url.rstrip("/").endswith(
            "/sse") else "http")
        return McpServerConfig(transport=transport, url=url, headers=headers,  # type: ignore[arg-type]
                               display=masked_url(entry["url"]), **common)
    return None


def _secrets(entry: dict[str, Any], environ: Mapping[str, str]) -> dict[str, str]:
    """Each ``${env:NAME}`` value the entry uses (of 4 characters or more: shorter ones would redact ordinary
    words) -> how it is written."""
    texts = [v for v in [entry.get("command"), entry.get("url"), entry.get("cwd"), *(entry.get("args") or []),
                         *(entry.get("env") or {}).values(), *(entry.get("headers") or {}).values()]
             if isinstance(v, str)]
    names = {name for text in texts for name in _ENV_REF.findall(text)}
    return {environ[name]: f"${{env:{name}}}" for name in sorted(names) if len(environ.get(name, "")) >= 4}


def _expand(key: str, value: str, environ: Mapping[str, str], problems: list[str]) -> str | None:
    """``${env:NAME}`` -> the variable's value; an unset variable is a problem naming the key."""
    missing = [m for m in _ENV_REF.findall(value) if m not in environ]
    if missing:
        problems.append(f"{key}: uses ${{env:{missing[0]}}}, which is not set")
        return None
    return _ENV_REF.sub(lambda m: environ[m.group(1)], value)


# ----- the display form (pure) -----
_URL_START = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
MASK = "***"


def display_command(command: str, args: tuple[str, ...] | list[str]) -> str:
    """A command line for people, from the texts as written: an argument that is a URL has its query masked."""
    return " ".join([command, *(masked_url(arg) if _URL_START.match(arg) else arg for arg in args)])


def masked_url(url: str) -> str:
    """``url`` with every query and fragment value and the userinfo masked: ``https://u:***@h/p?token=***``.
    Only the secret-bearing parts change; the scheme, host, port and path stay readable."""
    try:
        parts = urlsplit(url)
    except ValueError:  # not parseable (a bad IPv6 host): show only what comes before any query
        return re.split(r"[?#@]", url, maxsplit=1)[0] + (f"?{MASK}" if re.search(r"[?#@]", url) else "")
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, host = netloc.rpartition("@")
        colon = _ENV_REF.sub(lambda m: "_" * len(m.group(0)), userinfo).find(":")  # not the one in ${env:...}
        netloc = f"{userinfo[:colon]}:{MASK}@{host}" if colon >= 0 else f"{MASK}@{host}"  # a lone user: a token
    return urlunsplit((parts.scheme, netloc, parts.path, _masked_pairs(parts.query), _masked_pairs(parts.fragment)))


def _masked_pairs(text: str) -> str:
    if not text:
        return text
    return "&".join(f"{pair.partition('=')[0]}={MASK}" if "=" in pair else MASK for pair in text.split("&"))


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
