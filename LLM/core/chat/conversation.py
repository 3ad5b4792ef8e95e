"""The conversation model behind a chat page: plain Python, no Qt, ready to be saved and branched.

Messages form a tree (each knows its parent) and the page shows one path through it, from
the root to ``head``. Regenerating an answer adds a sibling instead of overwriting, so a
later "saved conversations with branches" feature only needs a store and a branch picker.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from .metrics import Metrics

Role = Literal["user", "assistant"]
# streaming: tokens are arriving; done/stopped/failed are final.
Status = Literal["pending", "streaming", "done", "stopped", "failed"]
FINAL_STATUSES = frozenset({"done", "stopped", "failed"})


@dataclass
class TextPart:
    text: str = ""


@dataclass
class ToolCard:
    """One tool call of a tool-chat answer, and later its result."""

    iteration: int
    name: str
    arguments: dict[str, Any]
    source: str  # native | fallback
    call_id: str | None = None
    ok: bool | None = None  # None while it runs (or waits for approval)
    output: str = ""
    error: str | None = None
    duration_ms: float | None = None

    @property
    def arguments_json(self) -> str:
        return json.dumps(self.arguments, indent=2, ensure_ascii=False, sort_keys=True)


@dataclass
class Notice:
    """A loop guard or a change of course the user should see (LoopNotice)."""

    kind: str
    message: str


Part = TextPart | ToolCard | Notice


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

    @property
    def content(self) -> str:
        """The visible answer text (what is copied and sent back as history)."""
        texts = [p.text.strip("\n") for p in self.parts if isinstance(p, TextPart)]
        return "\n\n".join(t for t in texts if t)

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

    def __init__(self, title: str = "New chat") -> None:
        self.id = uuid.uuid4().hex
        self.title = title
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
        while node_id is not None:
            message = self.nodes[node_id]
            path.append(message)
            node_id = message.parent_id
        path.reverse()
        return path

    def siblings(self, message: Message) -> list[Message]:
        """Alternative versions of a message (same parent), in creation order."""
        return [m for m in self.nodes.values() if m.parent_id == message.parent_id and m.role == message.role]

    def history(self, upto: Message | None = None) -> list[dict[str, str]]:
        """Chat messages to send: the active path before ``upto``; failed and empty answers are left out."""
        out: list[dict[str, str]] = []
        for message in self.messages:
            if upto is not None and message.id == upto.id:
                break
            if message.role == "assistant" and (message.status == "failed" or not message.content):
                continue
            out.append({"role": message.role, "content": message.content})
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
            self.title = message.content[:60] or self.title
        return message

    def add_user(self, text: str) -> Message:
        return self.add(Message("user", [TextPart(text)]))

    def add_assistant(self, model_id: str | None) -> Message:
        return self.add(Message("assistant", status="pending", model_id=model_id))

    def regenerate(self, model_id: str | None) -> Message:
        """A new answer to the last user message, kept as a sibling of the old one."""
        last = self.last_assistant()
        if last is None:
            raise ValueError("there is no answer to regenerate")
        self.head = last.parent_id
        return self.add_assistant(model_id)

    # ----- saving (for a conversation store later) -----
    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "head": self.head,
            "settings": asdict(self.settings),
            "always_allowed": sorted(self.always_allowed),
            "messages": [_message_to_dict(m) for m in self.nodes.values()],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Conversation":
        conversation = cls(data.get("title", "New chat"))
        conversation.id = data["id"]
        conversation.settings = GenerationSettings(**data.get("settings", {}))
        conversation.always_allowed = set(data.get("always_allowed", []))
        for raw in data.get("messages", []):
            message = _message_from_dict(raw)
            conversation.nodes[message.id] = message
        conversation.head = data.get("head")
        return conversation


_PART_TYPES: dict[str, type] = {"text": TextPart, "tool": ToolCard, "notice": Notice}
_PART_NAMES = {cls: name for name, cls in _PART_TYPES.items()}


def _message_to_dict(message: Message) -> dict[str, Any]:
    data = asdict(message)
    data["parts"] = [{"type": _PART_NAMES[type(p)], **asdict(p)} for p in message.parts]
    return data


def _message_from_dict(data: dict[str, Any]) -> Message:
    data = dict(data)
    parts = []
    for raw in data.pop("parts", []):
        raw = dict(raw)
        parts.append(_PART_TYPES[raw.pop("type")](**raw))
    metrics = data.pop("metrics", None)
    return Message(parts=parts, metrics=Metrics(**metrics) if metrics else None, **data)
