"""The endpoint as an ASGI application: who may call (``guard``), then each request routed by its ``model`` to
that model's server through the runtime the window uses, and the answer relayed back as the engine wrote it.

A model that is not running is started on demand, within the memory budget, with its own yaml settings. A
streaming client gets its 200 and a keep-alive comment every few seconds while it waits, so a cold start
does not trip its read timeout; a start that fails ends that stream with an OpenAI-shaped error event. A
client that goes away cancels its request, which closes the connection upstream: the engine stops
generating, as with Stop in the window.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from typing import Any

from ..config import ModelEntry
from ..errors import EndpointError, LLMError
from ..protocol.error_body import server_message
from ..protocol.relay import Relay, RelayResponse
from ..runtime import Runtime, Upstream
from ..servers.reachability import probe_reachability
from .activity import KEEP_BODY_BYTES, Activity, RoutedRequest
from .answers import EVENT_STREAM, JSON, error_body, error_event, message_for, status_for
from .guard import bearer, cors_headers, host_allowed, preflight_headers, token_matches
from .listing import model_list, unknown_model_message
from .shaping import StreamShaper, shape_whole, wants_tool_calls
from .tokens import TokenFile

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

ROUTED_PATHS = ("/v1/chat/completions", "/v1/completions", "/v1/embeddings")
MAX_BODY_BYTES = 64 * 1024 * 1024
# A streaming request whose model is not ready within this waits with its 200 sent and keep-alive comments.
HEADERS_GRACE_S = 0.5
KEEPALIVE_S = 2.0
HEALTH_TTL_S = 15.0
HEALTH_PROBE_S = 2.0


class _Answer:
    """One response being written: its status goes out once, then body pieces, each kept for the inspector."""

    def __init__(self, send: Send, cors: list[tuple[str, str]], record: RoutedRequest | None) -> None:
        self._send = send
        self.cors = cors
        self.record = record
        self.status: int | None = None

    @property
    def started(self) -> bool:
        return self.status is not None

    async def start(self, status: int, content_type: str, extra: list[tuple[str, str]] = ()) -> None:
        self.status = status
        headers = [(b"content-type", content_type.encode())]
        if content_type.startswith(EVENT_STREAM):
            headers += [(b"cache-control", b"no-cache"), (b"x-accel-buffering", b"no")]
        headers += [(k.encode(), v.encode()) for k, v in [*self.cors, *extra]]
        await self._send({"type": "http.response.start", "status": status, "headers": headers})

    async def piece(self, data: bytes) -> None:
        if self.record is not None:
            self.record.keep_response(data)
        await self._send({"type": "http.response.body", "body": data, "more_body": True})

    async def end(self, data: bytes = b"") -> None:
        if self.record is not None and data:
            self.record.keep_response(data)
        await self._send({"type": "http.response.body", "body": data, "more_body": False})

    async def whole(self, status: int, data: bytes, content_type: str = JSON,
                    extra: list[tuple[str, str]] = ()) -> None:
        await self.start(status, content_type, [*extra, ("content-length", str(len(data)))])
        await self.end(data)

    async def error(self, status: int, message: str, kind: str, code: str | None = None,
                    extra: list[tuple[str, str]] = ()) -> None:
        """The error as a status, or, once a stream's 200 went out, as its last event."""
        if self.record is not None:
            self.record.error = message
        if self.started:
            await self.end(error_event(message, kind, code))
        else:
            await self.whole(status, error_body(message, kind, code), extra=extra)


class EndpointApp:
    """The ASGI callable ``ModelEndpoint`` serves; one per endpoint."""

    def __init__(self, runtime: Runtime, token: TokenFile, allowed_hosts: frozenset[str], activity: Activity,
                 relay: Relay) -> None:
        self.runtime = runtime
        self.token = token
        self.allowed_hosts = allowed_hosts
        self.activity = activity
        self.relay = relay
        # Requests to one server wait here, first come first served, when all its slots are busy.
        self._slots: dict[str, tuple[int, asyncio.Semaphore]] = {}
        self._healths: dict[str, tuple[float, str]] = {}  # attached model -> (when probed, what was found)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        method, path = scope["method"], scope["path"]
        origin = headers.get("origin")
        answer = _Answer(send, cors_headers(origin, self.runtime.config.endpoint.cors_origins), None)
        host_ok = host_allowed(headers.get("host"), self.allowed_hosts)
        if path == "/health" and host_ok:  # polled often and says nothing of the models: not kept
            await answer.whole(200, b'{"status":"ok"}')
            return
        client = scope.get("client") or ("?", 0)
        # Every other request is kept, a refused one too: an app set up with a wrong key shows up in the window.
        record = self.activity.begin(f"{client[0]}:{client[1]}", headers.get("user-agent", ""), method, path)
        answer.record = record
        try:
            await self._handle(method, path, headers, host_ok, receive, answer, record)
        finally:
            if not record.finished:
                self.activity.finish(record, answer.status or 499, record.error or (
                    None if answer.status else "the client disconnected"))

    async def _handle(self, method: str, path: str, headers: dict[str, str], host_ok: bool, receive: Receive,
                      answer: _Answer, record: RoutedRequest) -> None:
        if not host_ok:
            # DNS rebinding: a page that made its own name point here still sends that name.
            await answer.error(403, f"Host '{headers.get('host', '')}' is not a name this endpoint is bound to; "
                                    "add it to endpoint.allowed_hosts in llm_backends.yaml if you mean it",
                               "forbidden")
            return
        if method == "OPTIONS":
            origin = headers.get("origin")
            grant = preflight_headers(origin, self.runtime.config.endpoint.cors_origins)
            if grant:
                answer.cors = grant
                await answer.whole(204, b"")
            else:
                await answer.error(403, f"origin {origin or '(none)'} is not in endpoint.cors_origins", "forbidden")
            return
        try:
            token = self.token.current()
        except EndpointError as exc:
            await answer.error(503, str(exc), "server_error")
            return
        if not token_matches(bearer(headers.get("authorization")), token):
            await answer.error(401, "a bearer token is required: send 'Authorization: Bearer <token>'; "
                                    "`llmctl serve token` prints it", "invalid_api_key", "invalid_api_key",
                               extra=[("www-authenticate", "Bearer")])
            return
        if path in ("/v1/models", "/v1/models/") or path.startswith("/v1/models/"):
            if method != "GET":
                await answer.error(405, f"{path} answers GET", "invalid_request_error")
                return
            await self._models(answer, path.removeprefix("/v1/models").strip("/"))
            return
        if path not in ROUTED_PATHS:
            await answer.error(404, f"no route {path}; this endpoint serves /v1/models, "
                                    f"{', '.join(ROUTED_PATHS)} and /health", "not_found")
            return
        if method != "POST":
            await answer.error(405, f"{path} answers POST", "invalid_request_error")
            return
        await self._routed(path, receive, answer, record)

    async def _models(self, answer: _Answer, model_id: str) -> None:
        config = self.runtime.config
        if model_id and model_id not in config.models:
            await answer.error(404, unknown_model_message(model_id, config), "model_not_found", "model_not_found")
            return
        states = {row.model_id: row.state for row in self.runtime.servers.status()} if self.runtime.servers else {}
        capabilities = {}
        for each in [model_id] if model_id else list(config.models):
            with suppress(LLMError):
                capabilities[each] = await self.runtime.capabilities(each)
        attached = [config.models[m] for m in ([model_id] if model_id else config.models)
                    if not config.models[m].launchable]
        listing = model_list(config, states, capabilities, await self._health(attached))
        found = [card for card in listing["data"] if card["id"] == model_id]
        await answer.whole(200, json.dumps(found[0] if model_id else listing).encode())

    async def _health(self, entries: list[ModelEntry]) -> dict[str, str]:
        """Whether each attached server answers, probed at most every HEALTH_TTL_S (clients list models often)."""
        now = time.monotonic()
        stale = [e for e in entries if now - self._healths.get(e.id, (-HEALTH_TTL_S, ""))[0] >= HEALTH_TTL_S]
        for entry, found in zip(stale, await asyncio.gather(*(probe_reachability(e, HEALTH_PROBE_S) for e in stale))):
            self._healths[entry.id] = (now, found.text)
        return {e.id: self._healths[e.id][1] for e in entries}

    async def _routed(self, path: str, receive: Receive, answer: _Answer, record: RoutedRequest) -> None:
        try:
            body = await _read_body(receive)
        except _ClientGone:
            return  # kept as 499 by the caller
        except _BodyTooLarge:
            await self._refuse(answer, record, 413, f"the request body exceeds {MAX_BODY_BYTES // 2**20} MiB",
                               "invalid_request_error")
            return
        record.request_body = body[:KEEP_BODY_BYTES]
        try:
            payload = json.loads(body)
        except ValueError as exc:
            await self._refuse(answer, record, 400, f"the body is not JSON: {exc}", "invalid_request_error")
            return
        model = payload.get("model") if isinstance(payload, dict) else None
        if not isinstance(model, str) or not model:
            await self._refuse(answer, record, 400, "'model' is required: one of the ids GET /v1/models lists",
                               "invalid_request_error")
            return
        record.model, record.stream = model, payload.get("stream") is True
        config = self.runtime.config
        if model in config.invalid:  # configured, but its entry has a problem: say which
            await self._refuse(answer, record, 503, f"model '{model}' is not usable: {'; '.join(config.invalid[model])}",
                               "model_unavailable")
            return
        if model not in config.models:
            await self._refuse(answer, record, 404, unknown_model_message(model, config), "model_not_found",
                               "model_not_found")
            return
        work = asyncio.ensure_future(self._serve(path, payload, answer, record))
        gone = asyncio.ensure_future(_disconnected(receive))
        try:
            await asyncio.wait({work, gone}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not work.done():  # the client went away (or the endpoint stops): so does the request upstream
                work.cancel()
            gone.cancel()
            with suppress(asyncio.CancelledError):
                await work
            if not record.finished:
                self.activity.finish(record, 499, "the client disconnected")

    async def _refuse(self, answer: _Answer, record: RoutedRequest, status: int, message: str, kind: str,
                      code: str | None = None) -> None:
        await answer.error(status, message, kind, code)
        self.activity.finish(record, status, message)

    async def _serve(self, path: str, payload: dict[str, Any], answer: _Answer, record: RoutedRequest) -> None:
        model_id = record.model or ""
        try:
            async with self.runtime.crashes_explained(model_id), self.runtime.in_use(model_id):
                upstream = await self._ready(model_id, answer, record)
                async with self._slot(model_id, upstream, record):
                    self.activity.moved(record, "answering")
                    body = {**payload, **upstream.extras, "model": upstream.model_name}
                    reply = await self.relay.open(upstream.base_url, path, json.dumps(body).encode(),
                                                  api_key=upstream.api_key,
                                                  connect_timeout_s=upstream.connect_timeout_s,
                                                  read_timeout_s=upstream.read_timeout_s)
                    try:
                        await self._relay(reply, payload, path, answer, record)
                    finally:
                        await reply.aclose()
        except LLMError as exc:
            status, kind = status_for(exc)
            message = message_for(exc, model_id)
            with suppress(OSError):
                await answer.error(status, message, kind)
            self.activity.finish(record, answer.status or status, message)
        except OSError:  # uvicorn's ClientDisconnected: the client left while its answer was being written
            self.activity.finish(record, 499, "the client disconnected")

    async def _ready(self, model_id: str, answer: _Answer, record: RoutedRequest) -> Upstream:
        """The model's upstream once its server is ready; a streaming client hears keep-alives meanwhile."""
        limit = self.runtime.config.endpoint.start_timeout_s
        starting = asyncio.ensure_future(self.runtime.upstream(model_id))
        deadline = time.monotonic() + limit
        wait = min(HEADERS_GRACE_S, limit)
        try:
            while True:
                done, _ = await asyncio.wait({starting}, timeout=wait)
                if done:
                    return starting.result()
                if not record.cold_start:
                    record.cold_start = True
                    self.activity.moved(record, "starting")
                if time.monotonic() >= deadline:
                    raise EndpointError(f"model '{model_id}' is still starting after {limit:g} s "
                                        "(endpoint.start_timeout_s); its start goes on, try again shortly")
                if record.stream:
                    if not answer.started:
                        await answer.start(200, EVENT_STREAM)
                    await answer.piece(f": waiting for model '{model_id}' to start\n\n".encode())
                wait = min(KEEPALIVE_S, max(0.0, deadline - time.monotonic()))
        finally:
            starting.cancel()  # the start itself is shielded in the manager: other waiters still get it

    @asynccontextmanager
    async def _slot(self, model_id: str, upstream: Upstream, record: RoutedRequest):
        props = await self.runtime.engine_props(model_id)
        slots = props.total_slots if props is not None and props.total_slots else None
        if not slots:
            yield
            return
        held = self._slots.get(upstream.server_id)
        if held is None or held[0] != slots:
            held = self._slots[upstream.server_id] = (slots, asyncio.Semaphore(slots))
        if held[1].locked():
            self.activity.moved(record, "queued")
        async with held[1]:
            yield

    async def _relay(self, reply: RelayResponse, payload: dict[str, Any], path: str, answer: _Answer,
                     record: RoutedRequest) -> None:
        shaped = path == "/v1/chat/completions" and wants_tool_calls(payload)
        streamed = reply.status < 400 and reply.content_type.startswith(EVENT_STREAM)
        if not streamed:
            data = await reply.read()
            if shaped and reply.status < 400:
                data = shape_whole(data, payload.get("tools"))
            if answer.started:  # a cold start's keep-alives went out: the answer ends the stream
                await answer.end(error_event(_said(data), "upstream_error") if reply.status >= 400
                                 else b"data: " + data + b"\n\ndata: [DONE]\n\n")
            else:
                await answer.whole(reply.status, data, reply.content_type)
            self.activity.finish(record, answer.status or reply.status,
                                 _said(data) if reply.status >= 400 else None)
            return
        if not answer.started:
            await answer.start(reply.status, reply.content_type)
        shaper = StreamShaper(payload.get("tools")) if shaped else None
        tail = b""  # the end of the last piece: the marker may be split between two
        async for chunk in reply.chunks():
            out = shaper.feed(chunk) if shaper is not None else chunk
            if out:
                await answer.piece(out)
                seen, tail = tail + out, out[-16:]
                if not record.finished and b"data: [DONE]" in seen:
                    # The answer is whole: a client may hang up now, before the engine ends its body.
                    self.activity.finish(record, answer.status or 200)
        await answer.end(shaper.finish() if shaper is not None else b"")
        if not record.finished:
            self.activity.finish(record, answer.status or 200)


class _BodyTooLarge(Exception):
    pass


class _ClientGone(Exception):
    pass


async def _read_body(receive: Receive) -> bytes:
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise _BodyTooLarge
        parts.append(chunk)
        if not message.get("more_body"):
            return b"".join(parts)


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def _said(data: bytes) -> str:
    return server_message(data.decode("utf-8", "replace")) or "the model's server answered an error"
