"""A document as the text a model reads: a text file decoded, a PDF's text page by page (pypdf), put in a fenced
block under the file's name, cut to a budget with a note that says how much was kept."""

from __future__ import annotations

import codecs
import io
import logging
import re
from dataclasses import dataclass

from ..errors import AttachmentError
from .attachment import Attachment, human_size

# pypdf logs every odd object of a real-world PDF as a warning; the text is what matters here.
logging.getLogger("pypdf").setLevel(logging.ERROR)
_CHUNK = 1 << 20  # bytes decoded per call


@dataclass(frozen=True)
class DocumentText:
    text: str
    pages: int | None = None  # a PDF's page count


@dataclass(frozen=True)
class RenderedDocument:
    block: str  # what the model reads: a header line and the fenced text
    kept: int  # characters of the document's text sent
    total: int
    note: str = ""  # "" when it was sent whole; else how much was kept (shown to the user and the model)


def document_text(attachment: Attachment) -> DocumentText:
    """The text of a text file or a PDF (pages separated by a ``[page N]`` line)."""
    if attachment.media.kind == "text":
        return DocumentText(_decoded(attachment.data, attachment.media.encoding or "utf-8"))
    if attachment.media.kind == "pdf":
        pages = pdf_pages(attachment.data, attachment.name)
        if not any(page.strip() for page in pages):
            raise AttachmentError(f"{attachment.name}: no text could be read from its {len(pages)} page(s) (a scanned "
                                  f"PDF has only pictures of text; this workbench reads no text from pictures)")
        text = "\n\n".join(f"[page {number}]\n{page.strip()}" for number, page in enumerate(pages, 1))
        return DocumentText(text, len(pages))
    raise AttachmentError(f"{attachment.name}: a {attachment.media.label} is not a document")


def _decoded(data: bytes, encoding: str) -> str:
    """``data`` as text with Windows line ends made plain, a chunk at a time: each C call holds the GIL, and one
    over a 20 MB file would freeze a window for tens of milliseconds while this runs in a worker thread."""
    decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
    pieces: list[str] = []
    carry = ""  # a "\r" at a chunk's end may be half of a "\r\n"
    for start in range(0, len(data), _CHUNK):
        piece = carry + decoder.decode(data[start:start + _CHUNK], final=start + _CHUNK >= len(data))
        carry = "\r" if piece.endswith("\r") and start + _CHUNK < len(data) else ""
        pieces.append((piece[:-1] if carry else piece).replace("\r\n", "\n"))
    return "".join(pieces)


def pdf_pages(data: bytes, name: str) -> list[str]:
    """Each page's text, in order."""
    from pypdf import PdfReader  # imported on the first PDF
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise AttachmentError(f"{name}: the PDF is encrypted with a password")
        return [page.extract_text() or "" for page in reader.pages]
    except AttachmentError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, OSError, RecursionError) as exc:
        raise AttachmentError(f"{name}: the PDF is damaged or cannot be read ({exc})") from exc


def render_document(attachment: Attachment, text: DocumentText, max_chars: int | None = None) -> RenderedDocument:
    """The block the model reads, cut to ``max_chars`` characters of text (at a line end where one is near)."""
    body, total = text.text, len(text.text)
    note = ""
    if max_chars is not None and total > max_chars:
        cut = body.rfind("\n", 0, max_chars)
        body = body[: cut if cut > max_chars * 0.8 else max_chars]
        share = len(body) * 100 / total  # floored: "10%" never stands for 9.9%; below 1%, one decimal
        note = (f"cut to fit the context: kept the first {len(body):,} of {total:,} characters "
                f"({int(share) if share >= 1 else round(share, 1)}%)")
        if text.pages:
            shown = len(re.findall(r"^\[page \d+\]$", body, re.MULTILINE))
            note += f", {shown} of {text.pages} pages begun"
    what = f"{attachment.media.label}, {text.pages} pages" if text.pages else attachment.media.label
    header = f"File: {attachment.name} ({what}, {human_size(attachment.size)})"
    if note:
        header += f" [{note}]"
    fence = "`" * max(3, _longest_backticks(body) + 1)
    language = attachment.media.language if attachment.media.kind == "text" else ""
    return RenderedDocument(f"{header}\n{fence}{language}\n{body}\n{fence}", len(body), total, note)


def _longest_backticks(text: str) -> int:
    runs = re.findall(r"`{3,}", text)
    return max((len(r) for r in runs), default=0)
