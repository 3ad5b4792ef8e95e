"""Files from the terminal: ``llmctl run --file`` and ``/attach`` in ``llmctl chat``, against the fake server."""

from __future__ import annotations

from pathlib import Path

from LLM.tests.cli.harness import llmctl
from LLM.tests.fakes.handle import FakeServerHandle
from LLM.tests.fakes.sample_files import image_bytes, pdf_bytes


def config(tmp_path: Path, server: FakeServerHandle) -> Path:
    model = f"    backend: openai\n    server_url: {server.url}/v1\n    model_name: fake-model\n"
    path = tmp_path / "backends.yaml"
    path.write_text(f"models:\n  seer:\n{model}    capabilities: {{vision: true}}\n"
                    f"  reader:\n{model}    capabilities: {{vision: false}}\n")
    return path


def files(tmp_path: Path) -> tuple[Path, Path]:
    photo, pdf = tmp_path / "photo.png", tmp_path / "doc.pdf"
    photo.write_bytes(image_bytes("PNG"))
    pdf.write_bytes(pdf_bytes(["The password is swordfish.", "Second page."]))
    return photo, pdf


def test_cli_run_file_sends_each_file_and_saves_them(fake_server: FakeServerHandle, tmp_path: Path) -> None:
    fake_server.script({"text": "A red image and a password."})
    photo, pdf = files(tmp_path)
    result = llmctl(config(tmp_path, fake_server), "run", "-m", "seer", "--file", str(photo), "-f", str(pdf),
                    "What do you see?")
    assert result.returncode == 0, result.stderr
    assert "A red image and a password." in result.stdout
    image, text = fake_server.requests()[-1]["body"]["messages"][-1]["content"]
    assert image["image_url"]["url"].startswith("data:image/png;base64,")
    assert "swordfish" in text["text"] and text["text"].endswith("What do you see?")
    stored = list((tmp_path / "data" / "attachments").glob("??/*"))
    assert len(stored) == 2  # each file once, beside the history
    listed = llmctl(config(tmp_path, fake_server), "history", "list", "--json")
    shown = llmctl(config(tmp_path, fake_server), "history", "show", __import__("json").loads(listed.stdout)[0]["id"])
    assert "you> What do you see?\n[file photo.png · image/png · " in shown.stdout
    assert "[file doc.pdf · application/pdf · " in shown.stdout


def test_cli_run_file_refusals_are_one_line_and_send_nothing(fake_server: FakeServerHandle, tmp_path: Path) -> None:
    photo, _ = files(tmp_path)
    archive = tmp_path / "a.zip"
    archive.write_bytes(b"PK\x03\x04" + b"\x00" * 60)
    cfg = config(tmp_path, fake_server)
    cases = [(["-m", "reader", "--file", str(photo)], "reader has no vision capability: it cannot take the image "
              "photo.png; models of this config with vision: seer"),
             (["-m", "seer", "--file", str(archive)], "a.zip: a ZIP archive"),
             (["-m", "seer", "--file", str(tmp_path / "nope.txt")], "nope.txt: no such file")]
    for args, words in cases:
        result = llmctl(cfg, "run", *args, "Describe")
        assert result.returncode != 0 and words in result.stderr, result.stderr
        assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert fake_server.requests() == []
    assert not (tmp_path / "data" / "history.sqlite3").exists() or \
        "Describe" not in llmctl(cfg, "history", "list").stdout


def test_cli_chat_attach_adds_files_to_the_next_message_only(fake_server: FakeServerHandle, tmp_path: Path) -> None:
    fake_server.script({"text": "Read it."}, {"text": "Plain."})
    photo, pdf = files(tmp_path)
    script = (f"/attach {pdf}\n/attach\n/attach {tmp_path / 'missing.png'}\nWhat is the password?\n"
              f"And without files?\n/exit\n")
    result = llmctl(config(tmp_path, fake_server), "chat", "-m", "reader", stdin=script)
    assert result.returncode == 0, result.stderr
    assert "(attached doc.pdf: PDF, " in result.stdout and "  doc.pdf (PDF, " in result.stdout
    assert "error: " in result.stdout and "missing.png: no such file" in result.stdout
    first, second = (r["body"]["messages"] for r in fake_server.requests())
    assert "swordfish" in first[-1]["content"] and first[-1]["content"].endswith("What is the password?")
    assert second[-1]["content"] == "And without files?"
    assert "swordfish" in second[0]["content"]  # the earlier message keeps its file in the history


def test_cli_chat_attach_refuses_an_image_for_a_model_without_vision(fake_server, tmp_path: Path) -> None:
    photo, _ = files(tmp_path)
    result = llmctl(config(tmp_path, fake_server), "chat", "-m", "reader", stdin=f"/attach {photo}\n/attach\n/exit\n")
    assert "error: reader has no vision capability" in result.stdout
    assert "(no file attached" in result.stdout
