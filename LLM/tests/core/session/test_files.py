"""Files with a request, through the public API and the chat session, against the scripted fake server: what goes
over the wire, what is refused before anything is sent, and what a tool step keeps of it."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path

import pytest

from LLM.core.attachments import Attachment, expand, load_attachment
from LLM.core.config import parse_backends
from LLM.core.errors import VisionNotSupportedError
from LLM.core.inference import InferenceConfig, ToolEnabledInferenceConfig, ainfer, arun_tool_inference
from LLM.core.runtime import Runtime
from LLM.core.session import ChatSession
from LLM.core.session.streams import stream_inference
from LLM.core.tools.loop import LoopNotice
from LLM.tests.fakes.handle import FakeServerHandle
from LLM.tests.fakes.sample_files import image_bytes, pdf_bytes, photo_jpeg, zip_bytes


def config(url: str, tmp_path: Path):
    model = f"    backend: openai\n    server_url: \"{url}/v1\"\n    model_name: fake-model\n"
    text = (f"models:\n  seer:\n{model}    capabilities: {{vision: true}}\n    image_max_side: 512\n"
            f"  reader:\n{model}    capabilities: {{vision: false}}\n"
            f"  tiny:\n{model}    capabilities: {{vision: false}}\n    context_size: 700\n"
            f"  writer:\n{model}    model_type: base\n")
    return parse_backends(text, source="test.yaml", strict=True, base_dir=tmp_path)


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    paths = {"photo": tmp_path / "photo.jpg", "report": tmp_path / "report.pdf", "big": tmp_path / "big.txt",
             "zip": tmp_path / "archive.zip"}
    paths["photo"].write_bytes(photo_jpeg((1600, 1200)))
    paths["report"].write_bytes(pdf_bytes(["Alpha: the first page.", "Beta: the second page."]))
    paths["big"].write_bytes(("the quick brown fox " * 500).encode())
    paths["zip"].write_bytes(zip_bytes())
    return paths


def run(fake: FakeServerHandle, tmp_path: Path, coro_of):
    async def go():
        runtime = Runtime(config(fake.url, tmp_path))
        try:
            return await coro_of(runtime)
        finally:
            await runtime.aclose()

    return asyncio.run(go())


def sent_content(fake: FakeServerHandle) -> list:
    return fake.requests()[-1]["body"]["messages"][-1]["content"]


def test_files_send_an_image_and_a_pdf_to_a_vision_model(fake_server: FakeServerHandle, tmp_path: Path, files):
    fake_server.script({"text": "A gradient."})
    cfg = InferenceConfig(prompt="What is in these?", model_id="seer", files=[files["photo"], files["report"]])
    response = run(fake_server, tmp_path, lambda rt: ainfer(cfg, rt))
    assert response.error_message is None and response.generated_text == "A gradient."
    image, text = sent_content(fake_server)
    url = image["image_url"]["url"]
    assert url.startswith("data:image/jpeg;base64,")
    from PIL import Image
    import io

    assert Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).size == (512, 384)  # image_max_side
    assert text["type"] == "text" and text["text"].startswith("File: report.pdf (PDF, 2 pages")
    assert "[page 2]\nBeta: the second page." in text["text"] and text["text"].endswith("What is in these?")


def test_files_given_as_name_and_bytes_are_sent_like_paths(fake_server: FakeServerHandle, tmp_path: Path):
    fake_server.script({"text": "ok"})
    cfg = InferenceConfig(prompt="Read it", model_id="reader", files=[("notes.md", b"# Plan\n\nShip it.")])
    assert run(fake_server, tmp_path, lambda rt: ainfer(cfg, rt)).error_message is None
    assert sent_content(fake_server) == "File: notes.md (Markdown, 16 B)\n```markdown\n# Plan\n\nShip it.\n```\n\nRead it"


def test_an_image_for_a_model_without_vision_is_refused_before_any_request(fake_server, tmp_path, files):
    cfg = InferenceConfig(prompt="Describe", model_id="reader", files=[files["photo"]])
    response = run(fake_server, tmp_path, lambda rt: ainfer(cfg, rt))
    assert response.error_type == "VisionNotSupportedError"
    assert response.error_message == ("reader has no vision capability: it cannot take the image photo.jpg; "
                                      "models of this config with vision: seer")
    assert fake_server.requests() == []


def test_a_base_model_refuses_files_before_any_request(fake_server, tmp_path, files):
    cfg = InferenceConfig(prompt="Once upon a time", model_id="writer", files=[files["report"]])
    response = run(fake_server, tmp_path, lambda rt: ainfer(cfg, rt))
    assert response.error_type == "AttachmentError"
    assert response.error_message == "writer is a base model: it continues text and takes no files (report.pdf)"
    assert fake_server.requests() == []


def test_an_unsupported_file_is_refused_naming_its_type(fake_server, tmp_path, files):
    cfg = InferenceConfig(prompt="Open", model_id="seer", files=[files["zip"]])
    response = run(fake_server, tmp_path, lambda rt: ainfer(cfg, rt))
    assert response.error_type == "UnsupportedAttachmentError" and "archive.zip: a ZIP archive" in response.error_message
    assert fake_server.requests() == []


def test_a_document_larger_than_the_context_is_cut_with_a_notice(fake_server, tmp_path, files):
    fake_server.script({"text": "ok"})
    cfg = InferenceConfig(prompt="Count the foxes", model_id="tiny", files=[files["big"]])

    async def events(rt):
        return [event async for event in stream_inference(cfg, rt)]

    seen = run(fake_server, tmp_path, events)
    notice = seen[0]
    assert isinstance(notice, LoopNotice) and notice.kind == "attachment"
    assert notice.message.startswith("big.txt: cut to fit the context: kept the first")
    content = sent_content(fake_server)
    assert len(content) < 525 * 3 and content.endswith("Count the foxes")  # the usable context: 75% of 700


def test_a_tool_step_keeps_placeholders_and_curl_gets_the_files_back(fake_server, tmp_path, files):
    fake_server.script({"text": "A picture and a report."})
    photo, report = load_attachment(files["photo"]), load_attachment(files["report"])
    cfg = ToolEnabledInferenceConfig(prompt="Look", model_id="seer", files=[photo, report], enable_tools=True,
                                     tool_mode="native")

    async def go(rt):
        async def tool_run():
            return await arun_tool_inference(cfg, rt)
        return await tool_run()

    result = run(fake_server, tmp_path, go)
    kept = result.steps[0].request_body
    url = kept["messages"][-1]["content"][0]["image_url"]["url"]
    assert url.startswith("[attachment photo.jpg · image/jpeg · ") and url.endswith("· sent as 512×384]")
    assert "base64" not in str(kept) and "Beta: the second page" not in str(kept)
    from LLM.core.attachments import MemoryBlobs

    sent = fake_server.requests()[-1]["body"]
    assert expand(kept, MemoryBlobs([photo, report]), 512)["messages"] == sent["messages"]


def test_session_sends_files_with_the_message_and_keeps_them_for_the_next_turn(fake_server, tmp_path, files):
    fake_server.script({"text": "Seen."}, {"text": "Still seen."})
    photo = load_attachment(files["photo"])

    async def go(rt):
        session = ChatSession(rt)
        session.set_model("seer")
        await session.check_files([photo])
        session.send("", [photo])  # files alone are a message
        first = await session.wait()
        session.send("And now?")
        second = await session.wait()
        user = session.conversation.messages[0]
        return first, second, user

    first, second, user = run(fake_server, tmp_path, go)
    assert (first.content, second.content) == ("Seen.", "Still seen.")
    assert [(f.name, f.kind, f.sha256) for f in user.files] == [("photo.jpg", "image", photo.sha256)]
    earlier = fake_server.requests()[-1]["body"]["messages"][0]["content"]
    assert earlier[0]["type"] == "image_url" and len(earlier) == 1  # the image goes again as history


def test_session_check_files_refuses_an_image_for_a_model_without_vision(fake_server, tmp_path, files):
    photo = load_attachment(files["photo"])

    async def go(rt):
        session = ChatSession(rt)
        session.set_model("reader")
        with pytest.raises(VisionNotSupportedError, match="models of this config with vision: seer"):
            await session.check_files([photo])
        await session.check_files([load_attachment(files["report"])])  # a document is fine

    run(fake_server, tmp_path, go)
    assert fake_server.requests() == []


def test_inference_config_files_must_be_paths_pairs_or_attachments() -> None:
    from LLM.core.errors import ConfigError

    with pytest.raises(ConfigError, match=r"files\[1\]: a path, a \(name, bytes\) pair or an Attachment, not int"):
        InferenceConfig(prompt="x", model_id="m", files=["a.txt", 3])
    InferenceConfig(prompt="x", model_id="m", files=[Path("a.txt"), ("b.md", b"#"),
                                                     Attachment.from_bytes(image_bytes("PNG"), "c.png")])
