"""The SQLite conversation store: tree round trips, tool calls, partial saves, migrations, damage, list and search.

Every test uses a real database file under tmp_path; files are also read with plain sqlite3 to see
what the store actually wrote.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from LLM.core.chat.conversation import Conversation, Message, Notice, TextPart, ToolCard
from LLM.core.chat.metrics import Metrics
from LLM.core.errors import (
    ConversationNotFoundError,
    HistoryDamagedError,
    HistoryError,
    HistoryVersionError,
)
from LLM.core.history import INTERRUPTED, AnswerSaver, HistoryStore, to_json
from LLM.core.history.schema import MIGRATIONS, SCHEMA_VERSION
from LLM.tests.fakes.handle import REPO_ROOT


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "history.sqlite3"


@pytest.fixture
def store(path: Path) -> Iterator[HistoryStore]:
    with HistoryStore(path) as opened:
        yield opened


def load_again(store: HistoryStore, conversation_id: str) -> Conversation:
    """The conversation read through a new connection: what the next start of the app sees."""
    with HistoryStore(store.path) as fresh:
        return fresh.load(conversation_id)


def rows(path: Path, sql: str, params: tuple = ()) -> list[tuple]:
    with sqlite3.connect(path) as db:
        found = db.execute(sql, params).fetchall()
    db.close()
    return found


def ask(store: HistoryStore, conversation: Conversation, question: str, answer: str) -> tuple[Message, Message]:
    """One exchange saved the way the chat page saves it: the question, the empty answer, the finished answer."""
    user = conversation.add_user(question)
    store.save_message(conversation, user)
    return user, reply(store, conversation, conversation.add_assistant("model-a"), answer)


def reply(store: HistoryStore, conversation: Conversation, message: Message, text: str) -> Message:
    store.save_message(conversation, message)  # pending
    message.append_text(text)
    message.status = "done"
    store.save_message(conversation, message)
    return message


# ----- the tree -----
def plain(store: HistoryStore, c: Conversation) -> list[Message]:
    ask(store, c, "q1", "a1")
    ask(store, c, "q2", "a2")
    return []


def regenerated(store: HistoryStore, c: Conversation) -> list[Message]:
    ask(store, c, "q1", "a1")
    _, old = ask(store, c, "q2", "a2 first")
    new = reply(store, c, c.regenerate("model-b"), "a2 second")
    return [old, new]


def edited(store: HistoryStore, c: Conversation) -> list[Message]:
    ask(store, c, "q1", "a1")
    old, _ = ask(store, c, "q2", "a2")
    new = c.edit(old.id, "q2 edited")
    store.save_message(c, new)
    reply(store, c, c.add_assistant("model-a"), "a2 for the edit")
    return [old, new]


def switched_back(store: HistoryStore, c: Conversation) -> list[Message]:
    old, new = edited(store, c)
    c.switch_branch(new.id, -1)  # back to the first version of q2, and its answer
    store.save_conversation(c)
    return [old, new]


def switched_twice(store: HistoryStore, c: Conversation) -> list[Message]:
    """Three answers to one question, the middle one shown: the head is inside the tree, not its newest leaf."""
    ask(store, c, "q1", "a1")
    _, first = ask(store, c, "q2", "v1")
    second = reply(store, c, c.regenerate("m"), "v2")
    third = reply(store, c, c.regenerate("m"), "v3")
    c.switch_branch(third.id, -1)
    store.save_conversation(c)
    return [first, second, third]


@pytest.mark.parametrize("build", [plain, regenerated, edited, switched_back, switched_twice],
                         ids=lambda f: f.__name__.replace("_", "-"))
def test_store_round_trips_the_tree(store: HistoryStore, build: Callable[..., list[Message]]):
    conversation = Conversation()
    branched = build(store, conversation)
    loaded = load_again(store, conversation.id)
    assert to_json(loaded) == to_json(conversation)
    assert loaded.head == conversation.head
    assert [m.id for m in loaded.messages] == [m.id for m in conversation.messages]
    assert [m.content for m in loaded.messages] == [m.content for m in conversation.messages]
    for message in branched:
        assert loaded.branch_position(loaded.nodes[message.id]) == conversation.branch_position(message)


def test_store_switch_branch_shows_the_chosen_version_after_load(store: HistoryStore):
    conversation = Conversation()
    regenerated(store, conversation)
    shown = conversation.switch_branch(conversation.last_assistant().id, 1)  # wraps to the first answer
    store.save_conversation(conversation)
    loaded = load_again(store, conversation.id)
    assert loaded.messages[-1].id == shown.id and loaded.messages[-1].content == "a2 first"
    assert loaded.branch_position(loaded.messages[-1]) == (1, 2)


def test_store_head_saved_before_its_message_falls_back_to_the_newest(store: HistoryStore):
    """A head that names no saved message (its message was never written) shows the newest message, not nothing."""
    conversation = Conversation()
    ask(store, conversation, "q1", "a1")
    unsaved = conversation.add_user("never saved")
    store.save_conversation(conversation)
    loaded = load_again(store, conversation.id)
    assert unsaved.id not in loaded.nodes
    assert loaded.messages[-1].content == "a1"


# ----- tool calls and metadata -----
TOOL_PARTS = [
    TextPart("Let me compute."),
    ToolCard(1, "calculator", {"expression": "2+3"}, "native", "call-1", True, "5", None, 1.5),
    ToolCard(1, "read_file", {"path": "ünïcode.txt"}, "fallback", None, False, "", "no such file", 0.25),
    Notice("loop_guard", "the same call twice"),
    ToolCard(2, "web_fetch", {"url": "https://example.org", "n": [1, 2]}, "native", "call-3"),  # still running
    TextPart("It is 5."),
]


def test_store_keeps_tool_cards_and_notices_in_order(store: HistoryStore, path: Path):
    conversation = Conversation(kind="tools")
    conversation.add_user("what is 2+3?")
    answer = conversation.add_assistant("m")
    answer.parts = [*TOOL_PARTS]
    answer.status = "stopped"
    store.save_message(conversation, conversation.messages[0])
    store.save_message(conversation, answer)
    loaded = load_again(store, conversation.id).nodes[answer.id]
    assert loaded.parts == TOOL_PARTS
    assert [card.ok for card in loaded.tool_cards] == [True, False, None]
    assert rows(path, "SELECT position, call_id, iteration, name, source, ok, output, error FROM tool_calls "
                      "WHERE message_id = ? ORDER BY position", (answer.id,)) == [
        (0, "call-1", 1, "calculator", "native", 1, "5", None),
        (1, None, 1, "read_file", "fallback", 0, "", "no such file"),
        (2, "call-3", 2, "web_fetch", "native", None, "", None),
    ]


def test_store_saving_a_message_again_replaces_its_tool_calls(store: HistoryStore, path: Path):
    conversation = Conversation()
    answer = conversation.add_assistant("m")
    answer.parts = [*TOOL_PARTS]
    store.save_message(conversation, answer)
    answer.parts = [TOOL_PARTS[1]]
    store.save_message(conversation, answer)
    assert rows(path, "SELECT count(*) FROM tool_calls") == [(1,)]
    assert load_again(store, conversation.id).nodes[answer.id].parts == [TOOL_PARTS[1]]


@pytest.mark.parametrize(
    "metrics",
    [
        pytest.param(Metrics(212.5, 31.25, 40, 128, 4321.0, "stop", 130), id="everything"),
        pytest.param(Metrics(finish_reason="cancelled"), id="stopped-before-first-token"),
        pytest.param(Metrics(90.0, None, None, None, 800.0, "length", chunks=12), id="no-usage"),
        pytest.param(Metrics(prompt_tokens=40, completion_tokens=128), id="usage-only"),
        pytest.param(Metrics(duration_ms=15.0), id="duration-only"),
        pytest.param(None, id="none"),
    ],
)
def test_store_keeps_an_answers_metadata(store: HistoryStore, metrics: Metrics | None):
    conversation = Conversation()
    answer = Message("assistant", [TextPart("hi")], reasoning="think", status="failed", error="HTTP 500",
                     stop_reason=None, metrics=metrics, model_id="qwen", iteration=3, adapter="lora-a",
                     backend="llama.cpp", params={"temperature": 0.2, "stop": ["</s>"], "nested": {"a": None}},
                     created=1_700_000_000.123456)
    conversation.add(answer)
    store.save_message(conversation, answer)
    loaded = load_again(store, conversation.id).nodes[answer.id]
    assert loaded == answer


def test_store_keeps_the_conversations_own_fields(store: HistoryStore):
    conversation = Conversation("Planning", kind="tools")
    conversation.settings.system_prompt = "Be brief."
    conversation.settings.temperature = 0.3
    conversation.settings.stop = ["###"]
    conversation.always_allowed = {"write_file", "calculator"}
    ask(store, conversation, "q", "a")
    loaded = load_again(store, conversation.id)
    assert (loaded.title, loaded.kind, loaded.settings, loaded.always_allowed) == (
        "Planning", "tools", conversation.settings, {"write_file", "calculator"})
    assert (loaded.created, loaded.updated) == (conversation.created, conversation.updated)


# ----- partial saves -----
@pytest.mark.parametrize("status, text", [("streaming", "half an ans"), ("pending", "")])
def test_store_an_unfinished_answer_loads_as_interrupted(store: HistoryStore, status: str, text: str):
    conversation = Conversation()
    answer = conversation.add_assistant("m")
    answer.append_text(text)
    answer.status = status  # type: ignore[assignment]
    store.save_message(conversation, answer)
    loaded = load_again(store, conversation.id).nodes[answer.id]
    assert (loaded.status, loaded.stop_reason, loaded.content) == ("stopped", INTERRUPTED, text)


def test_store_a_finished_save_replaces_the_partial_one(store: HistoryStore, path: Path):
    conversation = Conversation()
    answer = conversation.add_assistant("m")
    answer.append_text("half")
    answer.status = "streaming"
    store.save_message(conversation, answer)
    answer.append_text(" and the rest")
    answer.status = "done"
    store.save_message(conversation, answer)
    loaded = load_again(store, conversation.id).nodes[answer.id]
    assert (loaded.status, loaded.stop_reason, loaded.content) == ("done", None, "half and the rest")
    assert rows(path, "SELECT count(*), min(complete) FROM messages") == [(1, 1)]


def test_store_a_user_stop_is_not_an_interruption(store: HistoryStore):
    conversation = Conversation()
    answer = conversation.add_assistant("m")
    answer.append_text("partial")
    answer.status = "stopped"
    store.save_message(conversation, answer)
    loaded = load_again(store, conversation.id).nodes[answer.id]
    assert (loaded.status, loaded.stop_reason) == ("stopped", None)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def saved_text(store: HistoryStore, conversation: Conversation, message: Message) -> str:
    return store.load(conversation.id).nodes[message.id].content


def test_answer_saver_saves_a_growing_answer_about_once_a_second(store: HistoryStore):
    clock = FakeClock()
    saver = AnswerSaver(store, clock=clock)
    conversation = Conversation()
    answer = conversation.add_assistant("m")
    answer.status = "streaming"
    steps = [  # (seconds since the previous step, text appended, saved?)
        (0.0, "a", True),     # the first change saves at once
        (0.5, "b", False),    # within a second of the last save
        (0.49, "c", False),
        (0.01, "d", True),    # a second after the last save
        (0.999, "e", False),
        (0.5, "f", True),
    ]
    for delay, text, expect_saved in steps:
        clock.now += delay
        answer.append_text(text)
        assert saver.changed(conversation, answer) is expect_saved, text
    assert saved_text(store, conversation, answer) == "abcdef"
    clock.now += 0.1
    answer.append_text("g")
    assert saver.save(conversation, answer) is True  # save() never waits
    assert saved_text(store, conversation, answer) == "abcdefg"
    assert saver.changed(conversation, answer) is False  # and it restarts the second


def test_answer_saver_a_finished_answer_resets_its_timer(store: HistoryStore):
    """After the final save, a change (an edit, a continued answer) is saved at once, not a second later."""
    clock = FakeClock()
    saver = AnswerSaver(store, clock=clock)
    conversation = Conversation()
    answer = conversation.add_assistant("m")
    answer.append_text("done")
    answer.status = "done"
    assert saver.save(conversation, answer)
    answer.append_text(" and more")
    assert saver.changed(conversation, answer) is True
    assert saved_text(store, conversation, answer) == "done and more"


def test_answer_saver_keeps_a_failed_save_as_its_problem(path: Path):
    store = HistoryStore(path)
    saver = AnswerSaver(store, clock=FakeClock())
    conversation = Conversation()
    answer = conversation.add_user("hello")
    store.close()  # every write now fails, as on a full disk
    assert saver.save(conversation, answer) is False
    assert isinstance(saver.problem, HistoryError) and str(path) in str(saver.problem)


def test_answer_saver_a_missed_save_goes_in_with_the_next_one(store: HistoryStore, path: Path):
    """Another process holding the write lock (past the store's wait) makes a save fail; the question it
    missed is saved before the answer by the next save that works, so no answer is stored without it."""
    saver = AnswerSaver(store, clock=FakeClock())
    conversation = Conversation()
    question = conversation.add_user("asked while locked")
    locker = sqlite3.connect(path, isolation_level=None)
    try:
        locker.execute("BEGIN IMMEDIATE")
        assert saver.save(conversation, question) is False
        assert isinstance(saver.problem, HistoryError) and saver.unsaved == 1
    finally:
        locker.close()  # rolls the lock back
    answer = conversation.add_assistant("m")
    answer.append_text("answered")
    answer.status = "done"
    assert saver.save(conversation, answer) is True
    assert (saver.problem, saver.unsaved) == (None, 0)
    assert [m.content for m in store.load(conversation.id).messages] == ["asked while locked", "answered"]
    assert rows(path, "SELECT role FROM messages ORDER BY seq") == [("user",), ("assistant",)]


# ----- migrations -----
def make_v1(path: Path) -> None:
    """A history as version 1 wrote it: no search tables, one conversation with two messages."""
    db = sqlite3.connect(path, isolation_level=None)
    db.executescript(MIGRATIONS[0])
    db.execute("PRAGMA user_version = 1")
    db.execute("INSERT INTO conversations (id, title, created, updated, head) VALUES "
               "('c1', 'Old tea talk', 10.0, 20.0, 'm2')")
    for seq, (mid, parent, role, text) in enumerate([("m1", None, "user", "Which oolong is best?"),
                                                     ("m2", "m1", "assistant", "Tieguanyin, usually.")], 1):
        layout = f'[{{"type": "text", "text": "{text}"}}]'
        db.execute("INSERT INTO messages (conversation_id, id, parent_id, seq, role, content, layout, status, "
                   "complete, created, updated) VALUES ('c1', ?, ?, ?, ?, ?, ?, 'done', 1, 10.0, 20.0)",
                   (mid, parent, seq, role, text, layout))
    db.close()


def test_store_migrates_a_version_1_history(path: Path):
    make_v1(path)
    with HistoryStore(path) as store:
        assert rows(path, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
        loaded = store.load("c1")
        assert [m.content for m in loaded.messages] == ["Which oolong is best?", "Tieguanyin, usually."]
        assert [s.id for s in store.list(search="tieguan")] == ["c1"]  # the old text was indexed
        assert [s.id for s in store.list(search="tea talk")] == ["c1"]  # and the old title
    backup = path.with_name("history.sqlite3.v1.bak")
    assert rows(backup, "PRAGMA user_version") == [(1,)]
    assert rows(backup, "SELECT count(*) FROM messages") == [(2,)]


def test_store_opening_a_current_history_migrates_nothing(path: Path):
    HistoryStore(path).close()
    HistoryStore(path).close()
    assert rows(path, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    assert not list(path.parent.glob("*.bak"))


# ----- several processes opening one file at once -----
RACE_ROUNDS = 20
RACE_OPENERS = 3


def make_v2(path: Path) -> None:
    """A history as version 2 wrote it (search tables, no tool steps), with make_v1's conversation."""
    make_v1(path)
    db = sqlite3.connect(path, isolation_level=None)
    db.executescript(MIGRATIONS[1])
    db.execute("PRAGMA user_version = 2")
    db.close()


@pytest.fixture(scope="module")
def openers() -> Iterator[list[subprocess.Popen[str]]]:
    """Processes that each open a history when told to (race_opener.py), started once for every round."""
    procs = [subprocess.Popen([sys.executable, "-m", "LLM.tests.core.history.race_opener"], cwd=REPO_ROOT,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
             for _ in range(RACE_OPENERS)]
    try:
        yield procs
    finally:
        for proc in procs:
            proc.stdin.close()
            proc.wait(timeout=30)


@pytest.mark.parametrize("start", [pytest.param(None, id="fresh-file"), pytest.param(make_v2, id="version-2-file")])
def test_store_processes_opening_one_history_at_once_all_save(tmp_path: Path, openers: list[subprocess.Popen[str]],
                                                              start: Callable[[Path], None] | None):
    """Regression (#19 item 1): the window and llmctl opening a new (or an older) history at the same moment
    both read the old schema version and both migrated; the second failed ("table ... already exists",
    "database is locked") and ran without saving anything. Each opener must end with a store that saves."""
    for round_ in range(RACE_ROUNDS):
        path = tmp_path / f"round-{round_}" / "history.sqlite3"
        path.parent.mkdir()
        if start is not None:
            start(path)
        for n, proc in enumerate(openers):  # every opener is blocked reading its stdin: they start together
            proc.stdin.write(f"{path} opener-{n}\n")
            proc.stdin.flush()
        replies = [proc.stdout.readline().strip() for proc in openers]
        assert all(reply.startswith("saved ") for reply in replies), (round_, replies)
        with HistoryStore(path) as store:
            assert {s.title for s in store.list()} >= {f"opener-{n}" for n in range(RACE_OPENERS)}
        assert rows(path, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
        if start is not None:  # migrated once: one backup, of the old file, and the old chat kept
            assert [p.name for p in path.parent.glob("*.bak")] == ["history.sqlite3.v2.bak"]
            assert rows(path.with_name("history.sqlite3.v2.bak"), "PRAGMA user_version") == [(2,)]
            assert rows(path, "SELECT title FROM conversations WHERE id = 'c1'") == [("Old tea talk",)]


# ----- files it must not touch -----
PAGE = 4096  # SQLite's default page size


def real_history(path: Path) -> bytearray:
    with HistoryStore(path) as store:
        for _ in range(5):
            conversation = Conversation()
            for i in range(20):
                store.save_message(conversation, conversation.add_user(f"message {i} " + "lorem ipsum " * 40))
    return bytearray(path.read_bytes())


def sqlite_with_pages_overwritten(path: Path) -> None:
    """A real history whose middle pages were overwritten (a bad sector, a half-copied file): reading fails."""
    data = real_history(path)
    middle = len(data) // PAGE // 2
    data[middle * PAGE:(middle + 3) * PAGE] = bytes(range(256)) * (3 * PAGE // 256)
    path.write_bytes(bytes(data))


def sqlite_with_an_index_page_scribbled(path: Path) -> None:
    """Cell pointers of an index page overwritten: the file reads, and quick_check reports the damage."""
    data = real_history(path)
    with sqlite3.connect(path) as db:
        try:
            [(page,)] = db.execute("SELECT max(pageno) FROM dbstat WHERE name = 'sqlite_autoindex_messages_1'")
        except sqlite3.OperationalError:
            pytest.skip("this SQLite is built without the dbstat table")
    db.close()
    start = (page - 1) * PAGE
    data[start + 8:start + 40] = b"\xff" * 32
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda p: p.write_bytes(b"this is not a database\n" * 100), id="text"),
        pytest.param(lambda p: p.write_bytes(os.urandom(8192)), id="random-bytes"),
        pytest.param(lambda p: p.write_bytes(b"SQLite format 3\x00" + b"\x00" * 50), id="header-only"),
        pytest.param(sqlite_with_pages_overwritten, id="pages-overwritten"),
        pytest.param(sqlite_with_an_index_page_scribbled, id="quick-check-fails"),
    ],
)
def test_store_refuses_a_damaged_file_and_leaves_it_alone(path: Path, make: Callable[[Path], None]):
    make(path)
    before = path.read_bytes()
    with pytest.raises(HistoryDamagedError) as caught:
        HistoryStore(path)
    assert str(path) in str(caught.value)
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]


def test_store_refuses_a_newer_schema_and_leaves_it_alone(path: Path):
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE from_the_future (x)")
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.commit()
    db.close()
    before = path.read_bytes()
    with pytest.raises(HistoryVersionError) as caught:
        HistoryStore(path)
    assert str(path) in str(caught.value)
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no -wal, no backup


def test_store_refuses_a_newer_schema_with_an_unmerged_wal_and_leaves_it_alone(path: Path):
    """Bug: the version check reads through a read-write connection, whose close checkpoints the newer
    version's write-ahead log into the main file and deletes the log: "the file was not changed" is then
    untrue. A newer workbench that was killed leaves exactly such a log behind."""
    writer = (
        "import os, sqlite3, sys\n"
        "db = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
        "db.execute('PRAGMA journal_mode = WAL')\n"
        "db.execute('PRAGMA wal_autocheckpoint = 0')\n"
        "db.execute('CREATE TABLE from_the_future (x)')\n"
        "db.execute(f'PRAGMA user_version = {sys.argv[2]}')\n"
        "os._exit(0)  # killed: the log is never merged\n"
    )
    subprocess.run([sys.executable, "-c", writer, str(path), str(SCHEMA_VERSION + 1)], check=True, timeout=30)
    wal = path.with_name(path.name + "-wal")
    before, wal_before = path.read_bytes(), wal.read_bytes()
    with pytest.raises(HistoryVersionError):
        HistoryStore(path)
    assert path.read_bytes() == before
    assert wal.exists() and wal.read_bytes() == wal_before


# ----- the list -----
def saved(store: HistoryStore, title: str, updated: float, *texts: str, cid: str | None = None) -> Conversation:
    conversation = Conversation(title)
    if cid is not None:
        conversation.id = cid
    for text in texts:
        conversation.add_user(text)
    conversation.updated = updated
    store.save_all(conversation)
    return conversation


def test_store_lists_newest_first_with_message_counts(store: HistoryStore):
    saved(store, "middle", 2.0, "a", "b")
    saved(store, "newest", 3.0, "a")
    saved(store, "oldest", 1.0)
    assert [(s.title, s.messages) for s in store.list()] == [("newest", 1), ("middle", 2), ("oldest", 0)]
    assert [s.title for s in store.list(limit=2)] == ["newest", "middle"]


def test_store_saving_a_message_moves_the_conversation_to_the_top(store: HistoryStore):
    old = saved(store, "old", 1.0)
    saved(store, "new", 2.0)
    store.save_message(old, old.add_user("back to this one"))
    assert [s.title for s in store.list()] == ["old", "new"]


def test_store_delete_hides_and_restore_brings_back(store: HistoryStore):
    keep = saved(store, "keep", 1.0, "x")
    gone = saved(store, "gone", 2.0, "x")
    store.delete(gone.id)
    assert [s.id for s in store.list()] == [keep.id]
    with pytest.raises(ConversationNotFoundError):
        store.load(gone.id)
    assert store.exists(gone.id)
    store.restore(gone.id)
    assert [s.id for s in store.list()] == [gone.id, keep.id]
    assert store.load(gone.id).messages[0].content == "x"


def test_store_purge_removes_deleted_conversations_for_good(store: HistoryStore, path: Path):
    keep = saved(store, "keep", 1.0, "x")
    gone = Conversation("gone")
    answer = gone.add_assistant("m")
    answer.parts = [*TOOL_PARTS]
    store.save_message(gone, answer)
    store.delete(gone.id)
    assert store.purge() == 1
    assert not store.exists(gone.id) and store.exists(keep.id)
    assert rows(path, "SELECT conversation_id, count(*) FROM messages GROUP BY 1") == [(keep.id, 1)]
    assert rows(path, "SELECT count(*) FROM tool_calls") == [(0,)]  # foreign keys cascade
    store.restore(keep.id)  # a no-op for a visible one, and still there
    with pytest.raises(ConversationNotFoundError):
        store.restore(gone.id)
    assert store.purge() == 0


def test_store_purge_one_conversation(store: HistoryStore):
    one = saved(store, "one", 1.0, "x")
    two = saved(store, "two", 2.0, "x")
    assert store.purge(one.id) == 1
    assert [s.id for s in store.list()] == [two.id]


def test_store_rename(store: HistoryStore):
    conversation = saved(store, "before", 1.0, "x")
    store.rename(conversation.id, "  after  ")
    assert store.load(conversation.id).title == "after"
    assert [s.id for s in store.list(search="after")] == [conversation.id]
    assert store.list(search="before") == []
    with pytest.raises(HistoryError):
        store.rename(conversation.id, "   ")
    with pytest.raises(ConversationNotFoundError):
        store.rename("no-such-id", "title")


@pytest.mark.parametrize(
    "given, expected",
    [
        pytest.param("abc123ffff", "abc123ffff", id="full-id"),
        pytest.param("abc1", "abc123ffff", id="unique-prefix"),
        pytest.param(" abc1 ", "abc123ffff", id="spaces-around"),
        pytest.param("abd", "abd999", id="another-prefix"),
        pytest.param("ab", ConversationNotFoundError, id="ambiguous"),
        pytest.param("zzz", ConversationNotFoundError, id="unknown"),
        pytest.param("", ConversationNotFoundError, id="empty"),
        pytest.param("dead", ConversationNotFoundError, id="deleted"),
    ],
)
def test_store_resolve(store: HistoryStore, given: str, expected):
    for cid in ("abc123ffff", "abd999", "deadbeef"):
        saved(store, cid, 1.0, cid=cid)
    store.delete("deadbeef")
    if isinstance(expected, str):
        assert store.resolve(given) == expected
    else:
        with pytest.raises(expected) as caught:
            store.resolve(given)
        assert repr(given) in str(caught.value)


def test_store_ambiguous_prefix_says_so(store: HistoryStore):
    saved(store, "one", 1.0, cid="abc1")
    saved(store, "two", 1.0, cid="abc2")
    with pytest.raises(ConversationNotFoundError, match="several"):
        store.resolve("abc")


def test_store_a_whole_id_wins_over_the_ids_it_begins(store: HistoryStore):
    """Regression (#19 item 9): a chat whose id is a prefix of another's (an import can bring in such a
    pair) was listed but could not be shown, exported or deleted: "the prefix matches several"."""
    saved(store, "short", 1.0, "x", cid="abc")
    saved(store, "long", 2.0, "y", cid="abcdef")
    assert store.resolve("abc") == "abc"
    assert store.resolve("abcd") == "abcdef"
    assert store.load(store.resolve("abc")).title == "short"
    with pytest.raises(ConversationNotFoundError, match="several"):
        store.resolve("ab")
    store.delete("abc")  # a deleted chat's id no longer wins
    assert store.resolve("abc") == "abcdef"


def test_store_load_takes_only_a_whole_id(store: HistoryStore):
    """Regression (#19 item 9): the window loads the id it listed; a prefix must never open another chat
    (the listed one gone meanwhile, say) and a whole id must open even when it begins another."""
    saved(store, "short", 1.0, "x", cid="abc")
    saved(store, "long", 2.0, "y", cid="abcdef")
    assert store.load("abc").title == "short"
    store.purge("abc")
    with pytest.raises(ConversationNotFoundError):
        store.load("abc")
    with pytest.raises(ConversationNotFoundError):
        store.load("abcd")


# ----- search -----
CORPUS = {  # title -> message texts
    "Kitchen": ["I need a calculator for the recipe", "Double the flour and the sugar"],
    "Café notes": ["The café on the corner serves naïve espresso"],
    "Travel": ["Trains to Zürich leave hourly", "Book the SLEEPER early"],
    "Maths": ["Integrals need care", "The sugar content is irrelevant here"],
}


@pytest.fixture
def corpus(store: HistoryStore) -> dict[str, str]:
    """Title -> conversation id of the conversations in CORPUS."""
    ids = {}
    for n, (title, texts) in enumerate(CORPUS.items()):
        ids[title] = saved(store, title, float(n), *texts).id
    return ids


@pytest.mark.parametrize(
    "query, expected",
    [
        pytest.param("calculator", {"Kitchen"}, id="a-word"),
        pytest.param("calc", {"Kitchen"}, id="prefix"),
        pytest.param("CALCULATOR", {"Kitchen"}, id="case"),
        pytest.param("sleeper", {"Travel"}, id="case-in-text"),
        pytest.param("sugar", {"Kitchen", "Maths"}, id="two-conversations"),
        pytest.param("sugar flour", {"Kitchen"}, id="words-anded"),
        pytest.param("flour zürich", set(), id="words-in-different-conversations"),
        pytest.param("cafe", {"Café notes"}, id="diacritics-in-text"),
        pytest.param("naive", {"Café notes"}, id="diacritics-inside-a-word"),
        pytest.param("zurich", {"Travel"}, id="umlaut"),
        pytest.param("café", {"Café notes"}, id="diacritics-in-query"),
        pytest.param("travel", {"Travel"}, id="title"),
        pytest.param("Math", {"Maths"}, id="title-prefix"),
        pytest.param("espresso,", {"Café notes"}, id="trailing-punctuation"),
        pytest.param("nothing-here", set(), id="no-match"),
    ],
)
def test_store_search(store: HistoryStore, corpus: dict[str, str], query: str, expected: set[str]):
    assert {s.title for s in store.list(search=query)} == expected


@pytest.mark.parametrize("query", ['"', '""', "*", "AND (", "-", "sugar -flour", "NEAR(a b)", "col:value", "^start",
                                   "a OR", '"unterminated', "(", ")", "+", "'", "\\", "NOT", "🙂"])
def test_store_search_takes_any_punctuation(store: HistoryStore, corpus: dict[str, str], query: str):
    store.list(search=query)  # FTS5 syntax in what the user typed never reaches the query parser


def test_store_search_snippet_brackets_the_match(store: HistoryStore, corpus: dict[str, str]):
    [found] = store.list(search="calcul")
    assert "[calculator]" in found.snippet


def test_store_search_follows_edits_to_a_message(store: HistoryStore):
    conversation = Conversation("t")
    answer = conversation.add_assistant("m")
    answer.append_text("the answer mentions walrus")
    store.save_message(conversation, answer)
    assert [s.id for s in store.list(search="walrus")] == [conversation.id]
    answer.parts = [TextPart("now it mentions narwhal")]
    store.save_message(conversation, answer)
    assert store.list(search="walrus") == []
    assert [s.id for s in store.list(search="narwhal")] == [conversation.id]
    rows(store.path, "INSERT INTO message_search(message_search, rank) VALUES ('integrity-check', 1)")
    rows(store.path, "INSERT INTO message_trigram(message_trigram, rank) VALUES ('integrity-check', 1)")


def test_store_search_skips_deleted_conversations(store: HistoryStore, corpus: dict[str, str]):
    store.delete(corpus["Kitchen"])
    assert {s.title for s in store.list(search="sugar")} == {"Maths"}
    store.restore(corpus["Kitchen"])
    assert {s.title for s in store.list(search="sugar")} == {"Kitchen", "Maths"}


def test_store_search_forgets_purged_conversations(store: HistoryStore, path: Path, corpus: dict[str, str]):
    store.delete(corpus["Kitchen"])
    store.purge()
    assert {s.title for s in store.list(search="sugar")} == {"Maths"}
    # The index holds nothing of the purged rows: FTS5's integrity check with rank 1 compares it with the tables.
    rows(path, "INSERT INTO message_search(message_search, rank) VALUES ('integrity-check', 1)")
    rows(path, "INSERT INTO title_search(title_search, rank) VALUES ('integrity-check', 1)")
    rows(path, "INSERT INTO message_trigram(message_trigram, rank) VALUES ('integrity-check', 1)")


CJK = {  # title -> message texts: sentences without spaces, where a word sits inside one long "token"
    "中文": ["你好世界，今天天气很好"],
    "日本語": ["今日は東京へ行きます。"],
    "한국어": ["서울에서 만나요"],
    "Tokyo trip": ["Meeting in 東京 at noon"],
}


@pytest.fixture
def cjk(store: HistoryStore) -> dict[str, str]:
    return {title: saved(store, title, float(n), *texts).id for n, (title, texts) in enumerate(CJK.items())}


CJK_SEARCHES = [
    pytest.param("世界", {"中文"}, id="chinese-word-in-a-sentence"),
    pytest.param("東京", {"日本語", "Tokyo trip"}, id="japanese-word-in-a-sentence"),
    pytest.param("天气很好", {"中文"}, id="four-characters"),
    pytest.param("東京へ行", {"日本語"}, id="kanji-and-kana"),
    pytest.param("世", {"中文"}, id="one-character"),
    pytest.param("世界 天气", {"中文"}, id="words-anded"),
    pytest.param("世界 東京", set(), id="words-in-different-conversations"),
    pytest.param("东京", set(), id="simplified-is-another-word"),
    pytest.param("에서", {"한국어"}, id="korean-inside-a-word"),
    pytest.param("京 noon", {"Tokyo trip"}, id="with-a-spaced-word"),
    pytest.param("日本", {"日本語"}, id="title"),
]


@pytest.mark.parametrize("query, expected", CJK_SEARCHES)
def test_store_search_finds_words_inside_unspaced_text(store: HistoryStore, cjk: dict[str, str], query: str,
                                                       expected: set[str]):
    """Regression (#19 item 11): unicode61 sees 你好世界 as one token, so 世界 inside it was never found."""
    assert {s.title for s in store.list(search=query)} == expected


def test_store_search_snippet_brackets_an_unspaced_match(store: HistoryStore, cjk: dict[str, str]):
    [found] = store.list(search="世界")
    assert found.snippet == "你好[世界]，今天天气很好"
    [by_title] = store.list(search="日本")
    assert by_title.snippet is None


@pytest.mark.parametrize("query, expected", CJK_SEARCHES)
def test_store_search_without_a_trigram_index_scans(path: Path, query: str, expected: set[str]):
    """An SQLite older than 3.34 migrates without the trigram index: search scans and finds the same."""
    with HistoryStore(path) as store:
        for n, (title, texts) in enumerate(CJK.items()):
            saved(store, title, float(n), *texts)
    db = sqlite3.connect(path)
    db.executescript("DROP TABLE message_trigram; DROP TRIGGER message_trigram_insert; "
                     "DROP TRIGGER message_trigram_delete; DROP TRIGGER message_trigram_update;")
    db.close()
    with HistoryStore(path) as store:
        assert {s.title for s in store.list(search=query)} == expected


def test_store_migrates_a_version_3_history_into_the_trigram_index(path: Path):
    """The text saved before the trigram index existed is indexed by the migration."""
    make_v2(path)
    db = sqlite3.connect(path, isolation_level=None)
    db.executescript(MIGRATIONS[2])
    db.execute("UPDATE messages SET content = '你好世界，今天天气很好' WHERE id = 'm2'")
    db.execute("PRAGMA user_version = 3")
    db.close()
    with HistoryStore(path) as store:
        assert [s.id for s in store.list(search="天气很好")] == ["c1"]
        assert [s.id for s in store.list(search="世界")] == ["c1"]
    assert rows(path, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    assert rows(path.with_name("history.sqlite3.v3.bak"), "PRAGMA user_version") == [(3,)]
    rows(path, "INSERT INTO message_trigram(message_trigram, rank) VALUES ('integrity-check', 1)")


@pytest.mark.parametrize("query", ["?!", "，。", "...", "🙂", "*", '"'])
def test_store_search_without_words_finds_nothing(store: HistoryStore, corpus: dict[str, str], query: str):
    """Regression (#19 item 11): a search of only punctuation listed every chat."""
    assert store.list(search=query) == []
    assert len(store.list()) == len(CORPUS)  # no search: all of them
