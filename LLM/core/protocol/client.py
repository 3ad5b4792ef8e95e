"""Async client for one OpenAI-compatible server: streaming chat, non-stream chat, probe.

httpx exceptions become our typed errors here and nowhere else (``_http_errors``).
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

from ..errors import (
    BackendConnectionError,
    BackendError,
    BackendStatusError,
    BackendTimeoutError,
    ConfigError,
    ContextOverflowError,
    EmptyResponseError,
    InferenceError,
    ModelNotServedError,
)
from ..events import StreamEvent
from .chatml import render_chatml
from .decoding import ChatStreamDecoder, CompletionStreamDecoder, TextCompletionDecoder, decode_chat_response
from .props import EngineProps, parse_props
from .sse import SSEDecoder


# llama-server closes a kept-alive connection 5 s after it was last used *or* right after a response that
# took longer than that (Keep-Alive: timeout=5); httpx's own default expiry is the same 5 s. Idle
# connections are dropped on our side well before, and a request that still meets a closed one is resent.
KEEPALIVE_EXPIRY_S = 2.0

CHAT_PATH = "/v1/chat/completions"
# How servers say that a prompt does not fit the context: llama-server (type exceed_context_size_error, "request
# (N tokens) exceeds the available context size (M tokens)", measured), vLLM ("This model's maximum context length
# is M tokens"), OpenAI (code context_length_exceeded), llama-cpp-python ("exceed context window").
_CONTEXT_ERROR_MARKERS = (
    "exceed_context_size_error", "exceeds the available context size", "maximum context length",
    "context_length_exceeded", "exceed context window",
)
# llama-server's answer for a route it does not have (measured): the one 404 body that says "llama.cpp".
_LLAMA_CPP_NOT_FOUND = "File Not Found"


class _ResendOnStaleConnection(httpx.AsyncBaseTransport):
    """Sends a request again when the server had closed the pooled connection before reading it.

    "Server disconnected without sending a response" on a reused connection means the request was never
    processed, so sending it once more is safe even for a POST.
    """

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self._inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return await self._inner.handle_async_request(request)
        except httpx.RemoteProtocolError as exc:
            if "without sending a response" not in str(exc):
                raise
            return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


@contextmanager
def _http_errors(url: str) -> Iterator[None]:
    """The one place where httpx exceptions are translated into BackendError subclasses."""
    try:
        yield
    except httpx.TimeoutException as exc:
        kind = "connect" if isinstance(exc, httpx.ConnectTimeout) else "read"
        raise BackendTimeoutError(f"{kind} timeout talking to {url}", url) from exc
    except httpx.ConnectError as exc:
        raise BackendConnectionError(f"cannot connect to {url}: {exc}", url) from exc
    except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as exc:
        raise BackendConnectionError(f"connection to {url} dropped: {exc}", url) from exc
    except httpx.HTTPError as exc:
        raise BackendError(f"HTTP error talking to {url}: {exc}", url) from exc


@dataclass(frozen=True)
class ProbeStep:
    name: str
    ok: bool
    message: str


@dataclass
class ProbeReport:
    steps: list[ProbeStep] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.steps) and all(step.ok for step in self.steps)


def api_key_from_env(var_name: str | None) -> str | None:
    """Read the bearer key from the named environment variable; the key never enters config or logs."""
    if not var_name:
        return None
    key = os.environ.get(var_name)
    if not key:
        raise ConfigError(f"api_key_env: environment variable {var_name} is not set")
    return key


class ChatClient:
    """One pooled HTTP client per server; create once, reuse for every request, then ``aclose``."""

    def __init__(
        self,
        base_url: str,
        model_name: str,
        *,
        api_key: str | None = None,
        connect_timeout_s: float = 5.0,
        read_timeout_s: float = 300.0,
        transport: httpx.AsyncBaseTransport | None = None,
        extra_body: dict[str, Any] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model_name = model_name
        # Sent with every generation request (llama-server's per-request `lora` scales, say); params win.
        self.extra_body = dict(extra_body or {})
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        timeout = httpx.Timeout(read_timeout_s, connect=connect_timeout_s)
        if transport is None:
            limits = httpx.Limits(keepalive_expiry=KEEPALIVE_EXPIRY_S)
            transport = _ResendOnStaleConnection(httpx.AsyncHTTPTransport(limits=limits))
        self._http = httpx.AsyncClient(base_url=self.base_url, headers=headers, timeout=timeout, transport=transport)
        # Set once llama.cpp's native /completion answered after a 404 from /v1/chat/completions: used from then on.
        self.native_completion = False
        self._cannot_count = False
        self._no_apply_template = False

    async def aclose(self) -> None:
        await self._http.aclose()

    def chat_body(
        self, messages: list[dict[str, Any]], params: dict[str, Any], tools: list[dict] | None, stream: bool
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.model_name, "messages": messages, "stream": stream,
                                **self.extra_body, **params}
        if tools:
            body["tools"] = tools
        if stream:
            body["stream_options"] = {"include_usage": True}
        return body

    def chat(
        self,
        messages: list[dict[str, Any]],
        params: dict[str, Any] | None = None,
        tools: list[dict] | None = None,
        stream: bool = True,
    ) -> AsyncIterator[StreamEvent]:
        """Yield TextDelta / ReasoningDelta / ToolCallDelta / Usage events, then one Done.

        Returns the generator directly (no wrapper), so each event crosses one hop less.
        """
        params = params or {}
        if not stream:
            return self._chat_once_events(messages, params, tools)
        if self.native_completion:
            return self._stream_completion(messages, params)
        body = self.chat_body(messages, params, tools, True)
        fallback = None if tools else (messages, params)
        return self._stream(CHAT_PATH, body, ChatStreamDecoder(), fallback)

    async def _chat_once_events(
        self, messages: list[dict], params: dict, tools: list[dict] | None
    ) -> AsyncIterator[StreamEvent]:
        for event in await self._chat_once(messages, params, tools):
            yield event

    async def _chat_once(self, messages: list[dict], params: dict, tools: list[dict] | None) -> list[StreamEvent]:
        url = f"{self.base_url}{CHAT_PATH}"
        with _http_errors(url):
            response = await self._http.post(CHAT_PATH, json=self.chat_body(messages, params, tools, False))
        if response.status_code == 404:
            await self._check_model_served(url, response.text)
        _check_status(response, url)
        if not response.content.strip():
            raise EmptyResponseError(f"{url} answered HTTP {response.status_code} with an empty body", url)
        try:
            body = response.json()
        except json.JSONDecodeError as exc:
            raise InferenceError(f"{url} answered with a body that is not JSON: {response.text[:200]!r}") from exc
        return decode_chat_response(body)

    async def _stream(
        self,
        path: str,
        body: dict[str, Any],
        decoder: ChatStreamDecoder | CompletionStreamDecoder | TextCompletionDecoder,
        fallback: tuple[list[dict], dict] | None = None,
    ) -> AsyncIterator[StreamEvent]:
        url = f"{self.base_url}{path}"
        sse = SSEDecoder()
        with _http_errors(url):
            async with self._http.stream("POST", path, json=body) as response:
                if response.status_code == 404 and path == CHAT_PATH:
                    await response.aread()
                    await self._check_model_served(url, response.text)
                    if fallback is not None:
                        async for event in self._native_fallback(url, response.text, *fallback):
                            yield event
                        return
                    _check_status(response, url)
                if response.status_code >= 400:
                    await response.aread()
                    _check_status(response, url)
                if "text/event-stream" not in response.headers.get("content-type", "") and response.status_code == 200:
                    # Some servers ignore stream=true and answer with one JSON body.
                    raw = await response.aread()
                    if not raw.strip():
                        raise EmptyResponseError(f"{url} answered HTTP 200 with an empty body", url)
                    for event in _decode_plain_body(raw, url, decoder):
                        yield event
                    return
                # Read to the end even after [DONE] (the decoder ignores what follows it): a fully read
                # response returns its connection to the pool, a broken-off one costs a new connect next time.
                async for chunk in response.aiter_raw():
                    for sse_event in sse.feed(chunk):
                        for event in decoder.decode(sse_event.data):
                            yield event
                for sse_event in sse.flush():
                    for event in decoder.decode(sse_event.data):
                        yield event
        if not decoder.saw_data:
            raise EmptyResponseError(f"{url} answered HTTP 200 with an empty stream (no data at all)", url)
        for event in decoder.finish():
            yield event

    async def _check_model_served(self, url: str, body: str) -> None:
        """After a 404 from the chat route: raise ModelNotServedError if the server does not serve our model name.

        Ollama, vLLM and LM Studio answer 404 for a model name they do not serve; the error lists the names they
        do serve. A llama.cpp server (its "File Not Found" body, or a /props that answers) never checks the name,
        so its 404 means the route is missing. Then, as when the model is listed or there is no list to ask,
        the caller may try llama.cpp's /completion once (_native_fallback).
        """
        if _LLAMA_CPP_NOT_FOUND in body:
            return
        try:
            if await self.props() is not None:
                return
        except BackendError:
            pass  # e.g. /props needs a key this server does not take: the model list still tells
        try:
            models = await self.list_models()
        except BackendError:
            return
        if models and self.model_name not in models:
            raise ModelNotServedError(self.model_name, models, url, body)

    async def _native_fallback(
        self, url: str, body: str, messages: list[dict], params: dict
    ) -> AsyncIterator[StreamEvent]:
        """llama.cpp's native /completion after a 404 from the chat route; used from then on once it answers."""
        try:
            async for event in self._stream_completion(messages, params):
                self.native_completion = True
                yield event
        except BackendStatusError as exc:
            if exc.status_code != 404:
                raise
            raise BackendStatusError(404, body, url, f"HTTP 404 from {url} and from {self.base_url}/completion: "
                                     "the server has neither an OpenAI chat route nor llama.cpp's native one; "
                                     f"check server_url in llm_backends.yaml. Server said: {body[:300]}") from exc

    async def _stream_completion(self, messages: list[dict], params: dict) -> AsyncIterator[StreamEvent]:
        prompt = await self._render_prompt(messages)
        body: dict[str, Any] = {"prompt": prompt, "stream": True, **self.extra_body}
        mapping = {"max_tokens": "n_predict", "repeat_penalty": "repeat_penalty"}
        for key, value in params.items():
            if key in ("temperature", "top_p", "top_k", "stop", "seed", "max_tokens", "repeat_penalty"):
                body[mapping.get(key, key)] = value
        async for event in self._stream("/completion", body, CompletionStreamDecoder()):
            yield event

    async def _render_prompt(self, messages: list[dict]) -> str:
        """Use the server's own chat template (llama-server /apply-template), else ChatML."""
        try:
            prompt = await self.apply_template(messages)
        except BackendError:
            prompt = None
        return prompt if prompt is not None else render_chatml(messages)

    def complete(self, prompt: str, params: dict[str, Any] | None = None) -> AsyncIterator[StreamEvent]:
        """Stream a plain completion of ``prompt`` (base models: no chat template) from /v1/completions."""
        body: dict[str, Any] = {"model": self.model_name, "prompt": prompt, "stream": True,
                                "stream_options": {"include_usage": True}, **self.extra_body, **(params or {})}
        return self._stream("/v1/completions", body, TextCompletionDecoder())

    # ----- what the engine can tell about itself (llama-server; None where a server has no such endpoint) -----
    async def props(self) -> EngineProps | None:
        body = await self._optional_json("GET", "/props")
        return parse_props(body) if body is not None else None

    async def apply_template(self, messages: list[dict[str, Any]]) -> str | None:
        """The prompt the server's chat template renders for ``messages``; None where the server cannot say
        (asked once: only llama-server has the endpoint, and the tool loop asks at every step)."""
        if self._no_apply_template:
            return None
        body = await self._optional_json("POST", "/apply-template", {"messages": messages})
        prompt = body.get("prompt") if isinstance(body, dict) else None
        if not isinstance(prompt, str):
            self._no_apply_template = True
            return None
        return prompt

    async def tokenize(self, text: str) -> list[int] | None:
        body = await self._optional_json("POST", "/tokenize", {"content": text})
        tokens = body.get("tokens") if isinstance(body, dict) else None
        return tokens if isinstance(tokens, list) else None

    async def count_prompt_tokens(self, messages: list[dict[str, Any]]) -> int | None:
        """Exact prompt tokens for ``messages`` as the engine would see them; None when it cannot tell
        (asked once: a server without /apply-template or /tokenize is not asked again)."""
        if self._cannot_count:
            return None
        prompt = await self.apply_template(messages)
        tokens = await self.tokenize(prompt) if prompt is not None else None
        if tokens is None:
            self._cannot_count = True
            return None
        return len(tokens)

    async def lora_adapters(self) -> list[dict[str, Any]] | None:
        """llama-server's loaded LoRA adapters (id, path, scale); None where the server has no such route."""
        listed = await self._optional_json("GET", "/lora-adapters")
        return listed if isinstance(listed, list) else None

    async def admin(self, method: str, path: str, payload: Any = None) -> None:
        """An engine's management route (loading an adapter, say): raises BackendStatusError unless it succeeds."""
        url = f"{self.base_url}{path}"
        with _http_errors(url):
            response = await self._http.request(method, path, json=payload)
        _check_status(response, url)

    async def slots(self) -> list[dict[str, Any]] | None:
        body = await self._optional_json("GET", "/slots")
        return body if isinstance(body, list) else None

    async def _optional_json(self, method: str, path: str, payload: Any = None) -> Any:
        """The JSON body of an endpoint only some servers have: None on 404/405/501 or a non-JSON body."""
        url = f"{self.base_url}{path}"
        with _http_errors(url):
            response = await self._http.request(method, path, json=payload)
        if response.status_code in (404, 405, 501):
            return None
        _check_status(response, url)
        try:
            return response.json()
        except ValueError:
            return None

    async def http_status(self, path: str, timeout_s: float = 2.0) -> int | None:
        """Status code of GET path, or None when nothing answers (used for readiness polls)."""
        try:
            with _http_errors(f"{self.base_url}{path}"):
                response = await self._http.get(path, timeout=timeout_s)
        except BackendError:
            return None
        return response.status_code

    async def list_models(self) -> list[str]:
        url = f"{self.base_url}/v1/models"
        with _http_errors(url):
            response = await self._http.get("/v1/models")
        _check_status(response, url)
        try:
            data = response.json().get("data") or []
            return [str(item.get("id")) for item in data if isinstance(item, dict)]
        except (ValueError, AttributeError) as exc:
            raise InferenceError(f"{url} returned an unexpected model list: {response.text[:200]!r}") from exc

    async def probe(self) -> ProbeReport:
        """Reachable? Model listed? Does a one-token request answer? Each step says why not."""
        report = ProbeReport()
        try:
            models = await self.list_models()
            report.steps.append(ProbeStep("reachable", True, f"{self.base_url} answers"))
        except BackendError as exc:
            report.steps.append(ProbeStep("reachable", False, str(exc)))
            return report
        listed = self.model_name in models or not models
        detail = f"'{self.model_name}' is served" if self.model_name in models else (
            "server lists no models" if not models else f"'{self.model_name}' not in {models}"
        )
        report.steps.append(ProbeStep("model listed", listed, detail))
        try:
            events = [e async for e in self.chat([{"role": "user", "content": "Hi"}], {"max_tokens": 1})]
            report.steps.append(ProbeStep("dry run", True, f"one-token request finished ({events[-1].finish_reason})"))
        except BackendError as exc:
            report.steps.append(ProbeStep("dry run", False, str(exc)))
        return report


def _check_status(response: httpx.Response, url: str) -> None:
    if response.status_code >= 400:
        raise _status_error(response.status_code, response.text, url)


def _status_error(status: int, body: str, url: str | None) -> BackendStatusError:
    """The typed error for an HTTP error answer: a context overflow is told apart from other 4xx."""
    if 400 <= status < 500:
        lowered = body.lower()
        if any(marker in lowered for marker in _CONTEXT_ERROR_MARKERS):
            prompt_tokens, context_size = _context_figures(body)
            return ContextOverflowError(status, body, url, prompt_tokens, context_size)
    return BackendStatusError(status, body, url)


def _context_figures(body: str) -> tuple[int | None, int | None]:
    """llama-server's error object carries n_prompt_tokens and n_ctx."""
    try:
        error = json.loads(body).get("error")
    except (ValueError, AttributeError):
        return None, None
    if not isinstance(error, dict):
        return None, None
    prompt, ctx = error.get("n_prompt_tokens"), error.get("n_ctx")
    return (prompt if isinstance(prompt, int) else None), (ctx if isinstance(ctx, int) else None)


def _decode_plain_body(
    raw: bytes, url: str, decoder: ChatStreamDecoder | CompletionStreamDecoder
) -> list[StreamEvent]:
    try:
        body = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InferenceError(f"{url} answered with a body that is neither SSE nor JSON: {raw[:200]!r}") from exc
    if isinstance(decoder, ChatStreamDecoder):
        return decode_chat_response(body)
    events = decoder.decode(json.dumps(body))
    return events + decoder.finish()
