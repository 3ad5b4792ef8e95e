"""The one exception hierarchy of LLM.core.

Low-level exceptions (httpx, OSError, yaml, pydantic) are translated into these at the
boundary where they happen, chained with ``from``, so callers catch one family::

    LLMError
    ├── ConfigError                      bad llm_backends.yaml or bad request parameters
    │   └── ModelNotFoundError           model id not in the config
    ├── ServerError                      a model server we manage
    │   ├── PortInUseError               port taken by a process that is not our server
    │   ├── ServerStartTimeout           not ready before startup_timeout_s
    │   ├── ServerExitedError            the process died (carries the last log lines)
    │   └── ServerRetired                a config reload replaced this server; the manager retries on the new one
    ├── ResourceNotAvailableError        not enough memory / missing engine, compiler or package
    │   └── ModelTooLargeError           a model's estimate does not fit this machine (carries the numbers)
    ├── InspectionError                  a model file or folder cannot be read (names the path and what is wrong)
    ├── DownloadError                    fetching from the Hugging Face Hub (names the repository and file)
    │   ├── DownloadAccessError          401/403: a gated or private repository (says how to get access)
    │   ├── DownloadNotFoundError        no such repository, revision or file
    │   ├── DownloadIntegrityError       the file's sha256 differs from the hub's (the file was removed)
    │   ├── DownloadSpaceError           not enough free disk for the file
    │   ├── DownloadOfflineError         the hub cannot be reached (offline, HF_HUB_OFFLINE)
    │   └── DownloadCancelled            the user cancelled; the partial file is kept for a resume
    ├── EngineBuildError                 building llama.cpp's llama-server failed (carries the build log tail)
    │   └── AdapterConversionError       a PEFT adapter could not be converted to a GGUF LoRA (names the file)
    ├── BackendError                     talking HTTP to a server
    │   ├── BackendConnectionError       cannot connect / connection dropped
    │   ├── BackendTimeoutError          connect or read timeout
    │   ├── BackendStatusError           HTTP error status or error object in the stream
    │   │   ├── ContextOverflowError     the prompt does not fit the model's context (HTTP 400)
    │   │   └── ModelNotServedError      the server does not serve that model name (HTTP 404)
    │   └── EmptyResponseError           HTTP 200 with an empty body (a real llama.cpp quirk)
    ├── InferenceError                   the request itself (empty answer, bad reply shape)
    │   └── MaxTokensExhaustedError      max_tokens ran out before any answer (a reasoning model still thinking)
    ├── ToolError                        tool registry / tool loading problems
    ├── McpError                         an MCP tool server (names the server; carries its stderr tail)
    │   ├── McpConfigError               mcp.json unreadable or not an mcpServers object (also a ConfigError)
    │   ├── McpStartError                the server could not be started or connected to
    │   ├── McpConnectionError           the connection closed (the server exited) or is not ready
    │   ├── McpTimeoutError              a request got no answer within the server's timeout (-32001)
    │   └── McpToolCallError             the server answered a call with an error (isError or JSON-RPC)
    ├── EndpointError                    the endpoint for other apps (llmctl serve): port taken, unsafe bind, no token
    ├── AttachmentError                  a file given with a message (names the file and what is wrong)
    │   ├── UnsupportedAttachmentError   not an image, a text or a PDF (names the type its bytes show)
    │   └── VisionNotSupportedError      an image for a model without vision (names the models that have it)
    ├── SessionError                     a chat session action that cannot run now (busy, no model, not a user message)
    ├── HistoryError                     the conversation store (names the database file)
    │   ├── HistoryDamagedError          the file is not a readable database; it is left untouched
    │   ├── HistoryVersionError          written by a newer version of the workbench; left untouched
    │   ├── ConversationNotFoundError    no conversation with that id (or id prefix)
    │   └── ImportFormatError            an import file unreadable, too large or deep, or not an export (names the key)
    └── GenerationCancelled              the caller cancelled (Stop, Ctrl-C)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence


class LLMError(Exception):
    """Base of every error raised by LLM.core."""


class ConfigError(LLMError, ValueError):
    """Invalid configuration or request parameters; the message names file, model and key.

    Also a ValueError, so code that validated inputs with ``except ValueError`` keeps working.
    """

    def __init__(self, message: str, problems: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.problems = list(problems) or [message]


class ModelNotFoundError(ConfigError):
    def __init__(self, model_id: str, known_ids: Iterable[str] = ()) -> None:
        known = sorted(known_ids)
        message = f"Model '{model_id}' not found in config"
        if known:
            message += f" (known models: {', '.join(known)})"
        super().__init__(message)
        self.model_id = model_id
        self.known_ids = known


class ServerError(LLMError):
    """A managed model server failed.

    ``label`` (the model's display name) and ``log_path`` (its server's log) are filled in by the supervisor
    that reports the error, so a front end can say it in plain words and point at the log."""

    label: str | None = None
    log_path: str | None = None

    def __init__(self, message: str, model_id: str | None = None) -> None:
        super().__init__(message)
        self.model_id = model_id


class ServerRetired(ServerError):
    """A retired supervisor refused a start. The manager catches it and serves the request from the successor;
    it reaches nobody else unless they hold a ModelServer of their own."""

    def __init__(self, model_id: str) -> None:
        super().__init__(f"the server of '{model_id}' was replaced by a config reload; send again to use the "
                         "new settings", model_id)


class PortInUseError(ServerError):
    def __init__(self, port: int, owner: str | None = None, model_id: str | None = None) -> None:
        message = f"port {port} is already in use"
        message += f" by {owner}" if owner else " by another process"
        if model_id:
            message = f"cannot start '{model_id}': {message}; change its port in llm_backends.yaml"
        super().__init__(message, model_id)
        self.port = port
        self.owner = owner


class ServerStartTimeout(ServerError):
    def __init__(self, model_id: str, timeout_s: float, log_tail: Sequence[str] = ()) -> None:
        message = f"server for '{model_id}' was not ready after {timeout_s:g} s"
        super().__init__(_with_tail(message, log_tail), model_id)
        self.timeout_s = timeout_s
        self.log_tail = list(log_tail)


class ServerExitedError(ServerError):
    def __init__(
        self, model_id: str, returncode: int | None, log_tail: Sequence[str] = (), when: str = ""
    ) -> None:
        code = "unknown exit status" if returncode is None else f"exit status {returncode}"
        message = f"server for '{model_id}' exited{(' ' + when) if when else ''} ({code})"
        super().__init__(_with_tail(message, log_tail), model_id)
        self.returncode = returncode
        self.log_tail = list(log_tail)
        self.when = when  # "while starting", "during warm-up", "unexpectedly", "while answering"


class ResourceNotAvailableError(LLMError):
    """The machine lacks what a model needs (memory, an optional engine package)."""


class ModelTooLargeError(ResourceNotAvailableError):
    """A model whose estimated memory exceeds what this machine has; ``fitting_context`` is a context size
    that would fit (None when even the weights do not)."""

    def __init__(self, message: str, needed: int = 0, available: int = 0, fitting_context: int | None = None) -> None:
        super().__init__(message)
        self.needed = needed
        self.available = available
        self.fitting_context = fitting_context


class InspectionError(LLMError):
    """A model file or folder that cannot be inspected: missing, not a model, or a damaged header."""


class DownloadError(LLMError):
    """A download from the Hugging Face Hub failed; the message names the repository and file."""


class DownloadAccessError(DownloadError):
    """The hub refused access (401/403): a gated or private repository, or a bad HF_TOKEN."""


class DownloadNotFoundError(DownloadError):
    """No such repository, revision or file on the hub."""


class DownloadIntegrityError(DownloadError):
    """The downloaded bytes do not match the hub's sha256; the file was removed."""


class DownloadSpaceError(DownloadError):
    """Not enough free disk space in the models directory for the file."""


class DownloadOfflineError(DownloadError):
    """The hub cannot be reached (no network, or HF_HUB_OFFLINE is set)."""


class DownloadCancelled(DownloadError):
    """The user cancelled the download; what was fetched so far is kept so that a new start resumes."""


class EngineBuildError(LLMError):
    def __init__(self, message: str, log_path: str | None = None, log_tail: Sequence[str] = ()) -> None:
        if log_path:
            message += f" (full log: {log_path})"
        super().__init__(_with_tail(message, log_tail))
        self.log_path = log_path
        self.log_tail = list(log_tail)


class AdapterConversionError(EngineBuildError):
    def __init__(self, adapter: str, reason: str, log_path: str | None = None, log_tail: Sequence[str] = ()) -> None:
        super().__init__(f"cannot convert the PEFT adapter {adapter} to a GGUF LoRA: {reason}", log_path, log_tail)
        self.adapter = adapter


class BackendError(LLMError):
    """Talking to a model server over HTTP failed."""

    def __init__(self, message: str, url: str | None = None) -> None:
        super().__init__(message)
        self.url = url


class BackendConnectionError(BackendError):
    pass


class BackendTimeoutError(BackendError):
    pass


class BackendStatusError(BackendError):
    def __init__(self, status_code: int, body: str, url: str | None = None, message: str | None = None) -> None:
        snippet = body if len(body) <= 500 else body[:500] + "..."
        where = f" from {url}" if url else ""
        super().__init__(message or f"HTTP {status_code}{where}: {snippet}", url)
        self.status_code = status_code
        self.body = body


class ContextOverflowError(BackendStatusError):
    """The server refused the request because the prompt does not fit the model's context.

    ``prompt_tokens`` and ``context_size`` are the server's figures when it gives them.
    """

    def __init__(
        self, status_code: int, body: str, url: str | None = None,
        prompt_tokens: int | None = None, context_size: int | None = None,
    ) -> None:
        sizes = f" ({prompt_tokens} tokens for a context of {context_size})" if prompt_tokens and context_size else ""
        where = f" at {url}" if url else ""
        super().__init__(status_code, body, url, f"the request does not fit the model's context{sizes}: the server"
                         f"{where} refused it (HTTP {status_code}); shorten the conversation or raise context_size "
                         f"in llm_backends.yaml. Server said: {body[:300]}")
        self.prompt_tokens = prompt_tokens
        self.context_size = context_size


class ModelNotServedError(BackendStatusError):
    """The server answered 404 for the model name: it does not serve it; ``available`` lists what it does."""

    def __init__(self, model_name: str, available: Sequence[str], url: str | None = None, body: str = "") -> None:
        where = f" at {url}" if url else ""
        has = ", ".join(available) if available else "no models listed"
        super().__init__(404, body, url, f"model '{model_name}' not found on the server{where}; it has: {has} "
                         "(check model_name in llm_backends.yaml)")
        self.model_name = model_name
        self.available = list(available)


class EmptyResponseError(BackendError):
    """The server answered 200 but sent no data at all; never treated as an empty answer."""


class InferenceError(LLMError):
    """The server answered, but not with a usable reply."""


class MaxTokensExhaustedError(InferenceError):
    """The answer hit max_tokens before the model wrote any of it: a reasoning model spent the whole budget
    inside ``<think>``. ``reasoning_text`` keeps what it thought; raising max_tokens is the cure."""

    def __init__(self, max_tokens: int | None, reasoning_text: str = "") -> None:
        spent = f"all {max_tokens} max_tokens" if max_tokens else "all its max_tokens"
        doing = " reasoning" if reasoning_text.strip() else ""
        super().__init__(f"the model used {spent}{doing} and gave no answer; raise max_tokens (max_new_tokens)")
        self.max_tokens = max_tokens
        self.reasoning_text = reasoning_text


class ToolError(LLMError):
    """Defining, loading or looking up a tool failed."""


class McpError(LLMError):
    """An MCP tool server failed; ``server`` names it and ``stderr_tail`` holds its last stderr lines."""

    def __init__(self, message: str, server: str | None = None, stderr_tail: Sequence[str] = ()) -> None:
        super().__init__(_with_tail(message, stderr_tail))
        self.reason = message  # the message without the stderr lines, for one-line reports
        self.server = server
        self.stderr_tail = list(stderr_tail)


class McpConfigError(McpError, ConfigError):
    """mcp.json as a whole cannot be used (not JSON, no mcpServers object); the message names the file."""

    def __init__(self, message: str) -> None:
        ConfigError.__init__(self, message)
        self.reason = message
        self.server = None
        self.stderr_tail = []


class McpStartError(McpError):
    """Spawning, connecting to or initialising the server failed."""


class McpConnectionError(McpError):
    """The connection to the server closed (it exited or dropped the stream), or it is not running."""


class McpTimeoutError(McpError):
    """A request to the server got no answer in time (JSON-RPC -32001 or our own deadline)."""


class McpToolCallError(McpError):
    """The server answered a tool call with an error; the message is what it said."""


class GenerationCancelled(LLMError):
    """The caller cancelled a generation; ``partial_text`` keeps what had arrived."""

    def __init__(self, message: str = "generation cancelled", partial_text: str = "") -> None:
        super().__init__(message)
        self.partial_text = partial_text


def _with_tail(message: str, log_tail: Sequence[str]) -> str:
    if not log_tail:
        return message
    return message + "; last log lines:\n" + "\n".join(log_tail)


class EndpointError(LLMError):
    """The endpoint other apps use (llmctl serve) cannot start or serve: a port taken, an unsafe bind, no token."""


class AttachmentError(LLMError):
    """A file given with a message cannot be sent: unreadable, empty, too large, damaged, or it does not fit the
    context. The message names the file; nothing was sent."""


class UnsupportedAttachmentError(AttachmentError):
    """The file's bytes are not an image, a text or a PDF; ``media`` names what they are (a ZIP archive...)."""

    def __init__(self, name: str, media: str) -> None:
        super().__init__(f"{name}: {media} cannot be attached (images: PNG, JPEG, WebP, GIF; documents: text, "
                         f"code, Markdown, CSV, JSON, PDF)")
        self.name = name
        self.media = media


class VisionNotSupportedError(AttachmentError):
    """An image was given to a model without the ``vision`` capability; refused before any request."""

    def __init__(self, model_id: str, names: Sequence[str], vision_models: Sequence[str]) -> None:
        files = ", ".join(names)
        others = (f"models of this config with vision: {', '.join(vision_models)}" if vision_models
                  else "no model of this config has vision (an entry gets it with an mmproj file or "
                       "capabilities: {vision: true})")
        super().__init__(f"{model_id} has no vision capability: it cannot take the image {files}; {others}")
        self.model_id = model_id
        self.vision_models = list(vision_models)


class SessionError(LLMError):
    """A chat session's action cannot run now: an answer is being written, no model is chosen, or the message
    named is not one the action applies to. Nothing was changed."""


class HistoryError(LLMError):
    """The conversation store failed; the message names the database file."""


class HistoryDamagedError(HistoryError):
    """The history file cannot be read as a database. It is never overwritten."""


class HistoryVersionError(HistoryError):
    """The history file was written by a newer version (a schema this one does not know)."""


class ConversationNotFoundError(HistoryError):
    def __init__(self, conversation_id: str, detail: str = "") -> None:
        super().__init__(f"no conversation {conversation_id!r} in the history{detail}")
        self.conversation_id = conversation_id


class ImportFormatError(HistoryError):
    """A file to import cannot be read, is over the size or nesting limits, or is not an exported conversation;
    the message names the file and, for a wrong value, its key path."""


class EvalRunNotFoundError(HistoryError):
    def __init__(self, run_id: int, detail: str = "") -> None:
        super().__init__(f"no eval run {run_id} in the history{detail} (llmctl eval list shows them)")
        self.run_id = run_id
