"""The inference API against the fake server (openai-backend entries), over real HTTP."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import warnings
from contextlib import aclosing
from pathlib import Path

import pytest

from LLM.core import stop_generation
from LLM.core.errors import BackendStatusError, ConfigError, ModelNotFoundError
from LLM.core.events import Done, TextDelta
from LLM.core.inference import InferenceConfig, ainfer, stream_inference
from LLM.core.runtime import Runtime
from LLM.tests.conftest import openai_config
from LLM.tests.fakes.handle import FakeServerHandle, async_wait_until


def run_script(script: str, config: Path) -> subprocess.CompletedProcess[str]:
    """``script`` as a plain Python program (no asyncio of its own) with ``config`` as its llm_backends.yaml."""
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "LLM_BACKENDS_CONFIG": str(config)})


def infer_on(server: FakeServerHandle, cfg: InferenceConfig, **extra):
    async def go():
        runtime = Runtime(openai_config(server.url, **extra))
        try:
            return await ainfer(cfg, runtime)
        finally:
            await runtime.aclose()

    return asyncio.run(go())


def test_inference_config_requires_model_id():
    with pytest.raises(ConfigError, match="model_id not provided"):
        InferenceConfig(prompt="hi")


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("temperature", 3.0, "InferenceConfig.temperature: Input should be less than or equal to 2, got 3.0"),
        ("top_p", -0.1, "InferenceConfig.top_p: Input should be greater than or equal to 0"),
        ("max_new_tokens", 0, "InferenceConfig.max_new_tokens"),
        ("repetition_penalty", 0, "InferenceConfig.repetition_penalty"),
        ("top_k", "many", "InferenceConfig.top_k: Input should be a valid integer"),
    ],
    ids=["temperature", "top_p", "max_new_tokens", "repetition_penalty", "top_k-type"],
)
def test_inference_config_validates_parameters(field: str, value: object, message: str):
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        InferenceConfig(prompt="hi", model_id="m", **{field: value})


def test_inference_config_legacy_fields_warn_once():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        InferenceConfig(prompt="hi", model_id="m", base_model="/x", adapter_dir="/y")
    assert [w.category for w in caught] == [DeprecationWarning]


def test_inference_returns_text_and_metrics(fake_server: FakeServerHandle):
    fake_server.script({"text": "The answer is 4.", "usage": {"prompt_tokens": 9, "completion_tokens": 5}})
    response = infer_on(fake_server, InferenceConfig(prompt="2+2?", model_id="fake"))
    assert response.generated_text == "The answer is 4."
    assert response.finish_reason == "stop" and response.error_message is None
    assert (response.prompt_tokens, response.generated_tokens) == (9, 5)
    assert response.time_to_first_token_ms is not None and response.inference_time_ms >= response.time_to_first_token_ms


def test_inference_default_params_apply_under_request_values(fake_server: FakeServerHandle):
    fake_server.script({"text": "ok"})
    infer_on(
        fake_server,
        InferenceConfig(prompt="hi", model_id="fake", temperature=0.9, system_prompt="Be brief."),
        default_params="{temperature: 0.1, top_p: 0.5, max_new_tokens: 33, stop: ['###']}",
    )
    body = fake_server.requests()[-1]["body"]
    assert (body["temperature"], body["top_p"], body["max_tokens"], body["stop"]) == (0.9, 0.5, 33, ["###"])
    assert body["messages"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]


def test_inference_do_sample_false_is_greedy(fake_server: FakeServerHandle):
    fake_server.script({"text": "ok"})
    infer_on(fake_server, InferenceConfig(prompt="hi", model_id="fake", temperature=0.8, do_sample=False))
    assert fake_server.requests()[-1]["body"]["temperature"] == 0.0


def test_inference_stop_sequence_enforced_client_side(fake_server: FakeServerHandle):
    """The server ignores `stop`; the text after it must still never reach the caller."""
    fake_server.script({"chunks": ["Hello", " wor", "ld. EN", "D secret", " more"] * 20, "delay_s": 0.02})
    response = infer_on(fake_server, InferenceConfig(prompt="hi", model_id="fake", stop=["END"]))
    assert response.generated_text == "Hello world. "
    assert response.finish_reason == "stop_sequence"
    assert fake_server.wait_for_event("disconnect")["after_chunks"] < 100


def test_inference_errors_are_reported_not_raised(fake_server: FakeServerHandle):
    fake_server.script({"status": 500, "body": {"error": {"message": "kaput"}}})
    response = infer_on(fake_server, InferenceConfig(prompt="hi", model_id="fake"))
    assert response.finish_reason == "error" and response.error_type == "BackendStatusError"
    assert "kaput" in response.error_message and response.generated_text == ""


def test_inference_keeps_partial_text_on_mid_stream_error(fake_server: FakeServerHandle):
    fake_server.script({"chunks": ["part one ", "part two ", "never"], "error_mid_stream": 2})
    response = infer_on(fake_server, InferenceConfig(prompt="hi", model_id="fake"))
    assert response.generated_text == "part one part two " and response.finish_reason == "error"


def test_inference_users_stop_gives_the_partial_answer_marked_cancelled(fake_server: FakeServerHandle):
    """GenerationCancelled / finish_reason "cancelled" were documented but never produced (pinned)."""
    fake_server.script({"chunks": ["first ", "second "] + ["more "] * 200, "delay_s": 0.05})

    async def go():
        runtime = Runtime(openai_config(fake_server.url))
        try:
            task = asyncio.ensure_future(ainfer(InferenceConfig(prompt="hi", model_id="fake"), runtime))
            await async_wait_until(lambda: fake_server.chunks_sent() >= 3, what="a few chunks streamed")
            assert stop_generation(task)
            return await task
        finally:
            await runtime.aclose()

    response = asyncio.run(go())
    assert response.finish_reason == "cancelled" and response.error_type == "GenerationCancelled"
    assert response.generated_text.startswith("first second ")
    assert fake_server.wait_for_event("disconnect")["after_chunks"] < 200  # the server stopped sending


def test_inference_other_cancellations_keep_asyncio_semantics(fake_server: FakeServerHandle):
    fake_server.script({"chunks": ["slow "] * 100, "delay_s": 0.05})

    async def go():
        runtime = Runtime(openai_config(fake_server.url))
        try:
            task = asyncio.ensure_future(ainfer(InferenceConfig(prompt="hi", model_id="fake"), runtime))
            await async_wait_until(lambda: fake_server.chunks_sent() >= 2, what="streaming")
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        finally:
            await runtime.aclose()

    asyncio.run(go())


THINKING_CUT_OFF = {"text": "<think>Let me weigh every option carefully before I", "finish_reason": "length",
                    "usage": {"prompt_tokens": 5, "completion_tokens": 9}}


@pytest.mark.parametrize("whole_body", [False, True], ids=["streamed", "server-ignores-stream"])
def test_inference_reports_max_tokens_spent_reasoning(fake_server: FakeServerHandle, whole_body: bool):
    """Regression (#19, run_inference): a reasoning model that spent max_tokens inside <think> gave an empty
    answer and no error. The response keeps the reasoning and says why there is no answer, whether the reply
    streamed or came as one JSON body."""
    fake_server.script({**THINKING_CUT_OFF, "ignore_stream": whole_body})
    response = infer_on(fake_server, InferenceConfig(prompt="hi", model_id="fake", max_new_tokens=9))
    assert response.generated_text == "" and response.reasoning_text.startswith("Let me weigh")
    assert response.finish_reason == "length" and response.error_type == "MaxTokensExhaustedError"
    assert response.error_message == ("the model used all 9 max_tokens reasoning and gave no answer; raise "
                                      "max_tokens (max_new_tokens)")


def test_inference_a_cut_off_answer_with_text_is_no_error(fake_server: FakeServerHandle):
    fake_server.script({"text": "<think>short</think>The answer is", "finish_reason": "length"})
    response = infer_on(fake_server, InferenceConfig(prompt="hi", model_id="fake"))
    assert response.generated_text == "The answer is" and response.finish_reason == "length"
    assert response.error_type is None


def test_run_inference_raises_when_max_tokens_ran_out_in_reasoning(fake_server: FakeServerHandle, tmp_path: Path):
    """Regression (#19, run_inference): its docstring promises it never returns '' for a failure, yet it
    returned '' when a reasoning model spent max_tokens inside <think>; with tools too (the final step)."""
    config = tmp_path / "backends.yaml"
    config.write_text(
        f"models:\n  fake:\n    backend: openai\n    server_url: {fake_server.url}/v1\n    model_name: fake-model\n"
        "    default_params: {max_new_tokens: 48}\n"
    )
    fake_server.script(THINKING_CUT_OFF, THINKING_CUT_OFF)
    script = (
        "from LLM.core.errors import InferenceError, MaxTokensExhaustedError\n"
        "from LLM.core.inference import InferenceConfig, ToolEnabledInferenceConfig, run_inference\n"
        "for cfg in (InferenceConfig(prompt='a', model_id='fake'),\n"
        "            ToolEnabledInferenceConfig(prompt='b', model_id='fake', enable_tools=True,\n"
        "                                       tools=['calculator'], tool_mode='native')):\n"
        "    try:\n        print(repr(run_inference(cfg)))\n"
        "    except MaxTokensExhaustedError as e:\n"
        "        assert isinstance(e, InferenceError) and e.reasoning_text.startswith('Let me')\n"
        "        print(type(e).__name__, e.max_tokens, e)\n"
    )
    out = run_script(script, config)
    message = "the model used all 48 max_tokens reasoning and gave no answer; raise max_tokens (max_new_tokens)"
    assert out.stdout.splitlines() == [f"MaxTokensExhaustedError 48 {message}"] * 2, out.stderr


def test_inference_unknown_model_is_typed(fake_server: FakeServerHandle):
    response = infer_on(fake_server, InferenceConfig(prompt="hi", model_id="nope"))
    assert response.error_type == "ModelNotFoundError"
    assert response.error_message.startswith("Model 'nope' not found in config")


def test_stream_inference_yields_events_then_done(fake_server: FakeServerHandle):
    fake_server.script({"text": "a b c"})

    async def go():
        runtime = Runtime(openai_config(fake_server.url))
        try:
            async with aclosing(stream_inference(InferenceConfig(prompt="x", model_id="fake"), runtime)) as events:
                return [e async for e in events]
        finally:
            await runtime.aclose()

    events = asyncio.run(go())
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "a b c"
    assert isinstance(events[-1], Done)


def test_inference_history_is_trimmed_to_usable_context(fake_server: FakeServerHandle):
    fake_server.script({"text": "ok"})
    history = []
    for i in range(40):
        history += [{"role": "user", "content": f"question {i} " + "x" * 200}, {"role": "assistant", "content": "y" * 200}]
    cfg = InferenceConfig(messages=history + [{"role": "user", "content": "last"}], model_id="fake")
    infer_on(fake_server, cfg, context_size=1024, system_prompt="'sys'")
    sent = fake_server.requests()[-1]["body"]["messages"]
    assert sent[0] == {"role": "system", "content": "sys"}
    assert sent[-1] == {"role": "user", "content": "last"}
    assert 2 < len(sent) < len(history)


def test_run_inference_blocking_from_a_plain_script(fake_server: FakeServerHandle, tmp_path: Path):
    """run_inference works without any asyncio in the caller; the portal keeps one client."""

    config = tmp_path / "backends.yaml"
    config.write_text(
        f"models:\n  fake:\n    backend: openai\n    server_url: {fake_server.url}/v1\n    model_name: fake-model\n"
    )
    fake_server.script({"text": "first"}, {"text": "second"})
    script = (
        "from LLM.core.inference import InferenceConfig, run_inference\n"
        "print(run_inference(InferenceConfig(prompt='a', model_id='fake')))\n"
        "print(run_inference(InferenceConfig(prompt='b', model_id='fake')))\n"
        "try:\n    run_inference(InferenceConfig(prompt='c', model_id='missing'))\n"
        "except Exception as e:\n    print(type(e).__name__, e)\n"
    )
    out = run_script(script, config)
    lines = out.stdout.splitlines()
    assert lines[:2] == ["first", "second"], out.stderr
    assert lines[2].startswith("ModelNotFoundError Model 'missing' not found in config")


def test_error_hierarchy_is_one_family():
    from LLM.core import errors

    for name in ("ConfigError", "ModelNotFoundError", "ServerError", "PortInUseError", "ServerStartTimeout",
                 "ServerExitedError", "ResourceNotAvailableError", "BackendError", "BackendConnectionError",
                 "BackendTimeoutError", "BackendStatusError", "EmptyResponseError", "InferenceError",
                 "GenerationCancelled", "ToolError"):
        assert issubclass(getattr(errors, name), errors.LLMError)
    assert issubclass(ModelNotFoundError, ConfigError) and issubclass(BackendStatusError, errors.BackendError)
