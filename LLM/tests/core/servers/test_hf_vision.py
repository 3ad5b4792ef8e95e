"""The transformers server serving a vision-language model: a tiny random LLaVA, run as a real subprocess."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from LLM.tests.core.servers.test_hf_server import (
    SERVED_NAME,
    ServerProcess,
    build_tiny_model,
    require_hf_stack,
    sse_payloads,
)
from LLM.tests.fakes.hf_vision_model import build_tiny_vlm

VLM_NAME = "tiny-vlm"


def png_data_uri(color: tuple[int, int, int], size: tuple[int, int] = (40, 30), fmt: str = "PNG") -> str:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format=fmt)
    mime = {"PNG": "png", "JPEG": "jpeg", "WEBP": "webp", "GIF": "gif"}[fmt]
    return f"data:image/{mime};base64,{base64.b64encode(buffer.getvalue()).decode()}"


def image_part(url: str) -> dict[str, Any]:
    return {"type": "image_url", "image_url": {"url": url}}


def ask(server: ServerProcess, model: str, content: Any, **body: Any) -> httpx.Response:
    payload = {"model": model, "messages": [{"role": "user", "content": content}], **body}
    return httpx.post(f"{server.url}/v1/chat/completions", json=payload, timeout=60)


@pytest.fixture(scope="module")
def vlm_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    require_hf_stack()
    pytest.importorskip("PIL")
    model_dir = tmp_path_factory.mktemp("tiny-vlm") / "model"
    build_tiny_vlm(model_dir)
    args = ["--model", str(model_dir), "--served-model-name", VLM_NAME, "--dtype", "float32"]
    proc = ServerProcess(args, tmp_path_factory.mktemp("vlm-log") / "server.log")
    try:
        yield proc.wait_ready()
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def text_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    require_hf_stack()
    root = tmp_path_factory.mktemp("tiny-text")
    build_tiny_model(root / "model", root / "adapter")
    args = ["--model", str(root / "model"), "--served-model-name", SERVED_NAME, "--dtype", "float32"]
    proc = ServerProcess(args, tmp_path_factory.mktemp("text-log") / "server.log")
    try:
        yield proc.wait_ready()
    finally:
        proc.stop()


def test_hf_vision_streams_an_answer_about_an_image_counting_its_tokens(vlm_server: ServerProcess) -> None:
    question = {"type": "text", "text": "what is in this picture?"}
    body = {"max_tokens": 6, "temperature": 0, "stream": True, "stream_options": {"include_usage": True}}
    response = ask(vlm_server, VLM_NAME, [image_part(png_data_uri((255, 0, 0))), question], **body)
    assert response.status_code == 200, response.text
    payloads = sse_payloads(response)
    assert payloads[-1] == "[DONE]"
    chunks = [json.loads(p) for p in payloads[:-1]]
    assert not any("error" in c for c in chunks), chunks
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text
    usage = chunks[-1]["usage"]
    assert usage["completion_tokens"] == 6
    without = ask(vlm_server, VLM_NAME, [question], max_tokens=1).json()["usage"]["prompt_tokens"]
    # 16 patches of the 32x32 tower, each an <image> token in place of the one placeholder.
    assert usage["prompt_tokens"] == without + 16


def test_hf_vision_two_images_in_one_conversation_are_both_used(vlm_server: ServerProcess) -> None:
    messages = [
        {"role": "user", "content": [image_part(png_data_uri((255, 0, 0))), {"type": "text", "text": "and"}]},
        {"role": "assistant", "content": "a red square"},
        {"role": "user", "content": [image_part(png_data_uri((0, 0, 255), (64, 64), "JPEG")),
                                     {"type": "text", "text": "this one?"}]},
    ]
    body = {"model": VLM_NAME, "messages": messages, "max_tokens": 4, "temperature": 0}
    response = httpx.post(f"{vlm_server.url}/v1/chat/completions", json=body, timeout=60)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["choices"][0]["message"]["content"]
    one = ask(vlm_server, VLM_NAME, [image_part(png_data_uri((255, 0, 0)))], max_tokens=1).json()["usage"]
    none = ask(vlm_server, VLM_NAME, [], max_tokens=1).json()["usage"]
    assert one["prompt_tokens"] - none["prompt_tokens"] == 16
    assert answer["usage"]["prompt_tokens"] > 2 * 16


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "GIF"])
def test_hf_vision_takes_each_image_format(vlm_server: ServerProcess, fmt: str) -> None:
    response = ask(vlm_server, VLM_NAME, [image_part(png_data_uri((0, 200, 0), fmt=fmt))], max_tokens=1)
    assert response.status_code == 200, response.text


def test_hf_vision_text_only_parts_are_joined_for_a_vlm(vlm_server: ServerProcess) -> None:
    parts = [{"type": "text", "text": "hello "}, {"type": "text", "text": "world"}]
    response = ask(vlm_server, VLM_NAME, parts, max_tokens=2, temperature=0)
    assert response.status_code == 200, response.text
    assert response.json()["usage"]["prompt_tokens"] == ask(
        vlm_server, VLM_NAME, "hello world", max_tokens=2).json()["usage"]["prompt_tokens"]


def test_hf_vision_models_card_says_vision(vlm_server: ServerProcess, text_server: ServerProcess) -> None:
    vlm_card = httpx.get(f"{vlm_server.url}/v1/models").json()["data"][0]
    text_card = httpx.get(f"{text_server.url}/v1/models").json()["data"][0]
    assert vlm_card["modalities"] == ["vision"]
    assert "modalities" not in text_card


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ([image_part("https://example.com/cat.png")], "messages[0].content[0]: image_url is an https URL; "
                                                      "this server is offline and takes images only as data: URIs"),
        ([{"type": "text", "text": "look"}, image_part("data:image/png;base64,!!not base64!!")],
         "messages[0].content[1]: image_url is not a decodable image"),
        ([image_part("data:image/png;base64," + base64.b64encode(b"not a picture").decode())],
         "messages[0].content[0]: image_url is not a decodable image"),
        ([image_part("file:///etc/passwd")], "messages[0].content[0]: image_url must be a base64 data: URI"),
        ([{"type": "image_url", "image_url": {}}], "messages[0].content[0].image_url.url: is required"),
    ],
    ids=["http-url", "bad-base64", "not-an-image", "file-url", "no-url"],
)
def test_hf_vision_bad_image_answers_400_naming_the_part(
    vlm_server: ServerProcess, content: list[dict[str, Any]], expected: str
) -> None:
    response = ask(vlm_server, VLM_NAME, content, max_tokens=1)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["code"] == 400
    assert expected in error["message"]


def test_hf_vision_bad_image_in_a_later_message_names_that_message(vlm_server: ServerProcess) -> None:
    messages = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"},
                {"role": "user", "content": [{"type": "text", "text": "x"}, image_part("data:image/png;base64,AAAA")]}]
    response = httpx.post(f"{vlm_server.url}/v1/chat/completions", timeout=60,
                          json={"model": VLM_NAME, "messages": messages, "max_tokens": 1})
    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith("messages[2].content[1]: image_url is not a decodable image")


def test_hf_vision_text_model_refuses_an_image_naming_vision(text_server: ServerProcess) -> None:
    content = [image_part(png_data_uri((255, 0, 0))), {"type": "text", "text": "what is this?"}]
    response = ask(text_server, SERVED_NAME, content, max_tokens=1)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["message"] == f"this model ({SERVED_NAME}) has no vision: it cannot take images"


def test_hf_vision_text_model_still_joins_text_parts(text_server: ServerProcess) -> None:
    parts = [{"type": "text", "text": "hello "}, {"type": "text", "text": "world"}]
    joined = ask(text_server, SERVED_NAME, parts, max_tokens=3, temperature=0)
    plain = ask(text_server, SERVED_NAME, "hello world", max_tokens=3, temperature=0)
    assert joined.status_code == 200, joined.text
    assert joined.json()["choices"][0]["message"] == plain.json()["choices"][0]["message"]


def test_hf_vision_model_folder_is_judged_a_confident_vision_model(tmp_path: Path) -> None:
    """The app offers images to a transformers folder whose config.json has a vision_config."""
    require_hf_stack()
    from LLM.core.models import CONFIDENT
    from LLM.core.models.inspection import inspect_path
    from LLM.core.models.report import build_report

    build_tiny_vlm(tmp_path / "model")
    report = build_report(model_id=None, path=str(tmp_path / "model"), info=inspect_path(tmp_path / "model"))
    vision = report.capabilities["vision"]
    assert vision.value is True and vision.confidence >= CONFIDENT
    assert "vision" in report.badges()


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("hi", [{"type": "text", "text": "hi"}]),
        (None, []),
        ([{"type": "text", "text": "a"}, image_part("data:image/png;base64,AAAA")],
         [{"type": "text", "text": "a"}, {"type": "image"}]),
    ],
    ids=["string-becomes-a-text-part", "null-becomes-no-parts", "image-url-becomes-an-image-slot"],
)
def test_processor_messages_gives_templates_lists_of_parts(content: Any, expected: list[dict[str, Any]]) -> None:
    from LLM.core.servers.hf_vision import processor_messages

    message = {"role": "user", "content": content, "name": "x"}
    assert processor_messages([message]) == [{"role": "user", "content": expected, "name": "x"}]


@pytest.mark.parametrize("fmt", ["PNG", "GIF"])
def test_decode_image_flattens_alpha_and_palettes_to_rgb(fmt: str) -> None:
    pytest.importorskip("PIL")
    from PIL import Image

    from LLM.core.servers.hf_vision import decode_image

    buffer = io.BytesIO()
    Image.new("RGBA" if fmt == "PNG" else "P", (5, 4)).save(buffer, format=fmt)
    image = decode_image(f"data:image/x;base64,{base64.b64encode(buffer.getvalue()).decode()}", "m")
    assert (image.mode, image.size) == ("RGB", (5, 4))


def test_decode_image_refuses_formats_beyond_png_jpeg_webp_gif() -> None:
    pytest.importorskip("PIL")
    from PIL import Image

    from LLM.core.servers.hf_vision import ImageError, decode_image

    buffer = io.BytesIO()
    Image.new("RGB", (2, 2)).save(buffer, format="BMP")
    with pytest.raises(ImageError, match=r"^messages\[0\]\.content\[2\]: image_url is not a decodable image: BMP"):
        decode_image(f"data:image/bmp;base64,{base64.b64encode(buffer.getvalue()).decode()}", "messages[0].content[2]")


def test_hf_vision_attached_photo_through_the_runtime_reaches_the_built_in_server(tmp_path: Path) -> None:
    """The product's path: a ``transformers`` entry on the tiny VLM, started by our server manager, judged a vision
    model from its folder, given ``files=[a photo]``: the image is prepared, sent as a data URI and answered."""
    require_hf_stack()
    import asyncio

    from LLM.core.config import parse_backends
    from LLM.core.inference import InferenceConfig, ainfer
    from LLM.core.runtime import Runtime
    from LLM.core.servers import ServerManager
    from LLM.tests.fakes.handle import free_port
    from LLM.tests.fakes.sample_files import photo_jpeg

    model_dir = tmp_path / "model"
    build_tiny_vlm(model_dir)
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(photo_jpeg((1200, 900)))
    config = parse_backends(f"models:\n  vlm:\n    backend: transformers\n    base_model: {json.dumps(str(model_dir))}\n"
                            f"    port: {free_port()}\n    context_size: 512\n    startup_timeout_s: 120\n"
                            "    image_max_side: 256\n", strict=True)
    runtime = Runtime(config, ServerManager(config, logs_dir=tmp_path / "logs", state_dir=tmp_path / "state"))

    async def go():
        try:
            seen = await ainfer(InferenceConfig(prompt="what is it?", model_id="vlm", files=[photo], max_new_tokens=4,
                                                temperature=0), runtime)
            plain = await ainfer(InferenceConfig(prompt="what is it?", model_id="vlm", max_new_tokens=4,
                                                 temperature=0), runtime)
            return seen, plain
        finally:
            await runtime.aclose()
            await runtime.servers.stop_all()

    seen, plain = asyncio.run(go())
    assert seen.error_message is None, seen.error_message
    assert seen.generated_tokens and seen.generated_tokens >= 1
    assert seen.prompt_tokens - plain.prompt_tokens >= 16  # the image's tokens (16 per image on this tiny model)
