"""The parts a saved message is made of: its text, its tool calls with their results, notices, and the files a
user attached (plain data).

Apart from the conversation tree so that ``turns`` can turn an answer into chat turns without importing it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass
class TextPart:
    text: str = ""


@dataclass
class ToolCard:
    """One tool call of a tool-chat answer, and later its result."""

    iteration: int
    name: str
    arguments: dict[str, Any]
    source: str  # native | fallback
    call_id: str | None = None
    ok: bool | None = None  # None while it runs (or waits for approval)
    output: str = ""
    error: str | None = None
    duration_ms: float | None = None

    @property
    def arguments_json(self) -> str:
        return json.dumps(self.arguments, indent=2, ensure_ascii=False, sort_keys=True)


@dataclass
class Notice:
    """A loop guard or a change of course the user should see (LoopNotice)."""

    kind: str
    message: str


@dataclass
class FilePart:
    """A file attached to a user message: a reference by content hash (the bytes live in an attachment store)."""

    sha256: str
    name: str
    mime: str
    size: int
    kind: str  # image | text | pdf

    def reference(self) -> dict[str, Any]:
        """The part a message sends until its bytes are read and rendered (``attachments.render``)."""
        return {"type": "attachment", "attachment": {"sha256": self.sha256, "name": self.name, "mime": self.mime,
                                                     "size": self.size, "kind": self.kind}}


Part = TextPart | ToolCard | Notice | FilePart
