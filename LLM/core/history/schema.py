"""The history database's schema as numbered migrations (pure SQL; the store applies them).

``PRAGMA user_version`` is the schema version. The store applies the missing migrations in one
transaction with the version bump, after reading the version again under the write lock, so a
crash mid-migration leaves the previous version intact and a second process opening the file at
the same moment skips what the first applied. Never edit a migration that has shipped: add the
next one.
"""

from __future__ import annotations

import sqlite3

# 1: conversations, the message tree, tool calls with their results.
_V1 = """
CREATE TABLE conversations (
    key INTEGER PRIMARY KEY,              -- stable rowid for the search index
    id TEXT NOT NULL UNIQUE,
    title TEXT NOT NULL,
    kind TEXT NOT NULL DEFAULT 'chat',    -- chat | tools: the page it belongs to
    created REAL NOT NULL,
    updated REAL NOT NULL,
    head TEXT,                            -- the message the active branch ends at
    settings TEXT NOT NULL DEFAULT '{}',  -- JSON: system prompt, temperature, ...
    always_allowed TEXT NOT NULL DEFAULT '[]',
    deleted REAL                          -- set while a delete can still be undone
);
CREATE INDEX conversations_by_update ON conversations(deleted, updated);

CREATE TABLE messages (
    key INTEGER PRIMARY KEY,
    conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    id TEXT NOT NULL,
    parent_id TEXT,
    seq INTEGER NOT NULL,                 -- creation order within the conversation
    role TEXT NOT NULL,
    content TEXT NOT NULL,                -- the visible text (what search finds)
    layout TEXT NOT NULL,                 -- JSON: text parts and notices in order, tool calls by position
    reasoning TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL,
    complete INTEGER NOT NULL,            -- 0 while an answer is being written (saved about once a second)
    error TEXT,
    stop_reason TEXT,
    iteration INTEGER NOT NULL DEFAULT 0,
    model_id TEXT,
    adapter TEXT,
    backend TEXT,
    params TEXT,                          -- JSON: the generation parameters of the request
    ttft_ms REAL,
    tokens_per_second REAL,
    prompt_tokens INTEGER,
    completion_tokens INTEGER,
    duration_ms REAL,
    chunks INTEGER NOT NULL DEFAULT 0,
    finish_reason TEXT,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    UNIQUE (conversation_id, id)
);

CREATE TABLE tool_calls (                 -- one row per call, with its result once it has one
    conversation_id TEXT NOT NULL,
    message_id TEXT NOT NULL,
    position INTEGER NOT NULL,            -- order within the message
    call_id TEXT,
    iteration INTEGER NOT NULL,
    name TEXT NOT NULL,
    arguments TEXT NOT NULL,              -- JSON object
    source TEXT NOT NULL,                 -- native | fallback
    ok INTEGER,                           -- NULL while it runs
    output TEXT NOT NULL DEFAULT '',
    error TEXT,
    duration_ms REAL,
    PRIMARY KEY (conversation_id, message_id, position),
    FOREIGN KEY (conversation_id, message_id) REFERENCES messages(conversation_id, id) ON DELETE CASCADE
);
"""

# 2: full-text search over titles and message text, kept current by triggers; existing rows are indexed.
_V2 = """
CREATE VIRTUAL TABLE message_search USING fts5(
    content, content='messages', content_rowid='key', tokenize='unicode61 remove_diacritics 2');
CREATE VIRTUAL TABLE title_search USING fts5(
    title, content='conversations', content_rowid='key', tokenize='unicode61 remove_diacritics 2');

CREATE TRIGGER message_search_insert AFTER INSERT ON messages BEGIN
    INSERT INTO message_search(rowid, content) VALUES (new.key, new.content);
END;
CREATE TRIGGER message_search_delete AFTER DELETE ON messages BEGIN
    INSERT INTO message_search(message_search, rowid, content) VALUES ('delete', old.key, old.content);
END;
CREATE TRIGGER message_search_update AFTER UPDATE OF content ON messages BEGIN
    INSERT INTO message_search(message_search, rowid, content) VALUES ('delete', old.key, old.content);
    INSERT INTO message_search(rowid, content) VALUES (new.key, new.content);
END;
CREATE TRIGGER title_search_insert AFTER INSERT ON conversations BEGIN
    INSERT INTO title_search(rowid, title) VALUES (new.key, new.title);
END;
CREATE TRIGGER title_search_delete AFTER DELETE ON conversations BEGIN
    INSERT INTO title_search(title_search, rowid, title) VALUES ('delete', old.key, old.title);
END;
CREATE TRIGGER title_search_update AFTER UPDATE OF title ON conversations BEGIN
    INSERT INTO title_search(title_search, rowid, title) VALUES ('delete', old.key, old.title);
    INSERT INTO title_search(rowid, title) VALUES (new.key, new.title);
END;

INSERT INTO message_search(message_search) VALUES ('rebuild');
INSERT INTO title_search(title_search) VALUES ('rebuild');
"""

# 3: the tool loop's requests per answer (the inspector and replay read them).
_V3 = """
CREATE TABLE tool_steps (
    conversation_id TEXT NOT NULL,
    message_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    record TEXT NOT NULL,                 -- JSON: request body, raw output, parsed calls, tokens, timings
    PRIMARY KEY (conversation_id, message_id, position),
    FOREIGN KEY (conversation_id, message_id) REFERENCES messages(conversation_id, id) ON DELETE CASCADE
);
"""

# 4: a trigram index of message text, for words of scripts written without spaces (Chinese, Japanese,
# Thai, ...): the unicode61 index sees a whole sentence of them as one token, so a word inside it is
# found only as a substring. Trigrams need SQLite 3.34; an older SQLite gets no index, and search then
# scans the messages for those words instead (slower, same results). And an index for the next seq of
# a conversation, which every saved message looks up (without it, importing n messages took n² steps).
TRIGRAM = sqlite3.sqlite_version_info >= (3, 34)
_V4 = """
CREATE INDEX messages_by_seq ON messages(conversation_id, seq);
""" + ("""
CREATE VIRTUAL TABLE message_trigram USING fts5(
    content, content='messages', content_rowid='key', tokenize='trigram');

CREATE TRIGGER message_trigram_insert AFTER INSERT ON messages BEGIN
    INSERT INTO message_trigram(rowid, content) VALUES (new.key, new.content);
END;
CREATE TRIGGER message_trigram_delete AFTER DELETE ON messages BEGIN
    INSERT INTO message_trigram(message_trigram, rowid, content) VALUES ('delete', old.key, old.content);
END;
CREATE TRIGGER message_trigram_update AFTER UPDATE OF content ON messages BEGIN
    INSERT INTO message_trigram(message_trigram, rowid, content) VALUES ('delete', old.key, old.content);
    INSERT INTO message_trigram(rowid, content) VALUES (new.key, new.content);
END;

INSERT INTO message_trigram(message_trigram) VALUES ('rebuild');
""" if TRIGRAM else "")

# 5: tool-calling report cards (BFCL): one run per model, adapter, mode, engine build and data version, and
# one row per task, written as each task finishes (so an interrupted run resumes where it stopped).
_V5 = """
CREATE TABLE eval_runs (
    id INTEGER PRIMARY KEY,
    suite TEXT NOT NULL,                  -- bfcl
    model_id TEXT NOT NULL,
    adapter TEXT NOT NULL DEFAULT '',     -- '' for the base model
    mode TEXT NOT NULL,                   -- native | fallback | constrained
    engine TEXT NOT NULL,                 -- the engine build (llama-server's build_info) or backend
    data_version TEXT NOT NULL,           -- a hash of the data files read
    settings TEXT NOT NULL DEFAULT '{}',  -- JSON: max_tokens, temperature
    created REAL NOT NULL,
    updated REAL NOT NULL,
    UNIQUE (suite, model_id, adapter, mode, engine, data_version)
);
CREATE TABLE eval_results (
    run_id INTEGER NOT NULL REFERENCES eval_runs(id) ON DELETE CASCADE,
    task_id TEXT NOT NULL,
    category TEXT NOT NULL,
    passed INTEGER NOT NULL,
    error_type TEXT NOT NULL DEFAULT '',
    reason TEXT NOT NULL DEFAULT '',
    calls TEXT NOT NULL DEFAULT '[]',     -- JSON: the calls as scored, BFCL names
    raw_output TEXT NOT NULL DEFAULT '',
    request TEXT NOT NULL DEFAULT '{}',   -- JSON: the request body as sent
    latency_ms REAL,
    finished REAL NOT NULL,
    PRIMARY KEY (run_id, task_id)
);
"""

# 6: the files attached to messages, by content hash. The bytes live beside the database (HistoryStore.attachments),
# never in a row; these rows say which messages refer to which file, so that purging the last conversation that
# refers to a file removes the file too. A message's own order of files and text is in its layout. Histories of
# version 5 had no files: the table starts empty.
_V6 = """
CREATE TABLE message_files (
    conversation_id TEXT NOT NULL,
    message_id TEXT NOT NULL,
    position INTEGER NOT NULL,            -- order among the message's files (one file may be attached twice)
    sha256 TEXT NOT NULL,                 -- the file in the attachment store
    PRIMARY KEY (conversation_id, message_id, position),
    FOREIGN KEY (conversation_id, message_id) REFERENCES messages(conversation_id, id) ON DELETE CASCADE
);
CREATE INDEX message_files_by_sha256 ON message_files(sha256);
"""

MIGRATIONS: tuple[str, ...] = (_V1, _V2, _V3, _V4, _V5, _V6)  # MIGRATIONS[n - 1] takes the schema from version n - 1 to n
SCHEMA_VERSION = len(MIGRATIONS)
