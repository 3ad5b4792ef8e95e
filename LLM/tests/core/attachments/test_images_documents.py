"""Images made ready for a model, and documents as the text it reads, on real files."""

from __future__ import annotations

import io

import pytest

from LLM.core.attachments import Attachment, document_text, prepare_image, render_document, thumbnail_png
from LLM.core.errors import AttachmentError
from LLM.tests.fakes.sample_files import (
    encrypted_pdf,
    gif_two_frames,
    image_bytes,
    image_only_pdf,
    pdf_bytes,
    photo_jpeg,
)


def _open(data: bytes):
    from PIL import Image

    return Image.open(io.BytesIO(data))


def test_prepare_image_downscales_a_photo_to_the_longest_side() -> None:
    prepared = prepare_image(photo_jpeg((4000, 3000)), "photo.jpg", 1024)
    assert (prepared.mime, prepared.original) == ("image/jpeg", (4000, 3000))
    assert (prepared.width, prepared.height) == (1024, 768)
    assert _open(prepared.data).size == (1024, 768)
    assert prepared.data_uri.startswith("data:image/jpeg;base64,")


def test_prepare_image_sends_a_small_png_or_jpeg_unchanged() -> None:
    data = image_bytes("PNG")
    assert prepare_image(data, "a.png", 1024).data == data


def test_prepare_image_turns_a_photo_upright_by_its_exif_orientation() -> None:
    prepared = prepare_image(photo_jpeg((400, 300), orientation=6), "sideways.jpg", 1024)  # 6: rotated 90°
    assert (prepared.width, prepared.height) == (300, 400)


@pytest.mark.parametrize("make,mime", [
    (lambda: image_bytes("WEBP"), "image/jpeg"),  # llama-server reads no WebP
    (lambda: image_bytes("PNG", mode="RGBA", color=(1, 2, 3, 100)), "image/png"),  # transparency kept
    (gif_two_frames, "image/png"),
], ids=["webp", "alpha", "gif"])
def test_prepare_image_reencodes_what_engines_cannot_read(make, mime: str) -> None:
    prepared = prepare_image(make(), "x", 1024)
    assert prepared.mime == mime
    _open(prepared.data).load()


def test_prepare_image_takes_a_gif_first_frame() -> None:
    prepared = prepare_image(gif_two_frames(), "anim.gif", 1024)
    assert _open(prepared.data).convert("RGB").getpixel((0, 0)) == (255, 0, 0)


def test_prepare_image_names_a_damaged_file() -> None:
    data = image_bytes("PNG", size=(300, 300))
    with pytest.raises(AttachmentError, match="broken.png: the image is damaged"):
        prepare_image(data[: len(data) // 2], "broken.png", 1024)


def test_thumbnail_png_is_small() -> None:
    thumb = _open(thumbnail_png(photo_jpeg((1200, 900)), 96))
    assert thumb.format == "PNG" and max(thumb.size) == 96


def test_document_text_reads_a_pdf_page_by_page() -> None:
    attachment = Attachment.from_bytes(pdf_bytes(["Alpha page text", "Beta page text", "Gamma page text"]), "r.pdf")
    text = document_text(attachment)
    assert text.pages == 3
    assert text.text.index("[page 1]") < text.text.index("Alpha") < text.text.index("[page 2]") \
        < text.text.index("Beta") < text.text.index("[page 3]") < text.text.index("Gamma")


@pytest.mark.parametrize("make,words", [
    (image_only_pdf, "no text could be read"),
    (encrypted_pdf, "encrypted with a password"),
    (lambda: pdf_bytes(["x"])[:200], "damaged"),
], ids=["scanned", "encrypted", "truncated"])
def test_document_text_refuses_a_pdf_without_readable_text(make, words: str) -> None:
    with pytest.raises(AttachmentError, match=words):
        document_text(Attachment.from_bytes(make(), "scan.pdf"))


def test_render_document_fences_the_text_under_the_file_name() -> None:
    attachment = Attachment.from_bytes(b"a,b\n1,2\n", "data.csv")
    rendered = render_document(attachment, document_text(attachment))
    assert rendered.block.splitlines()[:2] == ["File: data.csv (CSV, 8 B)", "```csv"]
    assert rendered.block.endswith("1,2\n\n```") and rendered.note == ""


def test_render_document_uses_a_longer_fence_than_the_text_holds() -> None:
    attachment = Attachment.from_bytes(b"see:\n```python\nx = 1\n```\n", "notes.md")
    block = render_document(attachment, document_text(attachment)).block
    assert block.splitlines()[1] == "````markdown" and block.endswith("````")


def test_render_document_cut_says_how_much_was_kept() -> None:
    attachment = Attachment.from_bytes(("line of text\n" * 1000).encode(), "long.txt")
    rendered = render_document(attachment, document_text(attachment), max_chars=1300)
    assert (rendered.kept, rendered.total) == (1299, 13000)  # cut at the line end before the limit
    assert "kept the first 1,299 of 13,000 characters (9%)" in rendered.note
    assert rendered.note in rendered.block.splitlines()[0]


@pytest.mark.parametrize("data", [
    b"a\r\nb" * 10,
    b"x" * ((1 << 20) - 1) + b"\r\n" + b"y",  # a Windows line end across two decoded chunks
    "\u00e9".encode() * (1 << 20),  # two-byte characters across chunks
    b"x" * ((1 << 20) - 1) + b"\r",
], ids=["crlf", "crlf-across-chunks", "multibyte-across-chunks", "cr-at-end"])
def test_document_text_decodes_in_chunks_as_one_call_would(data: bytes) -> None:
    attachment = Attachment.from_bytes(data, "t.txt")
    assert document_text(attachment).text == data.decode("utf-8").replace("\r\n", "\n")


def test_render_document_cut_to_under_one_percent_says_so_with_a_decimal() -> None:
    attachment = Attachment.from_bytes(("line of text\n" * 10000).encode(), "huge.log")
    rendered = render_document(attachment, document_text(attachment), max_chars=910)
    assert rendered.note.endswith("of 130,000 characters (0.7%)")
