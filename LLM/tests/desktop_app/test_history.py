"""Saved conversations in the real window: the sidebar, restarts, branches, edit-and-resend, rename,
delete/undo, search, export/import, and the history the next request sends (asserted on what the fake
server received)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from LLM.core import Conversation
from LLM.core.history import INTERRUPTED, HistoryStore, to_json
from LLM.desktop_app.widgets.conversation_item import ENTRY_ROLE
from LLM.desktop_app.widgets.conversation_list import ConversationSidebar
from LLM.tests.desktop_app.harness import (
    ScriptedInteraction,
    click,
    last_answer,
    open_window,
    openai_yaml,
    page,
    prompt_edit,
    run,
    transcript,
    type_and_send,
    wait_until,
)

CALC = {"name": "calculator", "arguments": {"expression": "2+3"}}


def sidebar(window) -> ConversationSidebar:
    return window.findChild(ConversationSidebar, "conversationSidebar")


def titles(window) -> list[str]:
    items = sidebar(window).list
    return [items.item(row).text().splitlines()[0] for row in range(items.count())]


def click_conversation(window, conversation_id: str) -> None:
    items = sidebar(window).list
    row = sidebar(window).ids().index(conversation_id)
    item = items.item(row)
    items.scrollToItem(item)
    QTest.mouseClick(items.viewport(), Qt.MouseButton.LeftButton, pos=items.visualItemRect(item).center())


def sent_messages(fake_server, index: int = -1) -> list[dict]:
    return fake_server.requests()[index]["body"]["messages"]


async def chat_turn(chat, text: str) -> None:
    type_and_send(chat, text)
    await wait_until(lambda: last_answer(chat).final, what=f"the answer to {text!r}")


def test_desktop_history_conversation_survives_a_restart_and_continues(qloop, fake_server, tmp_path):
    fake_server.set_default({"text": "Sure."})
    history = tmp_path / "data" / "history.sqlite3"

    async def go():
        async with open_window(tmp_path, openai_yaml(fake_server.url)) as window:
            chat = page(window)
            await chat_turn(chat, "Remember the number 42")
            first_id = chat.conversation.id
            await wait_until(lambda: titles(window) == ["Remember the number 42"], what="the chat listed")
        async with open_window(tmp_path, openai_yaml(fake_server.url), history_path=history) as window:
            chat = page(window)
            assert titles(window) == ["Remember the number 42"] and not chat.conversation.nodes
            click_conversation(window, first_id)
            await wait_until(lambda: chat.conversation.id == first_id, what="the saved chat opened")
            assert "Remember the number 42" in transcript(chat).plain_text()
            await chat_turn(chat, "Which number?")
            assert [(m["role"], m["content"]) for m in sent_messages(fake_server)] == [
                ("user", "Remember the number 42"), ("assistant", "Sure."), ("user", "Which number?")]
            answer = last_answer(chat)
        with HistoryStore(history) as store:
            saved = store.load(first_id)
        assert [m.content for m in saved.messages] == ["Remember the number 42", "Sure.", "Which number?", "Sure."]
        assert saved.nodes[answer.id].model_id == "fake" and saved.nodes[answer.id].backend == "openai"
        assert saved.nodes[answer.id].params["temperature"] == 0.3
        assert saved.nodes[answer.id].metrics.finish_reason == "stop"

    run(qloop, go())


def test_desktop_history_regenerate_keeps_both_answers_behind_a_switcher(qloop, fake_server, tmp_path):
    fake_server.script({"text": "First answer."}, {"text": "Second answer."}, {"text": "Follow-up."})

    async def go():
        async with open_window(tmp_path, openai_yaml(fake_server.url)) as window:
            chat = page(window)
            await chat_turn(chat, "Tell me")
            first = last_answer(chat)
            click(transcript(chat).widget_for(first.id).regenerate_button)
            await wait_until(lambda: last_answer(chat).content == "Second answer." and last_answer(chat).final,
                             what="the regenerated answer")
            second = last_answer(chat)
            widget = transcript(chat).widget_for(second.id)
            assert widget.branch_text() == "2/2"
            click(widget.branch_prev)
            await wait_until(lambda: last_answer(chat).id == first.id, what="the first answer shown")
            assert transcript(chat).widget_for(first.id).branch_text() == "1/2"
            assert "First answer." in transcript(chat).plain_text()
            assert "Second answer." not in transcript(chat).plain_text()
            await chat_turn(chat, "And then?")  # continues the branch on screen
            assert [m["content"] for m in sent_messages(fake_server)] == ["Tell me", "First answer.", "And then?"]
            click(transcript(chat).widget_for(first.id).branch_next)
            await wait_until(lambda: last_answer(chat).id == second.id, what="back to the second answer")
            assert chat.conversation.head == second.id

    run(qloop, go())


def test_desktop_history_edit_and_resend_makes_a_branch(qloop, fake_server, tmp_path):
    fake_server.script({"text": "About cats."}, {"text": "About dogs."})

    async def go():
        async with open_window(tmp_path, openai_yaml(fake_server.url)) as window:
            chat = page(window)
            await chat_turn(chat, "Tell me about cats")
            question = chat.conversation.messages[0]
            click(transcript(chat).widget_for(question.id).edit_button)
            assert chat.editing == question.id and prompt_edit(chat).toPlainText() == "Tell me about cats"
            await chat_turn(chat, "Tell me about dogs")
            assert [m.content for m in chat.conversation.messages] == ["Tell me about dogs", "About dogs."]
            assert sent_messages(fake_server) == [{"role": "user", "content": "Tell me about dogs"}]
            edited = chat.conversation.messages[0]
            assert transcript(chat).widget_for(edited.id).branch_text() == "2/2"
            click(transcript(chat).widget_for(edited.id).branch_prev)
            await wait_until(lambda: chat.conversation.messages[0].id == question.id, what="the old question")
            assert "About cats." in transcript(chat).plain_text() and "dogs" not in transcript(chat).plain_text()
            # Esc leaves an edit without sending anything.
            click(transcript(chat).widget_for(question.id).edit_button)
            QTest.keyClick(prompt_edit(chat), Qt.Key.Key_Escape)
            assert chat.editing is None and not prompt_edit(chat).toPlainText()
        with HistoryStore(tmp_path / "data" / "history.sqlite3") as store:
            saved = store.load(chat.conversation.id)
        assert len(saved.nodes) == 4 and saved.head == chat.conversation.head

    run(qloop, go())


def test_desktop_history_failed_answer_does_not_send_two_user_turns(qloop, fake_server, tmp_path):
    fake_server.script({"status": 500, "body": {"error": {"message": "boom"}}}, {"text": "Fine now."})

    async def go():
        async with open_window(tmp_path, openai_yaml(fake_server.url)) as window:
            chat = page(window)
            await chat_turn(chat, "First try")
            assert last_answer(chat).status == "failed"
            await chat_turn(chat, "Second try")
            assert [m["role"] for m in sent_messages(fake_server)] == ["user"]
            assert sent_messages(fake_server)[0]["content"] == "Second try"

    run(qloop, go())


def test_desktop_history_tool_calls_and_results_go_back_on_the_next_turn(qloop, fake_server, tmp_path):
    fake_server.script({"tool_calls": [CALC]}, {"text": "It is 5."}, {"text": "You asked about 2+3."})

    async def go():
        async with open_window(tmp_path, openai_yaml(fake_server.url)) as window:
            tools = page(window, "toolChatPage")
            window.tabs.setCurrentWidget(tools)
            await chat_turn(tools, "What is 2+3?")
            await chat_turn(tools, "What did I ask?")
            messages = sent_messages(fake_server)
            assert [m["role"] for m in messages] == ["user", "assistant", "tool", "assistant", "user"]
            call = messages[1]["tool_calls"][0]
            assert call["function"]["name"] == "calculator"
            assert json.loads(call["function"]["arguments"]) == {"expression": "2+3"}
            assert messages[2]["tool_call_id"] == call["id"] and messages[2]["content"] == "5"
            assert messages[3]["content"] == "It is 5."
            conversation_id = tools.conversation.id
        with HistoryStore(tmp_path / "data" / "history.sqlite3") as store:
            saved = store.load(conversation_id)
        assert saved.kind == "tools" and saved.messages[1].tool_cards[0].output == "5"

    run(qloop, go())


def test_desktop_history_rename_delete_undo_and_search(qloop, fake_server, tmp_path):
    fake_server.set_default({"text": "Noted."})
    async def go():
        async with open_window(tmp_path, openai_yaml(fake_server.url)) as window:
            chat = page(window)
            await chat_turn(chat, "Pack the tent for the mountains")
            tent = chat.conversation.id
            click(window.sidebar.new_button)
            await chat_turn(chat, "Buy tomatoes")
            await wait_until(lambda: len(titles(window)) == 2, what="two chats listed")
            assert titles(window) == ["Buy tomatoes", "Pack the tent for the mountains"]  # newest first

            sidebar(window).rename_requested.emit(tent, "Trip planning")  # typed in the row (see test_sidebar.py)
            await wait_until(lambda: "Trip planning" in titles(window), what="the renamed chat")

            sidebar(window).search.setText("mount")
            await wait_until(lambda: titles(window) == ["Trip planning"], what="the search result")
            assert "mountains" in sidebar(window).list.item(0).text()  # highlighted, not bracketed (test_sidebar.py)
            sidebar(window).search.setText("")
            await wait_until(lambda: len(titles(window)) == 2, what="the whole list again")

            sidebar(window).delete_requested.emit(tent)
            assert titles(window) == ["Buy tomatoes"] and sidebar(window).undo_bar.isVisible()
            click(sidebar(window).undo_button)
            await wait_until(lambda: len(titles(window)) == 2, what="the chat back")
            assert chat.conversation.id == tent  # undo opens it again

            current = chat.conversation.id
            sidebar(window).delete_requested.emit(current)
            assert not chat.conversation.nodes  # the page left the deleted chat
        # A delete not undone is gone for good at the next start.
        async with open_window(tmp_path, openai_yaml(fake_server.url),
                               history_path=tmp_path / "data" / "history.sqlite3") as window:
            assert titles(window) == ["Buy tomatoes"]
        db = sqlite3.connect(tmp_path / "data" / "history.sqlite3")
        assert db.execute("SELECT count(*) FROM messages WHERE conversation_id = ?", (tent,)).fetchone() == (0,)
        db.close()

    run(qloop, go())


def test_desktop_history_export_and_import_round_trip(qloop, fake_server, tmp_path):
    fake_server.script({"text": "One."}, {"text": "Two."}, {"tool_calls": [CALC]}, {"text": "Five."})
    exported, markdown, again = tmp_path / "chat.json", tmp_path / "chat.md", tmp_path / "again.json"
    interaction = ScriptedInteraction(paths=(exported, markdown))
    other = ScriptedInteraction(paths=(exported, again, exported))

    async def go():
        async with open_window(tmp_path, openai_yaml(fake_server.url), interaction=interaction) as window:
            tools = page(window, "toolChatPage")
            window.tabs.setCurrentWidget(tools)
            await chat_turn(tools, "Count")
            click(transcript(tools).widget_for(last_answer(tools).id).regenerate_button)
            await wait_until(lambda: last_answer(tools).content == "Two." and last_answer(tools).final,
                             what="the second version")
            await chat_turn(tools, "Add 2+3")
            assert await window.history.export(None, "json") == exported
            assert await window.history.export(None, "md") == markdown
            original = tools.conversation
        text = markdown.read_text()
        assert "## You" in text and "Two." in text and "One." not in text  # Markdown: the branch on screen
        assert "<details><summary>Tool call: calculator · ok" in text

        second = tmp_path / "second"
        second.mkdir()
        async with open_window(second, openai_yaml(fake_server.url), interaction=other) as window:
            imported_id = await window.history.import_file()
            assert imported_id == original.id
            tools = page(window, "toolChatPage")
            assert window.tabs.currentWidget() is tools and tools.conversation.id == original.id
            assert [m.content for m in tools.conversation.messages] == ["Count", "Two.", "Add 2+3", "Five."]
            await window.history.export(None, "json")
            assert again.read_bytes() == exported.read_bytes()  # export -> import -> export: identical
            copy_id = await window.history.import_file()  # the same chat again comes in as a copy
            assert copy_id != original.id and len(titles(window)) == 2

    run(qloop, go())


def test_desktop_history_import_of_a_bad_file_says_why(qloop, fake_server, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"format": "llm-workbench-conversation", "version": 1,
                               "conversation": {"id": "x", "title": "t", "messages": [{"role": "robot"}]}}))

    async def go():
        async with open_window(tmp_path, openai_yaml(fake_server.url),
                               interaction=ScriptedInteraction(paths=(bad,))) as window:
            assert await window.history.import_file() is None
            message = window.result_label.text()
            assert "conversation.messages[0].role" in message and str(bad) in message
            assert titles(window) == []

    run(qloop, go())


def test_desktop_history_a_damaged_file_is_left_alone_and_chat_still_works(qloop, fake_server, tmp_path):
    fake_server.set_default({"text": "Still here."})
    history = tmp_path / "data" / "history.sqlite3"
    history.parent.mkdir()
    history.write_bytes(b"this is not a database" * 100)

    async def go():
        async with open_window(tmp_path, openai_yaml(fake_server.url), history_path=history) as window:
            problem = sidebar(window).problem
            assert problem.isVisible() and "damaged" in problem.text() and str(history) in problem.text()
            chat = page(window)
            await chat_turn(chat, "Hello")
            assert last_answer(chat).content == "Still here."
        assert history.read_bytes() == b"this is not a database" * 100

    run(qloop, go())


def test_desktop_history_an_answer_cut_off_by_closing_is_kept(qloop, fake_server, tmp_path):
    fake_server.script({"text": " ".join(f"w{i}" for i in range(500)), "delay_s": 0.02})
    history = tmp_path / "data" / "history.sqlite3"

    async def go():
        async with open_window(tmp_path, openai_yaml(fake_server.url)) as window:
            chat = page(window)
            type_and_send(chat, "Write a lot")
            await wait_until(lambda: len(last_answer(chat).content) > 20, what="some text")
            conversation_id = chat.conversation.id
        # open_window's exit closed the window mid-answer
        with HistoryStore(history) as store:
            answer = store.load(conversation_id).messages[-1]
        assert answer.status == "stopped" and answer.stop_reason == "window closed"
        assert answer.content.startswith("w0 w1")

    run(qloop, go())


def test_desktop_history_a_long_conversation_opens_with_its_newest_messages(qloop, fake_server, tmp_path):
    history = tmp_path / "data" / "history.sqlite3"
    history.parent.mkdir()
    conversation = Conversation("Long one")
    with HistoryStore(history) as store:
        for i in range(250):
            store.save_message(conversation, conversation.add_user(f"question {i}"))
            answer = conversation.add_assistant("fake")
            answer.append_text(f"answer {i}")
            answer.status = "streaming" if i == 249 else "done"  # the last one never finished
            store.save_message(conversation, answer)

    async def go():
        async with open_window(tmp_path, openai_yaml(fake_server.url), history_path=history) as window:
            chat = page(window)
            click_conversation(window, conversation.id)
            await wait_until(lambda: chat.conversation.id == conversation.id, what="the long chat")
            view = transcript(chat)
            assert len(view.message_widgets()) == 40 and view.hidden_count() == 460
            assert view.earlier_button.isVisible()
            last = view.widget_for(chat.conversation.messages[-1].id)
            assert INTERRUPTED in last.badge.text()
            click(view.earlier_button)
            assert len(view.message_widgets()) == 80 and view.hidden_count() == 420
            assert view.message_widgets()[0].message_id == chat.conversation.messages[420].id

    run(qloop, go())


def test_desktop_history_exported_json_matches_the_store(qloop, fake_server, tmp_path):
    """What the window exports is what the store holds (no in-memory-only state)."""
    fake_server.set_default({"text": "Ok."})
    target = tmp_path / "out.json"

    async def go():
        async with open_window(tmp_path, openai_yaml(fake_server.url),
                               interaction=ScriptedInteraction(paths=(target,))) as window:
            chat = page(window)
            await chat_turn(chat, "Hi")
            await window.history.export(None, "json")
            conversation_id = chat.conversation.id
        with HistoryStore(tmp_path / "data" / "history.sqlite3") as store:
            assert to_json(store.load(conversation_id)) == Path(target).read_text()

    run(qloop, go())


# ----- hardening (#19) -----
def stored(history: Path, *chats: tuple[str, str, str]) -> None:
    """(id, title, first message) chats written to the history before the window opens."""
    history.parent.mkdir(exist_ok=True)
    with HistoryStore(history) as store:
        for n, (cid, title, text) in enumerate(chats):
            conversation = Conversation(title)
            conversation.id = cid
            conversation.add_user(text)
            conversation.updated = 1_700_000_000.0 + n
            store.save_all(conversation)


def test_desktop_history_a_stored_time_out_of_range_does_not_stop_the_window(qloop, fake_server, tmp_path):
    """Regression (#19 item 5): one chat whose time was out of datetime's range (an older import's
    milliseconds or Infinity) made the sidebar raise ValueError, and the main window could not be built."""
    history = tmp_path / "data" / "history.sqlite3"
    stored(history, ("odd", "Odd time", "hello"), ("fine", "Fine time", "hi"))
    db = sqlite3.connect(history)
    db.execute("UPDATE conversations SET created = ?, updated = ? WHERE id = 'odd'", (float("inf"), 1.7e15))
    db.commit()
    db.close()

    async def go():
        async with open_window(tmp_path, openai_yaml(fake_server.url), history_path=history) as window:
            assert titles(window) == ["Odd time", "Fine time"]
            assert "unknown time" in sidebar(window).list.item(0).text()
            click_conversation(window, "odd")
            await wait_until(lambda: page(window).conversation.id == "odd", what="the odd chat opened")
            assert "hello" in transcript(page(window)).plain_text()

    run(qloop, go())


def test_desktop_history_a_chat_whose_id_begins_another_opens_renames_and_deletes(qloop, fake_server, tmp_path):
    """Regression (#19 item 9): a chat whose id is a prefix of another's (an import can bring in such a pair)
    was listed but could not be opened, renamed or deleted ("the prefix matches several")."""
    history = tmp_path / "data" / "history.sqlite3"
    stored(history, ("abc", "Short id", "short one"), ("abcdef", "Long id", "long one"))

    async def go():
        async with open_window(tmp_path, openai_yaml(fake_server.url), history_path=history) as window:
            click_conversation(window, "abc")
            await wait_until(lambda: page(window).conversation.id == "abc", what="the short-id chat opened")
            assert "short one" in transcript(page(window)).plain_text()
            assert window.history.rename("abc", "Renamed")
            assert titles(window) == ["Long id", "Renamed"]
            sidebar(window).delete_requested.emit("abc")
            assert titles(window) == ["Long id"] and sidebar(window).undo_bar.isVisible()

    run(qloop, go())


def test_desktop_history_never_opens_a_chat_by_prefix(qloop, fake_server, tmp_path):
    """Regression (#19 item 9): the window resolved the id it listed as a prefix, so a listed chat removed
    meanwhile (by llmctl) opened another chat whose id it begins. It looks ids up exactly."""
    history = tmp_path / "data" / "history.sqlite3"
    stored(history, ("abc", "Short id", "short one"), ("abcdef", "Long id", "long one"))

    async def go():
        async with open_window(tmp_path, openai_yaml(fake_server.url), history_path=history) as window:
            assert titles(window) == ["Long id", "Short id"]
            with HistoryStore(history) as other_process:
                other_process.purge("abc")
            sidebar(window).open_requested.emit("abc")
            assert "Cannot open the chat" in window.result_label.text()
            assert page(window).conversation.id != "abcdef" and not page(window).conversation.nodes

    run(qloop, go())


def test_desktop_history_import_of_a_malformed_file_says_why(qloop, fake_server, tmp_path):
    """Regression (#19 item 10): deep nesting (RecursionError) and "head": [] (TypeError) failed silently."""
    deep, head = tmp_path / "deep.json", tmp_path / "head.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    head.write_text(json.dumps({"format": "llm-workbench-conversation", "version": 1, "conversation": {
        "id": "x", "title": "t", "head": [], "messages": [{"id": "m", "role": "user"}]}}))

    async def go():
        async with open_window(tmp_path, openai_yaml(fake_server.url),
                               interaction=ScriptedInteraction(paths=(deep, head))) as window:
            for path, words in ((deep, "nested too deeply"), (head, "conversation.head")):
                assert await window.history.import_file() is None
                message = window.result_label.text()
                assert message.startswith("Cannot import: ") and words in message and str(path) in message
            assert titles(window) == []

    run(qloop, go())


def test_desktop_history_search_finds_cjk_words_and_nothing_for_punctuation(qloop, fake_server, tmp_path):
    """Regression (#19 item 11): 世界 inside a Chinese sentence was not found; "？！" listed every chat."""
    history = tmp_path / "data" / "history.sqlite3"
    stored(history, ("zh", "Chinese", "你好世界，今天天气很好"), ("en", "English", "Hello world"))

    async def go():
        async with open_window(tmp_path, openai_yaml(fake_server.url), history_path=history) as window:
            search = sidebar(window).search
            search.setText("世界")
            await wait_until(lambda: titles(window) == ["Chinese"], what="the Chinese chat found")
            item = sidebar(window).list.item(0)
            assert ("世界", True) in item.data(ENTRY_ROLE).segments and "你好世界" in item.text()  # highlighted
            search.setText("？！")
            await wait_until(lambda: titles(window) == [], what="nothing found")
            assert sidebar(window).empty.text() == "No chat matches."
            search.setText("  ")
            await wait_until(lambda: len(titles(window)) == 2, what="a blank search lists every chat")

    run(qloop, go())
