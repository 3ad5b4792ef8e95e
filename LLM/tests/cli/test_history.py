"""llmctl history and chat's saving, as a user runs them: real llmctl subprocesses, the fake server, a private store."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from LLM.tests.core.history.test_exchange import CLI_MALFORMED, MALFORMED
from LLM.tests.fakes.handle import REPO_ROOT, FakeServerHandle, wait_until


def _env(data: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO_ROOT), "LLM_DATA_DIR": str(data),
            "LLM_STATE_DIR": str(data.parent / "state"), "XDG_CONFIG_HOME": str(data.parent / "xdg")}


def _command(config: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "LLM", "--config", str(config), *args]


def llmctl(data: Path, config: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """One llmctl run; ``stdin`` is written up front (chat reads a line only after the previous answer)."""
    return subprocess.run(_command(config, *args), input=stdin, capture_output=True, text=True, timeout=60,
                          env=_env(data))


@pytest.fixture
def config(tmp_path: Path, fake_server: FakeServerHandle) -> Path:
    path = tmp_path / "backends.yaml"
    path.write_text(f"models:\n  fake:\n    backend: openai\n    server_url: {fake_server.url}/v1\n"
                    "    model_name: fake-model\n")
    return path


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return tmp_path / "data"


def listed(data: Path, config: Path, *args: str) -> list[dict[str, Any]]:
    out = llmctl(data, config, "history", "list", "--json", *args)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def assert_one_line_error(out: subprocess.CompletedProcess[str], expected: str) -> None:
    assert out.returncode == 1, out
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert out.stderr.startswith("error: ") and expected in out.stderr, out.stderr


def exported(conversation_id: str, messages: list[dict[str, Any]], title: str = "Tool chat",
             head: str | None = None) -> str:
    """A hand-made export file (the format `history export --format json` writes)."""
    body = {"id": conversation_id, "title": title, "kind": "tools", "created": 1700000000.0,
            "updated": 1700000100.0, "head": head or messages[-1]["id"], "messages": messages}
    return json.dumps({"format": "llm-workbench-conversation", "version": 1, "conversation": body})


def text_message(message_id: str, parent: str | None, role: str, text: str, **fields: Any) -> dict[str, Any]:
    return {"id": message_id, "parent_id": parent, "role": role, "parts": [{"type": "text", "text": text}],
            "created": 1700000000.0, **fields}


TOOL_CHAT = [
    text_message("u1", None, "user", "What is 7*6?"),
    {"id": "a1", "parent_id": "u1", "role": "assistant", "model_id": "fake", "created": 1700000001.0, "parts": [
        {"type": "text", "text": "Let me compute."},
        {"type": "tool", "iteration": 1, "name": "calculator", "arguments": {"expression": "7*6"},
         "source": "native", "ok": True, "output": "42"},
        {"type": "text", "text": "It is 42."}]},
    text_message("u2", "a1", "user", "Count to a million"),
    text_message("a2", "u2", "assistant", "1, 2, 3", status="stopped", model_id="fake"),
    text_message("u3", "a2", "user", "Are you there?"),
    text_message("a3", "u3", "assistant", "", status="failed", error="the server went away"),
    text_message("a1b", "u1", "assistant", "An older answer on another branch"),
]


# ----- chat saves -----
def test_chat_saves_each_turn_and_history_lists_it(fake_server: FakeServerHandle, config: Path, data: Path):
    fake_server.script({"text": "Paris."}, {"text": "About two million."})
    out = llmctl(data, config, "chat", "-m", "fake", stdin="Capital of France?\nHow many people?\n")
    assert out.returncode == 0, out.stderr
    [saved] = listed(data, config)
    assert saved["title"] == "Capital of France?" and saved["messages"] == 4 and saved["kind"] == "chat"
    assert f"Saving as {saved['id'][:8]} (llmctl chat --resume {saved['id'][:8]})" in out.stdout
    # The second question went out with the first exchange: line 2 was read after answer 1 arrived.
    assert [m["content"] for m in fake_server.requests()[1]["body"]["messages"]] == [
        "Capital of France?", "Paris.", "How many people?"]
    plain = llmctl(data, config, "history", "list").stdout.splitlines()
    assert len(plain) == 1 and plain[0].startswith(saved["id"][:8] + "  ")
    assert "4 messages  chat" in plain[0] and plain[0].endswith("Capital of France?")


def test_chat_records_model_backend_params_and_metrics(fake_server: FakeServerHandle, config: Path, data: Path):
    fake_server.script({"text": "Hi there."})
    out = llmctl(data, config, "chat", "-m", "fake", "--temperature", "0.5", "--system", "Be brief.", stdin="Hello\n")
    assert out.returncode == 0, out.stderr
    [saved] = listed(data, config)
    tree = json.loads(llmctl(data, config, "history", "export", saved["id"], "--format", "json").stdout)
    conversation = tree["conversation"]
    answer = next(m for m in conversation["messages"] if m["role"] == "assistant")
    assert (answer["model_id"], answer["backend"], answer["status"]) == ("fake", "openai", "done")
    assert answer["params"] == {"temperature": 0.5, "system_prompt": "Be brief."}
    assert answer["metrics"]["finish_reason"] == "stop" and answer["metrics"]["chunks"] == 2
    assert conversation["settings"]["system_prompt"] == "Be brief."


def test_chat_resume_continues_with_the_earlier_turns(fake_server: FakeServerHandle, config: Path, data: Path):
    fake_server.script({"text": "Paris."}, {"text": "Yes, the Seine."})
    llmctl(data, config, "chat", "-m", "fake", stdin="Capital of France?\n")
    [saved] = listed(data, config)
    out = llmctl(data, config, "chat", "-m", "fake", "--resume", saved["id"][:6], stdin="On a river?\n")
    assert out.returncode == 0, out.stderr
    assert 'Resuming "Capital of France?" (2 messages):' in out.stdout
    assert "you> Capital of France?\nassistant (fake)> Paris.\n" in out.stdout
    sent = fake_server.requests()[1]["body"]["messages"]
    assert [(m["role"], m["content"]) for m in sent] == [
        ("user", "Capital of France?"), ("assistant", "Paris."), ("user", "On a river?")]
    [after] = listed(data, config)
    assert after["id"] == saved["id"] and after["messages"] == 4


def test_chat_reset_starts_a_new_saved_conversation(fake_server: FakeServerHandle, config: Path, data: Path):
    out = llmctl(data, config, "chat", "-m", "fake", stdin="first topic\n/reset\nsecond topic\n")
    assert out.returncode == 0, out.stderr
    assert "(new chat; the last one stays saved)" in out.stdout
    assert [(c["title"], c["messages"]) for c in listed(data, config)] == [("second topic", 2), ("first topic", 2)]
    assert [m["content"] for m in fake_server.requests()[1]["body"]["messages"]] == ["second topic"]


def test_chat_keeps_a_stopped_answer_and_sends_it_as_history(fake_server: FakeServerHandle, config: Path,
                                                              data: Path, tmp_path: Path):
    """The user's Ctrl-C keeps the partial answer (as the window does), marked stopped."""
    fake_server.script({"text": "slow " * 500, "delay_s": 0.05}, {"text": "done"})
    stdout = tmp_path / "stdout.txt"
    with stdout.open("w") as sink:
        proc = subprocess.Popen(_command(config, "chat", "-m", "fake"), stdin=subprocess.PIPE, stdout=sink,
                                stderr=subprocess.PIPE, text=True, env=_env(data))
        try:
            proc.stdin.write("go on\n")
            proc.stdin.flush()
            wait_until(lambda: "assistant> slow slow" in stdout.read_text(), 20, "part of the answer printed")
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate("and now?\n", timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert proc.returncode == 0, err
    sent = [m["content"] for m in fake_server.requests()[1]["body"]["messages"]]
    assert sent[0] == "go on" and sent[1].startswith("slow slow") and sent[2] == "and now?" and len(sent) == 3
    [saved] = listed(data, config)
    shown = llmctl(data, config, "history", "show", saved["id"]).stdout
    assert "assistant (fake)> slow slow" in shown and "\n[stopped]\n" in shown


def test_chat_warns_once_when_saving_fails_and_saves_the_missed_messages_later(
        fake_server: FakeServerHandle, config: Path, data: Path, tmp_path: Path):
    """Another process holding the store's write lock: the chat goes on, warns once, then catches up."""
    assert llmctl(data, config, "history", "list").returncode == 0  # creates the store
    stderr = tmp_path / "stderr.txt"
    lock = sqlite3.connect(data / "history.sqlite3", isolation_level=None)
    try:
        lock.execute("BEGIN IMMEDIATE")
        with stderr.open("w") as sink:
            proc = subprocess.Popen(_command(config, "chat", "-m", "fake"), stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, stderr=sink, text=True, env=_env(data))
            try:
                proc.stdin.write("saved later\n")
                proc.stdin.flush()
                wait_until(lambda: "warning:" in stderr.read_text(), 30, "the warning")
                lock.execute("ROLLBACK")
                out, _ = proc.communicate("and this one\n", timeout=60)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
    finally:
        lock.close()
    assert proc.returncode == 0
    assert out.count("Hello from the fake server.") == 2
    warnings = stderr.read_text().strip().splitlines()
    assert len(warnings) == 1 and "could not be saved" in warnings[0] and "database is locked" in warnings[0]
    [saved] = listed(data, config)
    assert saved["title"] == "saved later" and saved["messages"] == 4
    shown = llmctl(data, config, "history", "show", saved["id"])
    assert shown.returncode == 0 and "you> saved later" in shown.stdout, shown.stderr


# ----- list, show, export, import, delete -----
def test_history_list_on_an_empty_store(config: Path, data: Path):
    assert llmctl(data, config, "history", "list").stdout == "No saved conversations yet.\n"
    assert listed(data, config) == []
    assert llmctl(data, config, "history", "list", "--search", "x").stdout == "No saved conversation matches 'x'.\n"


def test_history_list_search_finds_by_message_word_and_by_title(fake_server: FakeServerHandle, config: Path,
                                                                 data: Path, tmp_path: Path):
    fake_server.script({"text": "Pelicans are large water birds."}, {"text": "It is sunny."})
    llmctl(data, config, "chat", "-m", "fake", stdin="Tell me about pelicans\n/reset\nWeather today?\n")
    file = tmp_path / "titled.json"
    file.write_text(exported("f" * 32, [text_message("u1", None, "user", "hello")], title="Travel plans"))
    assert llmctl(data, config, "history", "import", str(file)).returncode == 0

    [by_word] = listed(data, config, "--search", "birds")
    assert by_word["title"] == "Tell me about pelicans" and "[birds]" in by_word["snippet"]
    [by_title] = listed(data, config, "--search", "travel")
    assert by_title["id"] == "f" * 32 and by_title["snippet"] is None
    plain = llmctl(data, config, "history", "list", "--search", "birds").stdout.splitlines()
    assert len(plain) == 1 and plain[0].endswith("Tell me about pelicans  ·  Pelicans are large water [birds].")
    assert [c["title"] for c in listed(data, config, "--limit", "1")] == ["Weather today?"]
    assert len(listed(data, config)) == 3


def test_history_list_json_fields(fake_server: FakeServerHandle, config: Path, data: Path):
    llmctl(data, config, "chat", "-m", "fake", stdin="hello\n")
    [saved] = listed(data, config)
    assert set(saved) == {"id", "title", "kind", "messages", "created", "updated"}
    assert len(saved["id"]) == 32 and saved["created"] <= saved["updated"]
    assert saved["updated"][:4].isdigit() and saved["updated"][10] == "T"  # ISO 8601


def test_history_show_prints_the_active_branch(config: Path, data: Path, tmp_path: Path):
    file = tmp_path / "tools.json"
    file.write_text(exported("a" * 32, TOOL_CHAT, head="a3"))
    llmctl(data, config, "history", "import", str(file))
    out = llmctl(data, config, "history", "show", "aaaa")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "Tool chat"
    assert lines[1].startswith("a" * 32 + "  ·  tools  ·  started ")
    assert lines[1].endswith("6 messages (+1 on other branches; export --format json keeps them)")
    body = "\n".join(lines[2:])
    assert ('assistant (fake)> Let me compute.\n[call calculator({"expression": "7*6"})] -> 42\nIt is 42.'
            in body)
    assert "you> Count to a million\n\nassistant (fake)> 1, 2, 3\n[stopped]" in body
    assert body.endswith("you> Are you there?\n\nassistant> [failed: the server went away]")
    assert "older answer" not in body


def test_history_export_markdown_and_json(fake_server: FakeServerHandle, config: Path, data: Path, tmp_path: Path):
    fake_server.script({"text": "Paris."})
    llmctl(data, config, "chat", "-m", "fake", stdin="Capital of France?\n")
    [saved] = listed(data, config)
    md = llmctl(data, config, "history", "export", saved["id"][:8], "--format", "md")
    assert md.returncode == 0 and md.stdout.startswith("# Capital of France?\n")
    assert "## You\n\nCapital of France?" in md.stdout and "## Assistant · fake\n\nParis." in md.stdout

    target = tmp_path / "out" / "chat.json"
    target.parent.mkdir()
    out = llmctl(data, config, "history", "export", saved["id"][:8], "--format", "json", "-o", str(target))
    assert out.stdout == f'Exported "Capital of France?" to {target} (JSON, the whole tree).\n'
    to_stdout = subprocess.run(_command(config, "history", "export", saved["id"], "--format", "json"),
                               capture_output=True, timeout=60, env=_env(data)).stdout
    assert to_stdout == target.read_bytes()
    assert json.loads(to_stdout)["conversation"]["id"] == saved["id"]

    md_file = tmp_path / "chat.md"
    llmctl(data, config, "history", "export", saved["id"], "-o", str(md_file))
    assert md_file.read_text() == md.stdout


def test_history_export_import_export_gives_the_same_bytes(fake_server: FakeServerHandle, config: Path,
                                                           data: Path, tmp_path: Path):
    fake_server.script({"text": "Paris."}, {"text": "Yes.", "reasoning": "The Seine."})
    llmctl(data, config, "chat", "-m", "fake", "--seed", "7", stdin="Capital of France?\nOn a river?\n")
    [saved] = listed(data, config)
    first, second = tmp_path / "first.json", tmp_path / "second.json"
    llmctl(data, config, "history", "export", saved["id"], "--format", "json", "-o", str(first))

    fresh = tmp_path / "fresh"
    out = llmctl(fresh, config, "history", "import", str(first))
    assert out.stdout == f'Imported "Capital of France?" (4 messages) as {saved["id"]}\n'
    llmctl(fresh, config, "history", "export", saved["id"], "--format", "json", "-o", str(second))
    assert second.read_bytes() == first.read_bytes()


def test_history_import_of_a_conversation_already_there_makes_a_copy(config: Path, data: Path, tmp_path: Path):
    file = tmp_path / "tools.json"
    file.write_text(exported("a" * 32, TOOL_CHAT))
    assert llmctl(data, config, "history", "import", str(file)).returncode == 0
    again = llmctl(data, config, "history", "import", str(file))
    assert again.returncode == 0, again.stderr
    copy_id = again.stdout.split(" as ")[1].split()[0]
    assert copy_id != "a" * 32 and len(copy_id) == 32
    assert again.stdout.endswith(f"as {copy_id} (a copy: aaaaaaaa is already in the history)\n")
    assert sorted(c["id"] for c in listed(data, config)) == sorted(["a" * 32, copy_id])
    original, copy = (json.loads(llmctl(data, config, "history", "export", i, "--format", "json").stdout)
                      for i in ("a" * 32, copy_id))
    assert copy["conversation"]["messages"] == original["conversation"]["messages"]


def test_history_delete_removes_it_for_good(fake_server: FakeServerHandle, config: Path, data: Path):
    llmctl(data, config, "chat", "-m", "fake", stdin="forget me\n/reset\nkeep me\n")
    doomed = next(c for c in listed(data, config) if c["title"] == "forget me")
    out = llmctl(data, config, "history", "delete", doomed["id"][:8])
    assert out.returncode == 0 and out.stdout == f'Deleted "forget me" ({doomed["id"][:8]}) for good.\n'
    assert [c["title"] for c in listed(data, config)] == ["keep me"]
    assert_one_line_error(llmctl(data, config, "history", "show", doomed["id"]), "no conversation")


# ----- errors: one line, exit 1, nothing touched -----
@pytest.mark.parametrize("args", [
    pytest.param(("history", "show", "nope"), id="show"),
    pytest.param(("history", "export", "nope", "--format", "json"), id="export"),
    pytest.param(("history", "delete", "nope"), id="delete"),
    pytest.param(("chat", "-m", "fake", "--resume", "nope"), id="chat-resume"),
])
def test_unknown_conversation_id_is_a_one_line_error(fake_server: FakeServerHandle, config: Path, data: Path,
                                                     args: tuple[str, ...]):
    assert_one_line_error(llmctl(data, config, *args, stdin="never read\n"), "no conversation 'nope' in the history")
    assert fake_server.requests() == []


def test_damaged_history_file_is_an_error_and_left_as_it_is(fake_server: FakeServerHandle, config: Path, data: Path,
                                                            tmp_path: Path):
    data.mkdir()
    garbage = bytes(range(256)) * 16
    (data / "history.sqlite3").write_bytes(garbage)
    file = tmp_path / "c.json"
    file.write_text(exported("a" * 32, TOOL_CHAT))
    for args in [("history", "list"), ("history", "list", "--json"), ("history", "show", "abc"),
                 ("history", "export", "abc"), ("history", "import", str(file)), ("history", "delete", "abc"),
                 ("chat", "-m", "fake", "--resume", "abc")]:
        assert_one_line_error(llmctl(data, config, *args), "is damaged")
    assert fake_server.requests() == []  # --resume failed before asking the model anything

    chat = llmctl(data, config, "chat", "-m", "fake", stdin="still here?\n/reset\nand now?\n")
    assert chat.returncode == 0 and chat.stdout.count("Hello from the fake server.") == 2, chat.stderr
    assert "(history cleared)" in chat.stdout
    assert chat.stderr.startswith("warning: this chat will not be saved: ") and "is damaged" in chat.stderr
    assert len(chat.stderr.strip().splitlines()) == 1 and "Saving as" not in chat.stdout
    assert (data / "history.sqlite3").read_bytes() == garbage


@pytest.mark.parametrize("content, expected", [
    pytest.param(b"not json at all", "not JSON", id="not-json"),
    pytest.param(b'{"format": "something else"}', '"format": "llm-workbench-conversation"', id="other-format"),
    pytest.param(json.dumps({"format": "llm-workbench-conversation", "version": 1,
                             "conversation": {"id": "x", "title": 5, "messages": []}}).encode(),
                 "conversation.title", id="wrong-shape"),
    pytest.param(exported("b" * 32, [text_message("m1", "gone", "user", "hi")]).encode(), "'gone'",
                 id="missing-parent"),
    pytest.param(b"\xff\xfe\x00", "not UTF-8", id="binary"),
])
def test_import_of_a_bad_file_is_a_one_line_error(config: Path, data: Path, tmp_path: Path, content: bytes,
                                                  expected: str):
    file = tmp_path / "bad.json"
    file.write_bytes(content)
    assert_one_line_error(llmctl(data, config, "history", "import", str(file)), expected)
    assert listed(data, config) == []


def test_import_of_a_missing_file_is_a_one_line_error(config: Path, data: Path, tmp_path: Path):
    assert_one_line_error(llmctl(data, config, "history", "import", str(tmp_path / "missing.json")),
                          "No such file or directory")


def test_history_needs_no_model_config(data: Path, tmp_path: Path):
    out = llmctl(data, tmp_path / "no-such-config.yaml", "history", "list")
    assert out.returncode == 0 and out.stdout == "No saved conversations yet.\n", out.stderr


def test_chat_saves_a_failed_answer_and_leaves_it_out_of_the_next_request(fake_server: FakeServerHandle,
                                                                          config: Path, data: Path):
    fake_server.script({"status": 500, "body": {"error": {"message": "out of memory"}}}, {"text": "Fine now."})
    out = llmctl(data, config, "chat", "-m", "fake", stdin="first try\nsecond try\n")
    assert out.returncode == 0 and "Out of memory (HTTP 500" in out.stderr and "Fine now." in out.stdout
    assert [m["content"] for m in fake_server.requests()[-1]["body"]["messages"]] == ["second try"]
    [saved] = listed(data, config)
    shown = llmctl(data, config, "history", "show", saved["id"]).stdout
    assert "you> first try\n\nassistant (fake)> [failed: " in shown and "Out of memory (HTTP 500" in shown
    assert shown.endswith("you> second try\n\nassistant (fake)> Fine now.\n")


def test_chat_model_command_switches_the_rest_of_the_chat(fake_server: FakeServerHandle, tmp_path: Path,
                                                          data: Path):
    """`/model ID` in llmctl chat: later turns go to the other model, with the chat so far as history."""
    config = tmp_path / "two.yaml"
    config.write_text("models:\n" + "".join(
        f"  {m}:\n    backend: openai\n    server_url: {fake_server.url}/v1\n    model_name: {m}-model\n"
        f"    display_name: \"{m.title()}\"\n" for m in ("plain", "pirate")))
    fake_server.script({"text": "Hello."}, {"text": "Arr."})
    out = llmctl(data, config, "chat", "-m", "plain", stdin="Hi\n/model nope\n/model pirate\nAnd you?\n")
    assert out.returncode == 0, out.stderr
    assert "(now chatting with Pirate: ready in" in out.stdout and "Model 'nope' not found" in out.stderr
    first, second = (r["body"] for r in fake_server.requests())
    assert (first["model"], second["model"]) == ("plain-model", "pirate-model")
    assert [m["content"] for m in second["messages"]] == ["Hi", "Hello.", "And you?"]


# ----- hardening (#19) -----
def conversations_in(data: Path) -> int:
    with sqlite3.connect(data / "history.sqlite3") as db:
        [(count,)] = db.execute("SELECT count(*) FROM conversations").fetchall()
    db.close()
    return count


@pytest.mark.parametrize("make, names", [p for p in MALFORMED if p.id in CLI_MALFORMED])
def test_import_of_a_malformed_document_is_a_one_line_error(config: Path, data: Path, tmp_path: Path, make, names):
    """Regression (#19 item 10): deep nesting ended in a RecursionError traceback, "head": [] in a TypeError;
    times out of range (item 5) were let in."""
    file = tmp_path / "bad.json"
    file.write_text(make(), encoding="utf-8")
    assert_one_line_error(llmctl(data, config, "history", "import", str(file)), names)
    assert conversations_in(data) == 0


def test_history_commands_show_a_stored_time_out_of_range_as_unknown(config: Path, data: Path, tmp_path: Path):
    """Regression (#19 item 5): an older import let times in milliseconds or Infinity into the store; then
    history list, show and export raised ValueError. The bad values are written here with sqlite3."""
    file = tmp_path / "tools.json"
    file.write_text(exported("a" * 32, TOOL_CHAT))
    assert llmctl(data, config, "history", "import", str(file)).returncode == 0
    with sqlite3.connect(data / "history.sqlite3") as db:
        db.execute("UPDATE conversations SET created = ?, updated = ?", (1.7e15, float("inf")))
    db.close()
    plain = llmctl(data, config, "history", "list")
    assert plain.returncode == 0 and plain.stdout.startswith("aaaaaaaa  unknown time  "), plain
    [entry] = listed(data, config)
    assert (entry["created"], entry["updated"]) == (None, None)
    shown = llmctl(data, config, "history", "show", "a" * 32)
    assert shown.returncode == 0 and "started unknown time" in shown.stdout, shown.stderr
    markdown = llmctl(data, config, "history", "export", "a" * 32)
    assert markdown.returncode == 0 and "started at an unknown time;" in markdown.stdout, markdown.stderr
    assert llmctl(data, config, "history", "export", "a" * 32, "--format", "json").returncode == 0


def test_history_a_whole_id_wins_over_a_longer_id_it_begins(config: Path, data: Path, tmp_path: Path):
    """Regression (#19 item 9): after importing chats "abc" and "abcdef", "abc" could not be shown,
    exported or deleted ("the prefix matches several")."""
    for cid, title in (("abc", "Short id"), ("abcdef", "Long id")):
        file = tmp_path / f"{cid}.json"
        file.write_text(exported(cid, [text_message("u1", None, "user", title)], title=title))
        assert llmctl(data, config, "history", "import", str(file)).returncode == 0
    shown = llmctl(data, config, "history", "show", "abc")
    assert shown.returncode == 0 and shown.stdout.startswith("Short id\n"), shown.stderr
    markdown = llmctl(data, config, "history", "export", "abc")
    assert markdown.returncode == 0 and markdown.stdout.startswith("# Short id\n"), markdown.stderr
    deleted = llmctl(data, config, "history", "delete", "abc")
    assert deleted.returncode == 0 and deleted.stdout.startswith('Deleted "Short id"'), deleted.stderr
    assert [c["title"] for c in listed(data, config)] == ["Long id"]


def test_history_search_finds_words_inside_cjk_sentences(config: Path, data: Path, tmp_path: Path):
    """Regression (#19 item 11): 世界 inside 你好世界，今天天气很好 was not found; a search of only
    punctuation listed every chat."""
    for cid, text in (("c" * 32, "你好世界，今天天气很好"), ("d" * 32, "今日は東京へ行きます。")):
        file = tmp_path / f"{cid}.json"
        file.write_text(exported(cid, [text_message("u1", None, "user", text)], title=text[:4]))
        assert llmctl(data, config, "history", "import", str(file)).returncode == 0
    [found] = listed(data, config, "--search", "世界")
    assert found["id"] == "c" * 32 and found["snippet"] == "你好[世界]，今天天气很好"
    assert [c["id"] for c in listed(data, config, "--search", "東京")] == ["d" * 32]
    assert listed(data, config, "--search", "？！") == []
    out = llmctl(data, config, "history", "list", "--search", "？！")
    assert out.returncode == 0 and out.stdout.startswith("Nothing to search for in '？！'"), out
