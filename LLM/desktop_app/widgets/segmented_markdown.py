"""An answer's Markdown as a column of segments, cheap while it streams: finished paragraphs are frozen, and
each fenced code block at the margin is its own widget (language, Copy, sideways scrolling, colours)."""

from __future__ import annotations

from PySide6.QtWidgets import QVBoxLayout, QWidget

from .code_block import CodeBlockView
from .markdown_view import PARAGRAPH_GAP, MarkdownView

# Re-parsing Markdown costs ~1.4 ms per 1,000 characters (with layout). A streaming answer is cut
# into segments of about this size at paragraph breaks outside code fences; finished segments are
# never parsed again, so each refresh costs the same on the 10th paragraph as on the 1,000th.
SEGMENT_CHARS = 1500
FENCES = ("```", "~~~")


def stable_split(text: str, min_chars: int) -> int:
    """The first paragraph break (outside code fences) at or after ``min_chars``; 0 if none yet.

    ``text`` must itself start outside a fence (it always starts at an earlier split).
    """
    in_fence = False
    pos = 0
    for line in text.splitlines(keepends=True):
        stripped = line.lstrip()
        if stripped.startswith("```") or stripped.startswith("~~~"):
            in_fence = not in_fence
        pos += len(line)
        if pos >= min_chars and not in_fence and not stripped.strip() and line.endswith("\n"):
            return pos
    return 0


def _opens(line: str) -> bool:
    """Whether ``line`` opens a fenced block at the margin (a ``` fence's info string has no backtick)."""
    return line.startswith(FENCES) and (line[0] == "~" or "`" not in line.lstrip("`"))


def _closes(line: str, opener: str) -> bool:
    """Whether ``line`` (a whole line) is the closing fence of a block opened by ``opener``."""
    char = opener[0]
    marker = len(opener) - len(opener.lstrip(char))
    candidate = line.strip()
    return bool(candidate) and set(candidate) == {char} and len(candidate) >= marker


def next_segment(text: str, min_chars: int) -> tuple[str, int] | None:
    """The first finished segment of ``text`` as ("code" | "text", its length), or None while it still grows.

    A code segment is a fenced block at the margin up to its closing fence's newline; a text segment ends where
    such a block begins or, past ``2 * min_chars``, at a paragraph break (``stable_split``). Fences indented
    in a list item stay in the list's Markdown.
    """
    lines = text.splitlines(keepends=True)
    if lines and _opens(lines[0]):
        pos = len(lines[0])
        for line in lines[1:]:
            pos += len(line)
            if line.endswith("\n") and _closes(line, lines[0]):
                return "code", pos
        return None
    pos = 0
    for line in lines:
        if _opens(line):
            break
        pos += len(line)
    else:
        pos = 0  # no block follows: the text is finished only at a paragraph break
    if pos > 2 * min_chars or (not pos and len(text) > 2 * min_chars):
        cut = stable_split(text[:pos] if pos else text, min_chars)
        if cut:
            return "text", cut
    return ("text", pos) if pos else None


def _open_kind(text: str) -> str:
    return "code" if _opens(text.partition("\n")[0]) else "text"


class SegmentedMarkdown(QWidget):
    """Markdown text shown as a column of segment views; only the last one is re-rendered as text grows."""

    def __init__(
        self, parent: QWidget | None = None, markdown: bool = True, segment_chars: int = SEGMENT_CHARS
    ) -> None:
        super().__init__(parent)
        self._markdown = markdown
        self._segment_chars = segment_chars
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.setSpacing(PARAGRAPH_GAP)  # (a paragraph's own gap is lost at a view's edges)
        self._views: list[MarkdownView | CodeBlockView] = []
        self._sealed = False  # the last view holds a finished segment: what follows needs a new one
        self._frozen = 0  # characters of text held by finished segments
        self._text = ""
        self._open("text")

    def _open(self, kind: str) -> MarkdownView | CodeBlockView:
        """The view for the segment still growing, of ``kind`` (a new one if the last is finished or other)."""
        last = self._views[-1] if self._views else None
        if last is not None and not self._sealed and isinstance(last, CodeBlockView) == (kind == "code"):
            return last
        if last is not None and not self._sealed:
            self._views.pop()
            last.setParent(None)
            last.deleteLater()
        view = CodeBlockView(self) if kind == "code" else MarkdownView(self, self._markdown)
        self._layout.addWidget(view)
        self._views.append(view)
        self._sealed = False
        return view

    def set_text(self, text: str) -> None:
        if text == self._text:
            return
        if not text.startswith(self._text[: self._frozen]):
            self._reset()
        self._text = text
        rest = text[self._frozen :]
        while self._markdown and (segment := next_segment(rest, self._segment_chars)) is not None:
            kind, cut = segment
            self._open(kind).set_source(rest[:cut])
            self._sealed = True
            self._frozen += cut
            rest = rest[cut:]
        if self._sealed and not rest.strip():
            return  # only the blank lines after a finished segment: no view until something follows them
        self._open(_open_kind(rest) if self._markdown else "text").set_source(rest)

    def _reset(self) -> None:
        for view in self._views:
            view.setParent(None)
            view.deleteLater()
        self._views = []
        self._sealed = False
        self._frozen = 0
        self._text = ""
        self._open("text")

    def text(self) -> str:
        return self._text

    def plain_text(self) -> str:
        return "\n".join(view.plain_text() for view in self._views)

    def views(self) -> list[MarkdownView | CodeBlockView]:
        return list(self._views)

    def finish(self) -> None:
        """The text is complete (the answer ended): a code block left open is coloured to its last line."""
        for block in self.code_blocks():
            block.finish()

    def code_blocks(self) -> list[CodeBlockView]:
        return [view for view in self._views if isinstance(view, CodeBlockView)]
