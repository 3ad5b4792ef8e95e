"""The record of servers we spawned, shared by every process of the app (a small JSON file)."""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path


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


class StateFile:
    """Read-modify-write of ``servers.json``; writes are atomic (temp file + rename)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> dict[str, ServerRecord]:
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        records = {}
        for model_id, data in (raw.get("servers") or {}).items():
            try:
                records[model_id] = ServerRecord(**data)
            except TypeError:
                continue  # written by another version: treat as absent
        return records

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
