"""Export and import: the whole tree as JSON, the active branch as Markdown, JSON back in.

The JSON file is the conversation's ``to_dict`` inside an envelope naming the format and its
version, with the attached files' bytes beside it (``attachments``, by sha256, in base64);
export -> import -> export gives the same bytes. Import checks everything before anything
is stored and says which key of the file is wrong. It takes files up to MAX_IMPORT_BYTES, nested up to
MAX_IMPORT_DEPTH levels, and its work grows linearly with the file, so no file can hang the caller.
The files' bytes come from, and go to, the Blobs given (the history's attachment store); the rest is pure.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from ..attachments import Blobs, Media, human_size
from ..chat.conversation import (
    Conversation,
    GenerationSettings,
    Message,
    Notice,
    TextPart,
    ToolCard,
)
from ..chat.metrics import Metrics
from ..chat.parts import FilePart
from ..chat.turns import tool_result_text
from ..errors import HistoryError, ImportFormatError
from ..validation import field_problems
from .export_files import embedded, markdown_links, unpacked
from .times import UNKNOWN_TIME, local_time_text, timestamp_problem

FORMAT = "llm-workbench-conversation"
# Files came in as an addition (parts of type "file", their bytes in "attachments"), not a new version: an
# export without them is what it always was, and a workbench from before files names the part it cannot read.
FORMAT_VERSION = 1
# Far above a chat's text (a long tool chat with its requests is a few MB), and room for files: base64 makes
# them a third larger, so a 20 MB photo takes 27 MB. to_json refuses to write an export larger than this, so
# every export imports back; Markdown (files copied beside it) carries what does not fit.
MAX_IMPORT_BYTES = 64 * 1024 * 1024
# Levels of nested objects and lists: an export uses about 8, plus what a tool's arguments nest.
MAX_IMPORT_DEPTH = 100


# ----- JSON -----
def to_json(conversation: Conversation, files: Blobs | None = None) -> str:
    """The whole tree, with the bytes of its files read from ``files`` (needed only by a conversation with files;
    HistoryError says which are missing). Reads the files: the window runs it off its thread."""
    data = conversation.to_dict()
    # "Always allow" is consent this user gave in this app: a file someone shares must not carry it in.
    data.pop("always_allowed", None)
    attachments = embedded(conversation, files)
    envelope: dict[str, Any] = {"format": FORMAT, "version": FORMAT_VERSION, "conversation": data}
    if attachments:
        envelope["attachments"] = attachments  # sort_keys: by sha256
    text = json.dumps(envelope, indent=2, ensure_ascii=False, sort_keys=True) + "\n"
    if len(text) > MAX_IMPORT_BYTES // 4:  # 4 bytes a character at most: a shorter text fits
        size = len(text.encode("utf-8"))
        if size > MAX_IMPORT_BYTES:
            raise HistoryError(f"“{conversation.title}” as JSON would be {size / (1024 * 1024):.0f} MiB (its files in "
                               f"base64), more than the {MAX_IMPORT_BYTES // (1024 * 1024)} MiB an import takes, so it "
                               "could not be imported back; export it as Markdown, which copies its files beside it")
    return text


def from_json_file(path: Path, files: Blobs | None = None) -> Conversation:
    """The conversation in an export file, checked, its files put into ``files`` (file I/O: the window runs it
    off its thread)."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_IMPORT_BYTES + 1)  # not stat(): a pipe or /dev/zero has no size
    except OSError as exc:
        raise ImportFormatError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if len(data) > MAX_IMPORT_BYTES:
        raise ImportFormatError(_too_large(str(path)))
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ImportFormatError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    return from_json(text, source=str(path), files=files)


def from_json(text: str, source: str = "<import>", files: Blobs | None = None) -> Conversation:
    """The conversation in an export's text, checked; ImportFormatError names the first wrong key. Once all is
    checked, the files it carries are put into ``files``, before the caller saves the messages that refer to
    them (a file stored and never referred to is removed by a later purge); HistoryError if it carries files
    and ``files`` is None."""
    if len(text) > MAX_IMPORT_BYTES:
        raise ImportFormatError(_too_large(source))
    try:
        data = json.loads(text)
    except RecursionError as exc:  # the parser recurses per level; the limit is far above MAX_IMPORT_DEPTH
        raise ImportFormatError(f"{source}: nested too deeply (more than {MAX_IMPORT_DEPTH} levels of objects "
                                "and lists)") from exc
    except ValueError as exc:
        raise ImportFormatError(f"{source}: not JSON ({exc})") from exc
    deep = _too_deep(data)
    if deep is not None:
        raise ImportFormatError(f"{source}: {deep} is nested too deeply (more than {MAX_IMPORT_DEPTH} levels of "
                                "objects and lists)")
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ImportFormatError(f"{source}: not a conversation exported by the workbench "
                                f"(expected \"format\": \"{FORMAT}\" at the top)")
    version = data.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ImportFormatError(f"{source}: 'version' must be a positive integer")
    if version > FORMAT_VERSION:
        raise ImportFormatError(f"{source}: written by a newer version of the workbench (format version {version}; "
                                f"this one reads up to {FORMAT_VERSION})")
    raw = data.get("conversation")
    if not isinstance(raw, dict):
        raise ImportFormatError(f"{source}: 'conversation' must be an object")
    conversation = _conversation(raw, source)
    attachments = unpacked(data.get("attachments"), conversation, source)
    if attachments:
        if files is None:
            raise HistoryError(f"{source}: importing it needs a store for the files it carries "
                               f"({', '.join(a.name for a in attachments)}), and none was given")
        for attachment in attachments:
            files.put(attachment)
    return conversation


def _too_large(source: str) -> str:
    return (f"{source}: larger than {MAX_IMPORT_BYTES // (1024 * 1024)} MiB, the most an import takes "
            "(it is not a conversation the workbench exported)")


def _too_deep(data: Any) -> str | None:
    """Where the first value nested deeper than MAX_IMPORT_DEPTH is (its first keys), or None. Iterative:
    a recursive walk would itself run out of stack."""
    stack: list[tuple[Any, int, tuple[Any, ...] | None]] = [(data, 1, None)]  # value, depth, (key, parent link)
    while stack:
        value, depth, link = stack.pop()
        if not isinstance(value, (dict, list)):
            continue
        if depth > MAX_IMPORT_DEPTH:
            keys: list[Any] = []
            while link is not None:
                key, link = link
                keys.append(key)
            return _key_path(keys[::-1][:6]) + "…"
        children = value.items() if isinstance(value, dict) else enumerate(value)
        stack.extend((child, depth + 1, (key, link)) for key, child in children)
    return None


def _key_path(keys: list[Any]) -> str:
    """["conversation", "messages", 0] -> conversation.messages[0] (a key of the file cut to 40 characters)"""
    return "".join(f"[{key}]" if isinstance(key, int) else f".{key[:40]}" for key in keys).lstrip(".") \
        or "the document"


_MESSAGE = TypeAdapter(Message)
_SETTINGS = TypeAdapter(GenerationSettings)
_METRICS = TypeAdapter(Metrics)
_PARTS: dict[str, TypeAdapter[Any]] = {"text": TypeAdapter(TextPart), "tool": TypeAdapter(ToolCard),
                                       "notice": TypeAdapter(Notice), "file": TypeAdapter(FilePart)}


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
    for key in ("created", "updated"):  # missing: now
        if key in raw:
            _check_time(raw[key], f"conversation.{key}", source)
            setattr(conversation, key, float(raw[key]))
    conversation.settings = _validate(_SETTINGS, raw.get("settings", {}), "conversation.settings", source)
    # Older exports carry "always_allowed": checked, never taken (a file never approves a tool, see to_json).
    if not isinstance(raw.get("always_allowed", []), list):
        raise ImportFormatError(f"{source}: conversation.always_allowed must be a list")
    for index, item in enumerate(raw["messages"]):
        where = f"conversation.messages[{index}]"
        if not isinstance(item, dict):
            raise ImportFormatError(f"{source}: {where} must be an object")
        fields = {k: v for k, v in item.items() if k not in ("parts", "metrics")}
        message: Message = _validate(_MESSAGE, fields, where, source)
        if "created" in fields:
            _check_time(fields["created"], f"{where}.created", source)
        if message.id in conversation.nodes:
            raise ImportFormatError(f"{source}: {where}.id {message.id!r} is used twice")
        parts = item.get("parts", [])
        if not isinstance(parts, list):
            raise ImportFormatError(f"{source}: {where}.parts must be a list")
        for n, part in enumerate(parts):
            kind = part.get("type") if isinstance(part, dict) else None
            if not isinstance(kind, str) or kind not in _PARTS:
                raise ImportFormatError(f"{source}: {where}.parts[{n}].type must be one of {', '.join(_PARTS)}")
            body = {k: v for k, v in part.items() if k != "type"}
            message.parts.append(_validate(_PARTS[kind], body, f"{where}.parts[{n}]", source))
        if item.get("metrics") is not None:
            message.metrics = _validate(_METRICS, item["metrics"], f"{where}.metrics", source)
        conversation.nodes[message.id] = message
    _check_tree(conversation, raw.get("head"), source)
    conversation.head = raw.get("head")
    return conversation


def _check_time(value: Any, where: str, source: str) -> None:
    problem = timestamp_problem(value)
    if problem is not None:
        raise ImportFormatError(f"{source}: {where} {problem}")


def _check_tree(conversation: Conversation, head: Any, source: str) -> None:
    nodes = conversation.nodes
    for message in nodes.values():
        if message.parent_id is not None and message.parent_id not in nodes:
            raise ImportFormatError(f"{source}: message {message.id!r} has parent_id {message.parent_id!r}, "
                                    "which is not in the file")
    rooted: set[str] = set()  # messages whose ancestors are known to end at a root: each is walked once
    for message in nodes.values():
        walked: set[str] = set()
        current: str | None = message.id
        while current is not None and current not in rooted:
            if current in walked:
                raise ImportFormatError(f"{source}: message {current!r} is its own ancestor (a cycle)")
            walked.add(current)
            current = nodes[current].parent_id
        rooted.update(walked)
    if head is not None and not isinstance(head, str):
        raise ImportFormatError(f"{source}: conversation.head must be a message id (a string) or null")
    if head is not None and head not in nodes:
        raise ImportFormatError(f"{source}: conversation.head {head!r} is not a message in the file")


# ----- Markdown -----
def to_markdown(conversation: Conversation, files: Blobs | None = None, destination: Path | None = None) -> str:
    """The active branch as a document: reasoning and tool calls as collapsible blocks, attached files as links
    (images shown). ``destination``: the file the document will be written to; the files (read from ``files``)
    are then copied into ``<stem>_files`` beside it and linked relatively. Without it (printed), the links name
    the stored copies. A file whose bytes are not at hand is named without a link."""
    path = conversation.messages
    links = markdown_links(path, files, destination)
    when = local_time_text(conversation.created)
    started = "at an unknown time" if when == UNKNOWN_TIME else when
    lines = [f"# {conversation.title}", "",
             f"*LLM Workbench conversation `{conversation.id}`, started {started}; {len(path)} messages on this "
             "branch.*", ""]
    if conversation.settings.system_prompt:
        lines += ["**System prompt:**", "", _quote(conversation.settings.system_prompt), ""]
    for message in path:
        lines += _message_markdown(message, links)
    return "\n".join(lines).rstrip() + "\n"


def _message_markdown(message: Message, links: dict[tuple[str, str], str]) -> list[str]:
    if message.role == "user":
        out = ["## You", ""] + ([message.content, ""] if message.content or not message.files else [])
        for part in message.files:
            out += [_file_markdown(part, links.get((part.sha256, part.name))), ""]
        return out
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


def _file_markdown(part: FilePart, link: str | None) -> str:
    """``![photo.png](…)`` for an image, ``[notes.pdf](…) (PDF, 1.2 MB)`` for a document."""
    what = f"{Media(part.kind, part.mime).label}, {human_size(part.size)}"  # type: ignore[arg-type]
    name = re.sub(r"([\\`*_\[\]<>!])", r"\\\1", part.name)
    if link is None:
        return f"*{name}* ({what}; its bytes are not here)"
    if part.kind == "image":
        return f"![{name}]({link})"
    return f"[{name}]({link}) ({what})"


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
