"""Attachments in a request, from references to what is sent (pure but for reading the bytes from ``Blobs``).

A message that carries files holds reference parts (``{"type": "attachment", ...}``, ``FilePart.reference``) until
just before the request. Here they become what the model reads: an image an ``image_url`` part (a data URI,
downscaled), a document a fenced block of its text, cut so that the request fits the usable context. Whatever was
cut is said in ``notes``. A message with no image goes as one string (every template renders that); one with an
image goes as parts, images first.

What was sent is also given as short placeholders (name, type, size, sha256 of the attached file, how it was
sent) so that a request kept for the inspector or the history never holds megabytes of base64 or a whole
document; ``expand`` renders a placeholder again from the stored file, for Copy as curl.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..chat.context_budget import BYTES_PER_TOKEN, IMAGE_TOKENS_ESTIMATE, estimate_tokens
from ..errors import AttachmentError
from .attachment import Attachment, human_size
from .documents import DocumentText, document_text, render_document
from .images import DEFAULT_MAX_SIDE, prepare_image
from .store import Blobs

# Below this many tokens a document is not worth sending cut: it is refused (the newest message) or left out.
MIN_DOCUMENT_TOKENS = 64
_BLOCK_CHARS = 240  # a block's header line (with a cut note) and its fences
_PLACEHOLDER = re.compile(
    r"\[attachment (?P<name>.+?) · (?P<mime>[\w.+/-]+) · [\d.]+ [KMG]?B · sha256:(?P<sha>[0-9a-f]{64}) · "
    r"(?:sent as (?P<w>\d+)×(?P<h>\d+)|(?P<kept>[\d,]+) of [\d,]+ characters sent)\]")


def references(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The attachment references of a message list, in order."""
    return [part["attachment"] for message in messages if isinstance(message.get("content"), list)
            for part in message["content"] if isinstance(part, dict) and part.get("type") == "attachment"]


@dataclass
class Rendered:
    messages: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)  # what was cut or left out, one line each
    placeholders: dict[str, str] = field(default_factory=dict)  # what was sent -> its short placeholder

    def redact(self, body: dict[str, Any]) -> dict[str, Any]:
        """``body`` with every attachment sent replaced by its placeholder (a copy; the body is not changed)."""
        if not self.placeholders:
            return body
        return _map_strings(body, self._redact_string)

    def _redact_string(self, text: str) -> str:
        exact = self.placeholders.get(text)
        if exact is not None:
            return exact
        for sent, placeholder in self.placeholders.items():
            if len(sent) <= len(text) and sent in text:
                text = text.replace(sent, placeholder)
        return text


def render(messages: list[dict[str, Any]], blobs: Blobs, budget_tokens: int, *,
           max_side: int = DEFAULT_MAX_SIDE) -> Rendered:
    """``messages`` with their attachment references rendered, documents fitted to ``budget_tokens`` (what the
    rest of the request leaves). The newest message's documents are served first; a document of the newest
    message that cannot get even MIN_DOCUMENT_TOKENS raises AttachmentError, an older one is left out with a note.
    Call it off an event loop: it reads files, decodes images and PDFs."""
    out = [dict(m) for m in messages]
    rendered = Rendered(out)
    left = budget_tokens - sum(estimate_tokens(_without_references(m)) for m in messages)
    left -= IMAGE_TOKENS_ESTIMATE * sum(1 for ref in references(messages) if ref.get("kind") == "image")
    last_user = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=-1)
    for index in sorted(range(len(out)), key=lambda i: -i):  # the newest first
        content = out[index].get("content")
        if not isinstance(content, list) or not any(_is_reference(p) for p in content):
            continue
        texts: list[str] = []
        images: list[dict[str, Any]] = []
        for part in content:
            if not _is_reference(part):
                if isinstance(part, dict) and part.get("type") == "text":
                    texts.append(str(part.get("text") or ""))
                elif isinstance(part, dict):
                    images.append(part)  # an image_url part someone wrote themselves: sent as it is
                continue
            ref = part["attachment"]
            attachment = blobs.get(str(ref.get("sha256")), str(ref.get("name") or "attachment"))
            if attachment.kind == "image":
                image = prepare_image(attachment.data, attachment.name, max_side)
                url = image.data_uri
                rendered.placeholders[url] = placeholder(attachment, f"sent as {image.width}×{image.height}")
                images.append({"type": "image_url", "image_url": {"url": url}})
                continue
            text = document_text(attachment)
            max_chars = max(0, left * BYTES_PER_TOKEN - _BLOCK_CHARS)
            if max_chars < MIN_DOCUMENT_TOKENS * BYTES_PER_TOKEN:
                if index == last_user:
                    raise AttachmentError(f"{attachment.name}: does not fit the usable context (about {max(0, left)} "
                                          f"tokens are left for files; the document has about "
                                          f"{len(text.text) // BYTES_PER_TOKEN})")
                rendered.notes.append(f"{attachment.name}: left out of an earlier message, the context is full")
                texts.append(f"File: {attachment.name} (left out: the context is full)")
                continue
            document = render_document(attachment, text, max_chars)
            left -= len(document.block) // BYTES_PER_TOKEN
            if document.note:
                rendered.notes.append(f"{attachment.name}: {document.note}")
            rendered.placeholders[document.block] = placeholder(
                attachment, f"{document.kept:,} of {document.total:,} characters sent")
            texts.append(document.block)
        text = "\n\n".join(t for t in texts if t)
        if images:
            out[index]["content"] = [*images, *([{"type": "text", "text": text}] if text else [])]
        else:
            out[index]["content"] = text
    return rendered


def token_estimate(attachment: Attachment) -> int:
    """About how many context tokens the file takes once rendered (the context meter's, before sending). A text is
    measured by its size (never decoded: a 20 MB file costs nothing here); a PDF's text is read, so call it off an
    event loop."""
    if attachment.kind == "image":
        return IMAGE_TOKENS_ESTIMATE
    size = attachment.size if attachment.kind == "text" else len(document_text(attachment).text.encode("utf-8"))
    return (size + _BLOCK_CHARS) // BYTES_PER_TOKEN


def placeholder(attachment: Attachment, how: str) -> str:
    """``[attachment photo.jpg · image/jpeg · 4.8 MB · sha256:… · sent as 1024×768]``."""
    return (f"[attachment {attachment.name} · {attachment.media.mime} · {human_size(attachment.size)} · "
            f"sha256:{attachment.sha256} · {how}]")


def expand(body: dict[str, Any], blobs: Blobs, max_side: int = DEFAULT_MAX_SIDE) -> dict[str, Any]:
    """``body`` with each placeholder rendered again from the stored file, as it was sent (Copy as curl). A file
    no longer stored raises AttachmentError naming it."""

    def one(match: re.Match[str]) -> str:
        attachment = blobs.get(match["sha"], match["name"])
        if match["w"] is not None:
            return prepare_image(attachment.data, attachment.name, max_side).data_uri
        kept = int(match["kept"].replace(",", ""))
        text: DocumentText = document_text(attachment)
        return render_document(attachment, text, kept if kept < len(text.text) else None).block

    return _map_strings(body, lambda text: _PLACEHOLDER.sub(one, text) if "[attachment " in text else text)


def _is_reference(part: Any) -> bool:
    return isinstance(part, dict) and part.get("type") == "attachment" and isinstance(part.get("attachment"), dict)


def _without_references(message: dict[str, Any]) -> dict[str, Any]:
    content = message.get("content")
    if not isinstance(content, list):
        return message
    text = "\n".join(str(p.get("text") or "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return {**message, "content": text}


def _map_strings(value: Any, change: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return change(value)
    if isinstance(value, list):
        return [_map_strings(v, change) for v in value]
    if isinstance(value, dict):
        return {k: _map_strings(v, change) for k, v in value.items()}
    return copy.copy(value)
