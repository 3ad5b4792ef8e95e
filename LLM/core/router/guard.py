"""Who may use the endpoint (pure): the Host header, the bearer token and browser origins.

The order matters and is the caller's: the Host header first (a web page that rebinds its own name to
127.0.0.1 sends that name, so it is refused before anything else is looked at), then a browser's preflight
(it carries no token), then the token.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Iterable

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
WILDCARDS = frozenset({"0.0.0.0", "::", ""})  # binds that listen on every address of the machine
# What a preflight may ask for; nothing here grants an origin that is not listed.
ALLOWED_METHODS = "GET, POST, OPTIONS"
ALLOWED_HEADERS = "Authorization, Content-Type"


def is_loopback(host: str) -> bool:
    name = host.strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def host_name(header: str) -> str:
    """The name in a Host header: no port, no IPv6 brackets, no trailing dot, lower case."""
    value = header.strip().lower()
    if value.startswith("["):
        return value[1:value.find("]")] if "]" in value else value[1:]
    if value.count(":") == 1:
        value = value.split(":", 1)[0]
    return value.rstrip(".")


def allowed_host_names(bind_host: str, extra: Iterable[str] = (), machine_names: Iterable[str] = ()) -> frozenset[str]:
    """The names a request may address the endpoint by: the loopback names always, the bound address, the
    names the user listed (``endpoint.allowed_hosts``) and, on a wildcard bind, this machine's own names."""
    names = set(LOOPBACK_NAMES)
    names.add(host_name(bind_host))
    names.update(host_name(n) for n in extra)
    if bind_host in WILDCARDS:
        names.update(host_name(n) for n in machine_names)
    names.discard("")
    return frozenset(names)


def host_allowed(header: str | None, allowed: frozenset[str]) -> bool:
    return bool(header) and host_name(header) in allowed


def bearer(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header; None for anything else."""
    if not authorization:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    return (value.strip() or None) if scheme.lower() == "bearer" else None


def token_matches(given: str | None, expected: str) -> bool:
    """Compared in constant time, so response timing does not leak how much of a guess was right."""
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


def cors_headers(origin: str | None, allowed_origins: Iterable[str]) -> list[tuple[str, str]]:
    """The CORS grant for a listed origin; none at all for any other (the browser then blocks the page)."""
    if not origin or origin.rstrip("/") not in set(allowed_origins):
        return []
    return [("access-control-allow-origin", origin.rstrip("/")), ("vary", "Origin")]


def preflight_headers(origin: str | None, allowed_origins: Iterable[str]) -> list[tuple[str, str]]:
    grant = cors_headers(origin, allowed_origins)
    if not grant:
        return []
    return [*grant, ("access-control-allow-methods", ALLOWED_METHODS),
            ("access-control-allow-headers", ALLOWED_HEADERS), ("access-control-max-age", "600")]
