"""An image made ready for a model: checked, turned upright, first frame, downscaled, encoded as PNG or JPEG.

PNG keeps transparency and sharp edges (screenshots); a photo goes as JPEG. WebP and GIF are always re-encoded:
llama-server's image decoder reads neither WebP nor an animation. A JPEG is decoded straight at a reduced scale
(``draft``: the DCT scales by 1/2, 1/4 or 1/8 while decoding), which is what makes a 12-megapixel photo cheap.
"""

from __future__ import annotations

import base64
import io
import warnings
from dataclasses import dataclass

from ..errors import AttachmentError

DEFAULT_MAX_SIDE = 1024
JPEG_QUALITY = 90


@dataclass(frozen=True)
class PreparedImage:
    mime: str  # image/png or image/jpeg
    data: bytes
    width: int
    height: int
    original: tuple[int, int]

    @property
    def data_uri(self) -> str:
        return f"data:{self.mime};base64,{base64.b64encode(self.data).decode('ascii')}"


def prepare_image(data: bytes, name: str, max_side: int = DEFAULT_MAX_SIDE) -> PreparedImage:
    """``data`` ready to send: at most ``max_side`` pixels on its longest side; unchanged bytes where a PNG or JPEG
    already fits and needs no turning. A damaged image raises AttachmentError naming the file."""
    from PIL import Image, ImageOps  # Pillow: imported on the first image, not with the workbench

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            original = image.size
            fmt = image.format
            image.seek(0)  # a GIF's (or an animated WebP's) first frame
            orientation = image.getexif().get(0x0112, 1)
            if fmt in ("PNG", "JPEG") and orientation == 1 and max(original) <= max_side:
                image.load()  # reads it through: a truncated file fails here, not in the engine
                return PreparedImage(f"image/{fmt.lower()}", data, *original, original)
            if fmt == "JPEG":
                image.draft("RGB", _scaled(original, max_side))
            image.load()
            image = ImageOps.exif_transpose(image)
            if max(image.size) > max_side:
                # Bilinear with Pillow's support scaling is antialiased; after draft the factor left is under 2, where
                # bicubic looks the same to a vision encoder at twice the cost.
                image.thumbnail((max_side, max_side), Image.Resampling.BILINEAR)
            alpha = image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info)
            out = io.BytesIO()
            if alpha or fmt in ("PNG", "GIF"):
                image = image.convert("RGBA" if alpha else "RGB")
                image.save(out, "PNG", compress_level=1)
                mime = "image/png"
            else:
                (image if image.mode == "RGB" else image.convert("RGB")).save(out, "JPEG", quality=JPEG_QUALITY)
                mime = "image/jpeg"
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise AttachmentError(f"{name}: too many pixels to be an image a model can take ({exc})") from None
    except (OSError, SyntaxError, ValueError, Image.UnidentifiedImageError) as exc:
        raise AttachmentError(f"{name}: the image is damaged or cannot be read ({exc})") from exc
    return PreparedImage(mime, out.getvalue(), image.width, image.height, original)


def _scaled(size: tuple[int, int], max_side: int) -> tuple[int, int]:
    """The size to ask ``draft`` for: the image scaled so its longest side is ``max_side`` (draft keeps at least it)."""
    factor = max_side / max(size)
    return max(1, int(size[0] * factor)), max(1, int(size[1] * factor))


def thumbnail_png(data: bytes, side: int) -> bytes:
    """A small PNG of an image for a chip or the transcript (the window decodes only this, never a 12 MP photo)."""
    prepared = prepare_image(data, "thumbnail", side)
    if prepared.mime == "image/png":
        return prepared.data
    from PIL import Image

    out = io.BytesIO()
    Image.open(io.BytesIO(prepared.data)).save(out, "PNG")
    return out.getvalue()
