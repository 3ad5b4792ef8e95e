"""The conversation store: SQLite in WAL mode, one row per message of the tree, tool calls and file references as
rows, the files' bytes beside the database (once each, by content hash).

Every write is one short transaction, so a killed process (even ``kill -9``) leaves the file as of
its last commit. The file is checked before anything is written to it: a damaged file or one from a
newer version raises a typed error and is left exactly as it was.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..chat.conversation import (
    FINAL_STATUSES,
    Conversation,
    GenerationSettings,
    Message,
    Notice,
    StepRecord,
    TextPart,
    ToolCard,
)
from ..attachments import AttachmentStore
from ..chat.metrics import Metrics
from ..chat.parts import FilePart
from ..errors import AttachmentError, ConversationNotFoundError, HistoryError
from .opening import open_checked
from .paths import default_history_path
from .search import SearchPlan, like_pattern, substring_snippet
# Search computes its hits once (SQLite 3.35+ honours the hint; older ones may run the CTE twice).
_MATERIALIZED = "MATERIALIZED" if sqlite3.sqlite_version_info >= (3, 35) else ""
# Shown instead of "writing…" for an answer whose process ended before it was finished.
INTERRUPTED = "interrupted: the app closed while it was being written"
_METRIC_COLUMNS = ("ttft_ms", "tokens_per_second", "prompt_tokens", "completion_tokens", "duration_ms", "chunks",
                   "finish_reason")
_METRIC_FIELDS = ("time_to_first_token_ms", "tokens_per_second", "prompt_tokens", "completion_tokens",
                  "duration_ms", "chunks", "finish_reason")
# A stored file no message refers to is removed at purge once it is this old. Younger, it may be one a process
# has just stored and is about to save the message for (the bytes go in first); older, a crash left it behind.
ORPHAN_AGE_S = 600.0


@dataclass(frozen=True)
class ConversationSummary:
    """One line of the conversation list."""

    id: str
    title: str
    kind: str
    created: float
    updated: float
    messages: int  # on the branch shown (the head back to the first message), not every version
    snippet: str | None = None  # search: the matching text, the match in [brackets]


class HistoryStore:
    """Conversations in one SQLite file. Use from one thread (the window's or the CLI's loop)."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else default_history_path()
        # Attached files, once each by content hash, beside the database (messages refer to them by hash).
        self.attachments = AttachmentStore(self.path.parent / "attachments")
        self._db = open_checked(self.path)
        try:
            # Without it (a history migrated by an SQLite older than 3.34) search scans for unspaced words.
            self._trigram = bool(self._query("SELECT 1 FROM sqlite_master WHERE name = 'message_trigram'"))
        except BaseException:
            self._db.close()
            raise

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> "HistoryStore":
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            raise HistoryError(f"{self.path}: {exc}") from exc

    # ----- writing -----
    def save_message(self, conversation: Conversation, message: Message) -> None:
        """Insert or update one message (and its tool calls) plus the conversation's title, head and time.

        An answer still being written is saved as incomplete; it is saved again as it grows."""
        conversation.updated = time.time()
        with self._transaction() as db:
            self._put_conversation(db, conversation)
            self._put_message(db, conversation.id, message)

    def save_conversation(self, conversation: Conversation, *, touch: bool = False) -> None:
        """The conversation's own fields (title, head, settings); ``touch`` moves it to the top of the list."""
        if touch:
            conversation.updated = time.time()
        with self._transaction() as db:
            self._put_conversation(db, conversation)

    def save_all(self, conversation: Conversation) -> None:
        """The whole tree in one transaction (imports)."""
        with self._transaction() as db:
            self._put_conversation(db, conversation)
            for message in conversation.nodes.values():
                self._put_message(db, conversation.id, message)

    def _put_conversation(self, db: sqlite3.Connection, c: Conversation) -> None:
        db.execute(
            """INSERT INTO conversations (id, title, kind, created, updated, head, settings, always_allowed)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT(id) DO UPDATE SET title = excluded.title, kind = excluded.kind,
                 updated = excluded.updated, head = excluded.head, settings = excluded.settings,
                 always_allowed = excluded.always_allowed""",
            (c.id, c.title, c.kind, c.created, c.updated, c.head, json.dumps(asdict(c.settings)),
             json.dumps(sorted(c.always_allowed))),
        )

    def _put_message(self, db: sqlite3.Connection, conversation_id: str, m: Message) -> None:
        layout: list[dict[str, Any]] = []
        cards: list[ToolCard] = []
        for part in m.parts:
            if isinstance(part, ToolCard):
                layout.append({"type": "tool", "position": len(cards)})
                cards.append(part)
            elif isinstance(part, TextPart):
                layout.append({"type": "text", "text": part.text})
            elif isinstance(part, FilePart):  # a reference: the bytes are in self.attachments
                layout.append({"type": "file", "sha256": part.sha256, "name": part.name, "mime": part.mime,
                               "size": part.size, "kind": part.kind})
            elif isinstance(part, Notice):
                layout.append({"type": "notice", "kind": part.kind, "message": part.message})
            else:
                raise HistoryError(f"{self.path}: a message part of type {type(part).__name__} cannot be saved")
        metrics = asdict(m.metrics) if m.metrics is not None else {}
        values = {
            "conversation_id": conversation_id, "id": m.id, "parent_id": m.parent_id, "role": m.role,
            "content": m.content, "layout": json.dumps(layout, ensure_ascii=False), "reasoning": m.reasoning,
            "status": m.status, "complete": int(m.status in FINAL_STATUSES), "error": m.error,
            "stop_reason": m.stop_reason, "iteration": m.iteration, "model_id": m.model_id, "adapter": m.adapter,
            "backend": m.backend, "params": json.dumps(m.params) if m.params is not None else None,
            "created": m.created, "updated": time.time(),
            **{column: metrics.get(name) for column, name in zip(_METRIC_COLUMNS, _METRIC_FIELDS)},
        }
        values["chunks"] = values["chunks"] or 0
        columns = ", ".join(values)
        updates = ", ".join(f"{k} = excluded.{k}" for k in values if k not in ("conversation_id", "id", "created"))
        db.execute(
            f"""INSERT INTO messages ({columns}, seq)
                VALUES ({", ".join("?" * len(values))},
                        (SELECT coalesce(max(seq), 0) + 1 FROM messages WHERE conversation_id = ?))
                ON CONFLICT(conversation_id, id) DO UPDATE SET {updates}""",
            (*values.values(), conversation_id),
        )
        db.execute("DELETE FROM tool_calls WHERE conversation_id = ? AND message_id = ?", (conversation_id, m.id))
        db.executemany(
            """INSERT INTO tool_calls (conversation_id, message_id, position, call_id, iteration, name, arguments,
                                       source, ok, output, error, duration_ms)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            [(conversation_id, m.id, i, c.call_id, c.iteration, c.name, json.dumps(c.arguments, ensure_ascii=False),
              c.source, None if c.ok is None else int(c.ok), c.output, c.error, c.duration_ms)
             for i, c in enumerate(cards)],
        )
        db.execute("DELETE FROM tool_steps WHERE conversation_id = ? AND message_id = ?", (conversation_id, m.id))
        db.executemany(
            "INSERT INTO tool_steps (conversation_id, message_id, position, record) VALUES (?, ?, ?, ?)",
            [(conversation_id, m.id, i, json.dumps(asdict(step), ensure_ascii=False)) for i, step in enumerate(m.steps)],
        )
        db.execute("DELETE FROM message_files WHERE conversation_id = ? AND message_id = ?", (conversation_id, m.id))
        db.executemany(
            "INSERT INTO message_files (conversation_id, message_id, position, sha256) VALUES (?, ?, ?, ?)",
            [(conversation_id, m.id, i, f.sha256) for i, f in enumerate(m.files)],
        )

    def rename(self, conversation_id: str, title: str) -> None:
        title = title.strip()
        if not title:
            raise HistoryError("a conversation's title cannot be empty")
        with self._transaction() as db:
            found = db.execute("UPDATE conversations SET title = ? WHERE id = ?", (title, conversation_id)).rowcount
        if not found:
            raise ConversationNotFoundError(conversation_id)

    def delete(self, conversation_id: str) -> None:
        """Hide a conversation; ``restore`` brings it back until ``purge`` (the next start) removes it. Its files
        stay until then."""
        self._set_deleted(conversation_id, time.time())

    def restore(self, conversation_id: str) -> None:
        self._set_deleted(conversation_id, None)

    def _set_deleted(self, conversation_id: str, when: float | None) -> None:
        with self._transaction() as db:
            found = db.execute("UPDATE conversations SET deleted = ? WHERE id = ?", (when, conversation_id)).rowcount
        if not found:
            raise ConversationNotFoundError(conversation_id)

    def purge(self, conversation_id: str | None = None) -> int:
        """Remove for good: one conversation, or (no id) every deleted one. Returns how many went.

        Their files go with them, except those a message of another conversation still refers to (a deleted
        one's too: it can be restored). Then any stored file no message refers to and older than ORPHAN_AGE_S
        goes (a crash between storing a file and saving its message leaves one)."""
        where, params = ("deleted IS NOT NULL", ()) if conversation_id is None else ("id = ?", (conversation_id,))
        with self._transaction() as db:
            theirs = {sha for (sha,) in db.execute(
                "SELECT DISTINCT sha256 FROM message_files "
                f"WHERE conversation_id IN (SELECT id FROM conversations WHERE {where})", params)}
            purged = db.execute(f"DELETE FROM conversations WHERE {where}", params).rowcount  # cascades to the rows
            referenced = {sha for (sha,) in db.execute("SELECT DISTINCT sha256 FROM message_files")}
        # Files go only once the rows are gone for good (a purge that fails removes none). A removal that fails
        # leaves an orphan, which a later purge removes.
        cutoff = time.time() - ORPHAN_AGE_S
        for sha in sorted(theirs - referenced):
            self._remove_file(sha, None)
        for sha in sorted(self.attachments.stored() - referenced - theirs):
            self._remove_file(sha, cutoff)
        return purged

    def _remove_file(self, sha256: str, older_than: float | None) -> None:
        try:
            if older_than is None or self.attachments.path(sha256).stat().st_mtime < older_than:
                self.attachments.remove(sha256)
        except (AttachmentError, OSError):  # not a hash (a hand-made row), gone meanwhile, or not removable now
            pass

    # ----- reading -----
    def resolve(self, id_or_prefix: str) -> str:
        """A full conversation id from an id or a unique prefix of one (as `git` takes short hashes). A whole
        id wins over the longer ids it begins (an import can bring in such a pair)."""
        prefix = id_or_prefix.strip()
        if prefix and self._query("SELECT 1 FROM conversations WHERE deleted IS NULL AND id = ?", (prefix,)):
            return prefix
        rows = self._query("SELECT id FROM conversations WHERE deleted IS NULL AND substr(id, 1, ?) = ? LIMIT 2",
                           (len(prefix), prefix)) if prefix else []
        if len(rows) == 1:
            return rows[0][0]
        raise ConversationNotFoundError(id_or_prefix, " (the prefix matches several)" if rows else
                                        " (`llmctl history list` shows the ids)")

    def exists(self, conversation_id: str) -> bool:
        return bool(self._query("SELECT 1 FROM conversations WHERE id = ?", (conversation_id,)))

    def load(self, conversation_id: str) -> Conversation:
        """The conversation with exactly this id (never one it is a prefix of: ``resolve`` is for what people
        type); ConversationNotFoundError if there is none, or it is deleted."""
        found = self._query("SELECT title, kind, created, updated, head, settings, always_allowed FROM conversations "
                            "WHERE id = ? AND deleted IS NULL", (conversation_id,))
        if not found:
            raise ConversationNotFoundError(conversation_id)
        row = found[0]
        conversation = Conversation(row[0], row[1])
        conversation.id = conversation_id
        conversation.created, conversation.updated, conversation.head = row[2], row[3], row[4]
        conversation.settings = GenerationSettings(**json.loads(row[5]))
        conversation.always_allowed = set(json.loads(row[6]))
        cards: dict[str, dict[int, ToolCard]] = {}
        for r in self._query("SELECT message_id, position, iteration, name, arguments, source, call_id, ok, output, "
                             "error, duration_ms FROM tool_calls WHERE conversation_id = ?", (conversation_id,)):
            ok = None if r[7] is None else bool(r[7])
            cards.setdefault(r[0], {})[r[1]] = ToolCard(r[2], r[3], json.loads(r[4]), r[5], r[6], ok, r[8], r[9], r[10])
        steps: dict[str, list[StepRecord]] = {}
        for message_id, record in self._query("SELECT message_id, record FROM tool_steps WHERE conversation_id = ? "
                                              "ORDER BY message_id, position", (conversation_id,)):
            steps.setdefault(message_id, []).append(StepRecord(**json.loads(record)))
        columns = ("id", "parent_id", "role", "layout", "reasoning", "status", "complete", "error", "stop_reason",
                   "iteration", "model_id", "adapter", "backend", "params", "created") + _METRIC_COLUMNS
        for r in self._query(f"SELECT {', '.join(columns)} FROM messages WHERE conversation_id = ? ORDER BY seq",
                             (conversation_id,)):
            row_map = dict(zip(columns, r))
            message = _message(row_map, cards.get(row_map["id"], {}))
            message.steps = steps.get(message.id, [])
            conversation.nodes[message.id] = message
        if conversation.head not in conversation.nodes:  # a head saved before its message: show the newest path
            conversation.head = next(reversed(conversation.nodes), None)
        return conversation

    def list(self, search: str | None = None, limit: int | None = None) -> list[ConversationSummary]:
        """Conversations newest first. With ``search``, those whose title or one message has every word of it
        (search.py says how each word is found); a search without words (only punctuation) finds none."""
        # The messages of the branch shown (head back to the root), not every version: a regenerated answer
        # is one message to the reader. A chat without a head (none saved yet) counts all it has.
        count = """coalesce((WITH RECURSIVE path(id) AS (
                       SELECT c.head UNION ALL
                       SELECT m.parent_id FROM messages m JOIN path ON m.conversation_id = c.id AND m.id = path.id
                       WHERE m.parent_id IS NOT NULL)
                   SELECT nullif(count(*), 0) FROM path WHERE c.head IS NOT NULL),
                   (SELECT count(*) FROM messages m WHERE m.conversation_id = c.id))"""
        limit_sql = f" LIMIT {int(limit)}" if limit else ""
        if search is None:
            rows = self._query(f"SELECT c.id, c.title, c.kind, c.created, c.updated, {count}, NULL FROM conversations c "
                               f"WHERE c.deleted IS NULL ORDER BY c.updated DESC{limit_sql}")
            return [ConversationSummary(*row) for row in rows]
        plan = SearchPlan.of(search)
        if plan.empty:
            return []
        message_hits, title_hits, params = self._search_sql(plan)
        rows = self._query(
            f"""WITH message_hits AS {_MATERIALIZED} ({message_hits}),
                -- with min(), SQLite takes mkey and snip from the best-ranked row of each conversation
                best AS (SELECT cid, mkey, snip, min(rank) FROM message_hits GROUP BY cid),
                found AS (SELECT cid, mkey, snip FROM best
                          UNION ALL
                          SELECT cid, NULL, NULL FROM ({title_hits}) WHERE cid NOT IN (SELECT cid FROM best))
                SELECT c.id, c.title, c.kind, c.created, c.updated, {count}, found.snip,
                       -- no FTS5 snippet (a substring match): the text to cut one from
                       CASE WHEN found.snip IS NULL THEN (SELECT content FROM messages WHERE key = found.mkey) END
                FROM found JOIN conversations c ON c.id = found.cid
                WHERE c.deleted IS NULL ORDER BY c.updated DESC{limit_sql}""",
            params)
        return [ConversationSummary(*row[:6], snippet if text is None else substring_snippet(text, plan.substrings))
                for *row, snippet, text in rows]

    def _search_sql(self, plan: SearchPlan) -> tuple[str, str, dict[str, str]]:
        """A search's matching messages (cid, mkey, snip, rank) and titles (cid) as two SELECTs, and their
        parameters."""
        params: dict[str, str] = {}
        in_message: list[str] = []
        in_title: list[str] = []
        if plan.prefixes:
            params["q"] = plan.fts_query()
        if self._trigram and plan.trigram_query():
            params["t"] = plan.trigram_query()
            in_message.append("m.key IN (SELECT rowid FROM message_trigram WHERE message_trigram MATCH :t)")
        for n, word in enumerate(plan.scanned(self._trigram)):
            params[f"s{n}"] = like_pattern(word)
            in_message.append(f"m.content LIKE :s{n} ESCAPE '\\'")
        for n, word in enumerate(plan.substrings):  # titles are short: scanned
            params[f"w{n}"] = like_pattern(word)
            in_title.append(f"c.title LIKE :w{n} ESCAPE '\\'")
        if plan.prefixes:
            messages = ("SELECT m.conversation_id AS cid, m.key AS mkey, "
                        "snippet(message_search, 0, '[', ']', '…', 10) AS snip, bm25(message_search) AS rank "
                        "FROM message_search JOIN messages m ON m.key = message_search.rowid "
                        "WHERE message_search MATCH :q")
            titles = ("SELECT c.id AS cid FROM title_search JOIN conversations c ON c.key = title_search.rowid "
                      "WHERE title_search MATCH :q")
        else:  # no FTS5 rank: the first matching message gives the snippet
            messages = ("SELECT m.conversation_id AS cid, m.key AS mkey, NULL AS snip, m.key AS rank "
                        "FROM messages m WHERE 1")
            titles = "SELECT c.id AS cid FROM conversations c WHERE 1"
        messages += "".join(f" AND {condition}" for condition in in_message)
        titles += "".join(f" AND {condition}" for condition in in_title)
        return messages, titles, params

    def _query(self, sql: str, params: Any = ()) -> list[tuple[Any, ...]]:
        try:
            return self._db.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise HistoryError(f"{self.path}: {exc}") from exc


def _message(row: dict[str, Any], cards: dict[int, ToolCard]) -> Message:
    parts: list[Any] = []
    for item in json.loads(row["layout"]):
        if item["type"] == "tool":
            parts.append(cards[item["position"]])
        elif item["type"] == "text":
            parts.append(TextPart(item["text"]))
        elif item["type"] == "file":
            parts.append(FilePart(item["sha256"], item["name"], item["mime"], item["size"], item["kind"]))
        else:
            parts.append(Notice(item["kind"], item["message"]))
    status, stop_reason = row["status"], row["stop_reason"]
    if not row["complete"]:  # its writer is gone: what was saved is what there is
        status, stop_reason = "stopped", INTERRUPTED
    metrics: Metrics | None = Metrics(**{name: row[column] for column, name in zip(_METRIC_COLUMNS, _METRIC_FIELDS)})
    if metrics == Metrics():  # nothing measured: the same as no metrics (as Conversation.to_dict has it)
        metrics = None
    return Message(
        row["role"], parts, row["reasoning"], status, row["error"], stop_reason, metrics, row["model_id"],
        row["iteration"], row["id"], row["parent_id"], row["adapter"], row["backend"],
        json.loads(row["params"]) if row["params"] else None, row["created"],
    )
