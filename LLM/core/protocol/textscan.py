"""Small text-scanning helpers shared by the incremental decoders."""

from __future__ import annotations


def partial_suffix(text: str, token: str) -> int:
    """Length of the longest suffix of ``text`` that is a proper prefix of ``token``.

    Streaming decoders hold that many characters back: they may be the start of the token.
    """
    for size in range(min(len(token) - 1, len(text)), 0, -1):
        if text.endswith(token[:size]):
            return size
    return 0
