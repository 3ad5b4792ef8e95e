"""The conversation store: what saving a message and searching the history cost in a realistic history.

The store is filled first: 200 conversations of 50 messages (10,000 messages; questions of about
100 characters, answers of about 600), words drawn with a Zipf-like skew from a fixed vocabulary so a
common word is in most messages and a rare one in a handful. Then, in that store:

- appending: HistoryStore.save_message of a finished ~600-character answer (one transaction: the
  message row, its search-index entry, the conversation's head and time), a few hundred times;
- searching: HistoryStore.list(search=...) for a common word, a rare word, two words and prefixes,
  each query timed several times (its median counts).

RESULT history_append_ms: median save_message of a finished answer (<= 5)
RESULT history_search_ms: median over the queries of list(search=...) (<= 50)
"""

from __future__ import annotations

import platform
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from LLM.core.chat.conversation import Conversation, Message, TextPart  # noqa: E402
from LLM.core.chat.metrics import Metrics  # noqa: E402
from LLM.core.history import HistoryStore  # noqa: E402
from LLM.core.history.search import SearchPlan  # noqa: E402

CONVERSATIONS = 200
MESSAGES_PER_CONVERSATION = 50
APPENDS = 400
SEARCH_ROUNDS = 7
RARE = ["kubernetes", "zeppelin", "quaternion", "sourdough"]  # each planted in a few messages only
# Real words in rough order of frequency, then made-up ones up to VOCABULARY_SIZE: word r is drawn with
# weight 1/r (Zipf), so "the" is in nearly every message, "function" in about one in ten, and the long
# tail in few, as in real chats.
COMMON = (
    "the of and to a in is it you that for this with on be can are not your if as or have but by an from at "
    "we will do so use would like when there what which should more also how one then all each need here "
    "code function value file error list data python example return string number output first time way "
    "make see because work these than could class method input result test type name line call new other "
    "server model request response memory thread process loop query index table column database search "
    "user message answer question context token prompt stream cache version install build run start config "
    "path import module package parameter argument variable key array sort sorted dictionary recipe travel "
    "calculate calculator calculation serial serialize serialization performance benchmark latency median"
).split()
VOCABULARY_SIZE = 5000
QUERIES = {
    "common word": ["the", "function"],
    "rare word": ["kubernetes", "zeppelin"],
    "two words": ["python error", "sort list"],
    "prefix": ["calc", "serial"],
    "short prefix, as typed": ["co"],
}
SYLLABLES = "ka lo mi ne ru ta vo shi gra pel dun ter zo bri fa col qua ven hol mar sel tin op ex".split()


def vocabulary(rng: random.Random) -> tuple[list[str], list[float]]:
    words = list(COMMON)
    seen = set(words) | set(RARE)
    while len(words) < VOCABULARY_SIZE:
        word = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4)))
        if word not in seen:
            seen.add(word)
            words.append(word)
    weights, total = [], 0.0
    for rank in range(1, len(words) + 1):
        total += 1 / rank
        weights.append(total)
    return words, weights


def sentence_text(rng: random.Random, length: int, words: tuple[list[str], list[float]]) -> str:
    vocab, cumulative = words
    picked: list[str] = []
    size = 0
    while size < length:
        picked += rng.choices(vocab, cum_weights=cumulative, k=8)
        size = sum(len(w) + 1 for w in picked)
    text = " ".join(picked)[:length].rsplit(" ", 1)[0]
    return text[0].upper() + text[1:] + "."


def answer(rng: random.Random, words: tuple[list[str], list[float]], length: int = 600) -> Message:
    return Message("assistant", [TextPart(sentence_text(rng, length, words))], status="done",
                   model_id="qwen2.5-7b", backend="llama.cpp", params={"temperature": 0.7, "max_new_tokens": 512},
                   metrics=Metrics(180.0, 42.5, 120, 150, 3700.0, "stop", 150))


def fill(store: HistoryStore, rng: random.Random, words: tuple[list[str], list[float]]) -> list[Conversation]:
    conversations = []
    for _ in range(CONVERSATIONS):
        conversation = Conversation()
        for turn in range(MESSAGES_PER_CONVERSATION // 2):
            text = sentence_text(rng, 100, words)
            if rng.random() < 0.002 * len(RARE):
                text += " " + rng.choice(RARE)
            conversation.add_user(text)
            conversation.add(answer(rng, words))
        store.save_all(conversation)
        conversations.append(conversation)
    return conversations


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def p95_ms(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=20)[-1] * 1000


def measure(path: Path) -> tuple[float, float]:
    rng = random.Random(42)
    with HistoryStore(path) as store:
        started = time.perf_counter()
        words = vocabulary(rng)
        conversations = fill(store, rng, words)
        count = sum(s.messages for s in store.list())
        print(f"filled: {len(conversations)} conversations, {count} messages, "
              f"{path.stat().st_size / 1e6:.1f} MB in {time.perf_counter() - started:.1f} s")

        appends = []
        for n in range(APPENDS):
            conversation = conversations[n % len(conversations)]
            message = conversation.add(answer(rng, words))
            t = time.perf_counter()
            store.save_message(conversation, message)
            appends.append(time.perf_counter() - t)
        print(f"save_message of a finished {len(message.content)}-character answer, {APPENDS} saves: "
              f"median {median_ms(appends):.3f} ms, p95 {p95_ms(appends):.3f} ms, max {max(appends) * 1000:.3f} ms")

        per_query: dict[str, float] = {}
        counter = sqlite3.connect(path)  # how many messages match: what a search's cost grows with
        for kind, queries in QUERIES.items():
            for query in queries:
                found = store.list(search=query)  # warm: the first run reads the index pages in
                hits = counter.execute("SELECT count(*) FROM message_search WHERE message_search MATCH ?",
                                       (SearchPlan.of(query).fts_query(),)).fetchone()[0]
                samples = []
                for _ in range(SEARCH_ROUNDS):
                    t = time.perf_counter()
                    store.list(search=query)
                    samples.append(time.perf_counter() - t)
                per_query[query] = median_ms(samples)
                print(f"search {kind} {query!r}: {per_query[query]:.2f} ms "
                      f"({hits} matching messages in {len(found)} conversations)")
        counter.close()
        worst = max(per_query, key=per_query.__getitem__)
        print(f"search worst: {worst!r} {per_query[worst]:.2f} ms")
    return median_ms(appends), statistics.median(per_query.values())


def main() -> None:
    print(f"SQLite {sqlite3.sqlite_version}, Python {platform.python_version()}, {platform.machine()}, "
          f"{platform.system()}")
    with tempfile.TemporaryDirectory() as tmp:
        append_ms, search_ms = measure(Path(tmp) / "history.sqlite3")
    print(f"RESULT history_append_ms {append_ms:.3f} <= 5")
    print(f"RESULT history_search_ms {search_ms:.2f} <= 50")


if __name__ == "__main__":
    main()
