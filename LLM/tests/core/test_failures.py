"""Failures said in one plain sentence: the cause read from real engine log lines, and each error type's wording."""

from __future__ import annotations

import json

import pytest

from LLM.core.errors import (
    BackendConnectionError,
    BackendStatusError,
    BackendTimeoutError,
    ContextOverflowError,
    InferenceError,
    PortInUseError,
    ServerExitedError,
    ServerStartTimeout,
)
from LLM.core.failures import Cause, cause_from_log, describe_error

# What llama-server prints, measured (b6xxx): a bad option, and a model file that is not there.
BAD_FLAG = ["error: invalid argument: --definitely-not-a-flag"]
NO_FILE = [
    "0.00.008.825 E gguf_init_from_file: failed to open GGUF file '/m/x.gguf' (No such file or directory)",
    "0.00.008.853 E llama_model_load: error loading model: llama_model_loader: failed to load model from /m/x.gguf",
    "0.00.009.389 E srv  llama_server: exiting due to model loading error",
]


@pytest.mark.parametrize("lines, expected", [
    pytest.param(BAD_FLAG, Cause("llama-server does not know the option --definitely-not-a-flag", "extra_args"),
                 id="llama-bad-flag"),
    pytest.param(["usage: fake [-h]", "fake: error: unrecognized arguments: --nope"],
                 Cause("the engine does not know the option --nope", "extra_args"), id="argparse-bad-flag"),
    pytest.param(NO_FILE, Cause("cannot open the model file /m/x.gguf (No such file or directory)", "base_model"),
                 id="missing-gguf"),
    pytest.param(["E srv    init: couldn't bind HTTP server socket, hostname: 127.0.0.1, port: 8080"],
                 Cause("its port is already taken", "port"), id="port-taken"),
    pytest.param(["ggml_backend_cpu_buffer_type_alloc_buffer: failed to allocate buffer of size 8589934592"],
                 Cause("there is not enough memory to load the model", "context_size"), id="out-of-memory"),
    pytest.param(["0.00.1 E srv    load_model: something else went wrong: error 7"],
                 Cause("the engine said \u201csomething else went wrong: error 7\u201d"), id="other-error-line"),
    pytest.param(["main: server is listening on http://127.0.0.1:8080"], None, id="nothing-telling"),
    pytest.param([], None, id="no-lines"),
])
def test_cause_from_log_reads_real_engine_lines(lines, expected):
    assert cause_from_log(lines) == expected


def _named(error, label="SmolLM2 135M"):
    error.label = label
    return error


@pytest.mark.parametrize("error, expected", [
    pytest.param(_named(ServerExitedError("smol", 1, BAD_FLAG, "while starting")),
                 "SmolLM2 135M could not start: llama-server does not know the option --definitely-not-a-flag; "
                 "fix extra_args in llm_backends.yaml.", id="config-error-at-start"),
    pytest.param(_named(ServerExitedError("smol", 3, [], "while starting")),
                 "SmolLM2 135M could not start (exit status 3).", id="start-no-log"),
    pytest.param(_named(ServerExitedError("smol", 3, ["===== 2026-01-01 starting: x --bad", "engine: no weights"],
                                          "while starting")),
                 "SmolLM2 135M could not start (exit status 3): the engine said \u201cengine: no weights\u201d.",
                 id="start-last-words"),
    pytest.param(_named(ServerExitedError("smol", 1, ["error: invalid argument: --old", "===== 2026 starting: x",
                                                      "ok"], "while starting")),
                 "SmolLM2 135M could not start (exit status 1): the engine said \u201cok\u201d.",
                 id="an-earlier-run-is-not-this-one"),
    pytest.param(_named(ServerExitedError("smol", -9, ["srv  log: request done"], "while answering")),
                 "SmolLM2 135M stopped unexpectedly (exit status -9); it restarts when you send the next message.",
                 id="crash"),
    pytest.param(_named(ServerStartTimeout("smol", 20, ["loading"])),
                 "SmolLM2 135M was not ready after 20 s; if it loads slowly, raise startup_timeout_s in "
                 "llm_backends.yaml.", id="timeout"),
    pytest.param(PortInUseError(8080, "nginx (pid 12)", "smol"),
                 "'smol' could not start: port 8080 is already in use by nginx (pid 12); change its port in "
                 "llm_backends.yaml.", id="port-in-use-no-label"),
    pytest.param(BackendStatusError(401, json.dumps({"error": {"message": "Invalid API key"}}),
                                    "http://h:1/v1/chat/completions"),
                 "Invalid API key (HTTP 401 from http://h:1/v1/chat/completions).", id="http-error-server-first"),
    pytest.param(BackendStatusError(502, "<html>bad gateway</html>", "http://h:1/v1/chat/completions"),
                 "The server answered HTTP 502 from http://h:1/v1/chat/completions with no message.", id="http-html"),
    pytest.param(ContextOverflowError(400, "{}", "http://h:1/v1/chat/completions", 3112, 2048),
                 "The conversation does not fit the model's context (3112 tokens for a context of 2048); shorten "
                 "it or raise context_size in llm_backends.yaml.", id="context-overflow"),
    pytest.param(BackendConnectionError("cannot connect to http://127.0.0.1:9/v1/chat/completions: refused",
                                        "http://127.0.0.1:9/v1/chat/completions"),
                 "Not reachable: nothing listens at http://127.0.0.1:9/v1.", id="nothing-listens"),
    pytest.param(BackendTimeoutError("read timeout talking to http://h:1/v1/chat/completions",
                                     "http://h:1/v1/chat/completions"),
                 "The server at http://h:1/v1 did not answer in time (read timeout).", id="timeout-reading"),
    pytest.param(InferenceError("the server sent no choices"), "The server sent no choices.", id="other-ours"),
    pytest.param(RuntimeError("boom"), "RuntimeError: boom", id="not-ours-keeps-class"),
])
def test_explain_says_one_plain_sentence(error, expected):
    text = describe_error(error)
    assert text == expected
    assert "\n" not in text


def test_explain_prefers_the_callers_label():
    error = _named(ServerExitedError("smol", 3, [], "while starting"), label=None)
    assert describe_error(error, "Tiny model").startswith("Tiny model could not start")
    assert describe_error(error).startswith("'smol' could not start")
