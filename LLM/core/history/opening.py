"""Opening the history file: check it without writing, then migrate it under the write lock, waiting for others.

The window and ``llmctl`` open the same file, often at the same moment (both started together, or
the first start after an update). Whatever one process read before it held the write lock may be
stale by the time it writes, so the schema version is read again inside the migration's write
transaction, and a lock held by another process is waited for, then retried until OPEN_WAIT_S.
"""

from __future__ import annotations

import itertools
import os
import sqlite3
import time
from pathlib import Path

from ..errors import HistoryDamagedError, HistoryError, HistoryVersionError
from .schema import MIGRATIONS, SCHEMA_VERSION, TRIGRAM

SQLITE_HEADER = b"SQLite format 3\x00"
# How long a write waits for another process's write (the window and llmctl share the file). Our
# transactions last milliseconds; a lock held longer than this fails the save, which is retried later.
LOCK_WAIT_S = 1.0
# Opening waits longer: another process may be migrating (reindexing) a large history.
OPEN_LOCK_WAIT_S = 10.0
OPEN_WAIT_S = 30.0  # in all, over the retries of a busy open
_RETRY_DELAYS_S = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5)  # then 0.5 s each
_BUSY_CODES = (5, 6)  # SQLITE_BUSY, SQLITE_LOCKED (extended codes keep them in the low byte)


class _Busy(Exception):
    """Another process holds (or is changing) the file: try again shortly."""


def open_checked(path: Path) -> sqlite3.Connection:
    """A connection to the history at ``path``, created or migrated to SCHEMA_VERSION; typed errors for a
    damaged file, a newer schema or a file that stays busy past OPEN_WAIT_S."""
    path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + OPEN_WAIT_S
    for attempt in itertools.count():
        try:  # one attempt never waits for the lock past the overall deadline
            return _open_once(path, min(OPEN_LOCK_WAIT_S, max(deadline - time.monotonic(), 0.05)))
        except _Busy as busy:
            if time.monotonic() >= deadline:
                raise HistoryError(f"cannot open the history {path}: another process kept it busy for "
                                   f"{OPEN_WAIT_S:g} s ({busy})") from busy
            time.sleep(_RETRY_DELAYS_S[min(attempt, len(_RETRY_DELAYS_S) - 1)])
    raise AssertionError("itertools.count() never ends")


def _open_once(path: Path, lock_wait_s: float) -> sqlite3.Connection:
    existed = path.exists() and path.stat().st_size > 0
    if existed:
        with path.open("rb") as f:
            if f.read(len(SQLITE_HEADER)) != SQLITE_HEADER:
                raise HistoryDamagedError(damaged(path, "it is not an SQLite database"))
    version = _check(path) if existed else 0
    try:
        db = sqlite3.connect(path, isolation_level=None, timeout=lock_wait_s)
    except sqlite3.Error as exc:
        raise HistoryError(f"cannot open the history {path}: {exc}") from exc
    try:
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = NORMAL")  # WAL + NORMAL: a crash keeps every commit; no fsync per message
        db.execute("PRAGMA foreign_keys = ON")
        if version < SCHEMA_VERSION:
            _migrate(db, path)
        db.execute(f"PRAGMA busy_timeout = {int(LOCK_WAIT_S * 1000)}")
    except sqlite3.OperationalError as exc:  # a lock, permissions, a full disk: the file itself is fine
        db.close()
        if _is_busy(exc):
            raise _Busy(str(exc)) from exc
        raise HistoryError(f"cannot use the history {path}: {exc}") from exc
    except sqlite3.DatabaseError as exc:
        db.close()
        raise HistoryDamagedError(damaged(path, str(exc))) from exc
    except BaseException:
        db.close()
        raise
    return db


def _is_busy(exc: sqlite3.Error) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)  # Python 3.11+
    if code is not None:
        return code & 0xFF in _BUSY_CODES
    return "locked" in str(exc) or "busy" in str(exc)


def _file_state(path: Path) -> tuple[object, ...]:
    """What changes when another process writes the file or opens its write-ahead log."""
    def stat(p: Path) -> tuple[int, int] | None:
        try:
            s = p.stat()
        except OSError:
            return None
        return s.st_size, s.st_mtime_ns
    return stat(path), stat(path.with_name(path.name + "-wal"))


def _check(path: Path) -> int:
    """The schema version of an existing file, read without writing: a read-write connection would merge
    a newer version's (or a damaged file's) write-ahead log into the file on close.

    Another process may write the file while it is read here (immutable reads take no lock): a read
    that fails while the file changed is tried again rather than taken as damage."""
    before = _file_state(path)
    try:
        return _read_version(path)
    except (HistoryError, sqlite3.Error) as exc:
        if isinstance(exc, sqlite3.OperationalError) and _is_busy(exc) or _file_state(path) != before:
            raise _Busy(str(exc)) from exc
        if isinstance(exc, HistoryError):
            raise
        raise HistoryError(f"cannot read the history {path}: {exc}") from exc


def _read_version(path: Path) -> int:
    # With no write-ahead log beside it the file is all there is: immutable reads it without creating the
    # -wal/-shm files a WAL-mode file otherwise gets; with one, read-only mode reads through it.
    has_log = path.with_name(path.name + "-wal").exists()
    db = sqlite3.connect(f"{path.resolve().as_uri()}?{'mode=ro' if has_log else 'immutable=1'}", uri=True,
                         timeout=LOCK_WAIT_S)
    try:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise _newer(path, version)
        check = db.execute("PRAGMA quick_check").fetchall()
        if check != [("ok",)]:
            raise HistoryDamagedError(damaged(path, "; ".join(str(r[0]) for r in check[:3])))
        if version == 0 and db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
            raise HistoryError(f"{path} is an SQLite database of another program (it has tables but no workbench "
                               "schema); it was not changed. Point LLM_DATA_DIR elsewhere.")
        if not TRIGRAM and db.execute("SELECT 1 FROM sqlite_master WHERE name = 'message_trigram'").fetchall():
            raise HistoryError(f"the history {path} has a search index this SQLite ({sqlite3.sqlite_version}) "
                               "cannot update: it needs SQLite 3.34 or newer (a newer Python); the file was not "
                               "changed.")
        return version
    except sqlite3.OperationalError:
        raise
    except sqlite3.DatabaseError as exc:
        raise HistoryDamagedError(damaged(path, str(exc))) from exc
    finally:
        db.close()


def _newer(path: Path, version: int) -> HistoryVersionError:
    return HistoryVersionError(
        f"the history {path} was written by a newer version of the workbench (schema {version}; this "
        f"version knows up to {SCHEMA_VERSION}). Update the workbench, or point LLM_DATA_DIR elsewhere; "
        "the file was not changed.")


def damaged(path: Path, why: str) -> str:
    return (f"the history {path} is damaged ({why}). It was left as it is: move it aside (or restore a backup) "
            "and start again to get a new, empty history.")


def _migrate(db: sqlite3.Connection, path: Path) -> None:
    """The missing migrations and the version bump in one write transaction. The version read before
    may be stale: another process may have migrated the file meanwhile, so it is read again here,
    under the lock, and only what is still missing is applied (often nothing)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise _newer(path, version)
        if 0 < version < SCHEMA_VERSION:
            _backup(path, version)
        for number in range(version + 1, SCHEMA_VERSION + 1):
            for statement in _statements(MIGRATIONS[number - 1]):
                db.execute(statement)
        if version < SCHEMA_VERSION:
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    except BaseException:
        if db.in_transaction:  # some errors (a full disk) end the transaction themselves
            db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def _backup(path: Path, version: int) -> None:
    """A copy of the file before migrating it, next to it (history.sqlite3.v1.bak). Taken while the caller
    holds the write lock, through a second connection (a reader sees the file as last committed), and
    written under a temporary name first, so the backup is never half a file."""
    target = path.with_name(f"{path.name}.v{version}.bak")
    if target.exists():
        return
    partial = target.with_name(f"{target.name}.{os.getpid()}.partial")
    source = sqlite3.connect(path, timeout=LOCK_WAIT_S)
    try:
        copy = sqlite3.connect(partial)
        try:
            source.backup(copy)
        finally:
            copy.close()
        os.replace(partial, target)
    finally:
        source.close()
        partial.unlink(missing_ok=True)


def _statements(script: str) -> list[str]:
    """A migration script split into statements (triggers keep their inner semicolons)."""
    statements, current = [], ""
    for line in script.splitlines(keepends=True):
        if line.lstrip().startswith("--") and not current.strip():
            continue
        current += line
        if sqlite3.complete_statement(current):
            statements.append(current.strip())
            current = ""
    return [s for s in statements if s.strip(" ;\n")]
