"""llama-server with a vision projector (``mmproj``): an image in a chat request reaches the model, through our runtime.

The model is a tiny random SmolVLM built and converted by the fixture (LLM/tests/fakes/gguf_vision_model.py): its
answers are noise, so the tests pin what the engine reports, never what the model says. Each test starts its servers
through our own ServerManager (the launcher adds ``--mmproj``) on free ports, on one engine thread, and stops them.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from LLM.core.config import BackendsConfig, load_backends
from LLM.core.errors import BackendStatusError
from LLM.core.events import Done, Usage
from LLM.core.runtime import Runtime
from LLM.core.servers import ServerManager
from LLM.core.servers.llama_build import find_llama_server
from LLM.tests.fakes.gguf_vision_model import TOKENS_PER_TILE, ConverterUnavailable, build_tiny_vision_gguf
from LLM.tests.fakes.handle import free_port

LLAMA_SERVER = find_llama_server()
pytestmark = [
    pytest.mark.engine,
    pytest.mark.skipif(LLAMA_SERVER is None, reason="llama-server is not built (make test builds it)"),
]
QUESTION = "What is this?"
PARAMS = {"max_tokens": 4, "temperature": 0}


@pytest.fixture(scope="module")
def tiny_vision(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    try:
        return build_tiny_vision_gguf(tmp_path_factory.mktemp("tiny-vision"))
    except ConverterUnavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture
def config(tiny_vision: tuple[Path, Path], tmp_path: Path) -> BackendsConfig:
    """The tiny model twice: 'seeing' with its projector, 'blind' without (mmproj keeps them on two servers)."""
    model, mmproj = tiny_vision
    common = (f"    backend: llama_cpp\n    base_model: {json.dumps(str(model))}\n"
              "    threads: 1\n    context_size: 2048\n")
    path = tmp_path / "llm_backends.yaml"
    path.write_text(f"models:\n  seeing:\n{common}    port: {free_port()}\n    mmproj: {json.dumps(str(mmproj))}\n"
                    f"  blind:\n{common}    port: {free_port()}\n", encoding="utf-8")
    return load_backends(path, strict=True)


@pytest.fixture
def runtime(config: BackendsConfig, tmp_path: Path) -> Iterator[Runtime]:
    manager = ServerManager(config, logs_dir=tmp_path / "logs", state_dir=tmp_path / "state")
    runtime = Runtime(config, manager)
    yield runtime
    # Whatever a test left behind is stopped here (each server's whole process group): no orphan engines.
    asyncio.run(runtime.aclose())
    asyncio.run(manager.stop_all())


def png_data_uri(width: int = 48, height: int = 40) -> str:
    """A small PNG (a colour gradient, so no two patches are alike) as a data: URI."""
    from PIL import Image

    image = Image.new("RGB", (width, height))
    image.putdata([(x * 255 // width, y * 255 // height, 128) for y in range(height) for x in range(width)])
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def with_image(text: str) -> list[dict]:
    return [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": png_data_uri()}},
                                         {"type": "text", "text": text}]}]


def text_only(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


async def ask(runtime: Runtime, model_id: str, messages: list[dict]) -> tuple[Usage, Done]:
    """One streamed chat through our client; the engine's usage and the end of the answer."""
    client = await runtime.client_for(model_id)
    events = [event async for event in client.chat(messages, dict(PARAMS))]
    return next(e for e in events if isinstance(e, Usage)), next(e for e in events if isinstance(e, Done))


def test_llama_vision_image_reaches_the_projector_and_is_answered(runtime: Runtime):
    async def go():
        with_picture = await ask(runtime, "seeing", with_image(QUESTION))
        without = await ask(runtime, "seeing", text_only(QUESTION))
        return with_picture, without, await runtime.engine_props("seeing"), await runtime.capabilities("seeing")

    (usage, done), (plain_usage, _), props, capabilities = asyncio.run(go())
    assert props is not None and "vision" in props.modalities
    assert capabilities["vision"].value is True
    assert done.finish_reason in ("stop", "length") and usage.completion_tokens and usage.completion_tokens >= 1
    # The image became prompt tokens: the projector's embeddings of its overview and of its one tile (a 48x40 image
    # fits one 32x32 tile), plus their tags; a marker token alone would add far fewer.
    assert usage.prompt_tokens and plain_usage.prompt_tokens
    assert usage.prompt_tokens - plain_usage.prompt_tokens >= 2 * TOKENS_PER_TILE


def test_llama_vision_server_without_mmproj_refuses_an_image(runtime: Runtime):
    async def go():
        await runtime.client_for("blind")
        props, capabilities = await runtime.engine_props("blind"), await runtime.capabilities("blind")
        with pytest.raises(BackendStatusError) as refused:
            await ask(runtime, "blind", with_image(QUESTION))
        answered = await ask(runtime, "blind", text_only(QUESTION))  # the refusal left the server serving
        return props, capabilities, refused.value, answered

    props, capabilities, error, (_, done) = asyncio.run(go())
    assert props is not None and "vision" not in props.modalities
    assert capabilities["vision"].value is False
    # llama-server (b0-0c1e570) answers HTTP 500, type server_error, whether the request streams or not.
    assert error.status_code == 500 and "image input is not supported" in error.body and "mmproj" in error.body
    assert done.finish_reason in ("stop", "length")


def test_llama_vision_attached_files_reach_the_projector_through_the_inference_api(runtime: Runtime, tmp_path: Path):
    """The product's path: ``files=[...]`` on the request, the image prepared and sent as a data URI part."""
    from LLM.core.inference import InferenceConfig, ainfer

    photo = tmp_path / "gradient.png"
    photo.write_bytes(base64.b64decode(png_data_uri().split(",", 1)[1]))
    notes = tmp_path / "notes.md"
    notes.write_text("# Notes\n\nA gradient from black to red.\n", encoding="utf-8")

    async def go():
        seen = await ainfer(InferenceConfig(prompt=QUESTION, model_id="seeing", files=[photo, notes], max_new_tokens=4,
                                            temperature=0), runtime)
        plain = await ainfer(InferenceConfig(prompt=QUESTION, model_id="seeing", files=[notes], max_new_tokens=4,
                                             temperature=0), runtime)
        blind = await ainfer(InferenceConfig(prompt=QUESTION, model_id="blind", files=[photo]), runtime)
        return seen, plain, blind, runtime.servers.server("blind").state.value

    seen, plain, blind, blind_state = asyncio.run(go())
    assert seen.error_message is None and plain.error_message is None
    assert seen.prompt_tokens - plain.prompt_tokens >= 2 * TOKENS_PER_TILE  # the image went as an image
    assert blind.error_type == "VisionNotSupportedError"
    assert "models of this config with vision: seeing" in blind.error_message
    assert blind_state == "stopped"  # refused before its server started
