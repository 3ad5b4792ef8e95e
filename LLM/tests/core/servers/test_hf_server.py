"""The transformers + PEFT server, run as a real subprocess on a tiny random model built here."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from LLM.core.servers import hf_server
from LLM.tests.fakes.handle import REPO_ROOT
from LLM.tests.fakes.tiny_tokenizer import train_tokenizer

SERVED_NAME = "tiny-lora"
CHAT_TEMPLATE = (
    "{% if tools %}<|im_start|>system\nTools: {{ tools | tojson }}<|im_end|>\n{% endif %}"
    "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
SENTENCES = [
    "the quick brown fox jumps over the lazy dog",
    "hello world, this is a tiny language model for tests",
    "a stop sequence cuts the answer where it appears",
] * 20


def require_hf_stack() -> None:
    """Skip unless the [transformers] extra (and the HTTP stack the server uses) is installed."""
    for module in (*hf_server.REQUIRED_MODULES, "tokenizers"):
        pytest.importorskip(module)


def build_tiny_model(model_dir: Path, adapter_dir: Path, hidden_size: int = 32) -> None:
    """A byte-level BPE tokenizer trained on a few sentences, a 2-layer Llama and a LoRA adapter."""
    import torch
    import transformers

    tokenizer = train_tokenizer(SPECIAL_TOKENS, SENTENCES)
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.save_pretrained(model_dir)

    torch.manual_seed(0)
    config = transformers.LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        intermediate_size=2 * hidden_size,
        max_position_embeddings=4096,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=None,
    )
    model = transformers.LlamaForCausalLM(config)
    with torch.no_grad():
        # Special tokens get logit 0 while the others are random: greedy decoding then picks a
        # real token first, so answers are non-empty and run to max_tokens deterministically.
        for token in SPECIAL_TOKENS:
            model.lm_head.weight[tokenizer.convert_tokens_to_ids(token)] = 0.0
    model.save_pretrained(model_dir)
    # PEFT's default init (B = 0): a no-op adapter, so answers keep the base model's spaced words,
    # which the streamer sends word by word (the disconnect test waits for the first one).
    build_adapter(model_dir, adapter_dir, seed=1, no_op=True)


def build_adapter(
    model_dir: Path, adapter_dir: Path, seed: int, targets: tuple[str, ...] = ("q_proj", "v_proj"), no_op: bool = False
) -> None:
    """A LoRA adapter with random non-zero weights (unless ``no_op``: PEFT's default B = 0 changes nothing)."""
    import peft
    import torch
    import transformers

    torch.manual_seed(seed)
    base = transformers.AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    config = peft.LoraConfig(r=4, lora_alpha=8, target_modules=list(targets), init_lora_weights=no_op)
    peft.get_peft_model(base, config).save_pretrained(adapter_dir)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerProcess:
    """``python -m LLM.core.servers.hf_server`` with its output in a file (no pipe to fill)."""

    def __init__(self, args: list[str], log_path: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        with open(log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "LLM.core.servers.hf_server", *args, "--port", str(self.port)],
                cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
            )

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, deadline_s: float = 90.0) -> ServerProcess:
        """Poll /health like the server manager; every answer before 200 is kept in health_log."""
        self.health_log: list[tuple[int, Any]] = []
        deadline = time.monotonic() + deadline_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited with {self.proc.returncode}:\n{self.output()}")
            try:
                response = httpx.get(f"{self.url}/health", timeout=2)
                if response.status_code == 200:
                    return self
                self.health_log.append((response.status_code, response.json()))
            except httpx.TransportError:
                pass
            time.sleep(0.1)  # poll interval, bounded by the deadline above
        raise AssertionError(f"server not ready after {deadline_s}s:\n{self.output()}")

    def wait_exit(self, deadline_s: float = 90.0) -> int:
        try:
            return self.proc.wait(timeout=deadline_s)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"server still running after {deadline_s}s:\n{self.output()}") from None

    def wait_for_output(self, text: str, deadline_s: float = 10.0) -> str:
        deadline = time.monotonic() + deadline_s
        while time.monotonic() < deadline:
            if text in (output := self.output()):
                return output
            time.sleep(0.05)
        raise AssertionError(f"{text!r} not in the server output after {deadline_s}s:\n{self.output()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(scope="module")
def tiny_dirs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    require_hf_stack()
    root = tmp_path_factory.mktemp("tiny")
    model_dir, adapter_dir = root / "model", root / "adapter"
    build_tiny_model(model_dir, adapter_dir)
    return model_dir, adapter_dir


@pytest.fixture(scope="module")
def server(tiny_dirs: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    model_dir, adapter_dir = tiny_dirs
    args = ["--model", str(model_dir), "--adapter", str(adapter_dir), "--served-model-name", SERVED_NAME,
            "--dtype", "float32"]
    proc = ServerProcess(args, tmp_path_factory.mktemp("log") / "server.log")
    try:
        yield proc.wait_ready()
    finally:
        proc.stop()


def chat(server: ServerProcess, **body: Any) -> httpx.Response:
    payload = {"model": SERVED_NAME, "messages": [{"role": "user", "content": "hello world"}], **body}
    return httpx.post(f"{server.url}/v1/chat/completions", json=payload, timeout=30)


def sse_payloads(response: httpx.Response) -> list[str]:
    return [line[len("data: "):] for line in response.text.splitlines() if line.startswith("data: ")]


def test_hf_server_health_answers_503_loading_until_the_model_is_ready(server: ServerProcess) -> None:
    # The HTTP server is up before torch is even imported, so the manager sees "loading".
    assert server.health_log
    assert all(answer == (503, {"status": "loading"}) for answer in server.health_log)
    assert httpx.get(f"{server.url}/health").json()["status"] == "ok"


def test_hf_server_streams_chunks_then_finish_usage_and_done(server: ServerProcess) -> None:
    response = chat(server, stream=True, max_tokens=8, temperature=0, stream_options={"include_usage": True})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    payloads = sse_payloads(response)
    assert payloads[-1] == "[DONE]"
    chunks = [json.loads(p) for p in payloads[:-1]]
    assert all(c["object"] == "chat.completion.chunk" and c["model"] == SERVED_NAME for c in chunks)
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text
    finishes = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]]
    assert finishes == ["length"]
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 8


def test_hf_server_non_stream_returns_completion_with_usage(server: ServerProcess) -> None:
    response = chat(server, max_tokens=5, temperature=0.8, top_p=0.9, top_k=20, repetition_penalty=1.1, seed=7)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["object"] == "chat.completion" and body["model"] == SERVED_NAME
    assert body["choices"][0]["message"]["role"] == "assistant"
    assert body["choices"][0]["message"]["content"]
    usage = body["usage"]
    assert usage["prompt_tokens"] > 0 and usage["completion_tokens"] == 5
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


def test_hf_server_max_tokens_reached_finishes_with_length(server: ServerProcess) -> None:
    body = chat(server, max_tokens=3, temperature=0).json()
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["usage"]["completion_tokens"] == 3


def test_hf_server_continues_an_assistant_message_sent_last(server: ServerProcess,
                                                            tiny_dirs: tuple[Path, Path]) -> None:
    """An answer cut at max_tokens, sent back as the last (assistant) message, is written on from its last token
    (the template's continue_final_message, as llama-server's --prefill-assistant), not answered in a new turn."""
    import transformers

    tokenizer = transformers.AutoTokenizer.from_pretrained(tiny_dirs[0])
    messages = [{"role": "user", "content": "hello world"}, {"role": "assistant", "content": "the quick brown"}]
    body = chat(server, messages=messages, max_tokens=4, temperature=0).json()
    assert body["choices"][0]["finish_reason"] == "length"
    # (the random tiny model's words say nothing; the prompt it was given does)
    open_turn = tokenizer(tokenizer.apply_chat_template(
        messages, add_generation_prompt=False, continue_final_message=True, tokenize=False), add_special_tokens=False)
    new_turn = tokenizer(tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False),
                         add_special_tokens=False)
    open_turn, new_turn = open_turn["input_ids"], new_turn["input_ids"]
    assert len(open_turn) < len(new_turn)
    assert body["usage"]["prompt_tokens"] == len(open_turn)


def test_hf_server_seed_makes_sampling_repeatable(server: ServerProcess) -> None:
    first, second = (chat(server, max_tokens=6, temperature=1.0, seed=123).json() for _ in range(2))
    assert first["choices"][0]["message"]["content"] == second["choices"][0]["message"]["content"]


@pytest.mark.parametrize("stream", [False, True], ids=["non-stream", "stream"])
def test_hf_server_stop_sequence_cuts_text_and_finishes_with_stop(server: ServerProcess, stream: bool) -> None:
    full = chat(server, max_tokens=12, temperature=0).json()["choices"][0]["message"]["content"]
    assert len(full) >= 4, full
    stop = full[2:4]
    expected = full[: full.index(stop)]
    if stream:
        chunks = [json.loads(p) for p in sse_payloads(chat(server, max_tokens=12, temperature=0, stop=[stop],
                                                           stream=True))[:-1]]
        text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
        finish = chunks[-1]["choices"][0]["finish_reason"]
    else:
        choice = chat(server, max_tokens=12, temperature=0, stop=[stop]).json()["choices"][0]
        text, finish = choice["message"]["content"], choice["finish_reason"]
    assert (text, finish) == (expected, "stop")


def test_hf_server_accepts_tools_and_renders_them_with_the_template(server: ServerProcess) -> None:
    tools = [{"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}}]
    response = chat(server, max_tokens=2, temperature=0, tools=tools)
    assert response.status_code == 200, response.text
    assert response.json()["usage"]["prompt_tokens"] > chat(server, max_tokens=2).json()["usage"]["prompt_tokens"]


@pytest.mark.parametrize(
    "content",
    [
        b"{not json",
        b'{"messages": "hello"}',
        b'{"messages": []}',
        b'{"messages": [{"content": "no role"}]}',
        b'{"messages": [{"role": "user", "content": "hi"}], "max_tokens": 0}',
        b'{"messages": [{"role": "user", "content": "hi"}], "temperature": -1}',
    ],
    ids=["invalid-json", "messages-not-list", "no-messages", "message-without-role", "zero-max-tokens",
         "negative-temperature"],
)
def test_hf_server_bad_body_answers_400_with_error_object(server: ServerProcess, content: bytes) -> None:
    response = httpx.post(f"{server.url}/v1/chat/completions", content=content, timeout=10,
                          headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == 400 and error["type"] == "invalid_request_error" and error["message"]


def test_hf_server_prompt_longer_than_context_answers_400(server: ServerProcess) -> None:
    response = chat(server, messages=[{"role": "user", "content": "hello world " * 3000}], max_tokens=2)
    assert response.status_code == 400
    assert "context size" in response.json()["error"]["message"]


def test_hf_server_reports_served_name_and_loaded_adapter(
    server: ServerProcess, tiny_dirs: tuple[Path, Path]
) -> None:
    model_dir, adapter_dir = tiny_dirs
    health = httpx.get(f"{server.url}/health").json()
    assert health == {"status": "ok", "model": SERVED_NAME, "adapter": str(adapter_dir)}
    card = httpx.get(f"{server.url}/v1/models").json()["data"][0]
    assert (card["id"], card["root"], card["adapter"]) == (SERVED_NAME, str(model_dir), str(adapter_dir))
    assert f"loading adapter '{SERVED_NAME}' from {adapter_dir}" in server.output()


def test_hf_server_client_disconnect_stops_generation(server: ServerProcess) -> None:
    body = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 3000, "stream": True, "temperature": 0}
    with httpx.stream("POST", f"{server.url}/v1/chat/completions", json=body, timeout=30) as response:
        for line in response.iter_lines():
            if '"content": "' in line and '"content": ""' not in line:
                break  # one real token arrived: hang up
    output = server.wait_for_output("generation cancelled after")
    tokens = int(output.split("generation cancelled after ")[-1].split()[0])
    assert tokens < 3000
    # The lock was released: the next request is served.
    assert chat(server, max_tokens=2).status_code == 200


@pytest.mark.parametrize("kind", ["missing-dir", "not-a-model-dir"])
def test_hf_server_invalid_model_dir_exits_nonzero_with_clear_message(tmp_path: Path, kind: str) -> None:
    require_hf_stack()
    model_dir = tmp_path / "nope"
    if kind == "not-a-model-dir":
        model_dir.mkdir()
        (model_dir / "README.md").write_text("not a model\n")
    proc = ServerProcess(["--model", str(model_dir)], tmp_path / "server.log")
    try:
        code = proc.wait_exit()
    finally:
        proc.stop()
    output = proc.output()
    assert code != 0
    expected = "model directory not found" if kind == "missing-dir" else "failed to load model from"
    assert f"error: {expected}" in output and str(model_dir) in output


def test_hf_server_without_the_extra_exits_2_naming_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "peft", None)  # as if not installed; runs without torch too
    assert hf_server.main(["--model", "anything"]) == 2
    err = capsys.readouterr().err
    assert "pip install 'llm-workbench[transformers]'" in err and "peft" in err


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (None, None),
        ('{"0": "10GiB", "cpu": "30GiB"}', {0: "10GiB", "cpu": "30GiB"}),
        ('{"cuda:1": "8GiB"}', {"cuda:1": "8GiB"}),
    ],
    ids=["absent", "gpu-index-becomes-int", "named-device-stays-str"],
)
def test_parse_max_memory_gives_accelerate_its_keys(text: str | None, expected: dict[Any, str] | None) -> None:
    from LLM.core.servers.hf_generation import parse_max_memory

    assert parse_max_memory(text) == expected


@pytest.mark.parametrize("text", ["nope", "[1, 2]"], ids=["not-json", "not-an-object"])
def test_parse_max_memory_rejects_bad_json_naming_the_flag(text: str) -> None:
    from LLM.core.servers.hf_generation import LoadError, parse_max_memory

    with pytest.raises(LoadError, match="--max-memory"):
        parse_max_memory(text)


@pytest.mark.parametrize(
    ("body", "max_tokens", "stop"),
    [
        ({"stop": "END"}, None, ["END"]),
        ({"stop": ["a", "b"], "max_tokens": 7}, 7, ["a", "b"]),
        ({"max_completion_tokens": 9}, 9, []),
    ],
    ids=["stop-string", "stop-list", "max-completion-tokens"],
)
def test_chat_request_sampling_normalises_stop_and_max_tokens(
    body: dict[str, Any], max_tokens: int | None, stop: list[str]
) -> None:
    request = hf_server.ChatRequest.model_validate({"messages": [{"role": "user", "content": "hi"}], **body})
    params = request.sampling()
    assert (params.max_tokens, params.stop) == (max_tokens, stop)


def test_hf_backend_through_the_server_manager_streams_an_answer(
    tiny_dirs: tuple[Path, Path], tmp_path: Path
) -> None:
    """A transformers entry of llm_backends.yaml, launched by the ServerManager with its PEFT adapter."""
    import asyncio

    from LLM.core.config import parse_backends
    from LLM.core.inference import InferenceConfig, ainfer
    from LLM.core.runtime import Runtime
    from LLM.core.servers import ServerManager
    from LLM.core.servers.process import pid_alive

    model_dir, adapter_dir = tiny_dirs
    config = parse_backends(
        f"models:\n  tiny:\n    base_model: {model_dir}\n    adapter_dir: {adapter_dir}\n"
        f"    port: {free_port()}\n    context_size: 256\n    startup_timeout_s: 120\n",
        strict=True,
    )
    assert config.models["tiny"].backend == "transformers"

    async def go():
        manager = ServerManager(config, logs_dir=tmp_path / "logs", state_dir=tmp_path / "state")
        runtime = Runtime(config, manager)
        try:
            response = await ainfer(InferenceConfig(prompt="hello", model_id="tiny", max_new_tokens=5), runtime)
            return response, manager.server("tiny").pid
        finally:
            await runtime.aclose()

    response, pid = asyncio.run(go())
    assert response.error_message is None and response.generated_text
    assert response.finish_reason in ("stop", "length")
    assert not pid_alive(pid)
    assert "loading adapter" in (tmp_path / "logs" / "tiny.log").read_text()


def test_hf_server_with_a_key_file_answers_only_requests_bearing_the_key(
    tiny_dirs: tuple[Path, Path], tmp_path: Path
) -> None:
    model_dir, _ = tiny_dirs
    key_file = tmp_path / "hf.key"
    key_file.write_text("secret-key-123\n")
    proc = ServerProcess(["--model", str(model_dir), "--served-model-name", SERVED_NAME, "--dtype", "float32",
                          "--api-key-file", str(key_file)], tmp_path / "server.log")
    try:
        proc.wait_ready()  # /health stays public
        body = {"model": SERVED_NAME, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
        without = httpx.post(f"{proc.url}/v1/chat/completions", json=body, timeout=30)
        wrong = httpx.get(f"{proc.url}/v1/models", headers={"Authorization": "Bearer nope"}, timeout=30)
        right = httpx.post(f"{proc.url}/v1/chat/completions", json=body, timeout=30,
                           headers={"Authorization": "Bearer secret-key-123"})
    finally:
        proc.stop()
    assert (without.status_code, wrong.status_code, right.status_code) == (401, 401, 200)
    assert without.json()["error"]["type"] == "authentication_error"
