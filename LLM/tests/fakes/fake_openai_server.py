"""A scripted fake OpenAI-compatible server, run as a real subprocess on a free port.

Stdlib only (asyncio), so it starts in ~100 ms and needs nothing installed.

Control endpoints (used by tests through ``FakeServerHandle``):
  POST /_script   {"replies": [reply, ...]}   queue replies; each request pops one
  POST /_default  reply                       reply used when the queue is empty
  GET  /_requests                             every request body received, plus events
                                              ({"type": "disconnect", ...})
  GET  /_progress                             {"chunks_sent": N, "max_in_flight": M}: content chunks streamed
                                              so far; the most completion requests answered at once
  POST /v1/embeddings                         a 3-number vector per input, the first its length in characters
A reply is a dict; all keys optional:
  text, chunks (list of text pieces), n_chunks (split text into N pieces), reasoning,
  tool_calls ([{"name", "arguments"}]), finish_reason, delay_s (between chunks),
  first_delay_s, status + body (HTTP error), error_mid_stream (after N chunks),
  empty_body, no_done, drop_after (close the socket after N chunks, like a crash),
  when (the reply is for the first request whose messages contain this text; queued replies without it
  answer any request, in order),
  reject_tools_status (error status when the request carries "tools"), usage,
  ignore_stream (answer a stream=true request with one JSON body, as some servers do)
Process flags: --port, --startup-delay (sleep before listening), --exit-after (exit with
--exit-code after S seconds), --loading-s (/health answers 503 for S seconds), --model-name,
--props tools|no-tools (GET /props like llama-server's; without it /props is 404), --slots N (its total_slots), --context-size,
--generation-prompt TEXT (POST /apply-template renders the messages as ChatML and ends the prompt with
'<|im_start|>assistant\n' + TEXT, like llama-server with a template whose generation prompt is that, e.g.
'<think>\n' for QwQ; /props, if served, carries such a chat_template; without it /apply-template is 404).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from typing import Any

JSON_HEADERS = "Content-Type: application/json\r\n"


class FakeState:
    def __init__(
        self, model_name: str, loading_until: float, props: dict[str, Any] | None = None,
        generation_prompt: str | None = None,
    ) -> None:
        self.model_name = model_name
        self.loading_until = loading_until
        self.props = props  # served as llama-server's GET /props when set (--props)
        self.generation_prompt = generation_prompt  # POST /apply-template when set (--generation-prompt)
        self.queue: list[dict[str, Any]] = []
        self.default: dict[str, Any] = {"text": "Hello from the fake server."}
        self.log: list[dict[str, Any]] = []
        self.chunks_sent = 0  # content chunks of all streams so far, for tests that wait on progress
        self.in_flight = 0  # completion requests being answered now, and the most there ever were at once
        self.max_in_flight = 0


def pick_reply(state: FakeState, request: dict[str, Any]) -> dict[str, Any]:
    """The first queued reply whose ``when`` text is in the request's messages (a reply without one matches any
    request), else the default: concurrent requests then get their own answers whatever their order."""
    text = json.dumps(request.get("messages") or request.get("prompt") or "", ensure_ascii=False)
    for i, reply in enumerate(state.queue):
        if "when" not in reply or json.dumps(reply["when"], ensure_ascii=False)[1:-1] in text:
            return state.queue.pop(i)
    return dict(state.default)


async def read_request(reader: asyncio.StreamReader) -> tuple[str, str, dict[str, str], bytes] | None:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            key, value = line.split(":", 1)
            headers[key.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0") or 0)
    body = await reader.readexactly(length) if length else b""
    return method, path, headers, body


def simple(writer: asyncio.StreamWriter, status: int, payload: Any, content_type: str = "application/json") -> None:
    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    reason = {200: "OK", 404: "Not Found", 503: "Service Unavailable"}.get(status, "Error")
    writer.write(
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {len(data)}\r\n\r\n".encode()
        + data
    )


def split_text(reply: dict[str, Any]) -> list[str]:
    if "chunks" in reply:
        return list(reply["chunks"])
    text = reply.get("text", "")
    n = int(reply.get("n_chunks", 0) or 0)
    if n > 0:
        size = max(1, len(text) // n)
        pieces = [text[i : i + size] for i in range(0, len(text), size)]
        return pieces or [""]
    # Default: word-ish pieces, so a stream has several chunks.
    pieces, current = [], ""
    for ch in text:
        current += ch
        if ch == " ":
            pieces.append(current)
            current = ""
    if current:
        pieces.append(current)
    return pieces


def chat_chunk(model: str, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


class Handler:
    def __init__(self, state: FakeState) -> None:
        self.state = state

    async def __call__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    request = await read_request(reader)
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                if request is None:
                    return
                keep = await self.route(*request, reader, writer)
                await writer.drain()
                if not keep:
                    return
        except ConnectionError:
            return
        finally:
            try:
                writer.close()
            except Exception:
                pass

    async def route(self, method, path, headers, body, reader, writer) -> bool:
        state = self.state
        path = path.split("?", 1)[0]
        if path == "/_script" and method == "POST":
            state.queue.extend(json.loads(body)["replies"])
            simple(writer, 200, {"queued": len(state.queue)})
        elif path == "/_default" and method == "POST":
            state.default = json.loads(body)
            simple(writer, 200, {"ok": True})
        elif path == "/_requests":
            simple(writer, 200, state.log)
        elif path == "/_progress":
            simple(writer, 200, {"chunks_sent": state.chunks_sent, "max_in_flight": state.max_in_flight})
        elif path == "/health":
            loading = time.monotonic() < state.loading_until
            simple(writer, 503 if loading else 200, {"status": "loading model" if loading else "ok"})
        elif path == "/props" and state.props is not None:
            simple(writer, 200, state.props)
        elif path == "/apply-template" and method == "POST" and state.generation_prompt is not None:
            messages = json.loads(body or b"{}").get("messages") or []
            turns = "".join(f"<|im_start|>{m.get('role')}\n{m.get('content') or ''}<|im_end|>\n" for m in messages)
            simple(writer, 200, {"prompt": f"{turns}<|im_start|>assistant\n{state.generation_prompt}"})
        elif path == "/openapi.json":
            simple(writer, 200, {"openapi": "3.0.0"})
        elif path == "/v1/models":
            simple(writer, 200, {"object": "list", "data": [{"id": state.model_name, "object": "model"}]})
        elif path == "/v1/embeddings" and method == "POST":
            request = json.loads(body or b"{}")
            state.log.append({"type": "request", "path": path, "body": request,
                              "authorization": headers.get("authorization")})
            texts = request.get("input") if isinstance(request.get("input"), list) else [request.get("input")]
            simple(writer, 200, {"object": "list", "model": state.model_name, "usage": {"prompt_tokens": len(texts),
                                 "total_tokens": len(texts)}, "data": [
                {"object": "embedding", "index": i, "embedding": [float(len(str(t))), 0.5, -0.5]}
                for i, t in enumerate(texts)]})
        elif path in ("/v1/chat/completions", "/v1/completions", "/completion") and method == "POST":
            request = json.loads(body or b"{}")
            index = len(state.log)
            state.log.append(
                {"type": "request", "path": path, "body": request, "authorization": headers.get("authorization")}
            )
            reply = pick_reply(state, request)
            state.in_flight += 1
            state.max_in_flight = max(state.max_in_flight, state.in_flight)
            try:
                return await self.complete(path, request, reply, index, reader, writer)
            finally:
                state.in_flight -= 1
        else:
            simple(writer, 404, {"error": {"message": f"no route {path}", "code": 404}})
        return True

    async def complete(self, path, request, reply, index, reader, writer) -> bool:
        if reply.get("first_delay_s"):
            await asyncio.sleep(reply["first_delay_s"])
        if request.get("tools") and reply.get("reject_tools_status"):
            status = reply["reject_tools_status"]
            simple(writer, status, {"error": {"message": "tools are not supported", "code": status}})
            return True
        if reply.get("status"):
            simple(writer, reply["status"], reply.get("body", {"error": {"message": "scripted error"}}))
            return True
        if reply.get("empty_body"):
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: 0\r\n\r\n")
            return True
        if not request.get("stream") or reply.get("ignore_stream"):
            simple(writer, 200, self.whole_reply(request, reply))
            return True
        return await self.stream(path, request, reply, index, reader, writer)

    def whole_reply(self, request, reply) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": reply.get("text", "")}
        if reply.get("reasoning"):
            message["reasoning_content"] = reply["reasoning"]
        finish = reply.get("finish_reason", "stop")
        if reply.get("tool_calls"):
            message["tool_calls"] = [
                {"id": f"call_{i}", "type": "function",
                 "function": {"name": c["name"], "arguments": json.dumps(c.get("arguments", {}))}}
                for i, c in enumerate(reply["tool_calls"])
            ]
            finish = reply.get("finish_reason", "tool_calls")
        usage = reply.get("usage", {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12})
        return {"id": "chatcmpl-fake", "object": "chat.completion", "model": self.state.model_name,
                "choices": [{"index": 0, "message": message, "finish_reason": finish}], "usage": usage}

    async def stream(self, path, request, reply, index, reader, writer) -> bool:
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        disconnected = asyncio.Event()

        async def watch() -> None:
            try:
                while await reader.read(1024):
                    pass
            except ConnectionError:
                pass
            disconnected.set()

        watcher = asyncio.ensure_future(watch())
        model = self.state.model_name
        native = path == "/completion"
        plain = path == "/v1/completions"  # OpenAI text completions (base models)
        pieces = split_text(reply)
        delay = float(reply.get("delay_s", 0) or 0)
        sent = 0
        clock = asyncio.get_running_loop().time
        started = clock()

        async def send(payload: Any) -> None:
            data = payload if isinstance(payload, bytes) else f"data: {json.dumps(payload)}\n\n".encode()
            writer.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            await writer.drain()

        try:
            if reply.get("reasoning") and not native:
                await send(chat_chunk(model, {"role": "assistant", "reasoning_content": reply["reasoning"]}))
            for piece in pieces:
                if disconnected.is_set() and not reply.get("ignore_disconnect"):
                    break
                if reply.get("drop_after") is not None and sent >= reply["drop_after"]:
                    writer.transport.abort()  # like a crashed server: no terminating chunk
                    self.state.log.append({"type": "dropped", "request_index": index, "after_chunks": sent})
                    return False
                if reply.get("error_mid_stream") is not None and sent >= reply["error_mid_stream"]:
                    await send({"error": {"message": "scripted mid-stream failure", "code": 500}})
                    break
                if plain:
                    await send({"object": "text_completion", "model": model,
                                "choices": [{"index": 0, "text": piece, "finish_reason": None}]})
                else:
                    await send({"content": piece, "stop": False} if native else chat_chunk(model, {"content": piece}))
                sent += 1
                self.state.chunks_sent += 1
                # Paced on a schedule (chunk n at n * delay), so short delays keep their rate even though
                # one sleep costs more than half a millisecond here.
                wait = started + sent * delay - clock() if delay else 0
                if wait > 0:
                    try:
                        await asyncio.wait_for(disconnected.wait(), wait)
                    except asyncio.TimeoutError:
                        pass
            else:
                for i, call in enumerate(reply.get("tool_calls") or []):
                    args = json.dumps(call.get("arguments", {}))
                    half = len(args) // 2
                    await send(chat_chunk(model, {"tool_calls": [{"index": i, "id": f"call_{index}_{i}", "type": "function", "function": {"name": call["name"], "arguments": args[:half]}}]}))
                    await send(chat_chunk(model, {"tool_calls": [{"index": i, "function": {"arguments": args[half:]}}]}))
                finish = reply.get("finish_reason") or ("tool_calls" if reply.get("tool_calls") else "stop")
                usage = reply.get("usage", {"prompt_tokens": 5, "completion_tokens": max(1, sent), "total_tokens": 5 + sent})
                if plain:
                    await send({"object": "text_completion", "model": model,
                                "choices": [{"index": 0, "text": "", "finish_reason": finish}]})
                    await send({"object": "text_completion", "model": model, "choices": [], "usage": usage})
                elif native:
                    await send({"content": "", "stop": True, "stop_type": "limit" if finish == "length" else "eos",
                                "tokens_evaluated": usage["prompt_tokens"], "tokens_predicted": usage["completion_tokens"]})
                else:
                    await send(chat_chunk(model, {}, finish))
                    await send({**chat_chunk(model, {}), "choices": [], "usage": usage})
                if not reply.get("no_done"):
                    await send(b"data: [DONE]\n\n")
            if disconnected.is_set():
                self.state.log.append({"type": "disconnect", "request_index": index, "after_chunks": sent})
                return False
            writer.write(b"0\r\n\r\n")
            await writer.drain()
            return True
        except ConnectionError:
            self.state.log.append({"type": "disconnect", "request_index": index, "after_chunks": sent})
            return False
        finally:
            # Wait for the watcher to let go of the reader: the next request on this connection reads it.
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)


async def serve(args: argparse.Namespace) -> None:
    if args.startup_delay:
        await asyncio.sleep(args.startup_delay)
    props = None
    if args.props:  # like llama-server's, with what the tests vary
        props = {"default_generation_settings": {"n_ctx": args.context_size}, "total_slots": args.slots,
                 "chat_template_caps": {"supports_tools": args.props == "tools", "supports_system_role": True},
                 "modalities": {"vision": False}, "build_info": "b0-fake"}
        if args.generation_prompt is not None:
            props["chat_template"] = ("{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n"
                                      + args.generation_prompt.replace("\n", "\\n") + "' }}{%- endif %}")
    state = FakeState(args.model_name, time.monotonic() + args.loading_s, props, args.generation_prompt)
    if args.default_chunks:  # a slow default answer, for tests that act while answers stream
        state.default = {"chunks": [f"w{i} " for i in range(args.default_chunks)], "delay_s": args.default_delay}
    server = await asyncio.start_server(Handler(state), args.host, args.port)
    print(f"fake server listening on {args.host}:{args.port} pid {os.getpid()}", flush=True)
    if args.exit_after is not None:
        await asyncio.sleep(args.exit_after)
        print(f"fake server exiting with {args.exit_code}", flush=True)
        os._exit(args.exit_code)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--model-name", default="fake-model")
    parser.add_argument("--startup-delay", type=float, default=0.0)
    parser.add_argument("--exit-after", type=float, default=None)
    parser.add_argument("--exit-code", type=int, default=3)
    parser.add_argument("--loading-s", type=float, default=0.0)
    parser.add_argument("--context-size", type=int, default=4096)
    parser.add_argument("--slots", type=int, default=1, help="/props total_slots (with --props)")
    parser.add_argument("--default-chunks", type=int, default=0, help="default reply: this many chunks ...")
    parser.add_argument("--default-delay", type=float, default=0.0, help="... this many seconds apart")
    parser.add_argument("--props", choices=["tools", "no-tools"], help="answer GET /props like llama-server, "
                                                                      "its template supporting tools or not")
    parser.add_argument("--generation-prompt", help="answer POST /apply-template, ending the prompt with this "
                                                    "after the assistant header (e.g. '<think>\\n')")
    args, _unknown = parser.parse_known_args(argv)  # tolerate engine flags when used as a fake launcher
    try:
        asyncio.run(serve(args))
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
