"""Requests passed through to a model's server as bytes, and its answer read back as bytes (the endpoint).

Nothing is decoded here: the endpoint forwards an OpenAI-compatible body and relays the answer unchanged, so
what another app gets is what the engine wrote. httpx errors become our typed errors, as in ``client``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx

from .client import KEEPALIVE_EXPIRY_S, _http_errors, _ResendOnStaleConnection


class RelayResponse:
    """An upstream answer whose body has not been read yet; ``aclose`` drops the connection, which is how an
    engine learns that nobody waits for the rest (llama-server then stops generating)."""

    def __init__(self, response: httpx.Response, url: str) -> None:
        self._response = response
        self.url = url
        self.status = response.status_code
        self.content_type = response.headers.get("content-type", "application/json")

    async def chunks(self) -> AsyncIterator[bytes]:
        with _http_errors(self.url):
            async for chunk in self._response.aiter_raw():
                yield chunk

    async def read(self) -> bytes:
        with _http_errors(self.url):
            return await self._response.aread()

    async def aclose(self) -> None:
        await self._response.aclose()


class Relay:
    """One pooled HTTP client per upstream server root; create once, then ``aclose``."""

    def __init__(self) -> None:
        self._clients: dict[tuple[str, float, float], httpx.AsyncClient] = {}

    async def open(self, base_url: str, path: str, body: bytes, *, api_key: str | None,
                   connect_timeout_s: float, read_timeout_s: float) -> RelayResponse:
        """POST ``body`` to ``base_url + path``; returns once the status and headers arrived."""
        client = self._client(base_url.rstrip("/"), connect_timeout_s, read_timeout_s)
        headers = {"Content-Type": "application/json"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        url = f"{base_url.rstrip('/')}{path}"
        request = client.build_request("POST", path, content=body, headers=headers)
        with _http_errors(url):
            response = await client.send(request, stream=True)
        return RelayResponse(response, url)

    def _client(self, base_url: str, connect_timeout_s: float, read_timeout_s: float) -> httpx.AsyncClient:
        key = (base_url, connect_timeout_s, read_timeout_s)
        client = self._clients.get(key)
        if client is None:
            transport = _ResendOnStaleConnection(
                httpx.AsyncHTTPTransport(limits=httpx.Limits(keepalive_expiry=KEEPALIVE_EXPIRY_S)))
            client = httpx.AsyncClient(base_url=base_url, transport=transport,
                                       timeout=httpx.Timeout(read_timeout_s, connect=connect_timeout_s))
            self._clients[key] = client
        return client

    async def aclose(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.aclose()
