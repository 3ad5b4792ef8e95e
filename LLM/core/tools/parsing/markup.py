"""The lexicon of tool-call markup: tags, the patterns that find them, and partial-tag checks (pure)."""

from __future__ import annotations

import re

TOOL_OPEN = "<tool_call>"
TOOL_CLOSE = "</tool_call>"
THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"
FUNC_OPEN = "<function="
FUNC_CLOSE = "</function>"
PARAM_OPEN = "<parameter="
PARAM_CLOSE = "</parameter>"
FENCE = "```"

# Every tag that can end an open block ends with "tool_call>" (a bare call: "function>"), so while streaming only
# their arrival is worth another look at the block.
BLOCK_TRIGGER = "tool_call>"
BARE_TRIGGER = "function>"

# Markup that content scanning stops at, besides ``` (found with str.find). The "block" branch is the usual opener
# of a real block, recognised in one step; anything else starting with <tool_call> goes through
# blocks.block_body. All branches start with "<", which lets the regex engine skip to the next "<" quickly.
_MARK_RE = re.compile(
    r"<(?:(?P<block>tool_call>\s*(?:```[\w+\-.]*[ \t]*\r?\n\s*)?(?=[{\[]|<function=))"
    r"|tool_call>|think>|/think>|function=)"
)
_FENCE_RE = re.compile(re.escape("```"))
WS_RE = re.compile(r"\s*")
POST_RE = re.compile(r"\s*(?:```\s*)?")  # after a block's body: whitespace and an optional closing fence
FENCE_LINE_RE = re.compile(r"```[\w+\-.]*[ \t]*\r?\n")
FENCE_LINE_PREFIX_RE = re.compile(r"`{1,2}|```[\w+\-.]*[ \t]*\r?")
FENCE_OPEN_RE = re.compile(r"```[\w+\-.]*[ \t]*\r?\n\s*")
FENCE_OPEN_PREFIX_RE = re.compile(r"```[\w+\-.]*[ \t]*\r?")
NAME_RE = re.compile(r"""[^{}<>"'\s]*""")  # vLLM _is_valid_function_name: rejects an unrendered {{ tc.name }}


def _proper_prefixes(*tokens: str) -> frozenset[str]:
    return frozenset(tok[:k] for tok in tokens for k in range(1, len(tok)))


CONTENT_PREFIXES = _proper_prefixes(TOOL_OPEN, THINK_OPEN, THINK_CLOSE, FUNC_OPEN, FENCE)
REASONING_PREFIXES = _proper_prefixes(THINK_CLOSE)
_LONGEST_PREFIX = max(map(len, CONTENT_PREFIXES))


def held_suffix(buf: str, start: int, prefixes: frozenset[str]) -> int:
    """Length of the longest tail of ``buf[start:]`` that may still grow into a tag (held back while streaming)."""
    n = len(buf)
    for j in range(max(start, n - _LONGEST_PREFIX), n):
        if buf[j] in "<`" and buf[j:] in prefixes:
            return n - j
    return 0


def match_token(text: str, p: int, tokens: tuple[str, ...], final: bool) -> str | None:
    """The token of ``tokens`` at ``text[p:]``; "" if none can be there; None if the text ends too early to say."""
    for tok in tokens:
        if text.startswith(tok, p):
            return tok
    if not final:
        rest = text[p : p + 16]
        for tok in tokens:
            if len(rest) < len(tok) and tok.startswith(rest):
                return None
    return ""


def may_end_here(before: str) -> bool:
    """Whether a closing tag after ``before`` may end a block: a body ends in } ] > or a closing fence."""
    before = before[:-2] if before.endswith("</") else before[:-1]
    before = before.rstrip()
    if before.endswith(FENCE):
        before = before[:-3].rstrip()
    return not before or before[-1] in "}]>"


class MarkFinder:
    """Finds the next markup in a buffer: a "<" tag (``_MARK_RE``) or a ``` fence.

    Two searches rather than one regex with both: a regex that may start with either character tests every
    character in turn, three times slower, and prose is most of the text. The next fence is remembered per
    buffer so that a text without any is not searched to its end at every tag.
    """

    __slots__ = ("_buf", "_fence_at")

    def __init__(self) -> None:
        self._buf: str | None = None  # the buffer _fence_at belongs to
        self._fence_at = -1  # the next ``` in it (-1: none)

    def find(self, buf: str, pos: int) -> re.Match[str] | None:
        """The first markup at or after ``pos``."""
        if self._buf is not buf or 0 <= self._fence_at < pos:
            self._buf, self._fence_at = buf, buf.find(FENCE, pos)
        fence = self._fence_at
        # Stopping the tag search at the fence is safe: a <tool_call> whose body starts after a fence line is still
        # found by the plain "tool_call>" branch and checked in full by blocks.block_body.
        mark = _MARK_RE.search(buf, pos, fence if fence >= 0 else len(buf))
        if mark is not None or fence < 0:
            return mark
        return _FENCE_RE.match(buf, fence)
