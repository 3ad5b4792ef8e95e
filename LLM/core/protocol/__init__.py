"""The wire protocol: OpenAI-compatible HTTP, SSE framing, chunk decoding and the text filters on the stream.

``sse`` (bytes -> events) and ``decoding`` (payloads -> typed events) are pure; ``client`` is the one
place that does HTTP and translates httpx errors. ``reasoning`` and ``stop_sequences`` are the
incremental filters applied to streamed text.
"""

from .client import ChatClient, ProbeReport, ProbeStep, api_key_from_env

__all__ = ["ChatClient", "ProbeReport", "ProbeStep", "api_key_from_env"]
