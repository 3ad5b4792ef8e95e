"""LLM.core: everything the workbench does, in plain Python (asyncio, httpx, pydantic); never imports Qt.

The map, leaves first (each package imports only the ones above it)::

    errors.py, events.py, validation.py   leaves: the error hierarchy, the stream/tool-call vocabulary,
                                          pydantic errors -> messages that name the key; atomic_files.py
    config.py                             llm_backends.yaml -> validated ModelEntry objects (pure)
    server_groups.py                      which entries share one server (pure)
    chat/                                 the chat model: request parameters (InferenceConfig), the
                                          messages a request sends, conversation trees, answer metrics
    attachments/                          files with a message: media by their bytes, images for vision models,
                                          documents as text (PDF pages), rendering within the context, the
                                          content-addressed store
    protocol/                             the wire: SSE framing, chunk decoding, <think> and stop-sequence
                                          filters, ChatML, the OpenAI-compatible HTTP client
    models/                               knowing models without loading them: inspection, capabilities
                                          with confidence, memory fit, the catalog, downloads, adding entries
    servers/                              persistent model servers: launchers per engine, the supervisor
                                          state machine, the manager, the state file, the HF server
    tools/                                tool calling: registry and @tool, tools without code (JSON files),
                                          built-ins and the sandbox, the <tool_call> parser, tool prompts,
                                          the approval policy, the iterative loop
    mcp/                                  MCP tool servers (mcp.json) whose tools join the tool registry
    history/                              saved conversations: the SQLite store (schema migrations,
                                          search), partial saves of streaming answers, export/import
    model_reports.py                      a configured model or a path judged: files + yaml + engine + machine
    runtime.py                            config + servers + clients + tools for one process
    session/                              a chat session (no Qt): the events one request streams, the answer
                                          recorder (every event applied to the saved message once), the
                                          session owning a conversation and its current request, replays
    inference.py                          the public API: InferenceConfig in, text or events out
    model_api.py                          the guide's model API: get_capabilities, get_model_recommendations
    evaluation/                           tool-use evals: JSONL suites, scoring, runs through the loop
    router/                               one OpenAI-compatible endpoint over every model, for other apps:
                                          who may call, routing through the runtime, cold starts, native
                                          tool calls, what it did (llmctl serve, the Endpoint tab)

Public faces: this module exports what the front ends share to chat with a model: the config, the runtime,
requests and their stream events, the conversation model, stop, and the errors they catch. Each package's
``__init__`` is the face of its room (``from LLM.core.history import HistoryStore``, ``from LLM.core.tools
import StepFinished``). The window (``LLM.desktop_app``) and the CLI (``LLM.cli``) import only names listed in
these ``__all__``; everything else is private to core. Each ``__all__`` is sorted and equals the names its face
binds (LLM/tests/test_exported_members.py), and every name here is imported from here by a front end
(LLM/tests/test_architecture.py).
"""

from .cancellation import absorb_user_stop, stop_generation
from .chat import Conversation, GenerationSettings, Message, Notice, StepRecord, TextPart, ToolCard
from .config import BackendsConfig, ModelEntry, load_backends, resolve_config_path
from .errors import ConfigError, HistoryError, LLMError
from .events import Done, ReasoningDelta, TextDelta, ToolCall, Usage
from .history import AnswerSaver
from .model_api import get_capabilities, get_model_recommendations, update_model_recommendations
from .inference import DEFAULT_TOOLS, InferenceConfig, ToolEnabledInferenceConfig, response_for, stream_inference
from .protocol import key_file_expression
from .runtime import Runtime
from .tools import ApprovalDecision, StepStarted, Tool

__all__ = [
    "AnswerSaver",
    "ApprovalDecision",
    "BackendsConfig",
    "ConfigError",
    "Conversation",
    "DEFAULT_TOOLS",
    "Done",
    "GenerationSettings",
    "HistoryError",
    "InferenceConfig",
    "LLMError",
    "Message",
    "ModelEntry",
    "Notice",
    "ReasoningDelta",
    "Runtime",
    "StepRecord",
    "StepStarted",
    "TextDelta",
    "TextPart",
    "Tool",
    "ToolCall",
    "ToolCard",
    "ToolEnabledInferenceConfig",
    "Usage",
    "absorb_user_stop",
    "get_capabilities",
    "get_model_recommendations",
    "key_file_expression",
    "load_backends",
    "resolve_config_path",
    "response_for",
    "stop_generation",
    "stream_inference",
    "update_model_recommendations",
]
