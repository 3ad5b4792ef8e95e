"""The transformers server answers a request with tools in OpenAI native ``tool_calls``, never ``<tool_call>`` text.

The model is real (a tiny Llama run by the real server through ``generate``), built so that its greedy answer to
any prompt is a fixed script: each script piece is one added token, attention and MLP write nothing, so the next
token depends on the current token alone, and the output head maps each script token to the next one (and any
other token to the first; the last one to end-of-turn).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from LLM.tests.core.servers.test_hf_server import (
    CHAT_TEMPLATE,
    SENTENCES,
    SPECIAL_TOKENS,
    ServerProcess,
    require_hf_stack,
)

SERVED = "scripted"
SCRIPT = [
    "<think>Paris is in France.</think>\n",
    "Let me look.\n",
    "<tool_call>\n",
    '{"name": "get_time", "arguments": {"city": "Paris"}}\n</tool_call>',
    "\n<tool_call>\n",
    '{"name": "get_time", "arguments": {"city": "Tokyo"}}\n</tool_call>',
]
RAW = "".join(SCRIPT)
TOOLS = [{"type": "function", "function": {"name": "get_time", "description": "the time in a city",
                                           "parameters": {"type": "object",
                                                          "properties": {"city": {"type": "string"}}}}}]
HELLO = [{"role": "user", "content": "What time is it in Paris and Tokyo?"}]
CALLS = [("get_time", {"city": "Paris"}), ("get_time", {"city": "Tokyo"})]


def build_scripted_model(model_dir: Path, script: list[str], hidden_size: int = 16) -> None:
    """A tokenizer with each script piece as one token and a 1-layer Llama whose greedy answer is the script."""
    import torch
    import transformers
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    assert len(set(script)) == len(script) < hidden_size  # one direction per piece, plus one for other tokens
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(SENTENCES, trainers.BpeTrainer(
        vocab_size=320, special_tokens=SPECIAL_TOKENS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tokenizer = transformers.PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>",
                                                     pad_token="<|endoftext|>")
    tokenizer.add_tokens(script)  # plain (not special) tokens, so the server's streamer keeps their text
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.save_pretrained(model_dir)
    ids = tokenizer.convert_tokens_to_ids(script)

    config = transformers.LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=hidden_size, num_hidden_layers=1, num_attention_heads=2,
        num_key_value_heads=2, intermediate_size=2 * hidden_size, max_position_embeddings=4096,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, bos_token_id=None,
        tie_word_embeddings=False,
    )
    model = transformers.LlamaForCausalLM(config)
    other = hidden_size - 1
    with torch.no_grad():
        for layer in model.model.layers:  # the residual stream stays the current token's embedding
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        embed = model.model.embed_tokens.weight
        embed.zero_()
        embed[:, other] = 1.0
        for direction, token in enumerate(ids):
            embed[token, other] = 0.0
            embed[token, direction] = 1.0
        head = model.lm_head.weight
        head.zero_()
        for direction, following in zip([other, *range(len(ids))], [*ids, tokenizer.eos_token_id]):
            head[following, direction] = 10.0  # a margin no sampling setting overturns
    model.save_pretrained(model_dir)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    require_hf_stack()
    model_dir = tmp_path_factory.mktemp("scripted") / "model"
    build_scripted_model(model_dir, SCRIPT)
    proc = ServerProcess(["--model", str(model_dir), "--served-model-name", SERVED, "--dtype", "float32"],
                         tmp_path_factory.mktemp("log") / "server.log")
    try:
        yield proc.wait_ready()
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def client(server: ServerProcess) -> Any:
    openai = pytest.importorskip("openai")
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", timeout=60, max_retries=0)


def calls_of(tool_calls: Any) -> list[tuple[str, dict[str, Any]]]:
    return [(call.function.name, json.loads(call.function.arguments)) for call in tool_calls or ()]


def test_scripted_model_writes_its_script_without_tools(client: Any) -> None:
    """Pins the fixture, and that a request without tools still gets the model's text as it is."""
    reply = client.chat.completions.create(model=SERVED, messages=HELLO, temperature=0)
    assert reply.choices[0].message.content == RAW
    assert reply.choices[0].message.tool_calls is None
    assert reply.choices[0].finish_reason == "stop"


def test_hf_server_with_tools_answers_openai_sdk_with_tool_calls(client: Any) -> None:
    reply = client.chat.completions.create(model=SERVED, messages=HELLO, tools=TOOLS, temperature=0)
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == "Let me look."
    assert choice.message.reasoning_content == "Paris is in France."  # as llama-server reports reasoning
    assert calls_of(choice.message.tool_calls) == CALLS
    ids = [call.id for call in choice.message.tool_calls]
    assert all(i.startswith("call_") for i in ids) and len(set(ids)) == 2
    assert {call.type for call in choice.message.tool_calls} == {"function"}
    assert reply.usage.completion_tokens == len(SCRIPT) + 1  # the script and end-of-turn


def test_hf_server_with_tools_streams_tool_call_deltas_to_openai_sdk(client: Any) -> None:
    chunks = list(client.chat.completions.create(model=SERVED, messages=HELLO, tools=TOOLS, temperature=0,
                                                 stream=True, stream_options={"include_usage": True}))
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    content = "".join(d.content or "" for d in deltas)
    reasoning = "".join(getattr(d, "reasoning_content", None) or "" for d in deltas)
    assert (content, reasoning) == ("Let me look.", "Paris is in France.")
    streamed = [call for d in deltas for call in d.tool_calls or ()]
    assert [call.index for call in streamed] == [0, 1]  # each call whole, in one delta
    assert all(call.id.startswith("call_") and call.type == "function" for call in streamed)
    assert calls_of(streamed) == CALLS
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["tool_calls"]
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == len(SCRIPT) + 1


@pytest.mark.parametrize("stream", [False, True], ids=["non-stream", "stream"])
def test_hf_server_tool_choice_none_answers_with_the_text(client: Any, stream: bool) -> None:
    reply = client.chat.completions.create(model=SERVED, messages=HELLO, tools=TOOLS, tool_choice="none",
                                           temperature=0, stream=stream)
    if stream:
        chunks = list(reply)
        assert not any(c.choices[0].delta.tool_calls for c in chunks)
        text = "".join(c.choices[0].delta.content or "" for c in chunks)
        finish = chunks[-1].choices[0].finish_reason
    else:
        text, finish = reply.choices[0].message.content, reply.choices[0].finish_reason
        assert reply.choices[0].message.tool_calls is None
    assert (text, finish) == (RAW, "stop")


@pytest.mark.parametrize("stream", [False, True], ids=["non-stream", "stream"])
def test_hf_server_answer_cut_at_max_tokens_keeps_finish_reason_length(client: Any, stream: bool) -> None:
    """Cut after the first call's block: that call goes out, but the turn did not end with it."""
    reply = client.chat.completions.create(model=SERVED, messages=HELLO, tools=TOOLS, temperature=0,
                                           max_tokens=4, stream=stream)
    if stream:
        chunks = list(reply)
        calls = calls_of([call for c in chunks for call in c.choices[0].delta.tool_calls or ()])
        finish = chunks[-1].choices[0].finish_reason
    else:
        calls, finish = calls_of(reply.choices[0].message.tool_calls), reply.choices[0].finish_reason
    assert (calls, finish) == (CALLS[:1], "length")


@pytest.mark.parametrize("stream", [False, True], ids=["non-stream", "stream"])
def test_hf_server_parallel_tool_calls_false_answers_with_the_first_call_only(client: Any, stream: bool) -> None:
    """OpenAI's ``parallel_tool_calls: false``: at most one call in the answer (the model wrote two)."""
    reply = client.chat.completions.create(model=SERVED, messages=HELLO, tools=TOOLS, temperature=0,
                                           parallel_tool_calls=False, stream=stream)
    if stream:
        chunks = list(reply)
        streamed = [call for c in chunks for call in c.choices[0].delta.tool_calls or ()]
        assert [call.index for call in streamed] == [0]
        calls, finish = calls_of(streamed), chunks[-1].choices[0].finish_reason
        content = "".join(c.choices[0].delta.content or "" for c in chunks)
    else:
        choice = reply.choices[0]
        calls, finish, content = calls_of(choice.message.tool_calls), choice.finish_reason, choice.message.content
    assert (calls, finish, content) == (CALLS[:1], "tool_calls", "Let me look.")


def test_hf_server_parallel_tool_calls_true_answers_with_every_call(client: Any) -> None:
    reply = client.chat.completions.create(model=SERVED, messages=HELLO, tools=TOOLS, temperature=0,
                                           parallel_tool_calls=True)
    assert calls_of(reply.choices[0].message.tool_calls) == CALLS


@pytest.mark.parametrize("value", ['"false"', "0", "null"], ids=["string", "number", "null-is-the-default"])
def test_hf_server_parallel_tool_calls_must_be_a_boolean(server: ServerProcess, value: str) -> None:
    import httpx

    body = f'{{"messages": {json.dumps(HELLO)}, "tools": {json.dumps(TOOLS)}, "parallel_tool_calls": {value}}}'
    response = httpx.post(f"{server.url}/v1/chat/completions", content=body, timeout=60,
                          headers={"Content-Type": "application/json"})
    if value == "null":
        assert response.status_code == 200
        return
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["message"].startswith("invalid request: parallel_tool_calls: Input should be a valid boolean")
