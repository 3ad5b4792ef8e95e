"""What a file is, from its bytes (pure): an image, a text or a PDF, or what else it is, named for a refusal.

The name never decides the kind (a PNG named ``notes.txt`` is an image, a text named ``photo.png`` is a text); it
only picks a text's type and fence language (``data.csv`` is CSV) once the bytes have shown it is text.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePath
from typing import Literal

Kind = Literal["image", "text", "pdf"]


@dataclass(frozen=True)
class Media:
    kind: Kind
    mime: str
    language: str = ""  # a text's fence language (``python``, ``csv``...), from its name's extension
    encoding: str = ""  # a text's encoding, as the bytes showed it

    @property
    def label(self) -> str:
        """For people: ``PNG image``, ``Markdown``, ``PDF``."""
        return _LABELS.get(self.mime, self.mime)


# Images the workbench sends (as PNG or JPEG: llama-server's decoder reads no WebP); the first frame of a GIF.
_IMAGES = ((b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"), (b"GIF87a", "image/gif"),
           (b"GIF89a", "image/gif"))
# What other files begin with, to name them in a refusal.
_OTHERS = (
    (b"PK\x03\x04", "a ZIP archive (Word, Excel and OpenDocument files are ZIP archives too)"),
    (b"\x1f\x8b", "a gzip archive"), (b"BZh", "a bzip2 archive"), (b"\xfd7zXZ\x00", "an xz archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"), (b"Rar!", "a RAR archive"),
    (b"\x7fELF", "an ELF executable"), (b"MZ", "a Windows executable"), (b"\xca\xfe\xba\xbe", "a Mach-O or Java class file"),
    (b"\xcf\xfa\xed\xfe", "a Mach-O executable"), (b"SQLite format 3\x00", "an SQLite database"),
    (b"GGUF", "a GGUF model file"), (b"BM", "a BMP image (attach it as PNG or JPEG)"),
    (b"II*\x00", "a TIFF image (attach it as PNG or JPEG)"), (b"MM\x00*", "a TIFF image (attach it as PNG or JPEG)"),
    (b"\x00\x00\x01\x00", "an icon file"), (b"ID3", "an MP3 audio file"), (b"OggS", "an Ogg audio or video file"),
    (b"fLaC", "a FLAC audio file"), (b"\x1a\x45\xdf\xa3", "a Matroska or WebM video"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old Microsoft Office file (.doc, .xls)"), (b"{\\rtf", "an RTF document"),
)
_TEXT_TYPES = {  # extension -> (mime, fence language)
    ".md": ("text/markdown", "markdown"), ".markdown": ("text/markdown", "markdown"), ".csv": ("text/csv", "csv"),
    ".tsv": ("text/tab-separated-values", "tsv"), ".json": ("application/json", "json"),
    ".jsonl": ("application/jsonl", "json"), ".py": ("text/x-python", "python"), ".js": ("text/javascript", "javascript"),
    ".ts": ("text/x-typescript", "typescript"), ".html": ("text/html", "html"), ".css": ("text/css", "css"),
    ".xml": ("application/xml", "xml"), ".yaml": ("application/yaml", "yaml"), ".yml": ("application/yaml", "yaml"),
    ".toml": ("application/toml", "toml"), ".sh": ("text/x-shellscript", "bash"), ".c": ("text/x-c", "c"),
    ".h": ("text/x-c", "c"), ".cpp": ("text/x-c++", "cpp"), ".rs": ("text/x-rust", "rust"), ".go": ("text/x-go", "go"),
    ".java": ("text/x-java", "java"), ".rb": ("text/x-ruby", "ruby"), ".sql": ("application/sql", "sql"),
    ".ini": ("text/plain", "ini"), ".log": ("text/plain", ""), ".txt": ("text/plain", ""), ".rst": ("text/x-rst", "rst"),
    ".tex": ("text/x-tex", "latex"), ".ipynb": ("application/json", "json"),
}
_LABELS = {"image/png": "PNG image", "image/jpeg": "JPEG image", "image/gif": "GIF image", "image/webp": "WebP image",
           "application/pdf": "PDF", "text/markdown": "Markdown", "text/csv": "CSV", "application/json": "JSON",
           "text/plain": "text"}
_SAMPLE = 64 * 1024  # bytes a text check reads: enough to see binary, cheap on a 20 MB file


def sniff(data: bytes, name: str) -> Media | str:
    """The file's media from its bytes, or, for anything that cannot be attached, what it is (for the refusal)."""
    head = data[:32]
    for magic, mime in _IMAGES:
        if head.startswith(magic):
            return Media("image", mime)
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return Media("image", "image/webp")
    if head.startswith(b"RIFF") and head[8:12] == b"WAVE":
        return "a WAV audio file"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        return "a HEIC/HEIF image (attach it as JPEG)" if brand in (b"heic", b"heix", b"mif1", b"avif") \
            else "an MP4/QuickTime video"
    if b"%PDF-" in data[:1024]:  # the spec allows a little junk before the header
        return Media("pdf", "application/pdf")
    for magic, what in _OTHERS:
        if head.startswith(magic):
            return what
    if len(data) > 262 and data[257:262] == b"ustar":
        return "a tar archive"
    encoding = text_encoding(data)
    if encoding is None:
        return "binary data"
    mime, language = _TEXT_TYPES.get(PurePath(name).suffix.lower(), ("text/plain", ""))
    return Media("text", mime, language, encoding)


def text_encoding(data: bytes) -> str | None:
    """The encoding a text's bytes are in (UTF-8 with or without a BOM, UTF-16 with one), or None for binary."""
    if data.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig"
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"
    sample = data[:_SAMPLE]
    if b"\x00" in sample:
        return None
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(sample) - 3:  # not just a character cut at the sample's end
            return _legacy(sample)
    return "utf-8"


def _legacy(sample: bytes) -> str | None:
    """Windows-1252 for text that is not UTF-8 but is mostly printable (old CSV exports); None for binary."""
    controls = sum(1 for b in sample if b < 32 and b not in (9, 10, 12, 13))
    return "cp1252" if controls <= len(sample) // 100 else None
