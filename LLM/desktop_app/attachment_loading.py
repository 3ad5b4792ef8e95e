"""A file the user attaches, made ready off the event loop: read and checked, a thumbnail, a token estimate (no Qt)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from LLM.core.attachments import Attachment, load_attachment, thumbnail_png, token_estimate

THUMBNAIL_SIDE = 160  # pixels: the transcript shows this; the composer's chips scale it down


@dataclass(frozen=True)
class LoadedFile:
    attachment: Attachment
    thumbnail: bytes | None  # a small PNG of an image (THUMBNAIL_SIDE); None for a document
    tokens: int  # about how much of the context it takes (core's token_estimate)


async def load_file(source: Path | tuple[str, bytes]) -> LoadedFile:
    """``source`` (a path, or a name and bytes) read, checked and measured without blocking the event loop. A file
    that cannot be attached raises core's LLMError (AttachmentError) naming it."""
    attachment = await asyncio.to_thread(load_attachment, source)
    if attachment.kind == "image":
        thumbnail = await asyncio.to_thread(thumbnail_png, attachment.data, THUMBNAIL_SIDE)
        return LoadedFile(attachment, thumbnail, token_estimate(attachment))  # (a constant for images)
    # A text's estimate is its size; a PDF's reads its text (pypdf, pure Python: the GIL is shared as it goes).
    return LoadedFile(attachment, None, await asyncio.to_thread(token_estimate, attachment))
