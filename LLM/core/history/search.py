"""What a chat search looks for (pure): the user's words, split by how the store can find each.

A search finds the conversations whose title, or one message, has every word. Words of scripts
written with spaces are found as the start of a word, ignoring case and accents, through the
unicode61 full-text index (search as you type). Words of scripts written without spaces (Chinese,
Japanese, Thai, ...) are found anywhere in the text, since that index sees a whole sentence of them
as one token: through the trigram index for three characters or more, by scanning (LIKE) for shorter
ones, which a trigram index cannot serve.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

# Character names that start these belong to scripts written without spaces between words.
_UNSPACED_SCRIPTS = ("CJK ", "IDEOGRAPHIC", "HIRAGANA", "KATAKANA", "HALFWIDTH KATAKANA", "HANGUL", "HALFWIDTH HANGUL",
                     "BOPOMOFO", "THAI", "LAO", "KHMER", "MYANMAR", "TIBETAN", "YI ")
SNIPPET_CONTEXT = 24  # characters shown either side of a match found as a substring
TRIGRAM_MIN = 3  # a trigram index cannot find anything shorter


def search_terms(text: str) -> list[str]:
    """The words a search for ``text`` looks for; none for text of only spaces and punctuation."""
    plan = SearchPlan.of(text)
    return [*plan.prefixes, *plan.substrings]


def _runs(text: str) -> list[str]:
    """Runs of word characters and the combining marks inside words (Thai and Devanagari vowels are marks,
    which a regular expression's word class leaves out, splitting a word in pieces)."""
    runs, run = [], ""
    for ch in text:
        if ch.isalnum() or ch == "_" or unicodedata.category(ch).startswith("M"):
            run += ch
        elif run:
            runs.append(run)
            run = ""
    return [*runs, run] if run else runs


@dataclass(frozen=True)
class SearchPlan:
    """The words of a search, by the way each is found."""

    prefixes: list[str]  # each the start of a word (unicode61 index)
    substrings: list[str]  # each anywhere in the text

    @classmethod
    def of(cls, text: str) -> "SearchPlan":
        prefixes: list[str] = []
        substrings: list[str] = []
        for run in _runs(text):
            if unspaced(run):
                substrings.append(run)
            else:  # split as the unicode61 tokenizer splits (it treats marks as separators)
                prefixes += re.findall(r"\w+", run)
        return cls(prefixes, substrings)

    @property
    def empty(self) -> bool:
        return not self.prefixes and not self.substrings

    def fts_query(self) -> str:
        """The prefix words as an FTS5 query: every word must occur, each as a prefix. Quoted, so FTS5
        syntax in what the user typed never reaches the query parser."""
        return " ".join(f'"{word}"*' for word in self.prefixes)

    def trigram_query(self) -> str:
        """The substring words a trigram index can find, as one FTS5 query (all of them), or ''."""
        return " ".join(f'"{word}"' for word in self.substrings if len(word) >= TRIGRAM_MIN)

    def scanned(self, trigram: bool) -> list[str]:
        """The substring words found by scanning: the short ones, or all of them without a trigram index."""
        return [w for w in self.substrings if not trigram or len(w) < TRIGRAM_MIN]


def unspaced(word: str) -> bool:
    return any(unicodedata.name(ch, "").startswith(_UNSPACED_SCRIPTS) for ch in word)


def like_pattern(word: str) -> str:
    """``word`` anywhere, as a LIKE pattern with ESCAPE '\\' (``_`` is a word character)."""
    return "%" + re.sub(r"([\\%_])", r"\\\1", word) + "%"


def substring_snippet(text: str, words: list[str]) -> str | None:
    """The text around the first of ``words`` found in it, the match in [brackets] (as FTS5's snippet)."""
    for word in words:
        found = re.search(re.escape(word), text, re.IGNORECASE)
        if found is not None:
            break
    else:
        return None
    start, end = max(0, found.start() - SNIPPET_CONTEXT), min(len(text), found.end() + SNIPPET_CONTEXT)
    return (("…" if start else "") + text[start:found.start()] + f"[{found.group()}]" + text[found.end():end]
            + ("…" if end < len(text) else ""))
