"""Requests passed through to a model's server as bytes, and its answer read back as bytes (the endpoint).

Nothing is decoded here: the endpoint forwards an OpenAI-compatible body and relays the answer unchanged, so
what another app gets is what the engine wrote. Plain-HTTP servers (every local engine) are spoken to over a
bare asyncio connection, one per request: a relay wakes once per token, and httpx's layers cost about as much
as the rest of the endpoint together at that rate. HTTPS (a remote server) goes through httpx. Errors become
our typed errors, as in ``client``.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import httpx

from ..errors import BackendConnectionError, BackendTimeoutError
from .client import KEEPALIVE_EXPIRY_S, _http_errors, _ResendOnStaleConnection

READ_SIZE = 65536


class RelayResponse(ABC):
    """An upstream answer whose body has not been read yet; ``aclose`` drops the connection, which is how an
    engine learns that nobody waits for the rest (llama-server then stops generating)."""

    status: int
    content_type: str
    url: str

    @abstractmethod
    def chunks(self) -> AsyncIterator[bytes]:
        """The body's bytes as they arrive (transfer coding removed)."""

    async def read(self) -> bytes:
        return b"".join([chunk async for chunk in self.chunks()])

    @abstractmethod
    async def aclose(self) -> None:
        ...


class _HttpxResponse(RelayResponse):
    def __init__(self, response: httpx.Response, url: str) -> None:
        self._response = response
        self.url = url
        self.status = response.status_code
        self.content_type = response.headers.get("content-type", "application/json")

    async def chunks(self) -> AsyncIterator[bytes]:
        with _http_errors(self.url):
            async for chunk in self._response.aiter_raw():
                yield chunk

    async def aclose(self) -> None:
        await self._response.aclose()


class _BareResponse(RelayResponse):
    """An HTTP/1.1 answer read straight off its connection (``Connection: close``)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, url: str, status: int,
                 headers: dict[str, str], read_timeout_s: float) -> None:
        self._reader = reader
        self._writer = writer
        self._timeout = read_timeout_s
        # One timer checks for silence instead of a wait_for around each read: per token that costs as much as
        # the rest of the relay's reading.
        self._loop = asyncio.get_running_loop()
        self._last = self._loop.time()
        self._timed_out = False
        self._watch = self._loop.call_later(read_timeout_s, self._check_silence)
        self.url = url
        self.status = status
        self.content_type = headers.get("content-type", "application/json")
        self._chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        length = headers.get("content-length")
        self._left = int(length) if length and length.isdigit() and not self._chunked else None

    async def chunks(self) -> AsyncIterator[bytes]:
        decoder = Dechunker() if self._chunked else None
        left = self._left
        while left is None or left > 0:
            data = await self._read()
            if not data:
                if decoder is not None and not decoder.done:
                    raise BackendConnectionError(f"connection to {self.url} dropped mid-answer", self.url)
                return
            if left is not None:
                data, left = data[:left], left - len(data)
            if decoder is None:
                yield data
                continue
            body = decoder.feed(data)
            if body:
                yield body
            if decoder.done:
                return

    async def _read(self) -> bytes:
        try:
            data = await self._reader.read(READ_SIZE)
        except OSError as exc:
            data = b""
            if not self._timed_out:
                raise BackendConnectionError(f"connection to {self.url} dropped: {exc}", self.url) from exc
        if self._timed_out:
            raise BackendTimeoutError(f"read timeout talking to {self.url}: nothing for {self._timeout:g} s",
                                      self.url)
        self._last = self._loop.time()
        return data

    def _check_silence(self) -> None:
        quiet = self._loop.time() - self._last
        if quiet >= self._timeout:
            self._timed_out = True
            self._writer.transport.abort()  # the read waiting on it returns
        else:
            self._watch = self._loop.call_later(self._timeout - quiet, self._check_silence)

    async def aclose(self) -> None:
        self._watch.cancel()
        self._writer.close()


class Dechunker:
    """HTTP/1.1 chunked transfer coding, decoded incrementally (pure)."""

    def __init__(self) -> None:
        self._buffer = b""
        self._left = 0  # bytes of the current chunk still to come
        self._crlf = 0  # bytes of the CRLF after a chunk still to skip
        self.done = False

    def feed(self, data: bytes) -> bytes:
        self._buffer += data
        out = []
        while self._buffer and not self.done:
            if self._crlf:
                skip = min(self._crlf, len(self._buffer))
                self._buffer, self._crlf = self._buffer[skip:], self._crlf - skip
                continue
            if self._left:
                take = self._buffer[:self._left]
                out.append(take)
                self._buffer, self._left = self._buffer[len(take):], self._left - len(take)
                if not self._left:
                    self._crlf = 2
                continue
            end = self._buffer.find(b"\r\n")
            if end < 0:
                break
            size = int(self._buffer[:end].split(b";", 1)[0].strip() or b"0", 16)
            self._buffer = self._buffer[end + 2:]
            if size == 0:
                self.done = True
            self._left = size
        return b"".join(out)


class Relay:
    """Opens one upstream request at a time for the endpoint; ``aclose`` closes the pooled HTTPS clients."""

    def __init__(self) -> None:
        self._clients: dict[tuple[str, float, float], httpx.AsyncClient] = {}

    async def open(self, base_url: str, path: str, body: bytes, *, api_key: str | None,
                   connect_timeout_s: float, read_timeout_s: float) -> RelayResponse:
        """POST ``body`` to ``base_url + path``; returns once the status and headers arrived."""
        base = base_url.rstrip("/")
        parts = urlsplit(base)
        if parts.scheme == "http" and parts.hostname:
            return await self._bare(parts, f"{parts.path}{path}", body, api_key, connect_timeout_s, read_timeout_s,
                                    f"{base}{path}")
        client = self._client(base, connect_timeout_s, read_timeout_s)
        headers = {"Content-Type": "application/json"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        request = client.build_request("POST", path, content=body, headers=headers)
        with _http_errors(f"{base}{path}"):
            response = await client.send(request, stream=True)
        return _HttpxResponse(response, f"{base}{path}")

    @staticmethod
    async def _bare(parts, path: str, body: bytes, api_key: str | None, connect_timeout_s: float,
                    read_timeout_s: float, url: str) -> RelayResponse:
        port = parts.port or 80
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(parts.hostname, port), connect_timeout_s)
        except asyncio.TimeoutError as exc:
            raise BackendTimeoutError(f"connect timeout talking to {url}", url) from exc
        except OSError as exc:
            raise BackendConnectionError(f"cannot connect to {url}: {exc.strerror or exc}", url) from exc
        host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
        head = [f"POST {path} HTTP/1.1", f"Host: {host}:{port}", "Content-Type: application/json",
                f"Content-Length: {len(body)}", "Connection: close"]
        if api_key:
            head.append(f"Authorization: Bearer {api_key}")
        try:
            writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
            raw = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), read_timeout_s)
        except asyncio.TimeoutError as exc:
            writer.close()
            raise BackendTimeoutError(f"read timeout talking to {url}", url) from exc
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
            writer.close()
            raise BackendConnectionError(f"connection to {url} dropped: {exc}", url) from exc
        lines = raw.decode("latin-1").split("\r\n")
        try:
            status = int(lines[0].split(" ", 2)[1])
        except (IndexError, ValueError) as exc:
            writer.close()
            raise BackendConnectionError(f"{url} did not answer HTTP: {lines[0][:80]!r}", url) from exc
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        return _BareResponse(reader, writer, url, status, headers, read_timeout_s)

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
