"""LLM.core: config, model servers, the streaming client, inference and tool calling (no Qt)."""

from .client import ChatClient, ProbeReport
from .config import BackendsConfig, ModelEntry, load_backends, parse_backends
from .errors import (
    BackendConnectionError,
    BackendError,
    BackendStatusError,
    BackendTimeoutError,
    ConfigError,
    EmptyResponseError,
    GenerationCancelled,
    InferenceError,
    LLMError,
    ModelNotFoundError,
    PortInUseError,
    ResourceNotAvailableError,
    ServerError,
    ServerExitedError,
    ServerStartTimeout,
    ToolError,
)
from .events import Done, ReasoningDelta, TextDelta, ToolCallDelta, Usage
from .inference import (
    InferenceConfig,
    InferenceResponse,
    ToolEnabledInferenceConfig,
    ainfer,
    arun_tool_inference,
    infer,
    run_inference,
    run_tool_inference,
    stream_inference,
    stream_tool_inference,
)
from .runtime import Runtime
from .servers import ServerEvent, ServerManager, ServerState
from .tool_loop import ToolRunResult
from .toolcalls import ToolCall, ToolCallStreamParser, parse_tool_calls
from .tools import Tool, ToolRegistry, ToolResult, tool

__all__ = [
    "BackendConnectionError", "BackendError", "BackendStatusError", "BackendTimeoutError", "BackendsConfig",
    "ChatClient", "ConfigError", "Done", "EmptyResponseError", "GenerationCancelled", "InferenceConfig",
    "InferenceError", "InferenceResponse", "LLMError", "ModelEntry", "ModelNotFoundError", "PortInUseError",
    "ProbeReport", "ReasoningDelta", "ResourceNotAvailableError", "Runtime", "ServerError", "ServerEvent",
    "ServerExitedError", "ServerManager", "ServerStartTimeout", "ServerState", "TextDelta", "Tool", "ToolCall",
    "ToolCallDelta", "ToolCallStreamParser", "ToolEnabledInferenceConfig", "ToolError", "ToolRegistry",
    "ToolResult", "ToolRunResult", "Usage", "ainfer", "arun_tool_inference", "infer", "load_backends",
    "parse_backends", "parse_tool_calls", "run_inference", "run_tool_inference", "stream_inference",
    "stream_tool_inference", "tool",
]
