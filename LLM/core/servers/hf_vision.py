"""Vision-language models on the transformers server: spotting one, and images from OpenAI content parts.

An image reaches the server as an OpenAI ``image_url`` part whose URL is a ``data:`` URI. The server is
offline by design, so an ``http(s)://`` URL is refused rather than fetched. Images are decoded (Pillow) in
message order, and the messages handed to the processor's chat template carry ``{"type": "image"}`` in
their place, which the template turns into the model's image placeholder.
"""

from __future__ import annotations

import base64
import binascii
import io
from collections.abc import Callable, Iterator
from typing import Any

# Pillow and transformers are imported inside functions: the server module must import without them.

FORMATS = ("PNG", "JPEG", "WEBP", "GIF")  # what Pillow must find in the bytes (the declared type is not trusted)
_DATA_HINT = "data:image/png;base64,..."


class ImageError(ValueError):
    """An image part cannot be used; the message names the part (``messages[1].content[0]: ...``)."""


def image_parts(messages: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(where, part) for every ``image_url`` part, in message order."""
    for i, message in enumerate(messages):
        content = message.get("content")
        if isinstance(content, list):
            for j, part in enumerate(content):
                if isinstance(part, dict) and part.get("type") == "image_url":
                    yield f"messages[{i}].content[{j}]", part


def has_images(messages: list[dict[str, Any]]) -> bool:
    return next(image_parts(messages), None) is not None


def _url(part: dict[str, Any], where: str) -> str:
    value = part.get("image_url")
    url = value.get("url") if isinstance(value, dict) else value  # some clients send the URL bare
    if not isinstance(url, str) or not url:
        raise ImageError(f"{where}.image_url.url: is required for an image_url part ({_DATA_HINT})")
    return url


def decode_image(url: str, where: str) -> Any:
    """The RGB PIL image in a ``data:image/...;base64,`` URI; ImageError naming ``where`` otherwise."""
    from PIL import Image

    scheme = url.split(":", 1)[0].lower()
    if scheme in ("http", "https"):
        raise ImageError(f"{where}: image_url is an {scheme} URL; this server is offline and takes images only "
                         f"as data: URIs ({_DATA_HINT})")
    header, comma, data = url.partition(",")
    if scheme != "data" or not comma or not header.lower().endswith(";base64"):
        shown = url if len(url) <= 40 else url[:40] + "..."
        raise ImageError(f"{where}: image_url must be a base64 data: URI ({_DATA_HINT}); got {shown!r}")
    try:
        raw = base64.b64decode("".join(data.split()), validate=True)
        with Image.open(io.BytesIO(raw)) as image:
            if image.format not in FORMATS:
                raise ValueError(f"{image.format} is not one of {', '.join(FORMATS)}")
            return image.convert("RGB")  # the first frame of a GIF; alpha and palettes flattened
    except (binascii.Error, ValueError) as exc:
        raise ImageError(f"{where}: image_url is not a decodable image: {exc}") from exc
    except Exception as exc:  # Pillow's plugins raise OSError, SyntaxError, DecompressionBombError... on bad bytes
        raise ImageError(f"{where}: image_url is not a decodable image: {type(exc).__name__}: {exc}") from exc


def decode_images(messages: list[dict[str, Any]]) -> list[Any]:
    """Every image of the conversation, in the order the template places them."""
    return [decode_image(_url(part, where), where) for where, part in image_parts(messages)]


def processor_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The messages as processor chat templates expect them: content always a list of parts, images as
    ``{"type": "image"}`` (the pixels go to the processor separately)."""
    converted = []
    for message in messages:
        content = message.get("content")
        if content is None:
            parts: list[Any] = []
        elif isinstance(content, str):
            parts = [{"type": "text", "text": content}]
        else:
            parts = [{"type": "image"} if isinstance(p, dict) and p.get("type") == "image_url" else p
                     for p in content]
        converted.append({**message, "content": parts})
    return converted


def load_processor(transformers: Any, config: Any, model_path: str, log: Callable[[str], None]) -> Any | None:
    """The processor of a vision-language model, or None for a text model (served with its tokenizer alone).

    A model counts as one when its config has a ``vision_config`` or its type is only an image-text-to-text
    model (Fuyu), and its processor has an image processor. Text models never reach AutoProcessor, so they
    load as they always have.
    """
    from transformers.models.auto import modeling_auto

    model_type = getattr(config, "model_type", None)
    vision_only = (model_type in getattr(modeling_auto, "MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES", {})
                   and model_type not in modeling_auto.MODEL_FOR_CAUSAL_LM_MAPPING_NAMES)
    if getattr(config, "vision_config", None) is None and not vision_only:
        return None
    log(f"loading processor from {model_path}")
    processor = transformers.AutoProcessor.from_pretrained(model_path)
    if getattr(processor, "image_processor", None) is None or getattr(processor, "tokenizer", None) is None:
        log("the model has a vision config but no image processor; serving it as a text model")
        return None
    return processor


def model_class(transformers: Any, config: Any) -> Any:
    """The auto class that loads a vision-language model: image-text-to-text where it knows the config (the
    usual case), else Vision2Seq (older transformers), else causal LM (models registered only there)."""
    names = ("AutoModelForImageTextToText", "AutoModelForVision2Seq", "AutoModelForCausalLM")
    classes = [getattr(transformers, name) for name in names if hasattr(transformers, name)]
    for auto in classes:
        mapping = getattr(auto, "_model_mapping", None)
        if mapping is not None and type(config) in mapping:
            return auto
    return classes[0]  # its error names the config class it does not know
