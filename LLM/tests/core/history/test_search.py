"""What a chat search looks for (pure): words split by how the store finds them, LIKE patterns, snippets."""

from __future__ import annotations

import pytest

from LLM.core.history.search import SearchPlan, like_pattern, substring_snippet


@pytest.mark.parametrize(
    "text, prefixes, substrings",
    [
        pytest.param("sugar flour", ["sugar", "flour"], [], id="latin"),
        pytest.param("Zürich café", ["Zürich", "café"], [], id="accented-latin"),
        pytest.param("世界", [], ["世界"], id="chinese"),
        pytest.param("今日は東京へ", [], ["今日は東京へ"], id="japanese-one-run"),
        pytest.param("에서", [], ["에서"], id="korean"),
        pytest.param("สวัสดี ครับ", [], ["สวัสดี", "ครับ"], id="thai"),
        pytest.param("京 noon", ["noon"], ["京"], id="mixed"),
        pytest.param("東京tower", [], ["東京tower"], id="mixed-in-one-word"),
        pytest.param("Привет мир", ["Привет", "мир"], [], id="cyrillic"),
        pytest.param("？！ ... \"*\"", [], [], id="only-punctuation"),
        pytest.param("   ", [], [], id="only-spaces"),
    ],
)
def test_search_plan_splits_words_by_how_they_are_found(text: str, prefixes: list[str], substrings: list[str]):
    plan = SearchPlan.of(text)
    assert (plan.prefixes, plan.substrings, plan.empty) == (prefixes, substrings, not prefixes and not substrings)


def test_search_plan_queries_quote_every_word():
    plan = SearchPlan.of('sugar "AND" 世界 天气很好')
    assert plan.fts_query() == '"sugar"* "AND"*'
    assert plan.trigram_query() == '"天气很好"'  # 世界 is too short for a trigram index
    assert plan.scanned(trigram=True) == ["世界"]
    assert plan.scanned(trigram=False) == ["世界", "天气很好"]


@pytest.mark.parametrize("word, pattern", [("世界", "%世界%"), ("a_b", "%a\\_b%"), ("x%", "%x\\%%"), ("\\", "%\\\\%")])
def test_like_pattern_escapes_wildcards(word: str, pattern: str):
    assert like_pattern(word) == pattern


@pytest.mark.parametrize(
    "text, words, snippet",
    [
        pytest.param("你好世界，今天天气很好", ["世界"], "你好[世界]，今天天气很好", id="short-text"),
        pytest.param("あ" * 40 + "東京" + "い" * 40, ["東京"], "…" + "あ" * 24 + "[東京]" + "い" * 24 + "…", id="cut"),
        pytest.param("Meeting in TOKYO", ["tokyo"], "Meeting in [TOKYO]", id="any-case"),
        pytest.param("abc", ["x", "b"], "a[b]c", id="the-first-word-found"),
        pytest.param("abc", ["x"], None, id="none-found"),
    ],
)
def test_substring_snippet_brackets_the_match(text: str, words: list[str], snippet: str | None):
    assert substring_snippet(text, words) == snippet


def test_search_plan_keeps_a_thai_word_whole():
    """Thai vowels are combining marks, which ``\\w`` leaves out: สวัสดี must not be searched as สว and สด."""
    assert SearchPlan.of("สวัสดี").substrings == ["สวัสดี"]
