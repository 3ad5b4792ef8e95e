"""MCP tool names -> OpenAI function names ``<prefix>__<tool>``: sanitised, unique, stable, collisions reported (pure).

Names are a function of the configuration, never of which server became ready first: every configured server
gets its own prefix up front (:func:`server_prefixes`, over all of mcp.json), and a tool's name then depends only
on its server's prefix and its server's own tool list. A prefix has no ``__`` and does not end in ``_``, so the
first ``__`` of a name is where the prefix ends: two servers' tools can never share a name, however their tool
names are cut to fit 64 characters.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

MAX_NAME = 64  # what OpenAI-compatible servers accept as a function name
MAX_PREFIX = 32  # a server's part, so that every tool keeps at least 30 characters of its own name
SEPARATOR = "__"
_BAD = re.compile(r"[^A-Za-z0-9_-]")


def sanitise(part: str) -> str:
    """Every character outside ``[A-Za-z0-9_-]`` becomes ``_``; an empty part becomes ``_``."""
    return _BAD.sub("_", part) or "_"


def _prefix_base(server: str) -> str:
    """The server's name as a prefix: sanitised, runs of ``_`` made one, no ``_`` at the end, at most 32 chars."""
    base = re.sub(r"_+", "_", sanitise(server))[:MAX_PREFIX].rstrip("_")
    return base or "mcp"


def server_prefixes(servers: Iterable[str]) -> dict[str, str]:
    """A distinct prefix for every configured server. A server whose name already is a valid prefix keeps it;
    the others take theirs in the given (mcp.json) order, with ``_2``, ``_3``, ... where one is taken."""
    names = list(dict.fromkeys(servers))
    prefixes: dict[str, str] = {}
    used: set[str] = set()
    for server in names:
        if _prefix_base(server) == server and server not in used:
            prefixes[server] = server
            used.add(server)
    for server in names:
        if server in prefixes:
            continue
        base, n = _prefix_base(server), 1
        prefix = base
        while prefix in used:
            n += 1
            suffix = f"_{n}"
            prefix = base[: MAX_PREFIX - len(suffix)].rstrip("_") + suffix
        prefixes[server] = prefix
        used.add(prefix)
    return {server: prefixes[server] for server in names}


def prefixed_name(prefix: str, tool: str) -> str:
    """``<prefix>__<tool>``, the tool's part sanitised and cut to fit 64 characters."""
    return f"{prefix}{SEPARATOR}{sanitise(tool)}"[:MAX_NAME]


@dataclass(frozen=True)
class NamedTool:
    server: str
    tool: str  # the server's own name for it
    name: str  # the function name the model sees


def assign_names(server: str, prefix: str, tools: Iterable[str], taken: Iterable[str] = ()
                 ) -> tuple[list[NamedTool], list[str]]:
    """Name one server's tools, in its listing order. A name already used (by a local tool in ``taken``, or an
    earlier tool of this server whose name sanitises or cuts alike) gets ``_2``, ``_3``, ... Returns the names
    and one sentence per collision."""
    used = set(taken)
    named: list[NamedTool] = []
    collisions: list[str] = []
    owners: dict[str, str] = {}
    for tool in tools:
        base = prefixed_name(prefix, tool)
        name, n = base, 1
        while name in used:
            n += 1
            suffix = f"_{n}"
            name = base[: MAX_NAME - len(suffix)] + suffix
        if name != base:
            other = owners.get(base)
            clash = f"'{other}'" if other else "a local tool"
            collisions.append(f"MCP tool '{tool}' of server '{server}' would be named '{base}', which {clash} "
                              f"already has; it is called '{name}'")
        used.add(name)
        owners[name] = f"{server}/{tool}"
        named.append(NamedTool(server, tool, name))
    return named, collisions


def prefix_collisions(prefixes: Mapping[str, str]) -> list[str]:
    """One sentence per server whose prefix is not its plain sanitised name (another server has that one)."""
    out = []
    for server, prefix in prefixes.items():
        plain = _prefix_base(server)
        if prefix != plain:
            other = next((s for s, p in prefixes.items() if p == plain), None)
            why = f"server '{other}' has '{plain}'" if other is not None else f"'{plain}' is taken"
            out.append(f"the tools of MCP server '{server}' are named '{prefix}__…' ({why})")
    return out


def log_file_name(server: str) -> str:
    """``mcp-<server>.log``; a name with characters a file name should not have is sanitised and given a short
    hash of the whole name, so two servers never share a log (``x.y`` and ``x_y``)."""
    if re.fullmatch(r"[A-Za-z0-9_-]{1,64}", server):
        return f"mcp-{server}.log"
    digest = hashlib.sha1(server.encode("utf-8")).hexdigest()[:8]
    return f"mcp-{sanitise(server)[:48]}-{digest}.log"
