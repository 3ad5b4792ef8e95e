"""llmctl history (list, show, export, import, delete) and the store side of llmctl chat: saved conversations."""

from __future__ import annotations

import argparse
import json
import re
import sys
import uuid
from pathlib import Path
from typing import Any

from ..core import AnswerSaver, Conversation, HistoryError, Message, Notice, TextPart, ToolCard
from ..core.attachments import human_size
from ..core.history import (
    ConversationSummary,
    HistoryStore,
    default_history_path,
    from_json_file,
    local_datetime,
    local_time_text,
    search_terms,
    to_json,
    to_markdown,
)

SHORT_ID = 8  # as `git` shows hashes: enough to tell conversations apart, and accepted back as a prefix
RESULT_WIDTH = 200  # a tool result in `show` is one line; the exports keep it whole


def add_history_parser(sub: argparse._SubParsersAction) -> None:
    history = sub.add_parser("history", help="saved conversations: list, show, export, import, delete")
    actions = history.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="saved conversations, newest first")
    listing.add_argument("--search", metavar="TEXT", help="only those whose title or a message has every word")
    listing.add_argument("--json", action="store_true", help="print a JSON list")
    listing.add_argument("--limit", type=_positive, metavar="N", help="at most N conversations")
    show = actions.add_parser("show", help="print a conversation (its active branch)")
    show.add_argument("id", help="a conversation id or a unique prefix of one")
    export = actions.add_parser("export", help="write a conversation as Markdown or JSON")
    export.add_argument("id", help="a conversation id or a unique prefix of one")
    export.add_argument("--format", choices=["md", "json"], default="md",
                        help="md: the active branch, readable; json: the whole tree, for import (default: md)")
    export.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")
    importing = actions.add_parser("import", help="add a conversation exported as JSON")
    importing.add_argument("file")
    delete = actions.add_parser("delete", help="remove a conversation for good")
    delete.add_argument("id", help="a conversation id or a unique prefix of one")


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value}")
    return value


def cmd_history(args: argparse.Namespace) -> int:
    """Needs only the store: no model config, no server."""
    with HistoryStore(default_history_path()) as store:
        if args.action == "list":
            return _list(store, args.search, args.limit, args.json)
        if args.action == "show":
            return _show(store, args.id)
        if args.action == "export":
            return _export(store, args.id, args.format, args.output)
        if args.action == "import":
            return _import(store, Path(args.file))
        return _delete(store, args.id)


def _list(store: HistoryStore, search: str | None, limit: int | None, as_json: bool) -> int:
    found = store.list(search, limit)
    if search is not None and not search_terms(search) and not as_json:
        print(f"Nothing to search for in {search!r}: a search needs a letter or a digit.")
        return 0
    if as_json:
        print(json.dumps([_summary_json(s, search is not None) for s in found], indent=2, ensure_ascii=False))
        return 0
    if not found:
        print(f"No saved conversation matches {search!r}." if search is not None else "No saved conversations yet.")
    for s in found:
        count = f"{s.messages:>3} message" + (" " if s.messages == 1 else "s")
        line = f"{s.id[:SHORT_ID]}  {_when(s.updated):<16}  {count}  {s.kind:<5}  {_one_line(s.title)}"
        print(line + (f"  ·  {_one_line(s.snippet)}" if s.snippet else ""))
    return 0


def _summary_json(s: ConversationSummary, searching: bool) -> dict[str, Any]:
    data: dict[str, Any] = {"id": s.id, "title": s.title, "kind": s.kind, "messages": s.messages,
                            "created": _iso(s.created), "updated": _iso(s.updated)}
    if searching:
        data["snippet"] = s.snippet  # null when only the title matched
    return data


def _show(store: HistoryStore, id_or_prefix: str) -> int:
    conversation = store.load(store.resolve(id_or_prefix))
    print(_header(conversation))
    if conversation.settings.system_prompt:
        print(f"\nsystem> {conversation.settings.system_prompt}")
    for message in conversation.messages:
        print("\n" + format_message(message))
    return 0


def _export(store: HistoryStore, id_or_prefix: str, form: str, output: str | None) -> int:
    conversation = store.load(store.resolve(id_or_prefix))
    if form == "md":  # to a file: its attached files are copied beside it; printed: links to the stored copies
        text = to_markdown(conversation, store.attachments, Path(output) if output is not None else None)
    else:
        text = to_json(conversation, store.attachments)
    data = text.encode("utf-8")  # the same bytes to a file and to stdout, whatever the locale
    if output is None:
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return 0
    Path(output).write_bytes(data)
    what = "Markdown, the active branch" if form == "md" else "JSON, the whole tree"
    print(f"Exported \"{_one_line(conversation.title)}\" to {output} ({what}).")
    return 0


def _import(store: HistoryStore, path: Path) -> int:
    conversation = from_json_file(path, store.attachments)  # its files are stored first, then its messages
    clash = conversation.id if store.exists(conversation.id) else None
    if clash is not None:  # messages are keyed by (conversation, id): only the conversation needs a new id
        conversation.id = uuid.uuid4().hex
    store.save_all(conversation)
    note = f" (a copy: {clash[:SHORT_ID]} is already in the history)" if clash else ""
    print(f"Imported \"{_one_line(conversation.title)}\" ({_messages(len(conversation.nodes))}) "
          f"as {conversation.id}{note}")
    return 0


def _delete(store: HistoryStore, id_or_prefix: str) -> int:
    conversation = store.load(store.resolve(id_or_prefix))
    store.purge(conversation.id)
    print(f"Deleted \"{_one_line(conversation.title)}\" ({conversation.id[:SHORT_ID]}) for good.")
    return 0


# ----- reading a conversation on a terminal (show, chat --resume) -----
def _header(conversation: Conversation) -> str:
    count = len(conversation.messages)
    others = len(conversation.nodes) - count
    branches = f" (+{others} on other branches; export --format json keeps them)" if others else ""
    return (f"{_one_line(conversation.title)}\n{conversation.id}  ·  {conversation.kind}  ·  started "
            f"{_when(conversation.created)}  ·  {_messages(count)}{branches}")


def format_message(message: Message) -> str:
    """One message as chat shows it live: `you>` or `assistant (model)>`; tool calls and stops on lines of their own."""
    if message.role == "user":
        files = [f"[file {f.name} · {f.mime} · {human_size(f.size)}]" for f in message.files]
        return "\n".join([f"you> {message.content}", *files]) if files else f"you> {message.content}"
    lines: list[str] = []
    if message.reasoning.strip():
        lines += [f"[thinking] {message.reasoning.strip()}", "[/thinking]"]
    for part in message.parts:
        if isinstance(part, TextPart) and part.text.strip():
            lines.append(part.text.strip("\n"))
        elif isinstance(part, ToolCard):
            lines.append(f"[call {part.name}({json.dumps(part.arguments, ensure_ascii=False)})] -> {_result(part)}")
        elif isinstance(part, Notice):
            lines.append(f"[{part.kind}] {part.message}")
    if message.status == "failed":
        lines.append(f"[failed: {_one_line(message.error or 'no reason given')}]")
    elif message.status != "done":
        lines.append(f"[{message.status}: {message.stop_reason}]" if message.stop_reason else f"[{message.status}]")
    who = f"assistant ({message.model_id})>" if message.model_id else "assistant>"
    return (f"{who} " + "\n".join(lines)) if lines else who


def _result(card: ToolCard) -> str:
    if card.ok is None:
        return "(did not finish)"
    text = _one_line(card.output if card.ok else f"error: {card.error}")
    return text if len(text) <= RESULT_WIDTH else text[:RESULT_WIDTH - 1] + "…"


def _messages(count: int) -> str:
    return f"{count} message" + ("" if count == 1 else "s")


def _one_line(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _when(timestamp: float) -> str:
    return local_time_text(timestamp)  # a stored time that is not one reads "unknown time"


def _iso(timestamp: float) -> str | None:
    moment = local_datetime(timestamp)
    return moment.astimezone().isoformat(timespec="seconds") if moment is not None else None


# ----- llmctl chat's saving -----
class ChatLog:
    """Where ``llmctl chat`` and ``llmctl run`` save: the store and the conversation to start with. Without a
    store (it could not be opened) nothing is saved. The session saves through ``saver``; a save that fails is
    reported once on stderr and the chat goes on (AnswerSaver saves what it missed with the next save)."""

    def __init__(self, store: HistoryStore | None, conversation: Conversation) -> None:
        self.store = store
        self.conversation = conversation  # the chat to start with (the session then owns it)
        self.saver = AnswerSaver(store) if store is not None else None

    @classmethod
    def open(cls, resume: str | None, *, kind: str = "chat", quiet: bool = False) -> ChatLog:
        """``resume``: a saved conversation's id or prefix; an error if it or the store cannot be read. A new
        chat whose store cannot be opened is not saved (said on stderr unless ``quiet``)."""
        if resume is not None:
            store = HistoryStore(default_history_path())
            try:
                return cls(store, store.load(store.resolve(resume)))
            except BaseException:
                store.close()
                raise
        try:
            store = HistoryStore(default_history_path())
        except (HistoryError, OSError) as exc:
            if not quiet:
                print(f"warning: this chat will not be saved: {_one_line(str(exc))}", file=sys.stderr)
            return cls(None, Conversation(kind=kind))  # type: ignore[arg-type]
        return cls(store, Conversation(kind=kind))  # type: ignore[arg-type]

    @property
    def saving(self) -> bool:
        return self.store is not None

    @property
    def short_id(self) -> str:
        return self.conversation.id[:SHORT_ID]

    def close(self) -> None:
        if self.store is not None:
            self.store.close()
