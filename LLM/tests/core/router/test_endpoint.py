"""The endpoint other apps use, driven by the official `openai` SDK and plain HTTP against the fake server:
routing by model, models started on demand, the token, the Host check, CORS, cold starts, disconnects."""

from __future__ import annotations

import asyncio
import json
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import openai
import pytest

from LLM.core.config import parse_backends
from LLM.core.errors import EndpointError
from LLM.core.router import ModelEndpoint, rotate_token
from LLM.core.runtime import Runtime
from LLM.core.servers import LaunchSpec, ServerManager
from LLM.tests.fakes.handle import REPO_ROOT, async_wait_until, fake_server_command, free_port

TOOLS = [{"type": "function", "function": {"name": "calc", "description": "arithmetic",
                                           "parameters": {"type": "object", "properties": {"x": {"type": "number"}}}}}]
HI = [{"role": "user", "content": "hi"}]


def fake_launcher(*flags: str, argv: list[str] | None = None):
    """A launchable model whose engine is the fake server: it starts, answers and stops like one."""
    def launch(entry) -> LaunchSpec:
        command = argv or fake_server_command(int(entry.port), "--model-name", entry.request_model_name, *flags)
        return LaunchSpec("fake", command, "health", entry.request_model_name, None, {"PYTHONPATH": str(REPO_ROOT)})
    return launch


def attached_yaml(url: str, *ids: str, extra: str = "") -> str:
    lines = ["models:"]
    for model_id in ids:
        lines += [f"  {model_id}:", f"    server_url: {url}/v1", f"    model_name: {model_id}-upstream"]
    return "\n".join(lines) + "\n" + extra


def launched_yaml(*ids: str, extra: str = "", max_loaded: int | None = None) -> str:
    head = f"defaults:\n  max_loaded: {max_loaded}\n" if max_loaded else ""
    lines = [head + "models:"]
    for model_id in ids:
        lines += [f"  {model_id}:", f"    base_model: {model_id}.gguf", "    backend: llama_cpp",
                  f"    port: {free_port()}", f"    model_name: {model_id}-upstream"]
    return "\n".join(lines) + "\n" + extra


@asynccontextmanager
async def serving(tmp_path: Path, yaml_text: str, launcher=None, host: str = "127.0.0.1",
                  strict: bool = True) -> AsyncIterator[ModelEndpoint]:
    config = parse_backends(yaml_text, strict=strict)
    options = {"launcher": launcher} if launcher else {}
    runtime = Runtime(config, ServerManager(config, logs_dir=tmp_path / "logs", state_dir=tmp_path / "state",
                                            **options))
    endpoint = ModelEndpoint(runtime, host=host, port=0, token_path=tmp_path / "endpoint.token")
    await endpoint.start()
    try:
        yield endpoint
    finally:
        for client in _clients.pop(id(endpoint), []):
            await client.close()
        await endpoint.stop()
        await runtime.aclose()


_clients: dict[int, list[openai.AsyncOpenAI]] = {}


def sdk(endpoint: ModelEndpoint, token: str | None = None) -> openai.AsyncOpenAI:
    """An SDK client of the endpoint, closed with it (its pool must not outlive the test's loop)."""
    client = openai.AsyncOpenAI(base_url=endpoint.url, api_key=token if token is not None else endpoint.token(),
                                max_retries=0, timeout=60)
    _clients.setdefault(id(endpoint), []).append(client)
    return client


def auth(endpoint: ModelEndpoint) -> dict[str, str]:
    return {"Authorization": f"Bearer {endpoint.token()}"}


def test_endpoint_lists_every_model_and_adapter(tmp_path: Path, fake_server):
    adapter = tmp_path / "my-lora"
    adapter.mkdir()
    text = attached_yaml(fake_server.url, "remote") + (
        f"  local:\n    base_model: base.gguf\n    backend: llama_cpp\n    port: {free_port()}\n"
        f"    display_name: Local base\n"
        f"  local-lora:\n    base_model: base.gguf\n    backend: llama_cpp\n    port: {free_port()}\n"
        f"    adapter_dir: {adapter}\n    capabilities: {{tools: true}}\n")
    (tmp_path / "base.gguf").write_bytes(b"")

    async def go():
        async with serving(tmp_path, text) as endpoint:
            listed = await sdk(endpoint).models.list()
            one = await sdk(endpoint).models.retrieve("local-lora")
            with pytest.raises(openai.NotFoundError, match="remote, local, local-lora"):
                await sdk(endpoint).models.retrieve("nope")
            return listed, one

    listed, one = asyncio.run(go())
    cards = {m.id: m.model_extra for m in listed.data}
    assert list(cards) == ["remote", "local", "local-lora"]
    assert all(m.object == "model" and m.owned_by == "llm-workbench" for m in listed.data)
    assert cards["remote"]["state"] == "external" and cards["remote"]["loaded"] is None
    # Attached: probed (never started), and the probe is real: the fake serves another name.
    assert cards["remote"]["health"].startswith(f"Reachable, but {fake_server.url}/v1 does not serve 'remote-upstream'")
    assert cards["local"] == {**cards["local"], "name": "Local base", "loaded": False, "state": "stopped",
                              "backend": "llama_cpp", "context_length": 4096}
    assert cards["local-lora"]["adapter"] == "my-lora"
    assert "tools" in cards["local-lora"]["capabilities"]  # declared in the yaml: sure enough to say
    assert one.id == "local-lora" and one.model_extra["adapter"] == "my-lora"


def test_endpoint_routes_chat_streams_and_completions_by_model(tmp_path: Path, fake_server, monkeypatch):
    monkeypatch.setenv("UPSTREAM_KEY", "upstream-secret")
    text = attached_yaml(fake_server.url, "a", "b").replace(
        "    model_name: b-upstream", "    model_name: b-upstream\n    api_key_env: UPSTREAM_KEY")
    fake_server.set_default({"text": "Hello from upstream.", "n_chunks": 3})

    async def go():
        async with serving(tmp_path, text) as endpoint:
            client = sdk(endpoint)
            whole = await client.chat.completions.create(model="a", messages=HI)
            pieces = [c async for c in await client.chat.completions.create(
                model="b", messages=HI, stream=True, stream_options={"include_usage": True})]
            completion = "".join([c.choices[0].text async for c in await client.completions.create(
                model="a", prompt="Once upon", stream=True) if c.choices])
            async with httpx.AsyncClient() as http:
                raw = await http.post(f"{endpoint.url}/chat/completions", headers=auth(endpoint),
                                      json={"model": "b", "messages": HI})
            return whole, pieces, completion, raw, endpoint.token()

    whole, pieces, completion, raw, token = asyncio.run(go())
    assert whole.choices[0].message.content == "Hello from upstream."
    assert whole.usage.total_tokens == 12
    assert "".join(c.choices[0].delta.content or "" for c in pieces if c.choices) == "Hello from upstream."
    assert pieces[-1].usage is not None and pieces[-1].usage.prompt_tokens == 5  # the engine's, passed on
    assert completion == "Hello from upstream."
    sent = fake_server.requests()
    # Each upstream got the name it knows the model by, and its own key; never the client's token.
    assert [(r["path"], r["body"]["model"]) for r in sent] == [
        ("/v1/chat/completions", "a-upstream"), ("/v1/chat/completions", "b-upstream"),
        ("/v1/completions", "a-upstream"), ("/v1/chat/completions", "b-upstream")]
    assert [r["authorization"] for r in sent] == [None, "Bearer upstream-secret", None, "Bearer upstream-secret"]
    assert "upstream-secret" not in raw.text and "upstream-secret" not in str(raw.headers)
    assert token not in json.dumps(sent)


def test_endpoint_embeddings_are_routed(tmp_path: Path, fake_server):
    async def go():
        async with serving(tmp_path, attached_yaml(fake_server.url, "emb")) as endpoint:
            return await sdk(endpoint).embeddings.create(model="emb", input=["abc", "hello"])

    result = asyncio.run(go())
    assert [d.embedding[0] for d in result.data] == [3.0, 5.0]


def test_endpoint_tool_calls_reach_the_client_native(tmp_path: Path, fake_server):
    call_text = 'Sure. <tool_call>{"name": "calc", "arguments": {"x": 4}}</tool_call>'
    fake_server.script(
        {"tool_calls": [{"name": "calc", "arguments": {"x": 1}}]},  # native: passed through unchanged
        {"tool_calls": [{"name": "calc", "arguments": {"x": 2}}]},
        {"text": call_text},  # tag text: made native
        {"text": call_text, "n_chunks": 9},
        {"text": call_text},  # tool_choice none: left as the model wrote it
    )

    async def go():
        async with serving(tmp_path, attached_yaml(fake_server.url, "m")) as endpoint:
            client = sdk(endpoint)
            native = await client.chat.completions.create(model="m", messages=HI, tools=TOOLS)
            native_stream = [c async for c in await client.chat.completions.create(
                model="m", messages=HI, tools=TOOLS, stream=True)]
            tagged = await client.chat.completions.create(model="m", messages=HI, tools=TOOLS)
            tagged_stream = [c async for c in await client.chat.completions.create(
                model="m", messages=HI, tools=TOOLS, stream=True)]
            forbidden = await client.chat.completions.create(model="m", messages=HI, tools=TOOLS, tool_choice="none")
            return native, native_stream, tagged, tagged_stream, forbidden

    native, native_stream, tagged, tagged_stream, forbidden = asyncio.run(go())

    def streamed_calls(chunks):
        calls: dict[int, dict] = {}
        for chunk in chunks:
            for delta in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
                call = calls.setdefault(delta.index, {"name": "", "arguments": ""})
                call["name"] += delta.function.name or ""
                call["arguments"] += delta.function.arguments or ""
        finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
        return [(c["name"], json.loads(c["arguments"])) for c in calls.values()], finish

    assert [(c.function.name, json.loads(c.function.arguments)) for c in native.choices[0].message.tool_calls] == \
        [("calc", {"x": 1})]
    assert streamed_calls(native_stream) == ([("calc", {"x": 2})], ["tool_calls"])
    message = tagged.choices[0].message
    assert message.content.strip() == "Sure." and "<tool_call>" not in message.content
    assert [(c.function.name, json.loads(c.function.arguments)) for c in message.tool_calls] == [("calc", {"x": 4})]
    assert tagged.choices[0].finish_reason == "tool_calls"
    assert streamed_calls(tagged_stream) == ([("calc", {"x": 4})], ["tool_calls"])
    assert "".join(c.choices[0].delta.content or "" for c in tagged_stream if c.choices).strip() == "Sure."
    assert forbidden.choices[0].message.content == call_text and not forbidden.choices[0].message.tool_calls


def test_endpoint_refuses_without_the_token_and_names_the_models(tmp_path: Path, fake_server):
    async def go():
        async with serving(tmp_path, attached_yaml(fake_server.url, "a", "b")) as endpoint:
            outcomes = {}
            for name, client in (("wrong", sdk(endpoint, token="not-the-token")), ("prefix", sdk(endpoint, token="x"))):
                with pytest.raises(openai.AuthenticationError) as caught:
                    await client.chat.completions.create(model="a", messages=HI)
                outcomes[name] = caught.value
            with pytest.raises(openai.NotFoundError) as unknown:
                await sdk(endpoint).chat.completions.create(model="gpt-4o", messages=HI)
            async with httpx.AsyncClient() as http:
                bare = await http.get(f"{endpoint.url}/models")
                health = await http.get(endpoint.url.removesuffix("/v1") + "/health")
                bad_json = await http.post(f"{endpoint.url}/chat/completions", headers=auth(endpoint),
                                           content=b"{not json")
                no_model = await http.post(f"{endpoint.url}/chat/completions", headers=auth(endpoint),
                                           json={"messages": HI})
                wrong_method = await http.get(f"{endpoint.url}/chat/completions", headers=auth(endpoint))
                no_route = await http.post(f"{endpoint.url}/images/generations", headers=auth(endpoint), json={})
            return outcomes, unknown.value, bare, health, bad_json, no_model, wrong_method, no_route

    outcomes, unknown, bare, health, bad_json, no_model, wrong_method, no_route = asyncio.run(go())
    assert all("llmctl serve token" in str(e) for e in outcomes.values())
    assert bare.status_code == 401 and bare.headers["www-authenticate"] == "Bearer"
    assert unknown.status_code == 404 and "'gpt-4o' is not configured here; the models are: a, b" in str(unknown)
    assert health.status_code == 200  # public, as llama-server's: it says nothing about the models
    assert bad_json.status_code == 400 and "not JSON" in bad_json.json()["error"]["message"]
    assert no_model.status_code == 400 and "'model' is required" in no_model.json()["error"]["message"]
    assert wrong_method.status_code == 405 and no_route.status_code == 404
    assert fake_server.requests() == []  # none of them reached the model


def test_endpoint_checks_the_host_header_and_grants_no_cors_unless_listed(tmp_path: Path, fake_server):
    text = attached_yaml(fake_server.url, "a", extra="endpoint:\n  cors_origins: [http://localhost:3000]\n")

    async def go():
        async with serving(tmp_path, text) as endpoint:
            url = f"{endpoint.url}/chat/completions"
            body = {"model": "a", "messages": HI}
            async with httpx.AsyncClient() as http:
                rebound = await http.post(url, json=body, headers={**auth(endpoint), "Host": "attacker.example"})
                rebound_health = await http.get(endpoint.url.removesuffix("/v1") + "/health",
                                                headers={"Host": "attacker.example:80"})
                by_name = await http.post(url.replace("127.0.0.1", "localhost"), json=body, headers=auth(endpoint))
                preflight = {
                    origin: await http.options(url, headers={"Origin": origin, "Access-Control-Request-Method": "POST",
                                                             "Access-Control-Request-Headers": "authorization"})
                    for origin in ("https://evil.example", "http://localhost:3000")}
                from_page = await http.post(url, json=body, headers={**auth(endpoint), "Origin": "https://evil.example"})
                from_listed = await http.post(url, json=body,
                                              headers={**auth(endpoint), "Origin": "http://localhost:3000"})
            return rebound, rebound_health, by_name, preflight, from_page, from_listed

    rebound, rebound_health, by_name, preflight, from_page, from_listed = asyncio.run(go())
    assert rebound.status_code == 403 and "attacker.example" in rebound.json()["error"]["message"]
    assert rebound_health.status_code == 403
    assert by_name.status_code == 200
    evil, listed = preflight["https://evil.example"], preflight["http://localhost:3000"]
    assert evil.status_code == 403 and not any(h.startswith("access-control-") for h in evil.headers)
    assert listed.status_code == 204
    assert listed.headers["access-control-allow-origin"] == "http://localhost:3000"
    assert "Authorization" in listed.headers["access-control-allow-headers"]
    assert from_page.status_code == 200 and "access-control-allow-origin" not in from_page.headers
    assert from_listed.headers["access-control-allow-origin"] == "http://localhost:3000"
    assert len(fake_server.requests()) == 3  # the rebound one never reached the model


def test_endpoint_starts_a_stopped_model_and_keeps_a_streaming_client_waiting(tmp_path: Path):
    async def go():
        async with serving(tmp_path, launched_yaml("cold"), launcher=fake_launcher("--startup-delay", "2.5")) \
                as endpoint:
            lines = []
            async with httpx.AsyncClient(timeout=60) as http:
                async with http.stream("POST", f"{endpoint.url}/chat/completions", headers=auth(endpoint),
                                       json={"model": "cold", "messages": HI, "stream": True}) as response:
                    status = response.status_code
                    async for line in response.aiter_lines():
                        lines.append(line)
            whole = await sdk(endpoint).chat.completions.create(model="cold", messages=HI)  # now warm
            states = {row.model_id: row.state for row in endpoint.runtime.servers.status()}
            return status, lines, whole, states, endpoint.activity.recent()

    status, lines, whole, states, recent = asyncio.run(go())
    assert status == 200
    keepalives = [line for line in lines if line.startswith(":")]
    assert keepalives and keepalives[0] == ": waiting for model 'cold' to start"
    data = [line for line in lines if line.startswith("data: ")]
    assert lines.index(keepalives[-1]) < lines.index(data[0])
    assert data[-1] == "data: [DONE]"
    assert "".join(json.loads(d[6:])["choices"][0]["delta"].get("content") or "" for d in data[:-1]
                   if json.loads(d[6:])["choices"]) == "Hello from the fake server."
    assert whole.choices[0].message.content == "Hello from the fake server."
    assert states == {"cold": "ready"}
    assert [(r.model, r.cold_start, r.status) for r in recent] == [("cold", True, 200), ("cold", False, 200)]


def test_endpoint_a_start_that_fails_is_an_openai_error(tmp_path: Path):
    crash = [sys.executable, "-c", "import sys; print('error: model file is damaged'); sys.exit(3)"]

    async def go():
        async with serving(tmp_path, launched_yaml("broken"), launcher=fake_launcher(argv=crash)) as endpoint:
            with pytest.raises(openai.APIStatusError) as whole:
                await sdk(endpoint).chat.completions.create(model="broken", messages=HI)
            with pytest.raises(openai.APIError) as streamed:
                async for _ in await sdk(endpoint).chat.completions.create(model="broken", messages=HI, stream=True):
                    pass
            return whole.value, streamed.value, endpoint.activity.recent()

    whole, streamed, recent = asyncio.run(go())
    assert whole.status_code == 503
    assert "'broken' could not start" in whole.message and "model file is damaged" in whole.message
    assert "'broken'" in str(streamed)
    assert [r.status for r in recent] == [503, recent[1].status] and recent[1].error


def test_endpoint_gives_up_waiting_for_a_slow_start_with_503(tmp_path: Path):
    text = launched_yaml("slow", extra="endpoint:\n  start_timeout_s: 0.3\n")

    async def go():
        async with serving(tmp_path, text, launcher=fake_launcher("--startup-delay", "3")) as endpoint:
            with pytest.raises(openai.APIStatusError) as caught:
                await sdk(endpoint).chat.completions.create(model="slow", messages=HI)
            # The start went on: once it is ready the next request is answered.
            await async_wait_until(lambda: endpoint.runtime.servers.status()[0].state == "ready", 30, "the start")
            answer = await sdk(endpoint).chat.completions.create(model="slow", messages=HI)
            return caught.value, answer

    error, answer = asyncio.run(go())
    assert error.status_code == 503 and "still starting after 0.3 s" in error.message
    assert answer.choices[0].message.content == "Hello from the fake server."


def test_endpoint_a_client_that_goes_away_stops_the_generation_upstream(tmp_path: Path, fake_server):
    fake_server.set_default({"chunks": [f"w{i} " for i in range(400)], "delay_s": 0.02})

    async def go():
        async with serving(tmp_path, attached_yaml(fake_server.url, "m")) as endpoint:
            async with httpx.AsyncClient(timeout=30) as http:
                async with http.stream("POST", f"{endpoint.url}/chat/completions", headers=auth(endpoint),
                                       json={"model": "m", "messages": HI, "stream": True}) as response:
                    async for line in response.aiter_lines():
                        if line.startswith("data: ") and "w2 " in line:
                            break  # leaving the block closes the connection
            await async_wait_until(lambda: endpoint.activity.recent()[0].finished, 10, "the request to end")
            return endpoint.activity.recent()[0]

    record = asyncio.run(go())
    event = fake_server.wait_for_event("disconnect", timeout=10)
    assert event["after_chunks"] < 100  # it stopped, far from the 400 it would have written
    assert record.status == 499 and record.error == "the client disconnected"


def test_endpoint_serves_two_models_at_once(tmp_path: Path, fake_server):
    fake_server.set_default({"chunks": [f"w{i} " for i in range(30)], "delay_s": 0.05})

    async def go():
        async with serving(tmp_path, attached_yaml(fake_server.url, "a", "b")) as endpoint:
            client = sdk(endpoint)
            streams = [await client.chat.completions.create(model=m, messages=HI, stream=True) for m in ("a", "b")]
            firsts = [await anext(aiter(s)) for s in streams]  # both have begun before either ends
            in_flight = [r.finished for r in endpoint.activity.recent()]
            rests = await asyncio.gather(*[_drain(s) for s in streams])
            return firsts, in_flight, rests

    firsts, in_flight, rests = asyncio.run(go())
    assert in_flight == [False, False]
    assert all(rest.endswith("w29 ") for rest in rests)


async def _answer(client: openai.AsyncOpenAI, model: str) -> str:
    return await _drain(await client.chat.completions.create(model=model, messages=HI, stream=True))


async def _drain(stream) -> str:
    return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])


def test_endpoint_queues_requests_to_one_server_beyond_its_slots(tmp_path: Path):
    """The fake engine reports one slot (/props total_slots 1): a second request waits its turn here."""
    async def go():
        launcher = fake_launcher("--props", "tools", "--default-chunks", "20", "--default-delay", "0.05")
        async with serving(tmp_path, launched_yaml("one"), launcher=launcher) as endpoint:
            await endpoint.runtime.upstream("one")  # started, so both requests meet a ready server
            client = sdk(endpoint)
            first = await client.chat.completions.create(model="one", messages=HI, stream=True)
            await anext(aiter(first))
            second = asyncio.ensure_future(_answer(client, "one"))
            await async_wait_until(lambda: len(endpoint.activity.recent()) == 2
                                   and endpoint.activity.recent()[1].phase == "queued", 10, "the second to queue")
            phases = [r.phase for r in endpoint.activity.recent()]
            await _drain(first)
            answer = await second
            return phases, answer

    phases, answer = asyncio.run(go())
    assert phases == ["answering", "queued"]
    assert answer.startswith("w0 w1")


def test_endpoint_two_models_take_turns_within_a_budget_of_one(tmp_path: Path):
    async def go():
        async with serving(tmp_path, launched_yaml("a", "b", max_loaded=1), launcher=fake_launcher()) as endpoint:
            answers, loaded = [], []
            for model in ("a", "b", "a"):
                answer = await sdk(endpoint).chat.completions.create(model=model, messages=HI)
                answers.append(answer.choices[0].message.content)
                loaded.append(sorted(r.model_id for r in endpoint.runtime.servers.status() if r.state == "ready"))
            return answers, loaded

    answers, loaded = asyncio.run(go())
    assert answers == ["Hello from the fake server."] * 3
    assert loaded == [["a"], ["b"], ["a"]]


def test_endpoint_a_new_token_works_at_once_and_the_old_one_stops(tmp_path: Path, fake_server):
    async def go():
        async with serving(tmp_path, attached_yaml(fake_server.url, "a")) as endpoint:
            old = endpoint.token()
            await sdk(endpoint, old).models.list()
            new = rotate_token(tmp_path / "endpoint.token")
            with pytest.raises(openai.AuthenticationError):
                await sdk(endpoint, old).models.list()
            listed = await sdk(endpoint, new).models.list()
            return old, new, listed

    old, new, listed = asyncio.run(go())
    assert old != new and [m.id for m in listed.data] == ["a"]
    assert (tmp_path / "endpoint.token").stat().st_mode & 0o777 == 0o600


def test_endpoint_a_taken_port_is_a_typed_error(tmp_path: Path, fake_server):
    config = parse_backends(attached_yaml(fake_server.url, "a"), strict=True)

    async def go():
        runtime = Runtime(config, None)
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            endpoint = ModelEndpoint(runtime, port=taken.getsockname()[1], token_path=tmp_path / "t")
            with pytest.raises(EndpointError, match=r"port \d+ on 127.0.0.1 is taken.*--port"):
                await endpoint.start()
        assert not endpoint.running
        await runtime.aclose()

    asyncio.run(go())


def test_endpoint_beyond_loopback_still_needs_the_token_and_refuses_without_one(tmp_path: Path, fake_server):
    config = parse_backends(attached_yaml(fake_server.url, "a"), strict=True)
    unreadable = tmp_path / "token-is-a-folder"
    unreadable.mkdir()

    async def go():
        runtime = Runtime(config, None)
        refused = ModelEndpoint(runtime, host="0.0.0.0", port=0, token_path=unreadable)
        with pytest.raises(EndpointError, match="will not start without its token.*beyond this machine"):
            await refused.start()
        open_one = ModelEndpoint(runtime, host="0.0.0.0", port=0, token_path=tmp_path / "t")
        await open_one.start()
        try:
            async with httpx.AsyncClient() as http:
                url = f"http://127.0.0.1:{open_one.port}/v1/models"
                without = await http.get(url)
                by_machine_name = await http.get(url, headers={**auth(open_one), "Host": socket.gethostname()})
        finally:
            await open_one.stop()
            await runtime.aclose()
        return refused.running, without, by_machine_name

    running, without, by_machine_name = asyncio.run(go())
    assert not running
    assert without.status_code == 401
    assert by_machine_name.status_code == 200


def test_endpoint_keeps_every_request_for_the_inspector_refused_ones_too(tmp_path: Path, fake_server):
    fake_server.script({"chunks": ["Hel", "lo"]})

    async def go():
        async with serving(tmp_path, attached_yaml(fake_server.url, "a")) as endpoint:
            async with httpx.AsyncClient() as http:
                await http.get(f"{endpoint.url}/models", headers={"Authorization": "Bearer wrong",
                                                                   "User-Agent": "misconfigured-app/1.0"})
                await http.get(endpoint.url.removesuffix("/v1") + "/health")  # polled often: not kept
                await http.post(f"{endpoint.url}/chat/completions", headers=auth(endpoint),
                                json={"model": "a", "messages": HI, "stream": True})
            return endpoint.activity.recent(), endpoint.activity.clients()

    recent, clients = asyncio.run(go())
    refused, streamed = recent
    assert (refused.path, refused.status, refused.user_agent) == ("/v1/models", 401, "misconfigured-app/1.0")
    assert "bearer token is required" in refused.error and b"invalid_api_key" in refused.response_body
    assert (streamed.model, streamed.status, streamed.phase, streamed.error) == ("a", 200, "done", None)
    assert json.loads(streamed.request_body)["messages"] == HI
    assert streamed.answer_text() == "Hello" and refused.answer_text() is None
    assert [(c.address, c.requests, c.in_flight) for c in clients] == [("127.0.0.1", 1, 0), ("127.0.0.1", 1, 0)]


def test_endpoint_a_model_whose_entry_is_invalid_says_why(tmp_path: Path, fake_server):
    text = attached_yaml(fake_server.url, "a") + "  broken:\n    base_model: x.gguf\n    port: 99999\n"

    async def go():
        async with serving(tmp_path, text, strict=False) as endpoint:
            listed = [m.id for m in (await sdk(endpoint).models.list()).data]
            with pytest.raises(openai.APIStatusError) as caught:
                await sdk(endpoint).chat.completions.create(model="broken", messages=HI)
            return listed, caught.value

    listed, error = asyncio.run(go())
    assert listed == ["a"]
    assert error.status_code == 503 and "'broken' is not usable: " in error.message and "port" in error.message


def test_endpoint_a_client_that_hangs_up_after_done_got_its_whole_answer(tmp_path: Path):
    """Seen with simonw's llm against llama-server: the client closes on `data: [DONE]`, before the engine ends
    its body; that request was whole (200), not cut (499)."""
    async def go():
        async def engine(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readuntil(b"\r\n\r\n")
            events = (b'data: {"choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":"stop"}]}\n\n'
                      b"data: [DONE]\n\n")
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
                         + f"{len(events):x}\r\n".encode() + events + b"\r\n")
            await asyncio.sleep(2)  # the body's end comes late
            writer.write(b"0\r\n\r\n")
            writer.close()

        upstream = await asyncio.start_server(engine, "127.0.0.1", 0)
        url = f"http://127.0.0.1:{upstream.sockets[0].getsockname()[1]}"
        async with upstream, serving(tmp_path, attached_yaml(url, "m")) as endpoint:
            async with httpx.AsyncClient(timeout=30) as http:
                async with http.stream("POST", f"{endpoint.url}/chat/completions", headers=auth(endpoint),
                                       json={"model": "m", "messages": HI, "stream": True}) as response:
                    async for line in response.aiter_lines():
                        if line == "data: [DONE]":
                            break  # hang up, as the client has all it wanted
            await async_wait_until(lambda: endpoint.activity.recent()[-1].finished, 10, "the request's record")
            return endpoint.activity.recent()[-1]

    record = asyncio.run(go())
    assert (record.status, record.error) == (200, None)
    assert record.answer_text() == "Hi"


def test_endpoint_an_adapter_is_a_model_id_routed_to_its_base_models_server(tmp_path: Path):
    adapter = tmp_path / "my-lora"
    adapter.mkdir()
    port = free_port()
    text = (f"models:\n  base:\n    base_model: base.gguf\n    backend: llama_cpp\n    port: {port}\n"
            f"    model_name: base-upstream\n"
            f"  tuned:\n    base_model: base.gguf\n    backend: llama_cpp\n    port: {port}\n"
            f"    adapter_dir: {adapter}\n    model_name: tuned-upstream\n")

    async def go():
        async with serving(tmp_path, text, launcher=fake_launcher()) as endpoint:
            answers = [(await sdk(endpoint).chat.completions.create(model=m, messages=HI)).choices[0].message.content
                       for m in ("tuned", "base")]
            states = {r.model_id: r.state for r in endpoint.runtime.servers.status()}
            async with httpx.AsyncClient() as http:
                sent = (await http.get(f"http://127.0.0.1:{port}/_requests")).json()
            return answers, states, sent

    answers, states, sent = asyncio.run(go())
    assert answers == ["Hello from the fake server."] * 2
    assert states == {"base": "ready", "tuned": "ready"}  # one server for the group: both report it
    # One engine for both ids, each request naming what that engine knows the entry by.
    # (The first is the supervisor's warm-up of the group's server.)
    assert [r["body"]["model"] for r in sent if r["type"] == "request"] == \
        ["base-upstream", "tuned-upstream", "base-upstream"]
