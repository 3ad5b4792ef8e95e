"""Real files of each kind an attachment can be, made in the tests (Pillow for images, fpdf2 for PDFs)."""

from __future__ import annotations

import io


def image_bytes(fmt: str, size: tuple[int, int] = (64, 48), mode: str = "RGB", color: tuple[int, ...] = (200, 30, 30),
                **save: object) -> bytes:
    from PIL import Image

    image = Image.new(mode, size, color)
    for x in range(0, size[0], 8):  # some structure, so encoders have something to encode
        for y in range(size[1]):
            image.putpixel((x, y), (0,) * len(color))
    out = io.BytesIO()
    image.save(out, fmt, **save)
    return out.getvalue()


def gif_two_frames(size: tuple[int, int] = (32, 32)) -> bytes:
    """An animated GIF: a red first frame, then a blue one."""
    from PIL import Image

    frames = [Image.new("RGB", size, (255, 0, 0)), Image.new("RGB", size, (0, 0, 255))]
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    return out.getvalue()


def photo_jpeg(size: tuple[int, int] = (4000, 3000), orientation: int | None = None) -> bytes:
    """A photo-like JPEG (a gradient with noise), optionally with an EXIF orientation."""
    from PIL import Image

    image = Image.linear_gradient("L").resize(size).convert("RGB")
    noise = Image.effect_noise(size, 40).convert("RGB")
    image = Image.blend(image, noise, 0.3)
    out = io.BytesIO()
    exif = Image.Exif()
    if orientation is not None:
        exif[0x0112] = orientation
    image.save(out, "JPEG", quality=85, exif=exif.tobytes())
    return out.getvalue()


def pdf_bytes(pages: list[str]) -> bytes:
    """A PDF with one page per string (real text, extractable)."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("helvetica", size=11)
    for text in pages:
        pdf.add_page()
        pdf.multi_cell(0, 6, text)
    return bytes(pdf.output())


def image_only_pdf() -> bytes:
    """A 'scanned' PDF: a page with a picture and no text layer."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.image(io.BytesIO(image_bytes("PNG")), x=10, y=10, w=50)
    return bytes(pdf.output())


def encrypted_pdf(text: str = "secret") -> bytes:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf_bytes([text]))))
    writer.encrypt("password")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def zip_bytes() -> bytes:
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("a.txt", "hello")
    return out.getvalue()
