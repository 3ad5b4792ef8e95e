"""Is a remote (``backend: openai``) model's server there? One short GET of its model list, said in plain words."""

from __future__ import annotations

from dataclasses import dataclass

from ..config import ModelEntry
from ..errors import BackendConnectionError, BackendError, BackendStatusError, BackendTimeoutError, LLMError
from ..protocol.client import ChatClient, api_key_from_env
from ..protocol.error_body import server_message

PROBE_TIMEOUT_S = 3.0


@dataclass(frozen=True)
class Reachability:
    """What a probe found: ``ok`` when the server answers and serves the model; ``text`` says it to people."""

    model_id: str
    ok: bool
    text: str


async def probe_reachability(entry: ModelEntry, timeout_s: float = PROBE_TIMEOUT_S) -> Reachability:
    """GET {server_url}/models with the entry's key, within ``timeout_s``; never raises an LLMError."""
    url = (entry.server_url or entry.base_url).rstrip("/")
    try:
        key = api_key_from_env(entry.api_key_env)
    except LLMError as exc:
        return Reachability(entry.id, False, f"Cannot check: {exc}")
    client = ChatClient(entry.base_url, entry.request_model_name, api_key=key,
                        connect_timeout_s=timeout_s, read_timeout_s=timeout_s)
    try:
        models = await client.list_models()
    except BackendStatusError as exc:
        said = server_message(exc.body) or "no message"
        if exc.status_code in (401, 403):
            return Reachability(entry.id, False, f"Refused: {url} did not accept the key (HTTP {exc.status_code}: "
                                                 f"{said}); check api_key_env in llm_backends.yaml")
        if exc.status_code in (404, 405, 501):  # something answers; it just does not list its models
            return Reachability(entry.id, True, f"Reachable: {url}")
        return Reachability(entry.id, False, f"{url} answers HTTP {exc.status_code}: {said}")
    except BackendTimeoutError:
        return Reachability(entry.id, False, f"Not reachable: {url} did not answer within {timeout_s:g} s")
    except BackendConnectionError:
        return Reachability(entry.id, False, f"Not reachable: nothing listens at {url}")
    except LLMError as exc:  # a reply that is no model list: something answers, but not as an OpenAI server
        what = str(exc).splitlines()[0] if isinstance(exc, BackendError) else str(exc)
        return Reachability(entry.id, False, f"Unexpected answer: {what}")
    finally:
        await client.aclose()
    if models and entry.request_model_name not in models:
        return Reachability(entry.id, False, f"Reachable, but {url} does not serve '{entry.request_model_name}' "
                                             f"(it serves {', '.join(models[:5])}); check model_name in "
                                             "llm_backends.yaml")
    return Reachability(entry.id, True, f"Reachable: {url}")
