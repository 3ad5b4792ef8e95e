"""One transformers server, several LoRA adapters: per-request selection, runtime load/unload, /v1/completions.

Every server is a real subprocess on a tiny random Llama built here; every answer at temperature 0
is compared with a direct in-process transformers + PEFT greedy generation.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from LLM.tests.core.servers.test_hf_server import (
    ServerProcess,
    build_adapter,
    build_tiny_model,
    require_hf_stack,
    sse_payloads,
)

BASE = "tiny-base"
HELLO = [{"role": "user", "content": "hello world"}]
MAX_TOKENS = 8


class Assets:
    """The tiny model and adapters on disk, and greedy generations made in-process with plain PEFT."""

    def __init__(self, root: Path) -> None:
        self.model_dir = root / "model"
        self.adapters = {name: root / name for name in ("alpha", "beta", "gamma")}
        build_tiny_model(self.model_dir, root / "no-op")
        build_adapter(self.model_dir, self.adapters["alpha"], seed=1)
        build_adapter(self.model_dir, self.adapters["beta"], seed=2, targets=("q_proj", "k_proj", "v_proj", "o_proj"))
        build_adapter(self.model_dir, self.adapters["gamma"], seed=3, targets=("gate_proj", "up_proj", "down_proj"))
        self.mismatched = root / "mismatched"  # an adapter for a wider model: its weights cannot load here
        _build_mismatched_adapter(self.mismatched)
        import transformers

        self.tokenizer = transformers.AutoTokenizer.from_pretrained(self.model_dir)
        self._models: dict[str | None, Any] = {}
        self._cache: dict[tuple[Any, ...], str] = {}

    def _model(self, adapter: str | None) -> Any:
        if adapter not in self._models:
            import peft
            import torch
            import transformers

            model = transformers.AutoModelForCausalLM.from_pretrained(self.model_dir, dtype=torch.float32)
            if adapter is not None:
                model = peft.PeftModel.from_pretrained(model, self.adapters[adapter])
            self._models[adapter] = model.eval()
        return self._models[adapter]

    def _generate(self, adapter: str | None, text: str, max_tokens: int, add_special_tokens: bool) -> str:
        key = (adapter, text, max_tokens, add_special_tokens)
        if key not in self._cache:
            import torch

            ids = self.tokenizer(text, return_tensors="pt", add_special_tokens=add_special_tokens)["input_ids"]
            with torch.no_grad():
                out = self._model(adapter).generate(
                    input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_tokens, do_sample=False,
                    pad_token_id=self.tokenizer.pad_token_id,
                )
            self._cache[key] = self.tokenizer.decode(out[0, ids.shape[-1]:], skip_special_tokens=True)
        return self._cache[key]

    def chat(self, adapter: str | None, messages: list[dict[str, Any]] = HELLO, max_tokens: int = MAX_TOKENS) -> str:
        text = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        return self._generate(adapter, text, max_tokens, add_special_tokens=False)

    def complete(self, adapter: str | None, prompt: str, max_tokens: int = MAX_TOKENS) -> str:
        return self._generate(adapter, prompt, max_tokens, add_special_tokens=True)


def _build_mismatched_adapter(adapter_dir: Path) -> None:
    import peft
    import transformers

    config = transformers.LlamaConfig(vocab_size=64, hidden_size=48, num_hidden_layers=2, num_attention_heads=2,
                                      num_key_value_heads=2, intermediate_size=64)
    lora = peft.LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    peft.get_peft_model(transformers.LlamaForCausalLM(config), lora).save_pretrained(adapter_dir)


@pytest.fixture(scope="module")
def assets(tmp_path_factory: pytest.TempPathFactory) -> Assets:
    require_hf_stack()
    return Assets(tmp_path_factory.mktemp("tiny-adapters"))


def _start(args: list[str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess([*args, "--torch-dtype", "float32"], tmp_path_factory.mktemp("log") / "server.log")
    try:
        yield proc.wait_ready()
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def server(assets: Assets, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One process: the bare base as BASE, and the adapters alpha and beta."""
    yield from _start(["--model", str(assets.model_dir), "--served-model-name", BASE,
                       "--adapter", f"alpha={assets.adapters['alpha']}", "--adapter", f"beta={assets.adapters['beta']}"],
                      tmp_path_factory)


def chat(server: ServerProcess, model: str | None, **body: Any) -> httpx.Response:
    payload = {"messages": HELLO, "max_tokens": MAX_TOKENS, "temperature": 0, **body}
    if model is not None:
        payload["model"] = model
    return httpx.post(f"{server.url}/v1/chat/completions", json=payload, timeout=60, headers=server_headers(server))


def server_headers(server: ServerProcess) -> dict[str, str]:
    key = getattr(server, "api_key", None)
    return {"Authorization": f"Bearer {key}"} if key else {}


def content(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    return response.json()["choices"][0]["message"]["content"]


def model_ids(server: ServerProcess) -> list[str]:
    response = httpx.get(f"{server.url}/v1/models", timeout=10, headers=server_headers(server))
    return [card["id"] for card in response.json()["data"]]


def test_hf_server_lists_base_and_adapters_with_their_parent(server: ServerProcess, assets: Assets) -> None:
    cards = {card["id"]: card for card in httpx.get(f"{server.url}/v1/models").json()["data"]}
    assert list(cards) == [BASE, "alpha", "beta"]
    assert "parent" not in cards[BASE] and cards[BASE]["adapter"] is None
    for name in ("alpha", "beta"):
        assert (cards[name]["parent"], cards[name]["adapter"]) == (BASE, str(assets.adapters[name]))
    assert httpx.get(f"{server.url}/health").json() == {"status": "ok", "model": BASE, "adapter": None}


@pytest.mark.parametrize("model", [BASE, "alpha", "beta"])
def test_hf_server_model_name_picks_the_adapter_like_in_process_peft(
    server: ServerProcess, assets: Assets, model: str
) -> None:
    adapter = None if model == BASE else model
    response = chat(server, model)
    assert response.json()["model"] == model
    assert content(response) == assets.chat(adapter)


def test_hf_server_base_and_adapters_give_three_different_answers(server: ServerProcess, assets: Assets) -> None:
    """The adapters are not no-ops (PEFT's default init would make them so), so the selection is visible."""
    answers = {model: content(chat(server, model)) for model in (BASE, "alpha", "beta")}
    assert len(set(answers.values())) == 3, answers
    assert content(chat(server, None)) == answers[BASE]  # no model: the primary name


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/completions"])
def test_hf_server_unknown_model_answers_404_naming_it_and_the_served_ones(server: ServerProcess, path: str) -> None:
    body = {"model": "nope", "messages": HELLO, "prompt": "hello", "max_tokens": 2}
    response = httpx.post(f"{server.url}{path}", json=body, timeout=30)
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["message"] == f"model 'nope' not found; this server has: {BASE}, alpha, beta"
    assert (error["type"], error["code"]) == ("not_found_error", 404)


def test_hf_server_concurrent_requests_for_different_adapters_never_mix(server: ServerProcess, assets: Assets) -> None:
    models = [BASE, "alpha", "beta"] * 3
    expected = {model: assets.chat(None if model == BASE else model, max_tokens=16) for model in set(models)}
    results: dict[int, str] = {}

    def ask(i: int, model: str) -> None:
        response = chat(server, model, stream=True, max_tokens=16)
        chunks = [json.loads(p) for p in sse_payloads(response)[:-1]]
        results[i] = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])

    threads = [threading.Thread(target=ask, args=(i, model)) for i, model in enumerate(models)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert {i: results.get(i) for i in range(len(models))} == {i: expected[m] for i, m in enumerate(models)}


def test_hf_server_loads_and_unloads_an_adapter_at_runtime(server: ServerProcess, assets: Assets) -> None:
    pid = server.proc.pid
    added = httpx.post(f"{server.url}/v1/adapters", json={"name": "gamma", "path": str(assets.adapters["gamma"])},
                       timeout=60)
    assert added.status_code == 200, added.text
    assert (added.json()["id"], added.json()["parent"]) == ("gamma", BASE)
    assert model_ids(server) == [BASE, "alpha", "beta", "gamma"]
    answer = content(chat(server, "gamma"))
    assert answer == assets.chat("gamma")
    assert answer not in {assets.chat(None), assets.chat("alpha"), assets.chat("beta")}
    assert content(chat(server, "alpha")) == assets.chat("alpha")  # the others are untouched

    again = httpx.post(f"{server.url}/v1/adapters", json={"name": "gamma", "path": str(assets.adapters["beta"])})
    assert again.status_code == 409 and "already loaded" in again.json()["error"]["message"]

    deleted = httpx.delete(f"{server.url}/v1/adapters/gamma", timeout=60)
    assert deleted.status_code == 200 and deleted.json() == {"id": "gamma", "object": "model", "deleted": True}
    assert model_ids(server) == [BASE, "alpha", "beta"]
    assert chat(server, "gamma").status_code == 404
    assert httpx.delete(f"{server.url}/v1/adapters/gamma").status_code == 404
    assert content(chat(server, "beta")) == assets.chat("beta")
    assert server.proc.pid == pid and server.proc.poll() is None


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"name": "x", "path": "/nonexistent/adapter"}, 400, "adapter directory not found: /nonexistent/adapter"),
        ({"name": "x", "path": "{model}"}, 400, "not a PEFT adapter directory: {model}"),
        ({"name": "x", "path": "{mismatched}"}, 400, "failed to load adapter 'x' from {mismatched}: RuntimeError"),
        ({"name": BASE, "path": "{alpha}"}, 409, f"'{BASE}' is a base model name of this server"),
        ({"name": "x"}, 400, "invalid request: path: Field required"),
    ],
    ids=["missing-dir", "not-an-adapter", "wrong-shapes", "base-name", "no-path"],
)
def test_hf_server_refused_adapter_load_says_why_and_keeps_serving(
    server: ServerProcess, assets: Assets, body: dict[str, str], status: int, message: str
) -> None:
    dirs = {"model": str(assets.model_dir), "mismatched": str(assets.mismatched), "alpha": str(assets.adapters["alpha"])}
    body = {key: value.format(**dirs) for key, value in body.items()}
    response = httpx.post(f"{server.url}/v1/adapters", json=body, timeout=60)
    assert response.status_code == status
    assert message.format(**dirs) in response.json()["error"]["message"]
    assert model_ids(server) == [BASE, "alpha", "beta"]
    assert content(chat(server, "alpha")) == assets.chat("alpha")


def test_hf_server_base_name_cannot_be_unloaded(server: ServerProcess) -> None:
    response = httpx.delete(f"{server.url}/v1/adapters/{BASE}")
    assert response.status_code == 400 and "is the base model" in response.json()["error"]["message"]


def test_hf_server_text_completion_matches_in_process_and_streams(server: ServerProcess, assets: Assets) -> None:
    body = {"model": "beta", "prompt": "the quick brown", "max_tokens": MAX_TOKENS, "temperature": 0}
    reply = httpx.post(f"{server.url}/v1/completions", json=body, timeout=60).json()
    assert reply["object"] == "text_completion" and reply["model"] == "beta"
    choice = reply["choices"][0]
    assert (choice["text"], choice["finish_reason"]) == (assets.complete("beta", "the quick brown"), "length")
    assert reply["usage"]["completion_tokens"] == MAX_TOKENS

    stream = {**body, "prompt": ["the quick brown"], "stream": True, "stream_options": {"include_usage": True}}
    payloads = sse_payloads(httpx.post(f"{server.url}/v1/completions", json=stream, timeout=60))
    assert payloads[-1] == "[DONE]"
    chunks = [json.loads(p) for p in payloads[:-1]]
    assert all(c["object"] == "text_completion" for c in chunks)
    assert "".join(c["choices"][0]["text"] for c in chunks if c["choices"]) == choice["text"]
    assert chunks[-2]["choices"][0]["finish_reason"] == "length"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"] == reply["usage"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"prompt": ["a", "b"]}, "prompt: must be a string or a list of exactly one string"),
        ({"max_tokens": 2}, "invalid request: prompt: Field required"),
        ({"prompt": "", "max_tokens": 2}, "the prompt is empty"),
    ],
    ids=["two-prompts", "no-prompt", "empty-prompt"],
)
def test_hf_server_bad_text_completion_answers_400(server: ServerProcess, body: dict[str, Any], message: str) -> None:
    response = httpx.post(f"{server.url}/v1/completions", json=body, timeout=30)
    assert response.status_code == 400
    assert message in response.json()["error"]["message"]


def test_hf_server_bogus_message_answers_400_naming_it(server: ServerProcess) -> None:
    response = chat(server, BASE, messages=[*HELLO, {"role": "bogus"}])
    assert response.status_code == 400
    assert response.json()["error"] == {
        "message": "messages[1].role: must be one of system, user, assistant, tool; got 'bogus'",
        "type": "invalid_request_error", "code": 400,
    }


def test_openai_sdk_talks_to_the_server(server: ServerProcess, assets: Assets) -> None:
    openai = pytest.importorskip("openai")
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", timeout=60, max_retries=0)

    assert [m.id for m in client.models.list()] == [BASE, "alpha", "beta"]

    reply = client.chat.completions.create(model="alpha", messages=HELLO, max_tokens=MAX_TOKENS, temperature=0)
    assert reply.choices[0].message.content == assets.chat("alpha")
    assert reply.usage.completion_tokens == MAX_TOKENS

    chunks = list(client.chat.completions.create(model="beta", messages=HELLO, max_tokens=MAX_TOKENS, temperature=0,
                                                 stream=True, stream_options={"include_usage": True}))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == assets.chat("beta")
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == MAX_TOKENS

    tools = [{"type": "function", "function": {"name": "get_time", "description": "the time",
                                               "parameters": {"type": "object", "properties": {}}}}]
    with_tools = client.chat.completions.create(model=BASE, messages=HELLO, tools=tools, max_tokens=2, temperature=0)
    assert with_tools.choices[0].finish_reason == "length"
    assert with_tools.usage.prompt_tokens > reply.usage.prompt_tokens

    text = client.completions.create(model="alpha", prompt="hello world", max_tokens=MAX_TOKENS, temperature=0)
    assert text.choices[0].text == assets.complete("alpha", "hello world")

    with pytest.raises(openai.BadRequestError, match=r"messages\[1\]\.role: must be one of"):
        client.chat.completions.create(model=BASE, messages=[*HELLO, {"role": "bogus"}])
    with pytest.raises(openai.NotFoundError, match="model 'nope' not found"):
        client.chat.completions.create(model="nope", messages=HELLO)


def test_hf_server_without_adapters_loads_one_behind_its_key_and_unloads_to_the_bare_base(
    assets: Assets, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Starting with no adapter at all (no PeftModel yet): a failed first load leaves the base as it was,
    and unloading the only adapter gives the plain base back; the adapter routes want the key too."""
    key_file = tmp_path / "key"
    key_file.write_text("k-123\n")
    for proc in _start(["--model", str(assets.model_dir), "--served-model-name", BASE, "--api-key-file", str(key_file)],
                       tmp_path_factory):
        proc.api_key = "k-123"
        auth = server_headers(proc)
        url = f"{proc.url}/v1/adapters"
        alpha = {"name": "alpha", "path": str(assets.adapters["alpha"])}
        assert httpx.post(url, json=alpha).status_code == 401
        assert httpx.delete(f"{url}/alpha").status_code == 401

        bad = httpx.post(url, json={"name": "bad", "path": str(assets.mismatched)}, headers=auth, timeout=60)
        assert bad.status_code == 400
        assert content(chat(proc, BASE)) == assets.chat(None)

        assert httpx.post(url, json=alpha, headers=auth, timeout=60).status_code == 200
        assert content(chat(proc, "alpha")) == assets.chat("alpha")
        assert content(chat(proc, BASE)) == assets.chat(None)
        assert httpx.delete(f"{url}/alpha", headers=auth, timeout=60).status_code == 200
        assert model_ids(proc) == [BASE]
        assert content(chat(proc, BASE)) == assets.chat(None)


def test_hf_server_4bit_loads_and_answers_with_an_adapter(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    """bitsandbytes (0.50 measured) also quantizes on the CPU, whose kernels want layers at least 64 wide."""
    require_hf_stack()
    pytest.importorskip("bitsandbytes")
    model_dir, adapter_dir = tmp_path / "wide", tmp_path / "wide-lora"
    build_tiny_model(model_dir, tmp_path / "no-op", hidden_size=64)
    build_adapter(model_dir, adapter_dir, seed=1)
    for proc in _start(["--model", str(model_dir), "--served-model-name", BASE, "--4bit",
                        "--adapter", f"alpha={adapter_dir}"], tmp_path_factory):
        base, alpha = content(chat(proc, BASE)), content(chat(proc, "alpha"))
        assert base and alpha and base != alpha
        assert "Linear4bit" in proc.output()  # the layer type the load logged: the weights are 4-bit
        assert sse_payloads(chat(proc, "alpha", stream=True))[-1] == "[DONE]"
