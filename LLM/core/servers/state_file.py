"""The record of servers we spawned, shared by every process of the app (a small JSON file)."""

from __future__ import annotations

import fcntl
import json
import logging
import math
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServerRecord:
    model_id: str
    pid: int
    host: str
    port: int
    config_hash: str
    started_at: float
    argv: list[str]
    owner_pid: int  # the process that started it (stops it at exit under the session policy)
    detached: bool = False  # started by `llmctl servers start`: runs until `llmctl servers stop`
    started: str | None = None  # the OS's start time of pid: with argv, proof that a live pid is still ours


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# What each field must hold. A record is used to signal pids, so a wrong type is never let through.
_CHECKS: dict[str, tuple[str, Any]] = {
    "model_id": ("a string", lambda v: isinstance(v, str)),
    "pid": ("a pid (an integer above 0)", lambda v: _is_int(v) and v > 0),
    "host": ("a string", lambda v: isinstance(v, str)),
    "port": ("a port number", lambda v: _is_int(v) and 0 <= v <= 65535),
    "config_hash": ("a string", lambda v: isinstance(v, str)),
    "started_at": ("a number", lambda v: (_is_int(v) or isinstance(v, float)) and math.isfinite(v)),
    "argv": ("a list of strings", lambda v: isinstance(v, list) and all(isinstance(a, str) for a in v)),
    "owner_pid": ("a pid (an integer above 0)", lambda v: _is_int(v) and v > 0),
    "detached": ("true or false", lambda v: isinstance(v, bool)),
    "started": ("a string or null", lambda v: v is None or isinstance(v, str)),
}
_REQUIRED = [f.name for f in fields(ServerRecord) if f.name not in ("detached", "started")]


def parse_records(raw: Any) -> tuple[dict[str, ServerRecord], list[str]]:
    """The records of a parsed ``servers.json``, and a problem (naming the key) for each part that was ignored.

    Hand edits and other versions' files are read tolerantly: a wrong entry is one server we do not know
    about, never a reason the app or llmctl cannot start."""
    if not isinstance(raw, dict):
        return {}, [f"the file holds {type(raw).__name__}, not an object with a 'servers' key: ignored"]
    servers = raw.get("servers", {})
    if not isinstance(servers, dict):
        return {}, [f"'servers' is {type(servers).__name__}, not an object of records: ignored"]
    records, problems = {}, []
    for model_id, data in servers.items():
        problem = _record_problem(model_id, data)
        if problem:
            problems.append(f"servers.{model_id}: {problem}: ignored")
        else:
            records[model_id] = ServerRecord(**data)
    return records, problems


def _record_problem(model_id: str, data: Any) -> str | None:
    if not isinstance(data, dict):
        return f"{type(data).__name__}, not a record"
    unknown = sorted(set(data) - set(_CHECKS))
    if unknown:
        return f"unknown key {unknown[0]!r} (written by another version?)"
    missing = [name for name in _REQUIRED if name not in data]
    if missing:
        return f"missing key {missing[0]!r}"
    for name, value in data.items():
        what, ok = _CHECKS[name]
        if not ok(value):
            return f"'{name}' must be {what}, not {value!r:.40}"
    if data["model_id"] != model_id:
        return f"'model_id' is {data['model_id']!r}, not the key it is filed under"
    return None


class StateFile:
    """Read-modify-write of ``servers.json``; writes are atomic (temp file + rename)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._reported: set[str] = set()  # each problem is logged once, not on every read

    def load(self) -> dict[str, ServerRecord]:
        """The records; an unreadable file, or an entry of the wrong shape, reads as no record (with a warning
        in the log). The next write drops what was ignored."""
        records, problems = self._read()
        for problem in problems:
            if problem not in self._reported:
                self._reported.add(problem)
                log.warning("%s: %s", self.path, problem)
        return records

    def _read(self) -> tuple[dict[str, ServerRecord], list[str]]:
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}, []
        except (OSError, ValueError, RecursionError) as exc:  # ValueError: not JSON, or not UTF-8
            return {}, [f"unreadable ({type(exc).__name__}: {exc}): ignored"]
        return parse_records(raw)

    def put(self, record: ServerRecord) -> None:
        with self._locked():
            records = self.load()
            records[record.model_id] = record
            self._write(records)

    def remove(self, model_id: str, pid: int | None = None) -> None:
        with self._locked():
            records = self.load()
            current = records.get(model_id)
            if current is not None and (pid is None or current.pid == pid):
                del records[model_id]
                self._write(records)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        # Two app processes (the window and an llmctl) may update the file at once.
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _write(self, records: dict[str, ServerRecord]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        payload = {"servers": {k: asdict(v) for k, v in records.items()}}
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".servers.", suffix=".json")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(payload, f, indent=2)
        os.replace(tmp, self.path)
