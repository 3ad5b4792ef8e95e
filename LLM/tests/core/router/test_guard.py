"""Who may use the endpoint: the Host header, the bearer token, browser origins (pure, table-driven)."""

from __future__ import annotations

import pytest

from LLM.core.router.guard import (
    allowed_host_names,
    bearer,
    cors_headers,
    host_allowed,
    host_name,
    is_loopback,
    preflight_headers,
    token_matches,
)

LOOPBACK = allowed_host_names("127.0.0.1")
WILDCARD = allowed_host_names("0.0.0.0", ["mybox.lan"], ["workstation", "192.168.1.7"])


@pytest.mark.parametrize("header, name", [
    ("127.0.0.1:8484", "127.0.0.1"),
    ("LOCALHOST:8484", "localhost"),
    ("localhost.", "localhost"),
    ("[::1]:8484", "::1"),
    ("[::1]", "::1"),
    ("evil.example:8484", "evil.example"),
    ("  mybox.lan  ", "mybox.lan"),
])
def test_guard_host_name_strips_port_brackets_and_case(header, name):
    assert host_name(header) == name


@pytest.mark.parametrize("allowed, header, ok", [
    (LOOPBACK, "127.0.0.1:8484", True),
    (LOOPBACK, "localhost:8484", True),
    (LOOPBACK, "[::1]:8484", True),
    (LOOPBACK, None, False),  # HTTP/1.1 requires Host; a request without one is no browser's
    (LOOPBACK, "", False),
    (LOOPBACK, "attacker.example:8484", False),  # DNS rebinding: the page's own name, now pointing here
    (LOOPBACK, "127.0.0.1.attacker.example", False),
    (LOOPBACK, "workstation:8484", False),  # a loopback bind is not reachable by the machine's name
    (WILDCARD, "workstation:8484", True),
    (WILDCARD, "192.168.1.7:8484", True),
    (WILDCARD, "mybox.lan", True),
    (WILDCARD, "attacker.example", False),
])
def test_guard_host_header_must_name_the_endpoint(allowed, header, ok):
    assert host_allowed(header, allowed) is ok


@pytest.mark.parametrize("authorization, token", [
    ("Bearer abc", "abc"),
    ("bearer abc", "abc"),
    ("Bearer   abc  ", "abc"),
    ("Basic abc", None),
    ("Bearer", None),
    ("abc", None),
    ("", None),
    (None, None),
])
def test_guard_bearer_token_is_read_from_the_authorization_header(authorization, token):
    assert bearer(authorization) == token


@pytest.mark.parametrize("given, ok", [("s3cret", True), ("s3cre", False), ("s3cret!", False), ("", False),
                                        (None, False)])
def test_guard_token_must_match_exactly(given, ok):
    assert token_matches(given, "s3cret") is ok


@pytest.mark.parametrize("host, loopback", [("127.0.0.1", True), ("127.5.0.1", True), ("localhost", True),
                                            ("::1", True), ("[::1]", True), ("0.0.0.0", False),
                                            ("192.168.1.7", False), ("example.com", False)])
def test_guard_loopback_addresses(host, loopback):
    assert is_loopback(host) is loopback


ORIGINS = ["http://localhost:3000", "https://chat.example"]


@pytest.mark.parametrize("origin, granted", [
    ("http://localhost:3000", True),
    ("http://localhost:3000/", True),
    ("https://chat.example", True),
    ("http://localhost:3001", False),
    ("https://evil.example", False),
    ("null", False),  # a sandboxed frame or a file:// page
    (None, False),
])
def test_guard_cors_is_granted_only_to_listed_origins(origin, granted):
    headers = dict(cors_headers(origin, ORIGINS))
    assert ("access-control-allow-origin" in headers) is granted
    preflight = dict(preflight_headers(origin, ORIGINS))
    assert ("access-control-allow-methods" in preflight) is granted
    if granted:
        assert headers["access-control-allow-origin"] == origin.rstrip("/")
        assert "Authorization" in preflight["access-control-allow-headers"]


def test_guard_no_origin_is_granted_when_none_are_listed():
    assert cors_headers("http://localhost:3000", []) == []
    assert preflight_headers("http://localhost:3000", []) == []
