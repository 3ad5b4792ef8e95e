"""The endpoint's own answers (pure): OpenAI-shaped error bodies, and the HTTP status each typed error gets."""

from __future__ import annotations

import json

from ..errors import (
    BackendConnectionError,
    BackendStatusError,
    BackendTimeoutError,
    ConfigError,
    EndpointError,
    LLMError,
    ModelNotFoundError,
    ResourceNotAvailableError,
    ServerError,
    ServerStartTimeout,
)
from ..failures import describe_error

JSON = "application/json"
EVENT_STREAM = "text/event-stream"


def error_body(message: str, kind: str, code: str | None = None) -> bytes:
    """OpenAI's error object: the SDKs show ``message`` and raise by status."""
    return json.dumps({"error": {"message": message, "type": kind, "code": code}}).encode()


def error_event(message: str, kind: str, code: str | None = None) -> bytes:
    """The same error inside a stream whose 200 was already sent (the SDKs raise on an event with ``error``)."""
    return b"data: " + error_body(message, kind, code) + b"\n\n"


def status_for(error: LLMError) -> tuple[int, str]:
    """(HTTP status, OpenAI error type) for a typed error met while routing a request."""
    if isinstance(error, ModelNotFoundError):
        return 404, "model_not_found"
    if isinstance(error, ConfigError):  # the model's entry is invalid, or its key's variable is unset
        return 503, "model_unavailable"
    if isinstance(error, ResourceNotAvailableError):  # too large for the free memory, engine missing
        return 503, "insufficient_resources"
    if isinstance(error, ServerStartTimeout) or isinstance(error, BackendTimeoutError):
        return 504, "timeout"
    if isinstance(error, (ServerError, EndpointError)):
        return 503, "model_unavailable"
    if isinstance(error, BackendConnectionError):
        return 502, "upstream_unreachable"
    if isinstance(error, BackendStatusError):
        return error.status_code, "upstream_error"
    return 500, "server_error"


def message_for(error: LLMError, model_id: str | None) -> str:
    label = f"'{model_id}'" if model_id else None
    return describe_error(error, label) if not isinstance(error, (ModelNotFoundError, EndpointError)) else str(error)
