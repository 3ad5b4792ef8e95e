"""Files given with a message: what they are (by their bytes), images made ready for a vision model, documents as
text (PDFs page by page), references rendered into a request within the context, and the content-addressed store.

    media.py       bytes -> image | text | pdf, or what else they are (pure)
    attachment.py  Attachment: name, bytes, media, sha256; read from a path or bytes
    images.py      checked, upright, first frame, downscaled, PNG or JPEG (Pillow)
    documents.py   a text decoded or a PDF's pages (pypdf), fenced under the file's name, cut to a budget
    store.py       bytes by sha256: a folder beside the history, or memory
    render.py      a request's references -> image_url parts and text; placeholders for what was sent
"""

from .attachment import MAX_FILE_BYTES, Attachment, FileSource, human_size, load_attachment
from .documents import document_text, pdf_pages, render_document
from .images import DEFAULT_MAX_SIDE, PreparedImage, prepare_image, thumbnail_png
from .media import Media, sniff
from .render import Rendered, expand, placeholder, references, render, token_estimate
from .store import AttachmentStore, Blobs, MemoryBlobs

__all__ = [
    "Attachment",
    "AttachmentStore",
    "Blobs",
    "DEFAULT_MAX_SIDE",
    "FileSource",
    "MAX_FILE_BYTES",
    "Media",
    "MemoryBlobs",
    "PreparedImage",
    "Rendered",
    "document_text",
    "expand",
    "human_size",
    "load_attachment",
    "pdf_pages",
    "placeholder",
    "prepare_image",
    "references",
    "render",
    "render_document",
    "sniff",
    "thumbnail_png",
    "token_estimate",
]
