"""The files of an exported conversation: embedded in its JSON as base64 and checked on the way back in; linked
from its Markdown, as copies beside the file it is written to (or, printed, as the stored copies)."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ..attachments import Attachment, AttachmentStore, Blobs
from ..chat.conversation import Conversation, Message
from ..chat.parts import FilePart
from ..errors import AttachmentError, HistoryError, ImportFormatError

_SHA = re.compile(r"[0-9a-f]{64}")
# A copied file's name keeps this many characters of the original (a 4-byte character each still fits the
# 255 bytes file systems allow, with the hash prefix).
_NAME_CHARS = 50


def files_by_hash(messages: Iterable[Message]) -> dict[str, FilePart]:
    """Each file the messages refer to once, by sha256: the first part naming it, in message order."""
    found: dict[str, FilePart] = {}
    for message in messages:
        for part in message.files:
            found.setdefault(part.sha256, part)
    return found


def embedded(conversation: Conversation, files: Blobs | None) -> dict[str, dict[str, str]]:
    """The export's ``attachments``: every file of the tree once, by sha256, with its bytes in base64 (empty for a
    conversation without files). HistoryError names a file whose bytes cannot be had as they were stored."""
    parts = files_by_hash(conversation.nodes.values())
    if not parts:
        return {}
    if files is None:
        raise HistoryError(f"exporting “{conversation.title}” needs the bytes of its files "
                           f"({', '.join(p.name for p in parts.values())}), and no attachment store was given")
    out: dict[str, dict[str, str]] = {}
    for sha, part in parts.items():
        try:
            data = files.get(sha, part.name).data
        except AttachmentError as exc:
            raise HistoryError(f"“{conversation.title}”: {exc}") from exc
        if hashlib.sha256(data).hexdigest() != sha:  # the export would not import back
            raise HistoryError(f"“{conversation.title}”: the stored copy of {part.name} (sha256 {sha[:12]}…) has "
                               "changed since it was stored")
        out[sha] = {"name": part.name, "mime": part.mime, "data": base64.b64encode(data).decode("ascii")}
    return out


def unpacked(raw: Any, conversation: Conversation, source: str) -> list[Attachment]:
    """The files an import's messages refer to, from its ``attachments`` (absent: none), each checked: present,
    base64, bytes that hash to their key and can be attached, of the size the message says. ImportFormatError
    names the key. Entries no message refers to are left out."""
    raw = {} if raw is None else raw
    if not isinstance(raw, dict):
        raise ImportFormatError(f"{source}: 'attachments' must be an object")
    found: dict[str, Attachment] = {}
    for index, message in enumerate(conversation.nodes.values()):  # in the file's order: the keys match it
        for n, part in enumerate(message.parts):
            if not isinstance(part, FilePart):
                continue
            where = f"conversation.messages[{index}].parts[{n}]"
            if not _SHA.fullmatch(part.sha256):
                raise ImportFormatError(f"{source}: {where}.sha256 must be a sha256 (64 lowercase hex digits)")
            if part.sha256 not in found:
                if part.sha256 not in raw:
                    raise ImportFormatError(f"{source}: {where} refers to attachments.{part.sha256}, which is not "
                                            "in the file")
                found[part.sha256] = _attachment(raw[part.sha256], part.sha256, source)
            if part.size != found[part.sha256].size:
                raise ImportFormatError(f"{source}: {where}.size is {part.size}, but attachments.{part.sha256} has "
                                        f"{found[part.sha256].size} bytes")
    return list(found.values())


def _attachment(entry: Any, sha: str, source: str) -> Attachment:
    where = f"attachments.{sha}"
    if not isinstance(entry, dict):
        raise ImportFormatError(f"{source}: {where} must be an object")
    for key in ("name", "mime", "data"):
        if not isinstance(entry.get(key), str):
            raise ImportFormatError(f"{source}: {where}.{key} must be a string")
    try:
        data = base64.b64decode(entry["data"], validate=True)
    except ValueError as exc:  # binascii.Error, or a character outside ASCII
        raise ImportFormatError(f"{source}: {where}.data is not base64 ({exc})") from exc
    actual = hashlib.sha256(data).hexdigest()
    if actual != sha:
        raise ImportFormatError(f"{source}: {where}.data does not match its key (its bytes hash to {actual})")
    try:
        return Attachment.from_bytes(data, entry["name"])
    except AttachmentError as exc:
        raise ImportFormatError(f"{source}: {where}: {exc}") from exc


def markdown_links(messages: list[Message], files: Blobs | None, destination: Path | None) -> dict[
        tuple[str, str], str]:
    """Where a Markdown export links each file of ``messages``, by (sha256, name). Written to ``destination``: a
    copy in the folder ``<stem>_files`` beside it (``<sha256[:12]>-<name>``), linked relatively, so the document
    and its folder move together. Printed: the stored copy's absolute path. A file whose bytes are not at hand
    gets no link; a copy that cannot be written raises HistoryError."""
    wanted = list(dict.fromkeys((f.sha256, f.name) for m in messages for f in m.files))
    if not wanted or files is None:
        return {}
    if destination is None:
        return {key: _target(stored) for key in wanted if (stored := _stored_path(files, key[0])) is not None}
    folder = destination.with_name(f"{destination.stem}_files")
    links: dict[tuple[str, str], str] = {}
    for sha, name in wanted:
        try:
            data = files.get(sha, name).data
        except AttachmentError:
            continue
        target = folder / f"{sha[:12]}-{_safe_name(name)}"
        try:
            folder.mkdir(exist_ok=True)  # not its parents: a missing folder for the document is the caller's error
            target.write_bytes(data)
        except OSError as exc:
            raise HistoryError(f"cannot copy {name} beside the export, to {target}: {exc.strerror or exc}") from exc
        links[(sha, name)] = _target(f"{folder.name}/{target.name}")
    return links


def _stored_path(files: Blobs, sha: str) -> str | None:
    if not isinstance(files, AttachmentStore):  # bytes in memory have no path to link
        return None
    try:
        return files.path(sha).resolve().as_posix() if files.has(sha) else None
    except AttachmentError:  # not a hash
        return None


def _target(path: str) -> str:
    """A link target any Markdown reader takes: spaces, brackets and other characters percent-encoded."""
    return quote(path, safe="/:")


def _safe_name(name: str) -> str:
    """A file name every system accepts: no folders, none of the characters Windows refuses, not too long."""
    # Trailing dots and spaces: Windows drops them. (A leading dot hides nothing: the hash comes first.)
    cleaned = re.sub(r'[\x00-\x1f\x7f<>:"/\\|?*]', "_", name).rstrip(" .") or "file"
    if len(cleaned) > _NAME_CHARS:
        suffix = Path(cleaned).suffix[:12]
        cleaned = cleaned[:_NAME_CHARS - len(suffix)] + suffix
    return cleaned
