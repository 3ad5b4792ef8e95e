"""Preparing attachments, the work done between choosing a file and sending it.

* attach_image_prepare_ms: detection (magic bytes, sha256), EXIF check, downscale to the default 1024 px and
  JPEG encoding of a 12-megapixel JPEG photo (4000x3000, made here), median of 7 after a warm-up.
  Target <= 100. Side by side (a `#` line, information only): the same photo decoded at full size and then
  downscaled, which is what Pillow does without ``draft``.
* attach_pdf_pages_per_s: text extraction (pypdf) of a 50-page PDF (made here with fpdf2, ~40 lines of prose
  a page), as pages per second over the whole document, median of 5. Target >= 50.

Run from the repository root: ``python bench/attachments.py``.
"""

from __future__ import annotations

import io
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from LLM.core.attachments import Attachment, document_text, prepare_image  # noqa: E402
from LLM.tests.fakes.sample_files import pdf_bytes, photo_jpeg  # noqa: E402

PROSE = ("The workbench reads each page of the document in turn and keeps its text, so that a model can answer "
         "questions about it. ") * 20


def _median_ms(run, rounds: int) -> float:
    run()  # warm-up: imports and caches
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        run()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def image_prepare() -> None:
    photo = photo_jpeg((4000, 3000))
    print(f"# photo: 4000x3000 JPEG, {len(photo) / 1e6:.1f} MB")

    def prepare() -> None:
        attachment = Attachment.from_bytes(photo, "photo.jpg")
        prepare_image(attachment.data, attachment.name, 1024)

    def full_decode() -> None:
        from PIL import Image

        image = Image.open(io.BytesIO(photo))
        image.load()
        image.thumbnail((1024, 1024))
        image.save(io.BytesIO(), "JPEG", quality=90)

    ours = _median_ms(prepare, 7)
    plain = _median_ms(full_decode, 7)
    print(f"# full-size decode then downscale (no draft): {plain:.1f} ms")
    print(f"RESULT attach_image_prepare_ms {ours:.1f} <= 100")


def pdf_pages() -> None:
    data = pdf_bytes([f"Page {n}. {PROSE}" for n in range(1, 51)])
    attachment = Attachment.from_bytes(data, "fifty.pdf")
    text = document_text(attachment)
    assert text.pages == 50 and "Page 50." in text.text
    print(f"# PDF: 50 pages, {len(data) / 1e3:.0f} KB, {len(text.text):,} characters of text")
    ms = _median_ms(lambda: document_text(attachment), 5)
    print(f"RESULT attach_pdf_pages_per_s {50 / (ms / 1000):.1f} >= 50")


if __name__ == "__main__":
    image_prepare()
    pdf_pages()
