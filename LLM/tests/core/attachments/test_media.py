"""Media detection on real files: the bytes decide the kind, the name only a text's type."""

from __future__ import annotations

import gzip
import sys
from pathlib import Path

import pytest

from LLM.core.attachments import Attachment, load_attachment, sniff
from LLM.core.errors import AttachmentError, UnsupportedAttachmentError
from LLM.tests.fakes.sample_files import gif_two_frames, image_bytes, pdf_bytes, zip_bytes


def _elf() -> bytes:
    return Path(sys.executable).resolve().read_bytes()[:4096]


KINDS = [  # (id, bytes, name, kind, mime, language)
    ("png", lambda: image_bytes("PNG"), "a.png", "image", "image/png", ""),
    ("jpeg", lambda: image_bytes("JPEG"), "a.jpg", "image", "image/jpeg", ""),
    ("webp", lambda: image_bytes("WEBP"), "a.webp", "image", "image/webp", ""),
    ("gif", gif_two_frames, "a.gif", "image", "image/gif", ""),
    ("png-named-txt", lambda: image_bytes("PNG"), "notes.txt", "image", "image/png", ""),
    ("pdf", lambda: pdf_bytes(["one", "two"]), "doc.pdf", "pdf", "application/pdf", ""),
    ("pdf-named-md", lambda: pdf_bytes(["one"]), "doc.md", "pdf", "application/pdf", ""),
    ("text", lambda: b"hello\nworld\n", "a.txt", "text", "text/plain", ""),
    ("text-named-png", lambda: b"not an image at all\n", "photo.png", "text", "text/plain", ""),
    ("markdown", lambda: "# Title\n\n* é\n".encode(), "README.md", "text", "text/markdown", "markdown"),
    ("csv", lambda: b"a,b\n1,2\n", "data.csv", "text", "text/csv", "csv"),
    ("json", lambda: b'{"a": [1, 2]}', "x.json", "text", "application/json", "json"),
    ("python", lambda: b"def f():\n    return 1\n", "m.py", "text", "text/x-python", "python"),
    ("no-extension", lambda: b"plain words", "Makefile", "text", "text/plain", ""),
    ("utf8-bom", lambda: b"\xef\xbb\xbfhi", "a.txt", "text", "text/plain", ""),
    ("utf16", lambda: "hi there".encode("utf-16"), "a.txt", "text", "text/plain", ""),
    ("cp1252", lambda: "caf\u00e9, na\u00efve; r\u00e9sum\u00e9\n".encode("cp1252") * 5, "old.csv", "text", "text/csv", "csv"),
]


@pytest.mark.parametrize("make,name,kind,mime,language", [k[1:] for k in KINDS], ids=[k[0] for k in KINDS])
def test_sniff_kind_comes_from_the_bytes(make, name: str, kind: str, mime: str, language: str) -> None:
    media = sniff(make(), name)
    assert not isinstance(media, str), media
    assert (media.kind, media.mime, media.language) == (kind, mime, language)


REFUSED = [  # (id, bytes, words the refusal names)
    ("zip", zip_bytes, "ZIP archive"),
    ("gzip", lambda: gzip.compress(b"x" * 100), "gzip archive"),
    ("elf", _elf, "ELF executable"),
    ("sqlite", lambda: b"SQLite format 3\x00" + b"\x00" * 100, "SQLite database"),
    ("bmp", lambda: image_bytes("BMP"), "BMP image"),
    ("tiff", lambda: image_bytes("TIFF"), "TIFF image"),
    ("binary", lambda: bytes(range(256)) * 4, "binary data"),
    ("wav", lambda: b"RIFF\x24\x00\x00\x00WAVEfmt " + b"\x00" * 32, "WAV audio"),
    ("mp4", lambda: b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 32, "MP4"),
]


@pytest.mark.parametrize("make,what", [r[1:] for r in REFUSED], ids=[r[0] for r in REFUSED])
def test_attachment_refuses_other_files_naming_their_type(make, what: str) -> None:
    with pytest.raises(UnsupportedAttachmentError) as caught:
        Attachment.from_bytes(make(), "upload.bin")
    assert what in str(caught.value) and "upload.bin" in str(caught.value)


def test_load_attachment_reads_a_path_and_hashes_its_bytes(tmp_path: Path) -> None:
    path = tmp_path / "photo.txt"
    data = image_bytes("PNG")
    path.write_bytes(data)
    attachment = load_attachment(path)
    import hashlib

    assert (attachment.name, attachment.kind, attachment.size) == ("photo.txt", "image", len(data))
    assert attachment.sha256 == hashlib.sha256(data).hexdigest()
    assert load_attachment(("x.md", b"# hi")).media.mime == "text/markdown"


@pytest.mark.parametrize("source,words", [
    ("missing.png", "no such file"),
    ("folder", "is a folder"),
    ("empty.txt", "is empty"),
], ids=["missing", "folder", "empty"])
def test_load_attachment_names_the_file_that_cannot_be_read(tmp_path: Path, source: str, words: str) -> None:
    (tmp_path / "folder").mkdir()
    (tmp_path / "empty.txt").write_bytes(b"")
    with pytest.raises(AttachmentError) as caught:
        load_attachment(tmp_path / source)
    assert words in str(caught.value) and source in str(caught.value)


def test_load_attachment_refuses_a_file_over_the_limit_before_reading_it(tmp_path: Path) -> None:
    from LLM.core.attachments import MAX_FILE_BYTES

    big = tmp_path / "big.txt"
    with big.open("wb") as out:
        out.truncate(MAX_FILE_BYTES + 1)  # sparse: nothing is written
    with pytest.raises(AttachmentError, match="larger than"):
        load_attachment(big)
