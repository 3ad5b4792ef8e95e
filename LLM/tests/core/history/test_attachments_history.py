"""Attached files in the history: stored once by hash beside the database, referenced from messages, removed when
no message refers to them any more; carried by JSON exports (byte for byte back in) and linked from Markdown.

Real files (a PNG from Pillow, a PDF from fpdf2, a text) in real stores under tmp_path; the database is also read
with plain sqlite3 to see what the store wrote.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from LLM.core.attachments import Attachment, AttachmentStore, MemoryBlobs
from LLM.core.chat.conversation import Conversation, Message
from LLM.core.chat.parts import FilePart, TextPart
from LLM.core.errors import HistoryError, ImportFormatError
from LLM.core.history import HistoryStore, exchange, from_json, from_json_file, to_json, to_markdown
from LLM.core.history.schema import MIGRATIONS, SCHEMA_VERSION
from LLM.core.history.store import ORPHAN_AGE_S
from LLM.tests.fakes.handle import REPO_ROOT
from LLM.tests.fakes.sample_files import image_bytes, pdf_bytes, zip_bytes

FILES = {  # name -> bytes, one of each kind
    "photo.png": image_bytes("PNG"),
    "paper.pdf": pdf_bytes(["Page one about tea.", "Page two about oolong."]),
    "notes (draft).txt": "Green, white, oolong, black.\n".encode(),
}


def attachment(name: str) -> Attachment:
    return Attachment.from_bytes(FILES[name], name)


def part(a: Attachment) -> FilePart:
    return FilePart(a.sha256, a.name, a.media.mime, a.size, a.kind)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "history.sqlite3"


@pytest.fixture
def store(path: Path) -> Iterator[HistoryStore]:
    with HistoryStore(path) as opened:
        yield opened


def rows(path: Path, sql: str, params: tuple = ()) -> list[tuple]:
    with sqlite3.connect(path) as db:
        found = db.execute(sql, params).fetchall()
    db.close()
    return found


def send(store: HistoryStore, conversation: Conversation, text: str, *names: str) -> Message:
    """A user message with files, saved the way the session saves it: the bytes first, then the message."""
    attachments = [attachment(name) for name in names]
    for a in attachments:
        store.attachments.put(a)
    message = conversation.add_user(text, [part(a) for a in attachments])
    store.save_message(conversation, message)
    answer = conversation.add_assistant("model-a")
    answer.append_text(f"About {text}.")
    store.save_message(conversation, answer)
    return message


def sha(name: str) -> str:
    return hashlib.sha256(FILES[name]).hexdigest()


def age(store: HistoryStore, digest: str, seconds: float) -> None:
    """Make a stored file look ``seconds`` old."""
    when = time.time() - seconds
    os.utime(store.attachments.path(digest), (when, when))


# ----- saving and loading -----
@pytest.mark.parametrize("names", [
    pytest.param(["photo.png"], id="an-image"),
    pytest.param(["paper.pdf"], id="a-pdf"),
    pytest.param(["notes (draft).txt"], id="a-text"),
    pytest.param(["photo.png", "paper.pdf", "notes (draft).txt", "photo.png"], id="several-and-one-twice"),
])
def test_history_file_parts_round_trip_in_order(store: HistoryStore, path: Path, names: list[str]):
    conversation = Conversation()
    message = send(store, conversation, "Look at these", *names)
    with HistoryStore(path) as fresh:
        loaded = fresh.load(conversation.id).nodes[message.id]
    assert loaded.parts == [TextPart("Look at these"), *(part(attachment(n)) for n in names)]
    [(content, layout)] = rows(path, "SELECT content, layout FROM messages WHERE id = ?", (message.id,))
    assert content == "Look at these"  # the text only: what search finds
    assert [item["type"] for item in json.loads(layout)] == ["text", *["file"] * len(names)]
    assert json.loads(layout)[1] == {"type": "file", **vars(part(attachment(names[0])))}
    assert rows(path, "SELECT position, sha256 FROM message_files WHERE message_id = ? ORDER BY position",
                (message.id,)) == [(i, sha(n)) for i, n in enumerate(names)]
    for name in names:
        assert store.attachments.get(sha(name), name).data == FILES[name]


def test_history_no_bytes_in_the_database(store: HistoryStore, path: Path):
    send(store, Conversation(), "A photo", "photo.png")
    store.close()
    assert FILES["photo.png"][16:200] not in path.read_bytes()  # beyond the PNG header every image shares


def test_history_saving_a_message_again_replaces_its_file_rows(store: HistoryStore, path: Path):
    conversation = Conversation()
    message = send(store, conversation, "Two files", "photo.png", "paper.pdf")
    message.parts = [p for p in message.parts if not isinstance(p, FilePart) or p.name == "paper.pdf"]
    store.save_message(conversation, message)
    assert rows(path, "SELECT sha256 FROM message_files WHERE message_id = ?", (message.id,)) == [(sha("paper.pdf"),)]


def test_history_a_file_is_stored_once_for_two_conversations(store: HistoryStore, path: Path):
    first, second = Conversation(), Conversation()
    send(store, first, "Here", "photo.png")
    send(store, second, "And here", "photo.png")
    assert store.attachments.stored() == {sha("photo.png")}
    assert len([p for p in store.attachments.folder.rglob("*") if p.is_file()]) == 1
    assert rows(path, "SELECT count(*) FROM message_files WHERE sha256 = ?", (sha("photo.png"),)) == [(2,)]


# ----- removing files nothing refers to -----
@pytest.mark.parametrize("purge", [
    pytest.param(lambda store, cid: store.purge(cid), id="purge-one"),
    pytest.param(lambda store, cid: (store.delete(cid), store.purge()), id="delete-then-purge-deleted"),
])
def test_history_purge_removes_a_file_with_the_last_conversation_referring_to_it(
        store: HistoryStore, path: Path, purge: Callable[[HistoryStore, str], Any]):
    shared, alone, other = Conversation(), Conversation(), Conversation()
    send(store, shared, "Photo and paper", "photo.png", "paper.pdf")
    send(store, alone, "The photo again", "photo.png")
    send(store, other, "Notes", "notes (draft).txt")
    purge(store, shared.id)
    assert store.attachments.stored() == {sha("photo.png"), sha("notes (draft).txt")}  # the paper went at once
    purge(store, alone.id)
    assert store.attachments.stored() == {sha("notes (draft).txt")}
    assert rows(path, "SELECT DISTINCT sha256 FROM message_files") == [(sha("notes (draft).txt"),)]


def test_history_delete_keeps_the_files_so_restore_has_them(store: HistoryStore):
    conversation, other = Conversation(), Conversation()
    send(store, conversation, "A photo", "photo.png")
    send(store, other, "Something else")
    age(store, sha("photo.png"), ORPHAN_AGE_S * 2)  # old: an orphan of that age would go
    store.delete(conversation.id)
    store.purge(other.id)  # a purge while it is deleted: its rows still refer to the file
    assert store.attachments.has(sha("photo.png"))
    store.restore(conversation.id)
    [loaded] = store.load(conversation.id).messages[0].files
    assert store.attachments.get(loaded.sha256, loaded.name).data == FILES["photo.png"]


@pytest.mark.parametrize("seconds_old, kept", [
    pytest.param(ORPHAN_AGE_S + 60, False, id="older-than-10-minutes-removed"),
    pytest.param(ORPHAN_AGE_S - 60, True, id="fresh-kept"),
    pytest.param(0, True, id="just-stored-kept"),
])
def test_history_purge_removes_old_orphan_files(store: HistoryStore, seconds_old: float, kept: bool):
    """A crash between storing a file's bytes and saving the message leaves a file no message refers to; a
    young one may be one another process is about to refer to."""
    referenced = Conversation()
    send(store, referenced, "Kept", "photo.png")
    age(store, sha("photo.png"), ORPHAN_AGE_S * 2)
    store.attachments.put(attachment("paper.pdf"))
    age(store, sha("paper.pdf"), seconds_old)
    assert store.purge() == 0
    assert store.attachments.has(sha("paper.pdf")) is kept
    assert store.attachments.has(sha("photo.png"))


# ----- migration -----
def make_v5(path: Path) -> None:
    """A history as version 5 wrote it (no file table), with one conversation of two messages."""
    db = sqlite3.connect(path, isolation_level=None)
    for script in MIGRATIONS[:5]:
        db.executescript(script)
    db.execute("PRAGMA user_version = 5")
    db.execute("INSERT INTO conversations (id, title, created, updated, head) VALUES ('c1', 'Old', 10.0, 20.0, 'm2')")
    for seq, (mid, parent, role, text) in enumerate([("m1", None, "user", "Hello"), ("m2", "m1", "assistant", "Hi")], 1):
        db.execute("INSERT INTO messages (conversation_id, id, parent_id, seq, role, content, layout, status, "
                   "complete, created, updated) VALUES ('c1', ?, ?, ?, ?, ?, ?, 'done', 1, 10.0, 20.0)",
                   (mid, parent, seq, role, text, json.dumps([{"type": "text", "text": text}])))
    db.close()


def test_history_migrates_a_version_5_history(path: Path):
    make_v5(path)
    with HistoryStore(path) as store:
        assert SCHEMA_VERSION == 6 and rows(path, "PRAGMA user_version") == [(6,)]
        assert rows(path, "SELECT count(*) FROM message_files") == [(0,)]  # no files before
        old = store.load("c1")
        assert [m.content for m in old.messages] == ["Hello", "Hi"]
        send(store, old, "Now a photo", "photo.png")
        assert store.load("c1").messages[-2].files == [part(attachment("photo.png"))]
        store.purge("c1")
        assert store.attachments.stored() == set()
    assert rows(path.with_name("history.sqlite3.v5.bak"), "PRAGMA user_version") == [(5,)]


# ----- JSON export and import -----
def with_files(store: HistoryStore) -> Conversation:
    """Files in three messages, one of them on a branch not shown, one file in two messages."""
    conversation = Conversation()
    send(store, conversation, "What is in these?", "photo.png", "paper.pdf")
    first_answer = conversation.messages[-1]
    send(store, conversation, "And these notes?", "notes (draft).txt")
    conversation.head = first_answer.id  # another version of the second question
    send(store, conversation, "Rather this photo", "photo.png")
    return store.load(conversation.id)


def test_history_json_export_import_export_is_identical(store: HistoryStore, tmp_path: Path):
    conversation = with_files(store)
    text = to_json(conversation, store.attachments)
    data = json.loads(text)
    assert list(data["attachments"]) == sorted(sha(n) for n in FILES)
    assert {entry["name"] for entry in data["attachments"].values()} == set(FILES)
    assert all(base64.b64decode(data["attachments"][sha(n)]["data"]) == FILES[n] for n in FILES)
    assert "data" not in json.dumps(data["conversation"])  # the messages refer to the files by hash only

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    with HistoryStore(elsewhere / "history.sqlite3") as fresh:
        imported = from_json(text, files=fresh.attachments)
        fresh.save_all(imported)
        again = to_json(fresh.load(imported.id), fresh.attachments)
        assert again == text
        for name in FILES:
            assert fresh.attachments.path(sha(name)).read_bytes() == FILES[name]


def test_history_json_without_files_is_as_before(store: HistoryStore):
    conversation = Conversation()
    send(store, conversation, "No files")
    data = json.loads(to_json(conversation))  # no store needed
    assert data["version"] == 1 and "attachments" not in data


def test_history_json_import_of_a_20_mb_image(tmp_path: Path):
    """An export is base64 (a third larger): a 20 MB photo still fits the import limit."""
    from PIL import Image

    side = 2600  # noise does not compress: about 20 MB of PNG
    image = Image.frombytes("RGB", (side, side), os.urandom(side * side * 3))
    out = io.BytesIO()
    image.save(out, "PNG", compress_level=0)
    big = Attachment.from_bytes(out.getvalue(), "big.png")
    assert big.size > 20_000_000
    blobs = MemoryBlobs([big])
    conversation = Conversation()
    conversation.add_user("A big one", [part(big)])
    file = tmp_path / "big.json"
    file.write_text(to_json(conversation, blobs), encoding="utf-8")
    target = AttachmentStore(tmp_path / "files")
    from_json_file(file, target)
    assert target.path(big.sha256).read_bytes() == big.data


def valid_export() -> dict[str, Any]:
    blobs = MemoryBlobs([attachment(n) for n in FILES])
    conversation = Conversation()
    conversation.add_user("Two files", [part(attachment("photo.png")), part(attachment("paper.pdf"))])
    return json.loads(to_json(conversation, blobs))


def photo_entry(data: dict[str, Any]) -> dict[str, Any]:
    return data["attachments"][sha("photo.png")]


ARCHIVE = zip_bytes()  # once: a ZIP holds the time it was made


def zip_instead_of_the_photo(data: dict[str, Any]) -> None:
    archive, digest = ARCHIVE, hashlib.sha256(ARCHIVE).hexdigest()
    data["attachments"][digest] = {"name": "a.zip", "mime": "application/zip",
                                   "data": base64.b64encode(archive).decode()}
    data["conversation"]["messages"][0]["parts"][1].update(sha256=digest, size=len(archive))


BAD_IMPORTS = [  # (change to a valid export, words the error names)
    pytest.param(lambda d: photo_entry(d).update(data=base64.b64encode(FILES["paper.pdf"]).decode()),
                 f"attachments.{sha('photo.png')}.data does not match its key", id="wrong-hash"),
    pytest.param(lambda d: d["attachments"].pop(sha("paper.pdf")),
                 f"conversation.messages[0].parts[2] refers to attachments.{sha('paper.pdf')}, which is not",
                 id="missing-file"),
    pytest.param(lambda d: photo_entry(d).update(data="not base64!"), f"attachments.{sha('photo.png')}.data is not "
                 "base64", id="bad-base64"),
    pytest.param(lambda d: photo_entry(d).update(data="ünïcode"), f"attachments.{sha('photo.png')}.data is not "
                 "base64", id="non-ascii-base64"),
    pytest.param(lambda d: photo_entry(d).update(data=12), f"attachments.{sha('photo.png')}.data must be a string",
                 id="data-a-number"),
    pytest.param(lambda d: photo_entry(d).pop("name"), f"attachments.{sha('photo.png')}.name must be a string",
                 id="no-name"),
    pytest.param(lambda d: d["attachments"].__setitem__(sha("photo.png"), []),
                 f"attachments.{sha('photo.png')} must be an object", id="entry-a-list"),
    pytest.param(lambda d: d.update(attachments=[]), "'attachments' must be an object", id="attachments-a-list"),
    pytest.param(lambda d: d.pop("attachments"), f"refers to attachments.{sha('photo.png')}", id="no-attachments"),
    pytest.param(lambda d: d["conversation"]["messages"][0]["parts"][1].update(size=1),
                 "conversation.messages[0].parts[1].size is 1", id="size-wrong"),
    pytest.param(lambda d: d["conversation"]["messages"][0]["parts"][1].update(sha256="../../etc/passwd"),
                 "conversation.messages[0].parts[1].sha256 must be a sha256", id="sha-a-path"),
    pytest.param(lambda d: d["conversation"]["messages"][0]["parts"][1].update(size="big"),
                 "conversation.messages[0].parts[1].size", id="size-a-string"),
    pytest.param(lambda d: zip_instead_of_the_photo(d), f"attachments.{hashlib.sha256(ARCHIVE).hexdigest()}: "
                 "a.zip: a ZIP archive", id="not-an-attachment"),
]


@pytest.mark.parametrize("change, names", BAD_IMPORTS)
def test_history_json_import_of_bad_files_names_the_key(tmp_path: Path, change: Callable[[dict[str, Any]], Any],
                                                        names: str):
    data = valid_export()
    change(data)
    target = AttachmentStore(tmp_path / "files")
    with pytest.raises(ImportFormatError) as caught:
        from_json(json.dumps(data), source="chat.json", files=target)
    message = str(caught.value)
    assert message.startswith("chat.json: ") and names in message and "\n" not in message
    assert target.stored() == set()  # checked before anything is stored


def test_history_json_export_without_the_files_bytes_says_which(store: HistoryStore):
    conversation = with_files(store)
    with pytest.raises(HistoryError, match="photo.png.*no attachment store was given"):
        to_json(conversation)
    store.attachments.remove(sha("paper.pdf"))
    with pytest.raises(HistoryError, match="paper.pdf: its stored copy .* is missing"):
        to_json(conversation, store.attachments)


def test_history_json_export_that_could_not_be_imported_back_is_refused(store: HistoryStore,
                                                                       monkeypatch: pytest.MonkeyPatch):
    conversation = with_files(store)
    text = to_json(conversation, store.attachments)
    monkeypatch.setattr(exchange, "MAX_IMPORT_BYTES", len(text.encode()))  # just fits: exported and imported
    assert from_json(to_json(conversation, store.attachments), files=MemoryBlobs()).id == conversation.id
    monkeypatch.setattr(exchange, "MAX_IMPORT_BYTES", len(text.encode()) - 1)
    with pytest.raises(HistoryError, match="more than the .* an import takes, so it could not be imported back"):
        to_json(conversation, store.attachments)


def test_history_json_import_of_files_without_a_store_says_so():
    with pytest.raises(HistoryError, match="needs a store for the files it carries \\(photo.png, paper.pdf\\)"):
        from_json(json.dumps(valid_export()), source="chat.json")


# ----- Markdown -----
def test_history_markdown_to_a_file_copies_the_files_beside_it(store: HistoryStore, tmp_path: Path):
    conversation = Conversation()
    send(store, conversation, "Three files", "photo.png", "paper.pdf", "notes (draft).txt")
    target = tmp_path / "out" / "tea chat.md"
    target.parent.mkdir()
    markdown = to_markdown(conversation, store.attachments, target)
    folder = tmp_path / "out" / "tea chat_files"
    copies = {p.name: p.read_bytes() for p in folder.iterdir()}
    assert copies == {f"{sha(n)[:12]}-{n}": FILES[n] for n in FILES}
    assert f"![photo.png](tea%20chat_files/{sha('photo.png')[:12]}-photo.png)" in markdown.splitlines()
    assert f"[paper.pdf](tea%20chat_files/{sha('paper.pdf')[:12]}-paper.pdf) (PDF, " in markdown
    assert f"[notes (draft).txt](tea%20chat_files/{sha('notes (draft).txt')[:12]}-notes%20%28draft%29.txt) " \
           f"(text, 29 B)" in markdown


def test_history_markdown_printed_links_the_stored_files(store: HistoryStore):
    conversation = Conversation()
    send(store, conversation, "A photo and a paper", "photo.png", "paper.pdf")
    store.attachments.remove(sha("paper.pdf"))
    markdown = to_markdown(conversation, store.attachments)
    stored = store.attachments.path(sha("photo.png")).resolve()
    assert f"![photo.png]({stored.as_posix()})" in markdown
    assert "*paper.pdf* (PDF, " in markdown and "its bytes are not here" in markdown
    assert not list(store.path.parent.glob("*_files"))


def test_history_markdown_copy_names_cannot_leave_the_folder(tmp_path: Path):
    hostile = Attachment.from_bytes(b"plain text\n", "x.txt")
    blobs = MemoryBlobs([hostile])
    conversation = Conversation()
    conversation.add_user("Sneaky", [FilePart(hostile.sha256, "../../escape*.txt", "text/plain", 11, "text")])
    to_markdown(conversation, blobs, tmp_path / "chat.md")
    [copy] = (tmp_path / "chat_files").iterdir()
    assert copy.name == f"{hostile.sha256[:12]}-.._.._escape_.txt" and copy.read_bytes() == b"plain text\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chat_files"]


# ----- llmctl -----
def test_history_llmctl_export_import_export_with_files(tmp_path: Path):
    data, fresh = tmp_path / "data", tmp_path / "fresh"
    data.mkdir()
    with HistoryStore(data / "history.sqlite3") as store:
        conversation = with_files(store)
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "XDG_CONFIG_HOME": str(tmp_path / "xdg")}

    def llmctl(where: Path, *args: str) -> subprocess.CompletedProcess[str]:
        out = subprocess.run([sys.executable, "-m", "LLM", "--config", str(tmp_path / "none.yaml"), "history", *args],
                             capture_output=True, text=True, timeout=60,
                             env={**env, "LLM_DATA_DIR": str(where), "LLM_STATE_DIR": str(where / "state")})
        assert out.returncode == 0, out.stderr
        return out

    first, second, markdown = tmp_path / "first.json", tmp_path / "second.json", tmp_path / "chat.md"
    llmctl(data, "export", conversation.id, "--format", "json", "-o", str(first))
    llmctl(fresh, "import", str(first))
    llmctl(fresh, "export", conversation.id, "--format", "json", "-o", str(second))
    assert second.read_bytes() == first.read_bytes()
    assert AttachmentStore(fresh / "attachments").stored() == {sha(n) for n in FILES}
    llmctl(fresh, "export", conversation.id, "-o", str(markdown))
    assert {p.name for p in (tmp_path / "chat_files").iterdir()} == {f"{sha('photo.png')[:12]}-photo.png",
                                                                      f"{sha('paper.pdf')[:12]}-paper.pdf"}
    llmctl(fresh, "delete", conversation.id)
    assert AttachmentStore(fresh / "attachments").stored() == set()
