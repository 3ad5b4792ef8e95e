"""Where attachments' bytes live, by content hash: a folder beside the history database (each file stored once,
however many messages refer to it), or memory for a process that saves nothing (``llmctl run``, the API)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Protocol

from ..atomic_files import write_bytes_atomically
from ..errors import AttachmentError
from .attachment import Attachment
from .media import sniff

_SHA = re.compile(r"[0-9a-f]{64}")


class Blobs(Protocol):
    def put(self, attachment: Attachment) -> None: ...

    def get(self, sha256: str, name: str) -> Attachment: ...


class MemoryBlobs:
    """Attachments of one process, in memory."""

    def __init__(self, attachments: list[Attachment] | None = None) -> None:
        self._items: dict[str, Attachment] = {a.sha256: a for a in attachments or []}

    def put(self, attachment: Attachment) -> None:
        self._items.setdefault(attachment.sha256, attachment)

    def get(self, sha256: str, name: str) -> Attachment:
        try:
            found = self._items[sha256]
        except KeyError:
            raise AttachmentError(f"{name}: its bytes (sha256 {sha256[:12]}…) are not here any more") from None
        return found if found.name == name else Attachment(name, found.data, found.media, sha256)


class AttachmentStore:
    """A folder of files named by their sha256 (``ab/ab12…``). Writes are atomic: a file is there whole or not at all."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)

    def path(self, sha256: str) -> Path:
        if not _SHA.fullmatch(sha256):
            raise AttachmentError(f"{sha256!r} is not a sha256")
        return self.folder / sha256[:2] / sha256

    def put(self, attachment: Attachment) -> None:
        target = self.path(attachment.sha256)
        if target.is_file() and target.stat().st_size == attachment.size:
            # Stored once, whatever the name or the message. Touched: a purge spares an unreferenced file for a while
            # after it was last put, so one that a message is about to refer to again is not removed under it.
            try:
                os.utime(target)
            except OSError:
                pass  # a read-only store still has the file
            return
        try:
            write_bytes_atomically(target, attachment.data)
        except OSError as exc:
            raise AttachmentError(f"{attachment.name}: cannot be stored in {self.folder} ({exc.strerror or exc})") from exc

    def get(self, sha256: str, name: str) -> Attachment:
        try:
            data = self.path(sha256).read_bytes()
        except FileNotFoundError:
            raise AttachmentError(f"{name}: its stored copy {self.path(sha256)} is missing") from None
        except OSError as exc:
            raise AttachmentError(f"{name}: its stored copy cannot be read ({exc.strerror or exc})") from exc
        media = sniff(data, name)
        if isinstance(media, str):
            raise AttachmentError(f"{name}: its stored copy is no longer an attachment ({media})")
        return Attachment(name, data, media, sha256)

    def has(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    def stored(self) -> set[str]:
        """Every hash with a file here."""
        if not self.folder.is_dir():
            return set()
        return {p.name for p in self.folder.glob("??/*") if _SHA.fullmatch(p.name)}

    def remove(self, sha256: str) -> None:
        self.path(sha256).unlink(missing_ok=True)
