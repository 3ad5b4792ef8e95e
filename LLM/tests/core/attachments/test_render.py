"""References rendered into a request: images as data URIs, documents fitted to the budget, placeholders both ways."""

from __future__ import annotations

import pytest

from LLM.core.attachments import Attachment, MemoryBlobs, expand, references, render
from LLM.core.chat import Conversation
from LLM.core.chat.parts import FilePart
from LLM.core.errors import AttachmentError
from LLM.tests.fakes.sample_files import pdf_bytes, photo_jpeg


def _ref(attachment: Attachment) -> dict:
    return FilePart(attachment.sha256, attachment.name, attachment.media.mime, attachment.size,
                    attachment.kind).reference()


def _setup(*attachments: Attachment) -> MemoryBlobs:
    return MemoryBlobs(list(attachments))


PHOTO = Attachment.from_bytes(photo_jpeg((2000, 1500)), "photo.jpg")
NOTES = Attachment.from_bytes(b"# Notes\n\nThe code word is PLUM.\n", "notes.md")
REPORT = Attachment.from_bytes(pdf_bytes([f"Page {n} says: fact number {n}." for n in range(1, 4)]), "report.pdf")


def test_render_sends_images_first_then_the_documents_and_the_text() -> None:
    messages = [{"role": "user", "content": [_ref(PHOTO), _ref(NOTES), {"type": "text", "text": "What is shown?"}]}]
    out = render(messages, _setup(PHOTO, NOTES), 4000, max_side=512)
    image, text = out.messages[0]["content"]
    assert image["type"] == "image_url" and image["image_url"]["url"].startswith("data:image/jpeg;base64,")
    assert text["type"] == "text"
    assert text["text"].startswith("File: notes.md (Markdown") and "PLUM" in text["text"]
    assert text["text"].endswith("What is shown?") and out.notes == []


def test_render_sends_documents_alone_as_one_string() -> None:
    messages = [{"role": "user", "content": [_ref(REPORT), {"type": "text", "text": "Summarise."}]}]
    content = render(messages, _setup(REPORT), 4000).messages[0]["content"]
    assert isinstance(content, str)
    assert "[page 1]" in content and "fact number 3" in content and content.endswith("Summarise.")


def test_render_cuts_a_document_to_the_budget_with_a_note() -> None:
    big = Attachment.from_bytes(("All work and no play. " * 2000).encode(), "big.txt")
    messages = [{"role": "user", "content": [_ref(big), {"type": "text", "text": "Count."}]}]
    out = render(messages, _setup(big), 1000)
    content = out.messages[0]["content"]
    assert len(content) < 3000 and content.endswith("Count.")
    assert len(out.notes) == 1 and out.notes[0].startswith("big.txt: cut to fit the context: kept the first")


def test_render_refuses_a_document_of_the_newest_message_that_cannot_fit() -> None:
    messages = [{"role": "user", "content": [_ref(NOTES), {"type": "text", "text": "x " * 2000}]}]
    with pytest.raises(AttachmentError, match="notes.md: does not fit the usable context"):
        render(messages, _setup(NOTES), 1000)


def test_render_leaves_out_an_older_document_when_the_newest_takes_the_room() -> None:
    big = Attachment.from_bytes(("word " * 3000).encode(), "new.txt")
    messages = [{"role": "user", "content": [_ref(NOTES), {"type": "text", "text": "first"}]},
                {"role": "assistant", "content": "ok"},
                {"role": "user", "content": [_ref(big), {"type": "text", "text": "second"}]}]
    out = render(messages, _setup(NOTES, big), 1000)
    assert out.messages[0]["content"] == "File: notes.md (left out: the context is full)\n\nfirst"
    assert any(n.startswith("notes.md: left out") for n in out.notes)


def test_render_names_a_file_whose_bytes_are_gone() -> None:
    messages = [{"role": "user", "content": [_ref(NOTES)]}]
    with pytest.raises(AttachmentError, match="notes.md: its bytes"):
        render(messages, MemoryBlobs(), 4000)


def test_redact_then_expand_gives_back_the_body_sent() -> None:
    messages = [{"role": "user", "content": [_ref(PHOTO), _ref(REPORT), {"type": "text", "text": "Both?"}]}]
    blobs = _setup(PHOTO, REPORT)
    out = render(messages, blobs, 4000, max_side=256)
    body = {"model": "m", "messages": out.messages}
    kept = out.redact(body)
    url = kept["messages"][0]["content"][0]["image_url"]["url"]
    assert url.startswith("[attachment photo.jpg · image/jpeg · ") and f"sha256:{PHOTO.sha256}" in url
    assert "sent as 256×192]" in url
    text = kept["messages"][0]["content"][1]["text"]
    assert text.startswith(f"[attachment report.pdf · application/pdf · ") and text.endswith("]\n\nBoth?")
    assert len(str(kept)) < 1000 < len(str(body))
    assert expand(kept, blobs, 256) == body


def test_conversation_history_sends_a_user_message_files_as_references() -> None:
    conversation = Conversation()
    files = [FilePart(NOTES.sha256, NOTES.name, NOTES.media.mime, NOTES.size, NOTES.kind)]
    conversation.add_user("Read this", files)
    history = conversation.history()
    assert references(history) == [files[0].reference()["attachment"]]
    assert history[0]["content"][-1] == {"type": "text", "text": "Read this"}
    again = Conversation.from_dict(conversation.to_dict())
    assert again.messages[0].files == files
