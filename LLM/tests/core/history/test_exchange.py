"""Export and import: JSON round trips byte for byte, Markdown shows the active branch, bad files name the bad key."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from LLM.core.chat.conversation import Conversation, Message, Notice, TextPart, ToolCard
from LLM.core.chat.metrics import Metrics
from LLM.core.errors import ImportFormatError
from LLM.core.history import (
    FORMAT,
    MAX_IMPORT_BYTES,
    UNKNOWN_TIME,
    HistoryStore,
    from_json,
    from_json_file,
    local_datetime,
    local_time_text,
    to_json,
    to_markdown,
)

BACKTICKS_IN_OUTPUT = "a result with ``````six backticks`````` inside"


def rich() -> Conversation:
    """Everything an export has to carry: branches, tool cards in each state, notices, metrics, settings."""
    conversation = Conversation(kind="tools")
    conversation.settings.system_prompt = "You are terse.\n\nVery terse."
    conversation.settings.temperature = 0.25
    conversation.settings.stop = ["</s>"]
    conversation.always_allowed = {"calculator"}
    conversation.add_user("What is 2+3? Also read ünïcode.txt")
    answer = conversation.add_assistant("qwen")
    answer.reasoning = "The user wants arithmetic."
    answer.parts = [
        TextPart("Let me check."),
        ToolCard(1, "calculator", {"expression": "2+3"}, "native", "call-1", True, BACKTICKS_IN_OUTPUT, None, 1.5),
        ToolCard(1, "read_file", {"path": "ünïcode.txt"}, "fallback", None, False, "", "no such file", 0.5),
        Notice("loop_guard", "the same call twice in a row"),
        ToolCard(2, "web_fetch", {"url": "https://example.org"}, "native", "call-3"),
        TextPart("It is 5."),
    ]
    answer.status = "done"
    answer.metrics = Metrics(212.5, 31.25, 40, 128, 4321.0, "stop", 130)
    answer.adapter, answer.backend, answer.params = "lora-a", "llama.cpp", {"temperature": 0.25, "top_k": 40}
    conversation.add_user("And 3+4?")
    first = conversation.add_assistant("qwen")
    first.append_text("OLD ANSWER 7")
    first.status = "failed"
    first.error = "HTTP 500: boom"
    second = conversation.regenerate("llama")
    second.append_text("It is 7.")
    second.status = "stopped"
    second.metrics = Metrics(finish_reason="cancelled", chunks=3)
    return conversation


def test_exchange_json_round_trips_byte_for_byte():
    text = to_json(rich())
    assert to_json(from_json(text)) == text


def test_exchange_json_envelope_names_the_format():
    data = json.loads(to_json(rich()))
    assert (data["format"], data["version"]) == (FORMAT, 1)
    assert len(data["conversation"]["messages"]) == 5  # every branch, not only the active path


def test_exchange_import_stores_what_was_exported(tmp_path: Path):
    text = to_json(rich())
    with HistoryStore(tmp_path / "history.sqlite3") as store:
        imported = from_json(text)
        store.save_all(imported)
        assert to_json(store.load(imported.id)) == text


def test_exchange_markdown_shows_the_active_branch_only():
    markdown = to_markdown(rich())
    assert markdown.startswith("# What is 2+3? Also read ünïcode.txt\n")
    assert "It is 7." in markdown and "OLD ANSWER" not in markdown and "HTTP 500" not in markdown
    assert "4 messages on this branch" in markdown
    assert "> You are terse.\n>\n> Very terse." in markdown
    assert [line for line in markdown.splitlines() if line.startswith("## ")] == [
        "## You", "## Assistant · qwen + lora-a", "## You", "## Assistant · llama"]
    assert "*stopped*" in markdown


def details(markdown: str) -> dict[str, str]:
    """Summary -> body of each <details> block."""
    return dict(re.findall(r"<details><summary>(.*?)</summary>\n(.*?)\n</details>", markdown, re.S))


def test_exchange_markdown_folds_reasoning_and_tool_calls():
    blocks = details(to_markdown(rich()))
    assert list(blocks) == ["Reasoning", "Tool call: calculator · ok · 1.5 ms",
                            "Tool call: read_file · error · 0.5 ms", "Tool call: web_fetch · running"]
    assert "The user wants arithmetic." in blocks["Reasoning"]
    assert '"expression": "2+3"' in blocks["Tool call: calculator · ok · 1.5 ms"]
    assert "Error: no such file" in blocks["Tool call: read_file · error · 0.5 ms"]
    assert "did not finish" in blocks["Tool call: web_fetch · running"]


def test_exchange_markdown_fence_outlasts_backticks_in_a_result():
    markdown = to_markdown(rich())
    fence = "`" * 7  # one more than the longest run inside
    assert f"{fence}\n{BACKTICKS_IN_OUTPUT}\n{fence}\n" in markdown


def test_exchange_markdown_escapes_html_in_summaries():
    conversation = Conversation()
    answer = conversation.add_assistant("m")
    answer.parts = [ToolCard(1, "<script>", {}, "native", None, True, "x")]
    answer.status = "done"
    assert "<summary>Tool call: &lt;script&gt; · ok</summary>" in to_markdown(conversation)


# ----- bad files -----
def exported() -> dict[str, Any]:
    return json.loads(to_json(rich()))


def changed(change: Callable[[dict[str, Any]], Any]) -> str:
    data = exported()
    change(data)
    return json.dumps(data)


def messages(data: dict[str, Any]) -> list[dict[str, Any]]:
    return data["conversation"]["messages"]


def make_cycle(data: dict[str, Any]) -> None:
    first, second = messages(data)[0], messages(data)[1]
    first["parent_id"] = second["id"]  # second's parent is first already


BAD = [
    pytest.param("{not json", "not JSON", id="not-json"),
    pytest.param("[]", '"format": "llm-workbench-conversation"', id="not-an-object"),
    pytest.param(changed(lambda d: d.update(format="chatgpt-export")), '"format"', id="wrong-format"),
    pytest.param(changed(lambda d: d.pop("format")), '"format"', id="no-format"),
    pytest.param(changed(lambda d: d.update(version=2)), "newer version", id="newer-version"),
    pytest.param(changed(lambda d: d.update(version="1")), "'version'", id="version-not-a-number"),
    pytest.param(changed(lambda d: d.pop("conversation")), "'conversation'", id="no-conversation"),
    pytest.param(changed(lambda d: d["conversation"].update(messages={})), "conversation.messages",
                 id="messages-not-a-list"),
    pytest.param(changed(lambda d: d["conversation"].pop("id")), "conversation.id", id="no-id"),
    pytest.param(changed(lambda d: d["conversation"].update(kind="notes")), "conversation.kind", id="kind"),
    pytest.param(changed(lambda d: d["conversation"]["settings"].update(temperature="hot")),
                 "conversation.settings.temperature", id="settings-value"),
    pytest.param(changed(lambda d: messages(d)[2].update(role="robot")), "conversation.messages[2].role", id="role"),
    pytest.param(changed(lambda d: messages(d)[1].update(status="thinking")), "conversation.messages[1].status",
                 id="status"),
    pytest.param(changed(lambda d: messages(d).__setitem__(3, "text")), "conversation.messages[3] must be an object",
                 id="message-not-an-object"),
    pytest.param(changed(lambda d: messages(d)[1]["parts"][0].update(type="image")),
                 "conversation.messages[1].parts[0].type", id="unknown-part-type"),
    pytest.param(changed(lambda d: messages(d)[1]["parts"][1].pop("name")), "conversation.messages[1].parts[1].name",
                 id="tool-card-without-name"),
    pytest.param(changed(lambda d: messages(d)[1]["metrics"].update(chunks="many")),
                 "conversation.messages[1].metrics.chunks", id="metrics-value"),
    pytest.param(changed(lambda d: messages(d)[1].update(parent_id="nowhere")), "'nowhere'", id="unknown-parent"),
    pytest.param(changed(make_cycle), "cycle", id="cycle"),
    pytest.param(changed(lambda d: messages(d)[0].update(parent_id=messages(d)[0]["id"])), "cycle", id="own-parent"),
    pytest.param(changed(lambda d: d["conversation"].update(head="nowhere")), "conversation.head", id="unknown-head"),
    pytest.param(changed(lambda d: messages(d)[3].update(id=messages(d)[1]["id"])), "conversation.messages[3].id",
                 id="duplicate-id"),
    pytest.param(changed(lambda d: messages(d)[1].update(parts="text")),
                 "conversation.messages[1].parts must be a list", id="parts-a-string"),
    pytest.param(changed(lambda d: messages(d)[1].update(parts=5)),
                 "conversation.messages[1].parts must be a list", id="parts-a-number"),
    pytest.param(changed(lambda d: d["conversation"].update(always_allowed=5)),
                 "conversation.always_allowed must be a list", id="always-allowed-a-number"),
]


@pytest.mark.parametrize("text, names", BAD)
def test_exchange_import_says_what_is_wrong(text: str, names: str):
    with pytest.raises(ImportFormatError) as caught:
        from_json(text, source="chat.json")
    assert str(caught.value).startswith("chat.json: ")
    assert names in str(caught.value)


def test_exchange_import_changes_nothing_it_was_given():
    data = exported()
    before = copy.deepcopy(data)
    from_json(json.dumps(data))
    assert data == before


def test_exchange_import_takes_a_file_without_optional_keys():
    """Only id, title and messages are required: a hand-written file (or an older export) still imports."""
    text = json.dumps({"format": FORMAT, "version": 1, "conversation": {
        "id": "c1", "title": "Hand made", "head": "b",
        "messages": [{"id": "a", "role": "user", "parts": [{"type": "text", "text": "hi"}]},
                     {"id": "b", "parent_id": "a", "role": "assistant", "parts": [{"type": "text", "text": "hello"}]}],
    }})
    conversation = from_json(text)
    assert [(m.role, m.content, m.status) for m in conversation.messages] == [("user", "hi", "done"),
                                                                              ("assistant", "hello", "done")]
    assert conversation.kind == "chat" and conversation.settings.temperature is None


def test_exchange_markdown_of_an_empty_conversation():
    markdown = to_markdown(Conversation("Nothing yet"))
    assert markdown.startswith("# Nothing yet\n") and "0 messages" in markdown


def test_exchange_markdown_keeps_message_text_verbatim():
    conversation = Conversation()
    conversation.add_user("```python\nprint(1)\n```")
    reply = conversation.add_assistant(None)
    reply.parts = [TextPart("## not a heading of ours\n\n| a | b |")]
    reply.status = "done"
    markdown = to_markdown(conversation)
    assert "```python\nprint(1)\n```" in markdown and "## not a heading of ours\n\n| a | b |" in markdown
    assert "## Assistant\n" in markdown  # no model id: no " · None"


def test_exchange_round_trip_of_a_message_without_parts():
    conversation = Conversation()
    conversation.add(Message("assistant", status="pending"))
    text = to_json(conversation)
    assert to_json(from_json(text)) == text


# ----- malformed documents: one ImportFormatError naming the problem, never another exception -----
def nested(levels: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(levels):
        value = {"a": value}
    return value


def edited(change: Callable[[dict[str, Any]], Any]) -> Callable[[], str]:
    """A valid export with one change, built when the test runs."""
    return lambda: changed(change)


MALFORMED = [  # (the document, words the error must have); ids the CLI test also runs are in CLI_MALFORMED
    pytest.param(lambda: "[" * 100_000 + "]" * 100_000, "nested too deeply", id="deep-nesting"),
    pytest.param(edited(lambda d: messages(d)[1]["parts"][1].update(arguments=nested(150))),
                 "conversation.messages[1].parts[1].arguments", id="deep-nesting-in-arguments"),
    pytest.param(lambda: " " * (MAX_IMPORT_BYTES + 1), "larger than 64 MiB", id="huge"),
    pytest.param(edited(lambda d: d["conversation"].update(head=[])), "conversation.head must be a message id",
                 id="head-a-list"),
    pytest.param(edited(lambda d: d["conversation"].update(head={"id": "x"})), "conversation.head",
                 id="head-an-object"),
    pytest.param(edited(lambda d: messages(d)[1]["parts"][0].update(type=[])), "conversation.messages[1].parts[0].type",
                 id="part-type-a-list"),
    pytest.param(edited(lambda d: messages(d)[1]["parts"].__setitem__(0, "text")),
                 "conversation.messages[1].parts[0].type", id="part-a-string"),
    pytest.param(edited(lambda d: d.update(conversation=[])), "'conversation' must be an object",
                 id="conversation-a-list"),
    pytest.param(edited(lambda d: d.update(version=True)), "'version'", id="version-true"),
    pytest.param(edited(lambda d: d["conversation"].update(settings=[])), "conversation.settings must be an object",
                 id="settings-a-list"),
    pytest.param(edited(lambda d: messages(d)[1].update(metrics=[1])), "conversation.messages[1].metrics",
                 id="metrics-a-list"),
    pytest.param(edited(lambda d: messages(d)[1].update(steps="none")), "conversation.messages[1].steps",
                 id="steps-a-string"),
    pytest.param(edited(lambda d: messages(d)[0].update(id=[])), "conversation.messages[0].id", id="message-id-a-list"),
    pytest.param(edited(lambda d: d["conversation"].pop("messages")), "conversation.messages", id="no-messages"),
    pytest.param(edited(lambda d: d["conversation"].pop("title")), "conversation.title", id="no-title"),
    pytest.param(edited(lambda d: messages(d)[0].pop("role")), "conversation.messages[0].role", id="no-role"),
    pytest.param(edited(lambda d: d["conversation"].update(created=float("inf"))), "conversation.created must be a "
                 "finite number", id="created-infinity"),
    pytest.param(edited(lambda d: d["conversation"].update(created=float("nan"))), "conversation.created",
                 id="created-nan"),
    pytest.param(edited(lambda d: d["conversation"].update(created=1_700_000_000_000)), "milliseconds",
                 id="created-in-milliseconds"),
    pytest.param(edited(lambda d: d["conversation"].update(updated=10 ** 400)), "conversation.updated",
                 id="updated-huge-integer"),
    pytest.param(lambda: changed(lambda d: d["conversation"].update(updated=0.5)).replace(
        '"updated": 0.5', '"updated": 1e400'), "conversation.updated", id="updated-1e400"),  # JSON reads it as inf
    pytest.param(edited(lambda d: d["conversation"].update(updated="yesterday")), "conversation.updated must be a "
                 "number", id="updated-a-string"),
    pytest.param(edited(lambda d: d["conversation"].update(created=-5)), "conversation.created", id="created-negative"),
    pytest.param(edited(lambda d: messages(d)[0].update(created=float("inf"))), "conversation.messages[0].created",
                 id="message-created-infinity"),
]
CLI_MALFORMED = ["deep-nesting", "deep-nesting-in-arguments", "huge", "head-a-list", "part-type-a-list",
                 "created-infinity", "created-in-milliseconds", "no-messages", "settings-a-list"]


@pytest.mark.parametrize("make, names", MALFORMED)
def test_exchange_import_of_a_malformed_document_names_the_problem(make: Callable[[], str], names: str):
    """Regression (#19 items 5 and 10): deep nesting raised RecursionError, "head": [] TypeError, and times
    out of datetime's range (milliseconds, Infinity) were accepted, to break every later listing."""
    with pytest.raises(ImportFormatError) as caught:
        from_json(make(), source="chat.json")
    message = str(caught.value)
    assert message.startswith("chat.json: ") and names in message and "\n" not in message
    assert len(message) < 400  # a deep key path is cut short, not printed whole


def test_exchange_import_file_reads_no_more_than_the_limit(tmp_path: Path):
    """A file over the limit is refused without reading it all; so is one with no size (a device)."""
    big = tmp_path / "big.json"
    with big.open("wb") as f:
        f.truncate(MAX_IMPORT_BYTES + 1)
    with pytest.raises(ImportFormatError, match="larger than 64 MiB"):
        from_json_file(big)
    if Path("/dev/zero").exists():
        with pytest.raises(ImportFormatError, match="larger than 64 MiB"):
            from_json_file(Path("/dev/zero"))


def test_exchange_import_file_round_trips_and_names_an_unreadable_file(tmp_path: Path):
    file = tmp_path / "chat.json"
    file.write_text(to_json(rich()), encoding="utf-8")
    assert to_json(from_json_file(file)) == file.read_text(encoding="utf-8")
    file.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ImportFormatError, match="not UTF-8"):
        from_json_file(file)
    with pytest.raises(ImportFormatError, match="No such file"):
        from_json_file(tmp_path / "missing.json")


def test_exchange_import_of_a_long_chain_of_messages_is_linear():
    """Regression (#19 item 10, a file that hangs the import): a file of many messages, each the reply to the one
    before, is checked in one pass. The ancestor walk per message was quadratic: 20,000 messages took 45 s,
    these 60,000 ran into pytest's limit, and a 64 MiB file took hours."""
    chain = [{"id": f"m{i}", "parent_id": f"m{i - 1}" if i else None, "role": "user", "parts": []}
             for i in range(60_000)]
    text = json.dumps({"format": FORMAT, "version": 1, "conversation": {
        "id": "c", "title": "long", "head": "m59999", "messages": chain}})
    assert len(from_json(text).messages) == 60_000


@pytest.mark.parametrize("created", [1e300, float("inf"), float("nan"), -1e20, 1_700_000_000_000.0],
                         ids=["huge", "infinity", "nan", "negative", "milliseconds"])
def test_exchange_markdown_of_a_conversation_with_a_bad_stored_time(created: float):
    """Regression (#19 item 5): a stored time out of datetime's range made the export raise ValueError."""
    conversation = Conversation("Odd time")
    conversation.created = created
    assert "started at an unknown time;" in to_markdown(conversation)


@pytest.mark.parametrize("value", [1e300, float("inf"), float("-inf"), float("nan"), -1.0, 1_700_000_000_000,
                                   "Infinity", None, True, 10 ** 400],
                         ids=["huge", "infinity", "minus-infinity", "nan", "negative", "milliseconds", "a-string",
                              "none", "a-bool", "huge-integer"])
def test_times_a_value_that_is_not_a_time_reads_unknown(value: Any):
    assert local_datetime(value) is None
    assert local_time_text(value) == UNKNOWN_TIME


def test_times_a_real_time_reads_as_local_time():
    assert local_time_text(1_700_000_000.0) == datetime.fromtimestamp(1_700_000_000.0).strftime("%Y-%m-%d %H:%M")
    assert local_datetime(0) == datetime.fromtimestamp(0)


def test_exchange_never_carries_tool_approvals(tmp_path: Path):
    """Review of #19 item 3: an import took the file's `always_allowed`, so a shared (or crafted) export that
    listed `["filesystem", "write_file"]` ran that MCP tool without asking once the chat went on. "Always
    allow" is this user's consent in this app: exports leave it out and imports ignore it."""
    conversation = rich()
    conversation.always_allowed = {"calculator", '["filesystem", "write_file"]'}
    text = to_json(conversation)
    assert "always_allowed" not in json.loads(text)["conversation"]
    crafted = json.loads(text)
    crafted["conversation"]["always_allowed"] = ['["filesystem", "write_file"]', "calculator"]
    assert from_json(json.dumps(crafted)).always_allowed == set()
