"""An OpenAI-compatible HTTP server for a transformers model and its PEFT LoRA adapters, picked per request.

Run as ``python -m LLM.core.servers.hf_server --model DIR [--adapter NAME=DIR ...] ...`` by the
server manager (hf_cli.py has every flag). A request's ``model`` picks what answers it: a
``--served-model-name`` gets the bare base model, an adapter name that adapter. Adapters can
also be loaded and unloaded while serving (POST /v1/adapters, DELETE /v1/adapters/NAME). A chat request
with ``tools`` gets the model's ``<tool_call>`` text as OpenAI ``tool_calls`` and its ``<think>`` text as
``reasoning_content`` (``tool_choice: "none"``: the text as it is; ``parallel_tool_calls: false``: the
first call only). A vision-language model (hf_vision.py) takes images as ``image_url`` parts holding
``data:`` URIs, and its /v1/models card says ``"modalities": ["vision"]``.

The HTTP server starts first and the model loads in a background thread, so ``GET /health``
answers 503 {"status": "loading"} until the model is ready, then 200 {"status": "ok",
"model": NAME, "adapter": PATH|null}. A load failure is logged and the process exits with
status 1; missing packages and bad command-line values exit with status 2.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import threading
import time
import traceback
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from ..tools.parsing import NativeToolCalls, native_message
from ..validation import field_problems
from .api_keys import read_key
from .hf_adapters import AdapterError, UnknownAdapterError
from .hf_cli import ServeConfig, parse_args
from .hf_generation import Generation, HFEngine, LoadError, PromptError, load_engine
from .hf_requests import (
    AdapterRequest,
    ChatRequest,
    CompletionRequest,
    message_problems,
)
from .hf_vision import has_images

if TYPE_CHECKING:
    from fastapi import FastAPI, Request

__all__ = ["REQUIRED_MODULES", "AppState", "ChatRequest", "create_app", "main", "parse_args"]

EXTRA_HINT = "the transformers backend needs the [transformers] extra: pip install 'llm-workbench[transformers]'"
REQUIRED_MODULES = ("torch", "transformers", "peft", "fastapi", "uvicorn", "sse_starlette")


def log(message: str) -> None:
    # The manager shows the last line of our output as load progress: one flushed line each.
    print(message, flush=True)


@dataclass
class AppState:
    """What the endpoints see: the names served, and the engine once loaded (set once, by the loader thread)."""

    config: ServeConfig
    engine: HFEngine | None = None
    error: str | None = None
    created: int = field(default_factory=lambda: int(time.time()))
    api_key: str | None = None  # every route but /health wants "Authorization: Bearer <key>" when set

    @property
    def parent(self) -> str:
        """The name adapters report as their parent: the first base name (the primary if none)."""
        return self.config.base_names[0] if self.config.base_names else self.config.primary

    def adapter_paths(self) -> dict[str, str]:
        if self.engine is None:  # still loading: the adapters asked for on the command line
            return dict(self.config.load.adapters)
        return self.engine.adapters.paths()

    def routes(self) -> dict[str, str | None]:
        """Served model name -> the adapter that answers it (None: the bare base), base names first."""
        return {**dict.fromkeys(self.config.base_names), **{name: name for name in self.adapter_paths()}}

    def card(self, name: str, adapter_path: str | None) -> dict[str, Any]:
        card = {"id": name, "object": "model", "created": self.created, "owned_by": "llm-workbench",
                "root": self.config.load.model, "adapter": adapter_path}
        if adapter_path is not None and name != self.parent:
            card["parent"] = self.parent
        if self.engine is not None and self.engine.vision:
            card["modalities"] = ["vision"]  # as llama-server's /props names them; text is always there
        return card


def error_response(status: int, message: str, kind: str = "invalid_request_error") -> Any:
    from fastapi.responses import JSONResponse

    return JSONResponse({"error": {"message": message, "type": kind, "code": status}}, status_code=status)


def _usage(generation: Generation) -> dict[str, int]:
    prompt, completion = generation.prompt_tokens, generation.completion_tokens
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _parse_body(raw: bytes, model: type[BaseModel]) -> Any:
    """The validated request, or the 400 response saying what is wrong and where."""
    try:
        data = json.loads(raw)
    except ValueError as exc:  # JSONDecodeError, or bytes that are not UTF-8
        return error_response(400, f"the request body is not valid JSON: {exc}")
    if not isinstance(data, dict):
        return error_response(400, f"the request body must be a JSON object; got {type(data).__name__}")
    if model is ChatRequest:
        problems = ["messages: is required"] if "messages" not in data else message_problems(data["messages"])
        if problems:
            return error_response(400, "; ".join(problems))
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{p.path or 'body'}: {p.message}" for p in field_problems(exc))
        return error_response(400, f"invalid request: {problems}")


def create_app(state: AppState) -> FastAPI:
    import anyio
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse
    from sse_starlette.sse import EventSourceResponse

    app = FastAPI(title="llm-workbench transformers server")

    @app.middleware("http")
    async def require_key(request: Request, call_next: Any) -> Any:
        if state.api_key and request.url.path != "/health":
            if request.headers.get("authorization") != f"Bearer {state.api_key}":
                return error_response(401, "Invalid API Key", "authentication_error")
        return await call_next(request)

    @app.get("/health")
    async def health() -> Any:
        if state.engine is None:
            body = {"status": "error", "error": state.error} if state.error else {"status": "loading"}
            return JSONResponse(body, status_code=503)
        legacy = None if state.config.primary in state.config.base_names else state.adapter_paths().get(
            state.config.primary)
        return {"status": "ok", "model": state.config.primary, "adapter": legacy}

    @app.get("/v1/models")
    async def models() -> Any:
        paths = state.adapter_paths()
        return {"object": "list", "data": [state.card(name, paths.get(name)) for name in state.routes()]}

    def route(model: str | None) -> tuple[str, str | None] | Any:
        """(served name, adapter or None) for the request's model, or the 404 naming what is served."""
        name = model or state.config.primary
        routes = state.routes()
        if name not in routes:
            return error_response(404, f"model '{name}' not found; this server has: {', '.join(routes)}",
                                  "not_found_error")
        return name, routes[name]

    async def generate(request: Request, chat: bool) -> Any:
        body = _parse_body(await request.body(), ChatRequest if chat else CompletionRequest)
        if not isinstance(body, (ChatRequest, CompletionRequest)):
            return body
        if not chat and body.prompt_text is None:
            return error_response(400, "prompt: must be a string or a list of exactly one string")
        engine = state.engine
        if engine is None:
            return error_response(503, "the model is still loading", "unavailable")
        picked = route(body.model)
        if not isinstance(picked, tuple):
            return picked
        name, adapter = picked
        if isinstance(body, ChatRequest) and not engine.vision and has_images(body.messages):
            return error_response(400, f"this model ({name}) has no vision: it cannot take images")
        params = body.sampling()
        try:
            if chat:
                prompt = await anyio.to_thread.run_sync(engine.prepare, body.messages, body.tools, params.max_tokens)
            else:
                prompt = await anyio.to_thread.run_sync(engine.prepare_text, body.prompt_text, params.max_tokens)
        except PromptError as exc:
            return error_response(400, str(exc))
        generation = Generation(engine, prompt, params, adapter)  # runs once iterated, by the response
        completion_id = f"{'chatcmpl' if chat else 'cmpl'}-{uuid.uuid4().hex}"
        # With tools, the answer's <tool_call> text goes out as OpenAI tool_calls (as vLLM's hermes parser does).
        tools = body.native_tools if isinstance(body, ChatRequest) else None
        most = body.max_tool_calls if isinstance(body, ChatRequest) else None
        opens = tools is not None and _opens_reasoning(prompt.text)
        if body.stream:
            native = NativeToolCalls(tools, start_in_reasoning=opens, max_calls=most) if tools is not None else None
            events = _stream_events(generation, chat, completion_id, name, body.include_usage, native)
            return EventSourceResponse(events, sep="\n", ping=15)
        return await _complete(request, generation, chat, completion_id, name, tools, opens, most)

    async def chat_completions(request: Request) -> Any:
        return await generate(request, chat=True)

    async def completions(request: Request) -> Any:
        return await generate(request, chat=False)

    async def add_adapter(request: Request) -> Any:
        body = _parse_body(await request.body(), AdapterRequest)
        if not isinstance(body, AdapterRequest):
            return body
        engine = state.engine
        if engine is None:
            return error_response(503, "the model is still loading", "unavailable")
        if body.name in state.config.base_names:
            return error_response(409, f"'{body.name}' is a base model name of this server", "conflict")
        log(f"loading adapter '{body.name}' from {body.path}")
        try:  # waits for the generation in progress: the adapters share its lock
            await anyio.to_thread.run_sync(engine.adapters.load, body.name, body.path)
        except AdapterError as exc:
            log(f"error: {exc}")
            return error_response(exc.status, str(exc), "conflict" if exc.status == 409 else "invalid_request_error")
        log(f"adapter '{body.name}' loaded")
        return JSONResponse(state.card(body.name, body.path))

    async def delete_adapter(request: Request) -> Any:
        name = request.path_params["name"]
        engine = state.engine
        if engine is None:
            return error_response(503, "the model is still loading", "unavailable")
        if name in state.config.base_names:
            return error_response(400, f"'{name}' is the base model, not an adapter; it cannot be unloaded")
        try:
            await anyio.to_thread.run_sync(engine.adapters.unload, name)
        except AdapterError as exc:
            return error_response(exc.status, str(exc), "not_found_error" if exc.status == 404 else "invalid_request_error")
        log(f"adapter '{name}' unloaded")
        return JSONResponse({"id": name, "object": "model", "deleted": True})

    # Plain Starlette routes: FastAPI's parameter injection cannot see the lazily imported
    # Request class through this module's string annotations, and we validate the bodies ourselves.
    app.add_route("/v1/chat/completions", chat_completions, methods=["POST"])
    app.add_route("/v1/completions", completions, methods=["POST"])
    app.add_route("/v1/adapters", add_adapter, methods=["POST"])
    app.add_route("/v1/adapters/{name:path}", delete_adapter, methods=["DELETE"])
    return app


async def _next_piece(pieces: Any) -> str | None:
    import anyio

    # Abandon the blocked thread on cancellation (client gone): the cancel flag stops the
    # model, which ends the streamer, which lets that thread return.
    return await anyio.to_thread.run_sync(next, pieces, None, abandon_on_cancel=True)


def _opens_reasoning(prompt_text: str) -> bool:
    """Whether the rendered prompt opened reasoning (QwQ, Qwen3-Thinking): then the answer starts inside it."""
    return prompt_text.rstrip().endswith("<think>")


def _finish_reason(generation: Generation, calls: int) -> str | None:
    # A call ends the turn by design ("tool_calls"); a cut at the token limit stays "length".
    return "tool_calls" if calls and generation.finish_reason == "stop" else generation.finish_reason


def _chunk_choice(chat: bool, text: str | None, finish: str | None = None) -> dict[str, Any]:
    """One streamed choice: chat puts the text in a delta, a text completion in ``text``."""
    if chat:
        delta = {"role": "assistant", "content": ""} if text is None else ({"content": text} if text else {})
        return {"index": 0, "delta": delta, "finish_reason": finish}
    return {"index": 0, "text": text or "", "logprobs": None, "finish_reason": finish}


async def _stream_events(
    generation: Generation, chat: bool, completion_id: str, model: str, include_usage: bool,
    native: NativeToolCalls | None = None,
) -> AsyncIterator[dict[str, str]]:
    """The SSE events of one completion; with ``native``, chat deltas carry content, reasoning and tool calls."""
    created = int(time.time())
    kind = "chat.completion.chunk" if chat else "text_completion"

    def chunk(choice: dict[str, Any] | None, usage: dict[str, int] | None = None) -> dict[str, str]:
        payload: dict[str, Any] = {"id": completion_id, "object": kind, "created": created, "model": model,
                                   "choices": [choice] if choice else []}
        if usage:
            payload["usage"] = usage
        return {"data": json.dumps(payload)}

    pieces = iter(generation)
    try:  # sse-starlette cancels this generator when the client disconnects: finally stops the model
        if chat:
            yield chunk(_chunk_choice(chat, None))  # the role comes first, as OpenAI sends it
        while (piece := await _next_piece(pieces)) is not None:
            if native is None:
                yield chunk(_chunk_choice(chat, piece))
            else:
                for delta in native.feed(piece):
                    yield chunk({"index": 0, "delta": delta, "finish_reason": None})
        if native is not None:
            for delta in native.finish():
                yield chunk({"index": 0, "delta": delta, "finish_reason": None})
        yield chunk(_chunk_choice(chat, "", _finish_reason(generation, native.calls if native else 0)))
        if include_usage:
            yield chunk(None, usage=_usage(generation))
    except Exception as exc:  # the model failed mid-stream: tell the client in-band
        log(f"generation failed: {type(exc).__name__}: {exc}")
        yield {"data": json.dumps({"error": {"message": str(exc), "type": "server_error", "code": 500}})}
    finally:
        generation.cancel()
    yield {"data": "[DONE]"}


async def _complete(
    request: Request, generation: Generation, chat: bool, completion_id: str, model: str,
    tools: list[dict[str, Any]] | None = None, opens_reasoning: bool = False, max_calls: int | None = None,
) -> Any:
    import anyio
    from fastapi.responses import JSONResponse

    text_parts: list[str] = []
    errors: list[Exception] = []

    def collect() -> None:
        try:
            text_parts.extend(generation)
        except Exception as exc:  # kept out of the task group, which would wrap it in a group
            errors.append(exc)

    async def watch_disconnect() -> None:
        # A non-streaming client that gives up would otherwise keep the model busy.
        while not await request.is_disconnected():
            await anyio.sleep(0.25)
        generation.cancel()

    try:
        async with anyio.create_task_group() as group:
            group.start_soon(watch_disconnect)
            await anyio.to_thread.run_sync(collect)
            group.cancel_scope.cancel()
    finally:
        generation.cancel()
    if errors:
        if isinstance(errors[0], UnknownAdapterError):  # unloaded while this request waited its turn
            return error_response(404, f"model '{model}' not found: {errors[0]}", "not_found_error")
        log(f"generation failed: {type(errors[0]).__name__}: {errors[0]}")
        return error_response(500, f"generation failed: {errors[0]}", "server_error")
    text = "".join(text_parts)
    finish = generation.finish_reason
    if tools is not None:
        message = native_message(text, tools, start_in_reasoning=opens_reasoning, max_calls=max_calls)
        choice = {"index": 0, "message": message}
        finish = _finish_reason(generation, len(message.get("tool_calls", ())))
    elif chat:
        choice = {"index": 0, "message": {"role": "assistant", "content": text}}
    else:
        choice = {"index": 0, "text": text, "logprobs": None}
    return JSONResponse({
        "id": completion_id,
        "object": "chat.completion" if chat else "text_completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{**choice, "finish_reason": finish}],
        "usage": _usage(generation),
    })


def missing_modules(names: tuple[str, ...]) -> list[str]:
    """Checked without importing them: torch alone takes seconds, and /health must answer soon."""
    missing = []
    for name in names:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):  # ValueError: a module blocked as None in sys.modules
            found = False
        if not found:
            missing.append(name)
    return missing


def main(argv: list[str] | None = None) -> int:
    config = parse_args(argv)  # exits 2 with one line naming the option on a bad value
    missing = missing_modules(REQUIRED_MODULES)
    if missing:
        print(f"error: {EXTRA_HINT} (missing: {', '.join(missing)})", file=sys.stderr, flush=True)
        return 2

    import uvicorn

    state = AppState(config)
    if config.api_key_file:
        state.api_key = read_key(config.api_key_file)
        if not state.api_key:
            print(f"error: argument --api-key-file: no key in {config.api_key_file}", file=sys.stderr, flush=True)
            return 2
    server = uvicorn.Server(uvicorn.Config(
        create_app(state),
        host=config.host,
        port=config.port,
        log_level="warning",  # health polls would otherwise bury the load progress lines
        access_log=False,
        timeout_graceful_shutdown=5,
    ))

    def load() -> None:
        try:
            state.engine = load_engine(config.load, log)
            names = ", ".join(f"'{name}'" for name in state.routes())
            log(f"ready: serving {names} on http://{config.host}:{config.port}")
        except BaseException as exc:
            if not isinstance(exc, LoadError):
                traceback.print_exc()
            state.error = str(exc)
            log(f"error: {exc}")
            server.should_exit = True  # main() then returns 1

    log(f"listening on http://{config.host}:{config.port}; loading in the background")
    threading.Thread(target=load, name="hf-load", daemon=True).start()
    server.run()
    return 1 if state.error or not server.started else 0


if __name__ == "__main__":
    sys.exit(main())
