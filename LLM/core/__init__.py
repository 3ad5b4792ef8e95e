"""LLM.core: everything the workbench does, in plain Python (asyncio, httpx, pydantic); never imports Qt.

The map, leaves first (each package imports only the ones above it)::

    errors.py, events.py, validation.py   leaves: the error hierarchy, the stream/tool-call vocabulary,
                                          pydantic errors -> messages that name the key
    config.py                             llm_backends.yaml -> validated ModelEntry objects (pure)
    chat/                                 the chat model: request parameters (InferenceConfig), the
                                          messages a request sends, conversation trees, answer metrics,
                                          ChatML
    protocol/                             the wire: SSE framing, chunk decoding, <think> and stop-sequence
                                          filters, the OpenAI-compatible HTTP client
    servers/                              persistent model servers: launchers per engine, the supervisor
                                          state machine, the manager, the state file, the HF server
    tools/                                tool calling: registry and @tool, tools without code (JSON files),
                                          built-ins and the sandbox, the <tool_call> parser, tool prompts,
                                          the iterative loop
    mcp/                                  MCP tool servers (mcp.json) whose tools join the tool registry
    history/                              saved conversations: the SQLite store (schema migrations,
                                          search), partial saves of streaming answers, export/import
    runtime.py                            config + servers + clients + tools for one process
    inference.py                          the public API: InferenceConfig in, text or events out
    evaluation/                           tool-use evals: JSONL suites, scoring, runs through the loop

The window (``LLM.desktop_app``) and the CLI (``LLM.cli``) import only the names exported here.
"""

from .cancellation import USER_STOP, absorb_user_stop, stop_generation
from .chat.conversation import (
    Conversation,
    GenerationSettings,
    Message,
    Notice,
    StepRecord,
    TextPart,
    ToolCard,
    answer_turns,
)
from .chat.metrics import Metrics, MetricsMeter
from .config import (
    BackendsConfig,
    ModelEntry,
    load_backends,
    parse_backends,
    resolve_config_path,
)
from .errors import (
    BackendConnectionError,
    BackendError,
    BackendStatusError,
    BackendTimeoutError,
    ConfigError,
    ContextOverflowError,
    ConversationNotFoundError,
    EmptyResponseError,
    EngineBuildError,
    GenerationCancelled,
    HistoryDamagedError,
    HistoryError,
    HistoryVersionError,
    ImportFormatError,
    InferenceError,
    LLMError,
    MaxTokensExhaustedError,
    McpConfigError,
    McpConnectionError,
    McpError,
    McpStartError,
    McpTimeoutError,
    McpToolCallError,
    ModelNotFoundError,
    ModelNotServedError,
    PortInUseError,
    ResourceNotAvailableError,
    ServerError,
    ServerExitedError,
    ServerStartTimeout,
    ToolError,
)
from .evaluation import (
    EVAL_MODES,
    EvalEvent,
    EvalFinished,
    EvalReport,
    EvalStep,
    ModeFinished,
    ModeSummary,
    Suite,
    SuiteError,
    TaskFinished,
    TaskOutcome,
    TaskStarted,
    arun_eval,
    default_suite_path,
    load_suite,
    parse_eval_modes,
    parse_suite,
    run_eval,
)
from .events import (
    Done,
    ReasoningDelta,
    StreamEvent,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    Usage,
)
from .history import (
    INTERRUPTED,
    UNKNOWN_TIME,
    AnswerSaver,
    ConversationSummary,
    HistoryStore,
    data_dir,
    default_history_path,
    from_json,
    from_json_file,
    local_datetime,
    local_time_text,
    search_terms,
    to_json,
    to_markdown,
)
from .inference import (
    DEFAULT_TOOLS,
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
from .protocol.client import ChatClient, ProbeReport
from .protocol.curl import curl_command, key_file_expression
from .protocol.props import EngineProps
from .runtime import Runtime
from .servers import ServerEvent, ServerManager, ServerState, ServerStatus
from .servers.llama_build import (
    BuildProgress,
    build_llama_server,
    default_build,
    engine_version,
    install_llama_server,
)
from .servers.process import log_tail
from .tools import Tool, ToolRegistry, ToolResult, tool
from .tools.canned import (
    REPLY_KINDS,
    CannedTool,
    CannedToolError,
    canned_tool_from_form,
)
from .mcp import (
    ImportSource,
    McpConfig,
    McpEvent,
    McpManager,
    McpServerStatus,
    McpState,
    McpToolSpec,
    default_mcp_config_path,
    load_mcp_config,
    parse_mcp_config,
    present_sources,
)
from .tools.approval import Approval, ApprovalDecision, ApprovalHook, ApprovalPolicy, approval_key, approve_call
from .tools.loop import (
    LoopEvent,
    LoopFinished,
    LoopNotice,
    StepFinished,
    StepStarted,
    ToolCallEvent,
    ToolResultEvent,
    ToolRunResult,
    ToolStep,
)
from .tools.parsing import ParsedOutput, ToolCallStreamParser, parse_tool_calls
from .tools.registry import default_tools_dir

__all__ = [
    "ContextOverflowError", "ModelNotServedError", "INTERRUPTED", "StepRecord", "answer_turns", "curl_command", "key_file_expression", "AnswerSaver", "ConversationNotFoundError", "ConversationSummary", "HistoryDamagedError",
    "HistoryError", "HistoryStore", "HistoryVersionError", "ImportFormatError", "data_dir", "default_history_path",
    "from_json", "to_json", "to_markdown", "UNKNOWN_TIME", "from_json_file", "local_datetime", "local_time_text",
    "search_terms",
    "DEFAULT_TOOLS", "USER_STOP", "ApprovalHook", "BackendConnectionError", "BackendError", "BackendStatusError",
    "BackendTimeoutError", "BackendsConfig", "BuildProgress", "ChatClient", "ConfigError", "Conversation", "Done",
    "EmptyResponseError", "EngineBuildError", "EngineProps", "GenerationCancelled", "GenerationSettings", "InferenceConfig", "InferenceError",
    "MaxTokensExhaustedError",
    "InferenceResponse", "LLMError", "LoopEvent", "LoopFinished", "LoopNotice", "Message", "Metrics",
    "MetricsMeter", "ModelEntry", "ModelNotFoundError", "Notice", "ParsedOutput", "PortInUseError", "ProbeReport",
    "ReasoningDelta", "ResourceNotAvailableError", "Runtime", "ServerError", "ServerEvent", "ServerExitedError",
    "ServerManager", "ServerStartTimeout", "ServerState", "ServerStatus", "StepFinished", "StepStarted",
    "StreamEvent", "TextDelta", "TextPart", "Tool", "ToolCall", "ToolCallDelta", "ToolCallEvent",
    "ToolCallStreamParser", "ToolCard", "ToolEnabledInferenceConfig", "ToolError", "ToolRegistry", "ToolResult",
    "ToolResultEvent", "ToolRunResult", "ToolStep", "Usage", "absorb_user_stop", "ainfer", "arun_tool_inference", "build_llama_server", "default_build", "engine_version", "infer",
    "install_llama_server",
    "load_backends", "log_tail", "parse_backends", "parse_tool_calls", "resolve_config_path", "run_inference",
    "run_tool_inference", "stop_generation", "stream_inference", "stream_tool_inference", "tool",
    "REPLY_KINDS", "CannedTool", "CannedToolError", "canned_tool_from_form", "default_tools_dir",
    "EVAL_MODES", "EvalEvent", "EvalFinished", "EvalReport", "EvalStep", "ModeFinished", "ModeSummary", "Suite",
    "SuiteError", "TaskFinished", "TaskOutcome", "TaskStarted", "arun_eval", "default_suite_path", "load_suite",
    "parse_eval_modes", "parse_suite", "run_eval",
    "Approval", "ApprovalDecision", "ApprovalPolicy", "approval_key", "approve_call",
    "ImportSource", "McpConfig", "McpConfigError", "McpConnectionError", "McpError", "McpEvent",
    "McpManager", "McpServerStatus", "McpStartError", "McpState", "McpTimeoutError", "McpToolCallError",
    "McpToolSpec", "default_mcp_config_path", "load_mcp_config", "parse_mcp_config", "present_sources",
]
