"""Files attached in the window, against the fake server: the Attach button (a scripted dialog), a drop and a paste on
the prompt box, chips that fill in off the event loop and go with ×, the refusals (a file that is no attachment, an
image for a model without vision: the message stays in the composer), what the model received, the transcript's
thumbnails and file chips, and the tool inspector's placeholders and Copy as curl."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path

from fpdf import FPDF
from PIL import Image
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QColor, QDragEnterEvent, QDropEvent, QGuiApplication, QImage
from PySide6.QtWidgets import QApplication, QFileDialog, QPushButton, QToolButton

from LLM.core.attachments import Attachment, MemoryBlobs, load_attachment, token_estimate
from LLM.core.chat.parts import FilePart
from LLM.desktop_app.attachment_loading import load_file
from LLM.desktop_app.dialogs import QtInteraction
from LLM.desktop_app.interaction import FolderMemory
from LLM.desktop_app.widgets.attachment_chips import AttachmentChip, FilesRow, ThumbnailCache
from LLM.tests.desktop_app.harness import (
    ScriptedInteraction,
    button,
    click,
    last_answer,
    open_window,
    page,
    prompt_edit,
    run,
    transcript,
    type_and_send,
    wait_until,
)

PDF_SENTENCE = "The quarterly report says the answer is 42."


def two_models(url: str) -> str:
    """``seeing`` declares vision, ``plain`` declares it has none (so the window can be sure, and refuse)."""
    lines = ["models:"]
    for model_id, vision in (("seeing", "true"), ("plain", "false")):
        lines += [f"  {model_id}:", "    backend: openai", f'    server_url: "{url}/v1"',
                  f"    model_name: {model_id}-model", f"    capabilities: {{vision: {vision}}}",
                  "    default_params:", "      max_new_tokens: 64"]
    return "\n".join(lines) + "\n"


def png_file(folder: Path, name: str = "photo.png", size: tuple[int, int] = (64, 48)) -> Path:
    out = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(out, "PNG")
    path = folder / name
    path.write_bytes(out.getvalue())
    return path


def pdf_file(folder: Path) -> Path:
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=12)
    pdf.cell(text=PDF_SENTENCE)
    path = folder / "report.pdf"
    pdf.output(str(path))
    return path


def chips(p) -> list[AttachmentChip]:
    return p.composer.chips.chips()


def ready(p, count: int) -> bool:
    return len(chips(p)) == count and all(c.state == "ready" for c in chips(p)) and not p.pending.loading()


def drop_files(target, paths: list[Path]) -> bool:
    """A drag of ``paths`` entering the prompt box, then the drop; True if the box accepted the drag."""
    data = QMimeData()
    data.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    viewport = target.viewport()
    enter = QDragEnterEvent(QPoint(10, 10), Qt.DropAction.CopyAction, data, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(viewport, enter)
    drop = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, data, Qt.MouseButton.LeftButton,
                      Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(viewport, drop)
    return enter.isAccepted()


async def chat_completions(fake_server) -> list[dict]:
    log = await asyncio.to_thread(fake_server.requests)
    return [r["body"] for r in log if r.get("path", "").endswith("/chat/completions")]


def test_attachments_window_button_drop_and_paste_then_send_to_a_vision_model(qloop, fake_server, tmp_path):
    photo, notes, report = png_file(tmp_path), tmp_path / "notes.md", pdf_file(tmp_path)
    notes.write_text("# Notes\nnothing to see\n")
    fake_server.script({"text": "I see a red picture and a report."})
    interaction = ScriptedInteraction(paths=([photo, notes],))

    async def go():
        async with open_window(tmp_path, two_models(fake_server.url), interaction=interaction,
                               initial_model="seeing") as window:
            chat = page(window)
            edit = prompt_edit(chat)
            click(button(chat, "attachButton"))
            await wait_until(lambda: ready(chat, 2), what="two chips filled in")
            assert interaction.path_kinds == ["attach"]
            assert [c.name for c in chips(chat)] == ["photo.png", "notes.md"]
            assert chips(chat)[0].detail.text() == f"PNG image · {photo.stat().st_size} B"
            assert chips(chat)[0].icon.pixmap() is not None and not chips(chat)[0].icon.pixmap().isNull()
            assert chips(chat)[1].detail.text().startswith("Markdown · ") and chips(chat)[1].icon.text() == "MD"
            assert "(files ~" in chat.context_meter.text()

            chips(chat)[1].findChild(QToolButton, "removeAttachment").click()
            assert [c.name for c in chips(chat)] == ["photo.png"]

            edit.setPlainText("Look: ")
            assert drop_files(edit, [report]), "the prompt box refused a drag of a file"
            await wait_until(lambda: ready(chat, 2), what="the dropped PDF's chip")
            assert chips(chat)[1].name == "report.pdf" and chips(chat)[1].detail.text().startswith("PDF · ")
            assert edit.toPlainText() == "Look: "  # the file was attached, not its path typed

            image = QImage(30, 20, QImage.Format.Format_RGB32)
            image.fill(QColor("navy"))
            QGuiApplication.clipboard().setImage(image)
            edit.paste()
            await wait_until(lambda: ready(chat, 3), what="the pasted image's chip")
            assert chips(chat)[2].name == "pasted-image-1.png"
            QGuiApplication.clipboard().setText(" what do you see?")
            edit.moveCursor(edit.textCursor().MoveOperation.End)
            edit.paste()  # text pastes as text
            assert edit.toPlainText() == "Look:  what do you see?" and len(chips(chat)) == 3

            click(button(chat, "sendButton"))
            await wait_until(lambda: chat.conversation.messages and last_answer(chat).status == "done",
                             what="the answer")
            assert chips(chat) == [] and edit.toPlainText() == ""
            assert not chat.composer.chips.isVisible() and "files" not in chat.context_meter.text()
            user = chat.conversation.messages[0]
            assert [f.name for f in user.files] == ["photo.png", "report.pdf", "pasted-image-1.png"]
            row = transcript(chat).widget_for(user.id).files_row
            assert row is not None
            assert [t.has_image for t in row.thumbnails()] == [True, True]
            assert [c.text.split(" · ")[:2] for c in row.chips()] == [["report.pdf", "PDF"]]
            assert "report.pdf" in transcript(chat).plain_text()

            body = (await chat_completions(fake_server))[-1]
            content = body["messages"][-1]["content"]
            urls = [part["image_url"]["url"] for part in content if part["type"] == "image_url"]
            assert len(urls) == 2 and all(u.startswith("data:image/png;base64,") for u in urls)
            text = next(part["text"] for part in content if part["type"] == "text")
            assert PDF_SENTENCE in text and "report.pdf" in text and "what do you see?" in text

    run(qloop, go())


def test_attachments_window_an_image_for_a_model_without_vision_stays_in_the_composer(qloop, fake_server, tmp_path):
    photo = png_file(tmp_path)
    interaction = ScriptedInteraction(paths=([photo],))

    async def go():
        async with open_window(tmp_path, two_models(fake_server.url), interaction=interaction,
                               initial_model="plain") as window:
            chat = page(window)
            click(button(chat, "attachButton"))
            await wait_until(lambda: ready(chat, 1), what="the chip")
            type_and_send(chat, "What is in this picture?")
            await wait_until(lambda: chat.activity.is_error, what="the refusal")
            assert "plain has no vision capability" in chat.activity.text() and "seeing" in chat.activity.text()
            assert prompt_edit(chat).toPlainText() == "What is in this picture?"
            assert [c.name for c in chips(chat)] == ["photo.png"]
            assert chat.conversation.messages == [] and not chat.busy
            assert button(chat, "sendButton").isEnabled()
            assert await chat_completions(fake_server) == []

    run(qloop, go())


def test_attachments_window_a_pasted_file_that_is_no_attachment_shows_the_error_and_no_chip(
        qloop, fake_server, tmp_path):
    """A file copied in a file manager and pasted on the prompt box is attached (here: refused), not typed."""
    archive = tmp_path / "bundle.zip"
    archive.write_bytes(b"PK\x03\x04" + bytes(200))

    async def go():
        async with open_window(tmp_path, two_models(fake_server.url), initial_model="seeing") as window:
            chat = page(window)
            copied = QMimeData()
            copied.setUrls([QUrl.fromLocalFile(str(archive))])
            copied.setText(str(archive))  # (file managers put the path as text too)
            QGuiApplication.clipboard().setMimeData(copied)
            prompt_edit(chat).paste()
            assert prompt_edit(chat).toPlainText() == ""
            await wait_until(lambda: chat.activity.is_error, what="the refusal")
            assert "bundle.zip: a ZIP archive" in chat.activity.text() and "cannot be attached" in chat.activity.text()
            assert chips(chat) == [] and not chat.composer.chips.isVisible()

    run(qloop, go())


def test_attachments_window_tool_inspector_shows_placeholders_and_copies_curl_with_the_image(
        qloop, fake_server, tmp_path):
    photo = png_file(tmp_path, size=(300, 200))
    fake_server.script({"text": "A red rectangle."})
    interaction = ScriptedInteraction(paths=([photo],))

    async def go():
        async with open_window(tmp_path, two_models(fake_server.url), interaction=interaction,
                               initial_model="seeing") as window:
            tools = page(window, "toolChatPage")
            window.tabs.setCurrentWidget(tools)
            click(button(tools, "attachButton"))
            await wait_until(lambda: ready(tools, 1), what="the chip")
            type_and_send(tools, "Describe it.")
            await wait_until(lambda: tools.conversation.messages and last_answer(tools).final, what="the answer")
            answer = last_answer(tools)
            assert answer.status == "done", answer.error
            inspector = tools.replay.inspect(answer.id, 0)
            shown = inspector.request_view.toPlainText()
            assert "[attachment photo.png · image/png" in shown and "sent as 300×200]" in shown
            assert "base64" not in shown and len(shown) < 20_000
            assert "[attachment photo.png" in inspector.curl()  # as recorded
            QGuiApplication.clipboard().setText("")
            inspector.findChild(QPushButton, "copyRequestCurl").click()
            await wait_until(lambda: "data:image/png;base64," in QGuiApplication.clipboard().text(),
                             what="curl with the image")
            copied = QGuiApplication.clipboard().text()
            assert "[attachment " not in copied and "/v1/chat/completions" in copied
            sent = (await chat_completions(fake_server))[-1]
            url = next(p["image_url"]["url"] for p in sent["messages"][-1]["content"] if p["type"] == "image_url")
            assert json.dumps(url)[1:-1] in copied or url in copied
            inspector.close()

    run(qloop, go())


def test_attachments_window_a_large_document_is_measured_by_its_size(qloop, tmp_path):
    """A 20 MB text is never decoded to estimate it (decoding held the GIL for 125 ms and froze the window): the
    estimate is core's, from the size."""
    table = tmp_path / "table.csv"
    row = "id,name,value,`note`\n"
    table.write_text(row * (2 * 1024 * 1024 // len(row)))
    loaded = run(qloop, load_file(table))
    assert loaded.thumbnail is None
    assert loaded.tokens == token_estimate(load_attachment(table)) > loaded.attachment.size // 3


def test_attachments_window_transcript_thumbnails_are_made_from_the_stored_bytes(qloop, tmp_path):
    """A saved conversation reopened: its images' thumbnails come from the store, off the GUI thread, once per
    file; a file whose stored copy is gone shows as a chip with its name."""
    stored = Attachment.from_bytes(png_file(tmp_path).read_bytes(), "photo.png")
    gone = Attachment.from_bytes(png_file(tmp_path, "gone.png", (10, 10)).read_bytes(), "gone.png")
    made: list[str] = []

    def spawn(coro, name):
        made.append(name)
        return asyncio.ensure_future(coro)

    def part(a: Attachment) -> FilePart:
        return FilePart(a.sha256, a.name, a.media.mime, a.size, a.kind)

    async def go():
        cache = ThumbnailCache(lambda: MemoryBlobs([stored]), spawn)
        row = FilesRow([part(stored), part(gone), part(stored)], cache)
        assert [t.has_image for t in row.thumbnails()] == [False, False, False]
        await wait_until(lambda: all(t.has_image for t in row.thumbnails() if t.name == "photo.png"),
                         what="the stored image's thumbnails")
        await wait_until(lambda: cache.failed(gone.sha256), what="the missing file given up")
        assert len(made) == 2  # one job per file, however many times it is shown
        assert "(no preview)" in row.thumbnails()[1].text()
        again = FilesRow([part(stored), part(gone)], cache)  # shown again: from the cache, at once
        assert [t.has_image for t in again.thumbnails()] == [True] and [c.text.split(" · ")[0]
                                                                       for c in again.chips()] == ["gone.png"]
        assert len(made) == 2
        for widget in (row, again):
            widget.deleteLater()

    run(qloop, go())


def test_attachments_window_the_real_dialog_chooses_several_files_and_remembers_the_folder(qloop, tmp_path):
    """The Qt dialog behind ``choose_open_paths`` (offscreen): several files at once; the next one opens there."""
    folder = tmp_path / "pictures"
    folder.mkdir()
    first, second = png_file(folder, "a.png"), png_file(folder, "b.png")
    interaction = QtInteraction(FolderMemory(home=tmp_path))

    async def answer(expect: Path, pick: str | None) -> None:
        dialog = await wait_until(lambda: next((w for w in QApplication.topLevelWidgets()
                                                if isinstance(w, QFileDialog) and w.isVisible()), None),
                                  what="the file dialog")
        assert Path(dialog.directory().absolutePath()) == expect
        assert dialog.fileMode() == QFileDialog.FileMode.ExistingFiles
        if pick is None:
            dialog.reject()
        else:
            dialog.selectFile(pick)
            dialog.accept()

    async def go():
        helper = asyncio.ensure_future(answer(tmp_path, f'"{first}" "{second}"'))
        assert sorted(await interaction.choose_open_paths(None, "Attach files", "All files (*)",
                                                          kind="attach")) == [first, second]
        await helper
        helper = asyncio.ensure_future(answer(folder, None))
        assert await interaction.choose_open_paths(None, "Attach files", "All files (*)", kind="attach") == []
        await helper

    run(qloop, go())
