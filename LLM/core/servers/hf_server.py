"""An OpenAI-compatible HTTP server for a transformers model with an optional PEFT LoRA adapter.

Run as ``python -m LLM.core.servers.hf_server --model DIR [--adapter DIR] ...`` by the server
manager. The HTTP server starts first and the model loads in a background thread, so
``GET /health`` answers 503 {"status": "loading"} until the model is ready, then 200
{"status": "ok", "model": NAME, "adapter": PATH|null}. A load failure is logged and the
process exits with status 1; missing packages exit with status 2.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import threading
import time
import traceback
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..validation import field_problems
from .api_keys import read_key
from .hf_generation import Generation, HFEngine, LoadError, LoadOptions, PromptError, SamplingParams, load_engine

if TYPE_CHECKING:
    from fastapi import FastAPI, Request

EXTRA_HINT = "the transformers backend needs the [transformers] extra: pip install 'llm-workbench[transformers]'"
REQUIRED_MODULES = ("torch", "transformers", "peft", "fastapi", "uvicorn", "sse_starlette")


def log(message: str) -> None:
    # The manager shows the last line of our output as load progress: one flushed line each.
    print(message, flush=True)


class ChatRequest(BaseModel):
    """The part of an OpenAI chat request we act on; unknown fields are accepted and ignored."""

    model_config = ConfigDict(extra="allow")

    messages: list[dict[str, Any]] = Field(min_length=1)
    model: str | None = None
    stream: bool = False
    stream_options: dict[str, Any] | None = None
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0)
    top_p: float | None = Field(default=None, gt=0, le=1)
    top_k: int | None = Field(default=None, ge=0)
    repetition_penalty: float | None = Field(default=None, gt=0)
    stop: str | list[str] | None = None
    seed: int | None = None
    tools: list[dict[str, Any]] | None = None

    @field_validator("messages")
    @classmethod
    def _roles(cls, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for i, message in enumerate(messages):
            if not isinstance(message.get("role"), str):
                raise ValueError(f"messages[{i}] has no 'role'")
        return messages

    def sampling(self) -> SamplingParams:
        stop = [self.stop] if isinstance(self.stop, str) else list(self.stop or [])
        return SamplingParams(
            max_tokens=self.max_tokens or self.max_completion_tokens,
            temperature=self.temperature,
            top_p=self.top_p,
            top_k=self.top_k,
            repetition_penalty=self.repetition_penalty,
            seed=self.seed,
            stop=stop,
        )


@dataclass
class ServerState:
    """What the endpoints see: the engine once loaded (set once, by the loader thread)."""

    served_name: str
    model_path: str
    adapter_path: str | None
    engine: HFEngine | None = None
    error: str | None = None
    created: int = field(default_factory=lambda: int(time.time()))
    api_key: str | None = None  # every route but /health wants "Authorization: Bearer <key>" when set


def error_response(status: int, message: str, kind: str = "invalid_request_error") -> Any:
    from fastapi.responses import JSONResponse

    return JSONResponse({"error": {"message": message, "type": kind, "code": status}}, status_code=status)


def _usage(generation: Generation) -> dict[str, int]:
    prompt, completion = generation.prompt_tokens, generation.completion_tokens
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def create_app(state: ServerState) -> FastAPI:
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
        return {"status": "ok", "model": state.served_name, "adapter": state.adapter_path}

    @app.get("/v1/models")
    async def models() -> Any:
        card = {
            "id": state.served_name,
            "object": "model",
            "created": state.created,
            "owned_by": "llm-workbench",
            "root": state.model_path,
            "adapter": state.adapter_path,
        }
        return {"object": "list", "data": [card]}

    async def chat_completions(request: Request) -> Any:
        try:
            body = ChatRequest.model_validate(json.loads(await request.body()))
        except ValidationError as exc:
            problems = "; ".join(f"{p.path or 'body'}: {p.message}" for p in field_problems(exc))
            return error_response(400, f"invalid request: {problems}")
        except ValueError as exc:  # JSONDecodeError, or bytes that are not UTF-8
            return error_response(400, f"the request body is not valid JSON: {exc}")
        engine = state.engine
        if engine is None:
            return error_response(503, "the model is still loading", "unavailable")
        params = body.sampling()
        try:
            prompt = await anyio.to_thread.run_sync(engine.prepare, body.messages, body.tools, params.max_tokens)
        except PromptError as exc:
            return error_response(400, str(exc))
        generation = Generation(engine, prompt, params)  # runs once iterated, by the response
        completion_id = f"chatcmpl-{uuid.uuid4().hex}"
        if body.stream:
            include_usage = bool((body.stream_options or {}).get("include_usage"))
            events = _stream_events(generation, completion_id, state.served_name, include_usage)
            return EventSourceResponse(events, sep="\n", ping=15)
        return await _complete(request, generation, completion_id, state.served_name)

    # A plain Starlette route: FastAPI's parameter injection cannot see the lazily imported
    # Request class through this module's string annotations, and we validate the body ourselves.
    app.add_route("/v1/chat/completions", chat_completions, methods=["POST"])
    return app


async def _next_piece(pieces: Any) -> str | None:
    import anyio

    # Abandon the blocked thread on cancellation (client gone): the cancel flag stops the
    # model, which ends the streamer, which lets that thread return.
    return await anyio.to_thread.run_sync(next, pieces, None, abandon_on_cancel=True)


async def _stream_events(
    generation: Generation, completion_id: str, model: str, include_usage: bool
) -> AsyncIterator[dict[str, str]]:
    created = int(time.time())

    def chunk(delta: dict[str, Any], finish: str | None = None, usage: dict[str, int] | None = None) -> dict[str, str]:
        payload: dict[str, Any] = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [] if usage else [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        if usage:
            payload["usage"] = usage
        return {"data": json.dumps(payload)}

    pieces = iter(generation)
    try:  # sse-starlette cancels this generator when the client disconnects: finally stops the model
        yield chunk({"role": "assistant", "content": ""})
        while (piece := await _next_piece(pieces)) is not None:
            yield chunk({"content": piece})
        yield chunk({}, generation.finish_reason)
        if include_usage:
            yield chunk({}, usage=_usage(generation))
    except Exception as exc:  # the model failed mid-stream: tell the client in-band
        log(f"generation failed: {type(exc).__name__}: {exc}")
        yield {"data": json.dumps({"error": {"message": str(exc), "type": "server_error", "code": 500}})}
    finally:
        generation.cancel()
    yield {"data": "[DONE]"}


async def _complete(request: Request, generation: Generation, completion_id: str, model: str) -> Any:
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
        log(f"generation failed: {type(errors[0]).__name__}: {errors[0]}")
        return error_response(500, f"generation failed: {errors[0]}", "server_error")
    return JSONResponse({
        "id": completion_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "".join(text_parts)},
                "finish_reason": generation.finish_reason,
            }
        ],
        "usage": _usage(generation),
    })


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m LLM.core.servers.hf_server", description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="model directory (or a hub id already in the local cache)")
    parser.add_argument("--adapter", help="PEFT LoRA adapter directory")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--served-model-name", help="name reported by /v1/models (default: the model dir's name)")
    parser.add_argument("--4bit", dest="load_in_4bit", action="store_true", help="bitsandbytes 4-bit (CUDA only)")
    parser.add_argument("--device-map", help="passed to from_pretrained, e.g. auto")
    parser.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"])
    parser.add_argument("--max-memory", help='JSON, e.g. \'{"0": "10GiB", "cpu": "30GiB"}\'')
    parser.add_argument("--context-size", type=int, help="prompt + answer tokens (default: the model's maximum)")
    parser.add_argument("--api-key-file", help="file whose first line is the key requests must bear")
    return parser.parse_args(argv)


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
    args = parse_args(argv)
    missing = missing_modules(REQUIRED_MODULES)
    if missing:
        print(f"error: {EXTRA_HINT} (missing: {', '.join(missing)})", file=sys.stderr, flush=True)
        return 2

    import uvicorn

    served_name = args.served_model_name or os.path.basename(os.path.normpath(args.model))
    state = ServerState(served_name, args.model, args.adapter)
    if args.api_key_file:
        state.api_key = read_key(args.api_key_file)
        if not state.api_key:
            print(f"error: no key in --api-key-file {args.api_key_file}", file=sys.stderr, flush=True)
            return 2
    config = uvicorn.Config(
        create_app(state),
        host=args.host,
        port=args.port,
        log_level="warning",  # health polls would otherwise bury the load progress lines
        access_log=False,
        timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)
    options = LoadOptions(
        model=args.model,
        adapter=args.adapter,
        load_in_4bit=args.load_in_4bit,
        device_map=args.device_map,
        dtype=args.dtype,
        max_memory=args.max_memory,
        context_size=args.context_size,
    )

    def load() -> None:
        try:
            state.engine = load_engine(options, log)
            log(f"ready: serving '{served_name}' on http://{args.host}:{args.port}")
        except BaseException as exc:
            if not isinstance(exc, LoadError):
                traceback.print_exc()
            state.error = str(exc)
            log(f"error: {exc}")
            server.should_exit = True  # main() then returns 1

    log(f"listening on http://{args.host}:{args.port}; loading in the background")
    threading.Thread(target=load, name="hf-load", daemon=True).start()
    server.run()
    return 1 if state.error or not server.started else 0


if __name__ == "__main__":
    sys.exit(main())
