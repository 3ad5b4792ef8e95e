"""A failure in one plain sentence: the model by its name, the cause read from the server's log or the server's own
message, and advice only where it can help. The window (header, answer card, footer) and llmctl all say it so."""

from __future__ import annotations

import re
from dataclasses import dataclass
from collections.abc import Sequence

from .errors import (
    BackendConnectionError,
    BackendStatusError,
    BackendTimeoutError,
    ContextOverflowError,
    LLMError,
    ModelNotServedError,
    PortInUseError,
    ServerError,
    ServerExitedError,
    ServerStartTimeout,
)
from .protocol.error_body import server_message

CONFIG_FILE = "llm_backends.yaml"
STARTING = ("while starting", "during warm-up")


@dataclass(frozen=True)
class Cause:
    """Why a server failed, as its log says; ``key`` is the llm_backends.yaml key that fixes it, if one does."""

    text: str
    key: str | None = None


# (pattern, cause with the groups as {0}, {1}, key that fixes it); the first rule that matches a line wins, so
# the precise ones come first. The lines are real llama-server (and Python engine) output.
_RULES: list[tuple[re.Pattern[str], str, str | None]] = [
    (re.compile(r"invalid argument: (\S+)"), "llama-server does not know the option {0}", "extra_args"),
    (re.compile(r"unrecognized arguments?: (.+)"), "the engine does not know the option {0}", "extra_args"),
    (re.compile(r"failed to open GGUF file '([^']+)'(?: \(([^)]*)\))?"), "cannot open the model file {0} ({1})",
     "base_model"),
    (re.compile(r"couldn't bind|address already in use", re.IGNORECASE), "its port is already taken", "port"),
    (re.compile(r"out of memory|failed to allocate|cudaMalloc failed|not enough memory", re.IGNORECASE),
     "there is not enough memory to load the model", "context_size"),
    (re.compile(r"error loading model|failed to load model", re.IGNORECASE), "the engine could not load the model",
     "base_model"),
]
# llama.cpp prefixes: "0.00.008.793 E " (time and level) and "srv    load_model: " (module and function).
_PREFIX = re.compile(r"^\s*(?:\d+(?:\.\d+)+\s+[A-Z]\s+)?(?:[a-z]{2,5}\s+[\w:~<>]+:\s+)?")


def cause_from_log(lines: Sequence[str]) -> Cause | None:
    """The cause a server's last log lines tell, or None when they tell none."""
    lines = _this_run(lines)
    for pattern, text, key in _RULES:
        for line in reversed(lines):  # the latest first: what the engine said last is the telling one
            found = pattern.search(line)
            if found:
                groups = [g or "" for g in found.groups()]
                return Cause(text.format(*groups).replace(" ()", ""), key)
    said = [line for line in lines if "error" in line.lower()]
    if said:
        return _said(said[-1])
    return None


def _said(line: str) -> Cause:
    return Cause(f"the engine said \u201c{_PREFIX.sub('', line).strip()[:200]}\u201d")


def _this_run(lines: Sequence[str]) -> list[str]:
    """The lines after the last start marker (process.spawn appends a run to the log after "===== … starting:")."""
    starts = [i for i, line in enumerate(lines) if line.startswith("=====") and " starting: " in line]
    return list(lines[starts[-1] + 1:] if starts else lines)


def describe_error(error: BaseException, label: str | None = None) -> str:
    """An error as a failed answer keeps it and every front end says it: one plain sentence naming the model
    (``label``, else the name the error carries) and the cause, with advice only where it helps. The class name,
    the raw body and the log lines stay out of it: the server's log is one click away in the window."""
    if isinstance(error, ServerError):
        return _server(error, label or error.label or (f"'{error.model_id}'" if error.model_id else "The server"))
    if isinstance(error, ContextOverflowError):
        sizes = f" ({error.prompt_tokens} tokens for a context of {error.context_size})" \
            if error.prompt_tokens and error.context_size else ""
        return (f"The conversation does not fit the model's context{sizes}; shorten it or raise context_size in "
                f"{CONFIG_FILE}.")
    if isinstance(error, ModelNotServedError):
        return _sentence(str(error))
    if isinstance(error, BackendStatusError):
        said = server_message(error.body)
        where = f" from {error.url}" if error.url else ""
        if said:
            return _sentence(f"{said} (HTTP {error.status_code}{where})")
        return f"The server answered HTTP {error.status_code}{where} with no message."
    if isinstance(error, BackendConnectionError) and str(error).startswith("cannot connect"):
        return f"Not reachable: nothing listens at {_root(error.url)}."
    if isinstance(error, BackendTimeoutError):
        return f"The server at {_root(error.url)} did not answer in time ({str(error).split(' talking')[0]})."
    if isinstance(error, LLMError):
        return _sentence(str(error).splitlines()[0] if str(error) else type(error).__name__)
    return f"{type(error).__name__}: {error}"  # not one of ours: a bug, where the class name helps


def _server(error: ServerError, name: str) -> str:
    if isinstance(error, PortInUseError):
        owner = f" by {error.owner}" if error.owner else ""
        return f"{name} could not start: port {error.port} is already in use{owner}; change its port in {CONFIG_FILE}."
    tail = getattr(error, "log_tail", [])
    cause = cause_from_log(tail)
    if isinstance(error, ServerStartTimeout):
        why = f" ({cause.text})" if cause else ""
        return (f"{name} was not ready after {error.timeout_s:g} s{why}; if it loads slowly, raise startup_timeout_s "
                f"in {CONFIG_FILE}.")
    if isinstance(error, ServerExitedError):
        code = "" if error.returncode is None else f" (exit status {error.returncode})"
        if error.when in STARTING:  # a restart cannot help: the advice is the key that fixes it, where one does
            said = [line for line in _this_run(tail) if line.strip()]
            cause = cause or (_said(said[-1]) if said else None)  # an engine's last words before it gave up
            if cause is not None and cause.key is not None:
                return f"{name} could not start: {cause.text}; fix {cause.key} in {CONFIG_FILE}."
            return f"{name} could not start{code}: {cause.text}." if cause else f"{name} could not start{code}."
        why = f": {cause.text}" if cause else ""
        return f"{name} stopped unexpectedly{code}{why}; it restarts when you send the next message."
    return _sentence(str(error).splitlines()[0])


def _root(url: str | None) -> str:
    """The server's address as configured (``…/v1``), not the route that failed."""
    if not url:
        return "the server"
    for route in ("/chat/completions", "/completions", "/completion", "/models"):
        if url.endswith(route):
            return url[: -len(route)]
    return url


def _sentence(text: str) -> str:
    text = text.strip()
    text = text[:1].upper() + text[1:]
    return text if text.endswith((".", "!", "?", "…")) else text + "."
