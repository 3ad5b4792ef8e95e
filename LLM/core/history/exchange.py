"""Export and import (pure): the whole tree as JSON, the active branch as Markdown, JSON back in.

The JSON file is the conversation's ``to_dict`` inside an envelope naming the format and its
version; export -> import -> export gives the same bytes. Import checks everything before anything
is stored and says which key of the file is wrong.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

from pydantic import TypeAdapter, ValidationError

from ..chat.conversation import (
    Conversation,
    GenerationSettings,
    Message,
    Notice,
    TextPart,
    ToolCard,
    tool_result_text,
)
from ..chat.metrics import Metrics
from ..errors import ImportFormatError
from ..validation import field_problems

FORMAT = "llm-workbench-conversation"
FORMAT_VERSION = 1


# ----- JSON -----
def to_json(conversation: Conversation) -> str:
    envelope = {"format": FORMAT, "version": FORMAT_VERSION, "conversation": conversation.to_dict()}
    return json.dumps(envelope, indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def from_json(text: str, source: str = "<import>") -> Conversation:
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ImportFormatError(f"{source}: not JSON ({exc})") from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ImportFormatError(f"{source}: not a conversation exported by the workbench "
                                f"(expected \"format\": \"{FORMAT}\" at the top)")
    version = data.get("version")
    if not isinstance(version, int) or version < 1:
        raise ImportFormatError(f"{source}: 'version' must be a positive integer")
    if version > FORMAT_VERSION:
        raise ImportFormatError(f"{source}: written by a newer version of the workbench (format version {version}; "
                                f"this one reads up to {FORMAT_VERSION})")
    raw = data.get("conversation")
    if not isinstance(raw, dict):
        raise ImportFormatError(f"{source}: 'conversation' must be an object")
    return _conversation(raw, source)


_MESSAGE = TypeAdapter(Message)
_SETTINGS = TypeAdapter(GenerationSettings)
_METRICS = TypeAdapter(Metrics)
_PARTS: dict[str, TypeAdapter[Any]] = {"text": TypeAdapter(TextPart), "tool": TypeAdapter(ToolCard),
                                       "notice": TypeAdapter(Notice)}


def _validate(adapter: TypeAdapter[Any], value: Any, where: str, source: str) -> Any:
    if not isinstance(value, dict):
        raise ImportFormatError(f"{source}: {where} must be an object")
    try:
        return adapter.validate_python(value, strict=False)
    except ValidationError as exc:
        raise ImportFormatError(f"{source}: " + "; ".join(p.joined(where) for p in field_problems(exc))) from exc


def _conversation(raw: dict[str, Any], source: str) -> Conversation:
    for key, kind in (("id", str), ("title", str), ("messages", list)):
        if not isinstance(raw.get(key), kind):
            raise ImportFormatError(f"{source}: conversation.{key} must be a {kind.__name__}")
    if not raw["id"].strip():
        raise ImportFormatError(f"{source}: conversation.id must not be empty")
    if raw.get("kind", "chat") not in ("chat", "tools"):
        raise ImportFormatError(f"{source}: conversation.kind must be 'chat' or 'tools'")
    conversation = Conversation(raw["title"], raw.get("kind", "chat"))
    conversation.id = raw["id"]
    for key in ("created", "updated"):
        if isinstance(raw.get(key), (int, float)):
            setattr(conversation, key, float(raw[key]))
    conversation.settings = _validate(_SETTINGS, raw.get("settings", {}), "conversation.settings", source)
    always_allowed = raw.get("always_allowed", [])
    if not isinstance(always_allowed, list):
        raise ImportFormatError(f"{source}: conversation.always_allowed must be a list")
    conversation.always_allowed = {str(name) for name in always_allowed}
    for index, item in enumerate(raw["messages"]):
        where = f"conversation.messages[{index}]"
        if not isinstance(item, dict):
            raise ImportFormatError(f"{source}: {where} must be an object")
        fields = {k: v for k, v in item.items() if k not in ("parts", "metrics")}
        message: Message = _validate(_MESSAGE, fields, where, source)
        if message.id in conversation.nodes:
            raise ImportFormatError(f"{source}: {where}.id {message.id!r} is used twice")
        parts = item.get("parts", [])
        if not isinstance(parts, list):
            raise ImportFormatError(f"{source}: {where}.parts must be a list")
        for n, part in enumerate(parts):
            kind = part.get("type") if isinstance(part, dict) else None
            if kind not in _PARTS:
                raise ImportFormatError(f"{source}: {where}.parts[{n}].type must be one of {', '.join(_PARTS)}")
            body = {k: v for k, v in part.items() if k != "type"}
            message.parts.append(_validate(_PARTS[kind], body, f"{where}.parts[{n}]", source))
        if item.get("metrics") is not None:
            message.metrics = _validate(_METRICS, item["metrics"], f"{where}.metrics", source)
        conversation.nodes[message.id] = message
    _check_tree(conversation, raw.get("head"), source)
    conversation.head = raw.get("head")
    return conversation


def _check_tree(conversation: Conversation, head: Any, source: str) -> None:
    nodes = conversation.nodes
    for message in nodes.values():
        if message.parent_id is not None and message.parent_id not in nodes:
            raise ImportFormatError(f"{source}: message {message.id!r} has parent_id {message.parent_id!r}, "
                                    "which is not in the file")
        seen = {message.id}
        parent = message.parent_id
        while parent is not None:
            if parent in seen:
                raise ImportFormatError(f"{source}: message {message.id!r} is its own ancestor (a cycle)")
            seen.add(parent)
            parent = nodes[parent].parent_id
    if head is not None and head not in nodes:
        raise ImportFormatError(f"{source}: conversation.head {head!r} is not a message in the file")


# ----- Markdown -----
def to_markdown(conversation: Conversation) -> str:
    """The active branch as a document: reasoning and tool calls as collapsible blocks."""
    path = conversation.messages
    when = datetime.fromtimestamp(conversation.created).strftime("%Y-%m-%d %H:%M")
    lines = [f"# {conversation.title}", "",
             f"*LLM Workbench conversation `{conversation.id}`, started {when}; {len(path)} messages on this "
             "branch.*", ""]
    if conversation.settings.system_prompt:
        lines += ["**System prompt:**", "", _quote(conversation.settings.system_prompt), ""]
    for message in path:
        lines += _message_markdown(message)
    return "\n".join(lines).rstrip() + "\n"


def _message_markdown(message: Message) -> list[str]:
    if message.role == "user":
        return ["## You", "", message.content, ""]
    who = "Assistant" + (f" · {message.model_id}" if message.model_id else "")
    if message.adapter:
        who += f" + {message.adapter}"
    out = [f"## {who}", ""]
    if message.reasoning.strip():
        out += _details("Reasoning", [message.reasoning.strip()])
    for part in message.parts:
        if isinstance(part, TextPart):
            if part.text.strip():
                out += [part.text.strip("\n"), ""]
        elif isinstance(part, ToolCard):
            state = "running" if part.ok is None else "ok" if part.ok else "error"
            took = f" · {part.duration_ms:.1f} ms" if part.duration_ms is not None else ""
            out += _details(f"Tool call: {part.name} · {state}{took}",
                            ["Arguments:", "", _fence(part.arguments_json, "json"), "", "Result:", "",
                             _fence(tool_result_text(part), "")])
        elif isinstance(part, Notice):
            out += [f"> **{part.kind.replace('_', ' ')}:** {part.message}", ""]
    if message.status != "done":
        why = f" ({message.stop_reason})" if message.stop_reason else ""
        out += [f"*{message.status}{why}*", ""]
    if message.error:
        out += [_fence(message.error, ""), ""]
    if message.metrics is not None and message.metrics.summary():
        out += [f"*{message.metrics.summary()}*", ""]
    return out


def _details(summary: str, body: list[str]) -> list[str]:
    return [f"<details><summary>{_html_escape(summary)}</summary>", "", *body, "", "</details>", ""]


def _fence(text: str, language: str) -> str:
    """A code block whose fence is longer than any run of backticks inside it."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{language}\n{text}\n{fence}"


def _quote(text: str) -> str:
    return "\n".join(f"> {line}" if line else ">" for line in text.splitlines())


def _html_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
