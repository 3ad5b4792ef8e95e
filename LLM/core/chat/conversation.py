"""The conversation model behind a chat page: plain Python, no Qt; saved by ``LLM.core.history``.

Messages form a tree (each knows its parent) and the page shows one path through it, from
the root to ``head``. Regenerating an answer or editing a question adds a sibling instead of
overwriting, so no version of a conversation is ever lost; the branch switcher moves ``head``.
"""

from __future__ import annotations

import copy
import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from .metrics import Metrics
from .parts import FilePart, Notice, Part, TextPart, ToolCard
from .turns import answer_turns

Role = Literal["user", "assistant"]
Kind = Literal["chat", "tools"]  # the page a conversation belongs to
# streaming: tokens are arriving; done/stopped/failed are final.
Status = Literal["pending", "streaming", "done", "stopped", "failed"]
FINAL_STATUSES = frozenset({"done", "stopped", "failed"})


@dataclass
class StepRecord:
    """One request of a tool-chat answer as it went over the wire: what the inspector shows and what a
    replay starts from."""

    iteration: int
    mode: str
    tool_choice: str = "auto"
    constrained: bool = False  # a grammar held the output to a valid call
    constraint_note: str = ""  # what that grammar held the call to beyond the schemas (strings it capped)
    url: str = ""
    request: dict[str, Any] = field(default_factory=dict)  # the exact body sent
    raw_output: str = ""  # the model's text before parsing, tags included
    native_calls: list[dict[str, Any]] = field(default_factory=list)  # tool_calls as the server sent them
    calls: list[dict[str, Any]] = field(default_factory=list)  # what the loop made of it: name, arguments, source
    parse_errors: list[str] = field(default_factory=list)
    text: str = ""  # the visible text
    reasoning: str = ""
    finish_reason: str = ""
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    request_ms: float = 0.0
    duration_ms: float = 0.0


@dataclass
class Message:
    role: Role
    parts: list[Part] = field(default_factory=list)
    reasoning: str = ""
    status: Status = "done"
    error: str | None = None
    stop_reason: str | None = None  # why a stopped answer stopped, when it was not the user's Stop
    metrics: Metrics | None = None
    model_id: str | None = None
    iteration: int = 0  # tool chat: the step the loop is on
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    parent_id: str | None = None
    # What produced an answer, kept with it so a saved chat says which model and settings wrote what.
    adapter: str | None = None
    backend: str | None = None
    params: dict[str, Any] | None = None
    created: float = field(default_factory=time.time)
    steps: list[StepRecord] = field(default_factory=list)  # tool chat: each request of the loop

    @property
    def content(self) -> str:
        """The visible answer text (what is copied and sent back as history)."""
        texts = [p.text.strip("\n") for p in self.parts if isinstance(p, TextPart)]
        return "\n\n".join(t for t in texts if t)

    @property
    def streamed_text(self) -> str:
        """The text exactly as streamed (``content`` trims each part): what a continuation prefills."""
        return "".join(p.text for p in self.parts if isinstance(p, TextPart))

    @property
    def files(self) -> list[FilePart]:
        """The files a user message carries."""
        return [p for p in self.parts if isinstance(p, FilePart)]

    @property
    def tool_cards(self) -> list[ToolCard]:
        return [p for p in self.parts if isinstance(p, ToolCard)]

    @property
    def final(self) -> bool:
        return self.status in FINAL_STATUSES

    def append_text(self, text: str) -> None:
        """Streamed text joins the last text part; after a tool card it starts a new one."""
        if self.parts and isinstance(self.parts[-1], TextPart):
            self.parts[-1].text += text
        else:
            self.parts.append(TextPart(text))


@dataclass
class GenerationSettings:
    """Per-chat request settings; ``None`` means the model's default from llm_backends.yaml."""

    system_prompt: str | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_new_tokens: int | None = None
    stop: list[str] = field(default_factory=list)


class Conversation:
    """A tree of messages with one active path (root -> head)."""

    def __init__(self, title: str = "New chat", kind: Kind = "chat") -> None:
        self.id = uuid.uuid4().hex
        self.title = title
        self.kind: Kind = kind
        self.created = self.updated = time.time()
        self.settings = GenerationSettings()
        self.nodes: dict[str, Message] = {}
        self.head: str | None = None
        # Tools the user allowed "always" for this chat.
        self.always_allowed: set[str] = set()

    # ----- reading -----
    @property
    def messages(self) -> list[Message]:
        """The active path, oldest first."""
        path: list[Message] = []
        node_id = self.head
        while node_id is not None and node_id in self.nodes:  # (a parent never saved ends the path)
            message = self.nodes[node_id]
            path.append(message)
            node_id = message.parent_id
        path.reverse()
        return path

    def siblings(self, message: Message) -> list[Message]:
        """Alternative versions of a message (same parent), in creation order."""
        return [m for m in self.nodes.values() if m.parent_id == message.parent_id and m.role == message.role]

    def children(self, message_id: str | None) -> list[Message]:
        return [m for m in self.nodes.values() if m.parent_id == message_id]

    def history(self, upto: Message | None = None) -> list[dict[str, Any]]:
        """The chat messages to send for the active path before ``upto``, always well formed.

        An exchange whose answer failed or came back empty is left out whole: the model never
        answered it, and keeping the question would put two user turns in a row (Gemma's and
        Mistral's templates reject that). Tool-chat answers go back as the model made them: an
        assistant turn with ``tool_calls`` and a ``tool`` turn per result, then the final text.
        """
        path: list[Message] = []
        for message in self.messages:
            if upto is not None and message.id == upto.id:
                break
            path.append(message)
        out: list[dict[str, Any]] = []
        for index, message in enumerate(path):
            if message.role == "user":
                answer = path[index + 1] if index + 1 < len(path) else None
                if answer is not None and not _answered(answer):
                    continue
                if out and out[-1]["role"] == "user":  # an answer missing altogether (say, a crash)
                    out[-1] = {"role": "user", "content": _joined(out[-1]["content"], _user_content(message))}
                    continue
                out.append({"role": "user", "content": _user_content(message)})
            elif _answered(message):
                out.extend(answer_turns(message))
        return out
    def last_assistant(self) -> Message | None:
        messages = self.messages
        return messages[-1] if messages and messages[-1].role == "assistant" else None

    # ----- changing -----
    def add(self, message: Message) -> Message:
        message.parent_id = self.head
        self.nodes[message.id] = message
        self.head = message.id
        if message.role == "user" and self.title == "New chat":
            self.title = title_from(message.content) or (message.files[0].name if message.files else self.title)
        return message

    def add_user(self, text: str, files: list[FilePart] | None = None) -> Message:
        return self.add(Message("user", [TextPart(text), *(files or [])]))

    def add_assistant(self, model_id: str | None) -> Message:
        return self.add(Message("assistant", status="pending", model_id=model_id))

    def regenerate(self, model_id: str | None) -> Message:
        """A new answer to the last user message, kept as a sibling of the old one."""
        last = self.last_assistant()
        if last is None:
            raise ValueError("there is no answer to regenerate")
        self.head = last.parent_id
        return self.add_assistant(model_id)

    def edit(self, message_id: str, text: str) -> Message:
        """Edit-and-resend: the new text becomes a sibling of the user message, the old one stays a branch."""
        old = self.nodes.get(message_id)
        if old is None or old.role != "user":
            raise ValueError(f"message {message_id!r} is not a user message of this conversation")
        self.head = old.parent_id
        return self.add_user(text, copy.deepcopy(old.files))  # the files go with the edited text

    def switch_branch(self, message_id: str, step: int) -> Message:
        """Show the sibling ``step`` places from ``message_id`` (wrapping); the path continues into the
        newest answer below it. Returns the message now shown in that place."""
        message = self.nodes[message_id]
        siblings = self.siblings(message)
        chosen = siblings[(siblings.index(message) + step) % len(siblings)]
        self.head = self._deepest(chosen.id)
        return chosen

    def replay_from(self, message_id: str, iteration: int, *, keep_step: bool, model_id: str | None) -> Message:
        """A new version of a tool-chat answer that starts with the old one's first steps: those before
        ``iteration``, and that step's calls too when ``keep_step`` (to edit a call or a result). The
        loop continues from there; the old answer stays a branch."""
        old = self.nodes.get(message_id)
        if old is None or old.role != "assistant":
            raise ValueError(f"message {message_id!r} is not an answer of this conversation")
        self.head = old.parent_id
        new = self.add_assistant(model_id)
        new.parts, new.steps = answer_prefix(old, iteration if keep_step else iteration - 1)
        return new

    def _deepest(self, message_id: str) -> str:
        while True:
            children = self.children(message_id)
            if not children:
                return message_id
            message_id = children[-1].id

    def branch_position(self, message: Message) -> tuple[int, int]:
        """(1-based index among its siblings, number of siblings): what ``< 2/3 >`` shows."""
        siblings = self.siblings(message)
        return siblings.index(message) + 1, len(siblings)

    # ----- saving (the JSON export format; the store keeps the same fields in columns) -----
    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "kind": self.kind,
            "created": self.created,
            "updated": self.updated,
            "head": self.head,
            "settings": asdict(self.settings),
            "always_allowed": sorted(self.always_allowed),
            "messages": [_message_to_dict(m) for m in self.nodes.values()],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Conversation":
        conversation = cls(data.get("title", "New chat"), data.get("kind", "chat"))
        conversation.id = data["id"]
        conversation.created = data.get("created", conversation.created)
        conversation.updated = data.get("updated", conversation.updated)
        conversation.settings = GenerationSettings(**data.get("settings", {}))
        conversation.always_allowed = set(data.get("always_allowed", []))
        for raw in data.get("messages", []):
            message = _message_from_dict(raw)
            conversation.nodes[message.id] = message
        conversation.head = data.get("head")
        return conversation


def title_from(text: str) -> str:
    """A conversation's title: the first line of its first message, shortened."""
    line = next((part.strip() for part in text.splitlines() if part.strip()), "")
    return line if len(line) <= 60 else line[:59].rstrip() + "…"


def answer_prefix(message: Message, last_step: int) -> tuple[list[Part], list[StepRecord]]:
    """Copies of an answer's parts and step records up to the calls of step ``last_step`` (0: nothing).
    Text after the last kept call belongs to a later step (or is the final answer) and is left out."""
    kept: list[Part] = []
    for part in message.parts:
        if isinstance(part, ToolCard) and part.iteration > last_step:
            break
        kept.append(part)
    while kept and not isinstance(kept[-1], ToolCard):
        kept.pop()
    return copy.deepcopy(kept), copy.deepcopy(message.steps[:last_step])


def _user_content(message: Message) -> str | list[dict[str, Any]]:
    """A user turn's content: its text, or its files' references then its text (rendered before sending)."""
    if not message.files:
        return message.content
    return [*(f.reference() for f in message.files), *([{"type": "text", "text": message.content}]
                                                        if message.content else [])]


def _joined(first: str | list[dict[str, Any]], second: str | list[dict[str, Any]]) -> str | list[dict[str, Any]]:
    if isinstance(first, str) and isinstance(second, str):
        return f"{first}\n\n{second}"

    def parts(content: str | list[dict[str, Any]]) -> list[dict[str, Any]]:
        return content if isinstance(content, list) else [{"type": "text", "text": content}]

    return [*parts(first), *parts(second)]


def _answered(message: Message) -> bool:
    return message.status != "failed" and bool(message.content or message.tool_cards)


_PART_TYPES: dict[str, type] = {"text": TextPart, "tool": ToolCard, "notice": Notice, "file": FilePart}
_PART_NAMES = {cls: name for name, cls in _PART_TYPES.items()}


def _message_to_dict(message: Message) -> dict[str, Any]:
    data = asdict(message)
    if message.metrics == Metrics():
        data["metrics"] = None  # nothing measured: the same as no metrics (the store keeps it so)
    data["parts"] = [{"type": _PART_NAMES[type(p)], **asdict(p)} for p in message.parts]
    return data


def _message_from_dict(data: dict[str, Any]) -> Message:
    data = dict(data)
    parts = []
    for raw in data.pop("parts", []):
        raw = dict(raw)
        parts.append(_PART_TYPES[raw.pop("type")](**raw))
    metrics = data.pop("metrics", None)
    steps = [StepRecord(**raw) for raw in data.pop("steps", [])]
    return Message(parts=parts, metrics=Metrics(**metrics) if metrics else None, steps=steps, **data)
