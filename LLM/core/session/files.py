"""The files of one request: the config's ``files`` loaded and referenced from its last user message, checked
against the model before anything starts, every reference rendered to what the model reads."""

from __future__ import annotations

import asyncio
from typing import Any

from ..attachments import Blobs, MemoryBlobs, Rendered, load_attachment, references, render
from ..chat.params import InferenceConfig
from ..chat.parts import FilePart
from ..config import ModelEntry
from ..errors import AttachmentError, LLMError, VisionNotSupportedError
from ..models.report import CONFIDENT
from ..runtime import Runtime


async def with_files(cfg: InferenceConfig, messages: list[dict[str, Any]], blobs: Blobs | None) -> tuple[
        list[dict[str, Any]], Blobs]:
    """``messages`` with ``cfg.files`` referenced from the last user message (read off the event loop), and the
    blobs that hold every file referenced."""
    blobs = blobs if blobs is not None else MemoryBlobs()
    if not cfg.files:
        return messages, blobs
    attachments = await asyncio.to_thread(lambda: [load_attachment(source) for source in cfg.files])
    for attachment in attachments:
        blobs.put(attachment)
    refs = [FilePart(a.sha256, a.name, a.media.mime, a.size, a.kind).reference() for a in attachments]
    last = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=None)
    if last is None:
        raise AttachmentError("files need a user message to go with: give a prompt")
    messages = list(messages)
    content = messages[last].get("content")
    text = [{"type": "text", "text": content}] if isinstance(content, str) and content else \
        list(content) if isinstance(content, list) else []
    messages[last] = {**messages[last], "content": [*refs, *text]}
    return messages, blobs


async def check_files(runtime: Runtime, model_id: str, messages: list[dict[str, Any]]) -> None:
    """Refuse, before the model's server starts, files it cannot take: any file for a base model (it continues
    text), an image for a model without vision (VisionNotSupportedError names the models of the config that have
    it). A server the workbench only attaches to is trusted where the app cannot tell (its own files are out of
    sight); a model it runs is not."""
    refs = references(messages)
    if not refs:
        return
    entry = runtime.entry(model_id)
    if entry.model_type == "base":
        raise AttachmentError(f"{model_id} is a base model: it continues text and takes no files "
                              f"({', '.join(str(ref.get('name')) for ref in refs)})")
    images = [str(ref.get("name")) for ref in refs if ref.get("kind") == "image"]
    if not images:
        return
    verdict = await _vision(runtime, model_id)
    if verdict is True or (verdict is None and not entry.launchable):
        return
    others = [other for other in runtime.config.models if other != model_id and await _vision(runtime, other)]
    raise VisionNotSupportedError(model_id, images, others)


async def _vision(runtime: Runtime, model_id: str) -> bool | None:
    """True or False where the app is sure enough to act, None where it cannot tell."""
    try:
        capability = (await runtime.capabilities(model_id)).get("vision")
    except LLMError:  # a model whose files cannot be read now: not one to suggest, nor to refuse for
        return None
    if capability is None or capability.confidence < CONFIDENT:
        return None
    return capability.value


async def rendered(messages: list[dict[str, Any]], blobs: Blobs, entry: ModelEntry) -> Rendered:
    """The references rendered (off the event loop), documents fitted to the entry's usable context."""
    if not references(messages):
        return Rendered(messages)
    budget = entry.effective_usable_context
    return await asyncio.to_thread(render, messages, blobs, budget, max_side=entry.image_max_side)
