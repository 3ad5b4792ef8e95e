"""Files with the real engine and the default model (SmolLM2-135M, text only): a document is read and answered, an
image is refused before the server is even asked (the model has no mmproj, so no vision)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from LLM.core.inference import InferenceConfig, ainfer
from LLM.tests.core.servers.test_engine import Engine
from LLM.tests.core.servers.test_engine import pytestmark as engine_marks
from LLM.tests.fakes.sample_files import image_bytes, pdf_bytes

pytestmark = engine_marks


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    e = Engine(tmp_path)
    yield e
    asyncio.run(e.manager().stop_all())


def test_default_model_reads_a_pdf_and_refuses_an_image_before_starting(engine: Engine, tmp_path: Path) -> None:
    pdf = tmp_path / "menu.pdf"
    pdf.write_bytes(pdf_bytes(["Soup of the day: tomato.", "Dessert: apple pie."]))
    photo = tmp_path / "photo.png"
    photo.write_bytes(image_bytes("PNG"))

    async def go():
        runtime = engine.runtime()
        try:
            refused = await ainfer(InferenceConfig(prompt="Describe it.", model_id="default", files=[photo]), runtime)
            started_for_image = runtime.servers.server("default").state.value
            answer = await ainfer(InferenceConfig(prompt="What is the soup of the day?", model_id="default",
                                                  files=[pdf], max_new_tokens=24, temperature=0), runtime)
            return refused, started_for_image, answer
        finally:
            await runtime.aclose()

    refused, state, answer = asyncio.run(go())
    assert refused.error_type == "VisionNotSupportedError"
    assert refused.error_message.startswith("default has no vision capability: it cannot take the image photo.png")
    assert state == "stopped"  # refused before the server was started
    assert answer.error_message is None and answer.generated_text.strip()
    # The PDF's text reached the model: its prompt is much longer than the question alone.
    assert answer.prompt_tokens is not None and answer.prompt_tokens > 40
