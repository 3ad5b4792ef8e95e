"""A file given with a message: its name, bytes, media (from the bytes) and content hash; read from a path or bytes."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Union

from ..errors import AttachmentError, UnsupportedAttachmentError
from .media import Media, sniff

# Larger files are refused before they are read: a document is cut to the context anyway, and an image this
# size is no photo. (The window's attach reads up to this off its event loop.)
MAX_FILE_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class Attachment:
    name: str  # the file's name, without its folder
    data: bytes = field(repr=False)
    media: Media
    sha256: str

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def kind(self) -> str:
        return self.media.kind

    @classmethod
    def from_bytes(cls, data: bytes, name: str) -> "Attachment":
        """Check ``data`` (its media from its bytes); a file that cannot be attached raises a typed error."""
        name = Path(name).name or "attachment"
        if not data:
            raise AttachmentError(f"{name}: the file is empty")
        if len(data) > MAX_FILE_BYTES:
            raise AttachmentError(f"{name}: {human_size(len(data))} is larger than the {human_size(MAX_FILE_BYTES)} "
                                  f"a file may have")
        media = sniff(data, name)
        if isinstance(media, str):
            raise UnsupportedAttachmentError(name, media)
        return cls(name, data, media, hashlib.sha256(data).hexdigest())


FileSource = Union[str, "os.PathLike[str]", Attachment, tuple[str, bytes]]


def load_attachment(source: FileSource) -> Attachment:
    """An Attachment from a path, a ``(name, bytes)`` pair or an Attachment (as it is). Reads the file: call it off
    an event loop for large files."""
    if isinstance(source, Attachment):
        return source
    if isinstance(source, tuple):
        name, data = source
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise AttachmentError(f"{name}: a file given as (name, data) needs bytes, not {type(data).__name__}")
        return Attachment.from_bytes(bytes(data), str(name))
    path = Path(source).expanduser()
    try:
        size = path.stat().st_size
        if path.is_dir():
            raise AttachmentError(f"{path}: is a folder, not a file")
        if size > MAX_FILE_BYTES:
            raise AttachmentError(f"{path}: {human_size(size)} is larger than the {human_size(MAX_FILE_BYTES)} a file "
                                  f"may have")
        data = path.read_bytes()
    except FileNotFoundError:
        raise AttachmentError(f"{path}: no such file") from None
    except OSError as exc:
        raise AttachmentError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    return Attachment.from_bytes(data, path.name)


def human_size(size: int) -> str:
    """``812 B``, ``12.3 KB``, ``4.8 MB`` (powers of 1024, as file managers show them)."""
    value = float(size)
    for unit in ("B", "KB", "MB"):
        if value < 1024 or unit == "MB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"
