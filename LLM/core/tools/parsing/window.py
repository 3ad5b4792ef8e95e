"""An open block or bare call: when it is worth a look while streaming, and the look, both kept linear."""

from __future__ import annotations

from .blocks import Outcome, Resolver, resolve_bare, resolve_json_block, resolve_xml_block
from .calls import JSON_LOOKAHEAD
from .markup import BARE_TRIGGER, BLOCK_TRIGGER, TOOL_CLOSE, may_end_here
from .xml_calls import TypeTable


class BlockWindow:
    """The open block (or bare call): the chunks that reached it since the last look, and the looks.

    Char-by-char streaming stays linear because a failed look is followed by another only once the block has
    doubled, or, when a closing tag arrives, grown by a quarter; a closing tag counts only if it is the first,
    or if ``}`` ``]`` ``>`` or a fence precedes it, as at a real end, so tags quoted inside a long argument
    neither cost a look each nor delay the look at the real end.
    """

    __slots__ = ("pending", "_bare", "_body_offset", "_size", "_retry_at", "_tag_floor", "_seen_tag", "_buf", "_start")

    def __init__(self) -> None:
        self.pending: list[str] = []  # chunks received since the last look, joined only when worth one
        self._bare = False
        self._body_offset = 0  # where the body starts, from the block's start
        self._size = 0  # the block's length so far: its text at the last look and the pending chunks
        self._retry_at = 0  # the block is looked at again once it is this long, even without a closing tag
        self._tag_floor = 0  # ... or once it is this long and a plausible closing tag arrives
        self._seen_tag = False
        self._buf = ""  # the block's text at the last look is _buf[_start:]
        self._start = 0

    def open(self, bare: bool, body_offset: int) -> None:
        """A block (or, if ``bare``, a bare call) opens; the parser looks at it at once."""
        self._bare = bare
        self._body_offset = body_offset
        self._retry_at = 0
        self._tag_floor = 0
        self._seen_tag = False

    def take(self) -> str:
        """The pending text, which the parser appends to the block for its next look."""
        text = "".join(self.pending)
        self.pending.clear()
        self._buf = ""  # the parser's buffer is about to be replaced: keep no reference to it
        return text

    def add(self, chunk: str) -> bool:
        """Hold ``chunk``; whether the block may have ended with it."""
        self.pending.append(chunk)
        size = self._size = self._size + len(chunk)
        if size >= self._retry_at:
            return True
        if ">" not in chunk or size < self._tag_floor:
            return False
        trigger = BARE_TRIGGER if self._bare else BLOCK_TRIGGER
        recent = self._recent(len(chunk) + 2 * len(TOOL_CLOSE) + JSON_LOOKAHEAD)
        # Only tags inside the body count (the opener itself ends in "tool_call>").
        at = recent.find(trigger, max(0, len(recent) - (size - self._body_offset)))
        if at < 0:
            return False
        if not self._seen_tag:
            self._seen_tag = True
            return True
        while at >= 0:
            if may_end_here(recent[:at]):
                return True
            at = recent.find(trigger, at + 1)
        return False

    def _recent(self, size: int) -> str:
        """The last ``size`` characters of the block."""
        pieces: list[str] = []
        have = 0
        for piece in reversed(self.pending):
            pieces.append(piece)
            have += len(piece)
            if have >= size:
                break
        else:
            pieces.append(self._buf[max(self._start, len(self._buf) - (size - have)) :])
        return "".join(reversed(pieces))[-size:]

    def look(self, buf: str, start: int, types: TypeTable, final: bool) -> Outcome | None:
        """How the block ``buf[start:]`` resolves (indices from ``start``); None while the text cannot settle it."""
        if self._bare:
            outcome = _windowed(resolve_bare, buf, start, 0, False, final, types)
        else:
            body = self._body_offset
            resolve = resolve_xml_block if buf[start + body] == "<" else resolve_json_block
            outcome = _windowed(resolve, buf, start, body, True, final, types)
        if outcome is None:
            self._looked_too_early(buf, start)
        return outcome

    def _looked_too_early(self, buf: str, start: int) -> None:
        """Wait until the block has grown enough to be worth another look (see add)."""
        size = self._size = len(buf) - start
        self._retry_at = 2 * size + 16
        self._tag_floor = size + size // 4
        self._buf, self._start = buf, start


def _windowed(
    resolve: Resolver, buf: str, start: int, skip: int, by_tags: bool, final: bool, types: TypeTable
) -> Outcome | None:
    """``resolve`` on the block ``buf[start:]`` cut short, on longer and longer prefixes as far as needed.

    A resolver's answer on a prefix is final once it gives one (the rule streaming relies on), so trying short
    prefixes first is safe, and it keeps whole-text parsing linear: json's errors count the lines before their
    position, and searches for closing tags look ahead, both over whatever text they are given. Blocks are cut
    after successive ``...tool_call>`` tags (they can only end at one); bare calls, which a mention in prose
    settles within a few characters, at doubling lengths.
    """
    n = len(buf)
    hit = buf.find(BLOCK_TRIGGER, start + skip) if by_tags else -1  # skip: the opener ends in "tool_call>"
    end = start + 64
    while True:
        if by_tags:
            end = n if hit < 0 else max(hit + len(BLOCK_TRIGGER) + 2 * JSON_LOOKAHEAD, 2 * end - start)
        if end >= n:
            return resolve(buf[start:] if start else buf, skip, final, types)
        outcome = resolve(buf[start:end], skip, False, types)
        if outcome is not None:
            return outcome
        if by_tags:
            hit = buf.find(BLOCK_TRIGGER, max(hit + len(BLOCK_TRIGGER), 2 * end - start))
        else:
            end = 2 * end - start
