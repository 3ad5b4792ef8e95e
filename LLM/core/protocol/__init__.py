"""The wire protocol: OpenAI-compatible HTTP, SSE framing, chunk decoding and the text filters on the stream.

``sse`` (bytes -> events) and ``decoding`` (payloads -> typed events) are pure; ``client`` is the one
place that does HTTP and translates httpx errors. ``reasoning`` and ``stop_sequences`` are the
incremental filters applied to streamed text; ``props`` is what an engine says it can do; ``curl`` writes
a request as the command that replays it.
"""

from .client import ChatClient, api_key_from_env
from .curl import curl_command, key_file_expression
from .props import EngineProps
from .stop_sequences import StopSequenceFilter

__all__ = ["ChatClient", "EngineProps", "StopSequenceFilter", "api_key_from_env", "curl_command", "key_file_expression"]
