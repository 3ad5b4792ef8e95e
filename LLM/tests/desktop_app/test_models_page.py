"""The Models page offscreen: the catalog ranked per task, your models with badges and fit, adding a GGUF through
the dialog into a temporary llm_backends.yaml, and downloads from the fake hub (progress, cancel, gated, offline).
No model server is started: everything is read from files."""

from __future__ import annotations

import json
import shutil
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import shiboken6

from LLM.core import Runtime, load_backends
from LLM.core.config import SHIPPED_CONFIG
from LLM.core.models import Machine
from LLM.core.models.catalog import parse_catalog
from LLM.desktop_app.context import AppContext
from LLM.desktop_app.pages.models_page import ModelsPage
from LLM.tests.desktop_app.harness import ScriptedInteraction, click, open_window, openai_yaml, run, settle, wait_until
from LLM.tests.fakes import fake_hub
from LLM.tests.fakes.gguf_models import HERMES_TOOLS, write_mmproj_gguf, write_model_gguf
from LLM.tests.fakes.handle import free_port
from LLM.tests.fakes.lora_assets import write_gguf_lora

GIB = 2**30
MACHINE = Machine(total_memory=16 * GIB, available_memory=8 * GIB, gpu_memory=None,
                  cpu_flags=frozenset(), cores=2)  # no flags: cannot tell, so no warning
CAPS = {"chat": True, "tools": False, "parallel_tool_calls": False, "reasoning": False, "system_role": True,
        "vision": False, "embedding": False}


def _entry(entry_id: str, repo: str, file: str, size: int, parameters: int, tasks: list[str], *,
           tools: bool = False, gated: bool = False) -> dict:
    return {"id": entry_id, "name": entry_id.replace("-", " ").title(), "repo": repo,
            "files": {"Q8_0": {"file": file, "size": size}}, "default_quant": "Q8_0", "parameters": parameters,
            "context_length": 4096, "kv_bytes_per_token": 1024, "capabilities": {**CAPS, "tools": tools},
            "tool_format": "hermes" if tools else None, "tasks": tasks, "license": "apache-2.0", "gated": gated}


CATALOG = parse_catalog({"version": 1, "updated": "2026-01-01", "models": [
    _entry("tiny-chat", "test/tiny-chat", "tiny-chat-q8.gguf", 50_000_000, 100_000_000, ["chat"]),
    _entry("tiny-tools", "test/tiny-tools", "tiny-tools-q8.gguf", 2_200_000, 1_000_000_000, ["tools", "chat"],
           tools=True),
    _entry("gated-tools", "test/gated-tools", "gated-q8.gguf", 2_200_000, 500_000_000, ["tools"], tools=True,
           gated=True),
    _entry("huge-tools", "test/huge-tools", "huge-q8.gguf", 200_000_000_000, 400_000_000_000, ["tools"],
           tools=True),
]}, "test catalog")


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    """A copy of the shipped llm_backends.yaml: the page writes here, never to the shipped or the user's file."""
    path = tmp_path / "llm_backends.yaml"
    shutil.copyfile(SHIPPED_CONFIG, path)
    return path


@asynccontextmanager
async def models_page(config_path: Path, tmp_path: Path, **options) -> AsyncIterator[ModelsPage]:
    """The page alone, on a runtime without a server manager (it must start no model server)."""
    ctx = AppContext(runtime=Runtime(load_backends(config_path)), config_path=config_path,
                     interaction=options.pop("interaction", ScriptedInteraction()))
    options.setdefault("catalog", CATALOG)
    options.setdefault("machine", MACHINE)
    options.setdefault("models_dir", tmp_path / "models")
    page = ModelsPage(ctx, **options)
    page.resize(1000, 700)
    page.show()
    try:
        yield page
    finally:
        page.stop("test over")
        await ctx.tasks.cancel_all()
        await ctx.runtime.aclose()
        page.close()
        await settle()
        shiboken6.delete(page)


def written(page: ModelsPage) -> list[str]:
    paths: list[str] = []
    page.config_written.connect(paths.append)
    return paths


async def reload(page: ModelsPage) -> None:
    """What the window does on config_written: adopt the file, then refresh the page."""
    await page.ctx.runtime.reload(load_backends(page.ctx.config_path))
    page.refresh_config()


# ----- the catalog -----
def test_models_page_ranks_the_catalog_for_the_task_and_reranks_on_change(qloop, config_path, tmp_path):
    async def go():
        async with models_page(config_path, tmp_path) as page:
            assert page.task() == "tools"
            await wait_until(lambda: page.catalog_order(), what="the catalog ranked")
            assert page.machine_label.text() == "This machine: 8.0 GiB free of 16.0 GiB · 2 cores · GPU: none"
            assert page.cpu_warning.isHidden()
            assert page.catalog_order() == ["tiny-tools", "gated-tools", "huge-tools"]
            row = page.rows["tiny-tools"]
            assert row.facts.text() == "1B · Q8_0 · 2 MiB"
            assert row.fit.text() == "fits" and row.badge_texts() == ["tools"]
            assert "best tool model that fits" in row.reason.text()
            assert row.action.text() == "Download" and row.action.isVisible()
            assert page.rows["gated-tools"].badge_texts() == ["tools", "gated"]
            huge = page.rows["huge-tools"]
            assert huge.fit.text().startswith("too big: needs ") and huge.fit.text().endswith("GiB")
            page.set_task("chat")
            await wait_until(lambda: page.catalog_order() == ["tiny-tools", "tiny-chat"], what="re-ranked for chat")
            assert huge.isHidden() and page.rows["tiny-chat"].isVisible()
            assert page.rows["tiny-chat"].badge_texts() == []

    run(qloop, go())


def test_models_page_warns_when_the_cpu_lacks_what_the_engine_needs(qloop, config_path, tmp_path):
    old = Machine(8 * GIB, 6 * GIB, None, frozenset({"sse4_2", "avx"}), 1)  # a CPU of about 2011

    async def go():
        async with models_page(config_path, tmp_path, machine=old) as page:
            await wait_until(lambda: page.catalog_order(), what="the catalog ranked")
            assert page.machine_label.text() == "This machine: 6.0 GiB free of 8.0 GiB · 1 core · GPU: none"
            assert not page.cpu_warning.isHidden()
            assert page.cpu_warning.text().startswith("This CPU lacks AVX2, FMA, F16C")
            assert "will not run here" in page.cpu_warning.text()

    run(qloop, go())


# ----- your models -----
def test_models_page_shows_the_default_model_with_its_badges_and_fit(qloop, config_path, tmp_path):
    """The default SmolLM2: no tools badge (its template cannot render tools), and it fits."""
    async def go():
        async with models_page(config_path, tmp_path) as page:
            await wait_until(lambda: "default" in page.reports, what="the default model judged")
            assert "tools" not in page.reports["default"].badges()
            item = page._model_item("default")
            assert item.text(0) == "SmolLM2 135M Instruct (built-in) · default"
            assert "tools" not in item.text(1).split()
            assert item.text(2).startswith("fits: needs about ")
            assert "tools: no" in item.toolTip(1)
            page.select_model("default")
            assert page.use_button.isEnabled() and page.remove_button.isEnabled()
            used: list[str] = []
            page.use_model.connect(used.append)
            click(page.use_button)
            assert used == ["default"]

    run(qloop, go())


# ----- adding -----
def test_models_page_adds_a_gguf_through_the_dialog_keeping_the_comments(qloop, config_path, tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    gguf = write_model_gguf(models / "tiny-hermes.gguf", template=HERMES_TOOLS, name="tiny hermes")
    shipped_comment = SHIPPED_CONFIG.read_text().splitlines()[0]
    interaction = ScriptedInteraction(removes=(True,))

    async def go():
        async with models_page(config_path, tmp_path, interaction=interaction) as page:
            paths = written(page)
            await wait_until(lambda: page.file_add_button(gguf) is not None, what="the unused file listed")
            assert page.unused_files == [gguf]
            click(page.file_add_button(gguf))
            dialog = await wait_until(lambda: page.add_dialog, what="the add-model dialog")
            assert dialog.isVisible()
            assert dialog.facts["Kind"].text() == "GGUF model"
            assert dialog.facts["Architecture"].text() == "llama"
            assert dialog.facts["Native context"].text() == "2,048 tokens"
            rows = dialog.capability_rows()
            assert [r[0] for r in rows][:2] == ["chat", "tools"]
            assert all(r[2].endswith("%") and r[3] for r in rows)
            assert dialog.fit_label.text().startswith("Fits: needs about")
            assert dialog.id_edit.text() == "tiny-hermes" and dialog.port_spin.value() != 9100
            # A taken id: the sentence in the dialog, nothing written, the fields as typed.
            before = config_path.read_text()
            dialog.id_edit.setText("default")
            dialog.name_edit.setText("My tiny model")
            dialog.accept()
            assert "already exists" in dialog.error_text() and dialog.isVisible()
            assert config_path.read_text() == before and dialog.name_edit.text() == "My tiny model"
            # A smaller context: the fit line follows.
            memory = dialog.memory_label.text()
            dialog.context_spin.setValue(1024)
            await wait_until(lambda: dialog.memory_label.text() != memory, what="the fit for 1024 tokens")
            assert "1,024 tokens" in dialog.memory_label.text()
            dialog.id_edit.setText("tiny")
            dialog.accept()
            await wait_until(lambda: page.add_dialog is None, what="the dialog closed")
            assert paths == [str(config_path)]
            text = config_path.read_text()
            assert text.startswith(shipped_comment) and "# Example: an already running Ollama" in text
            config = load_backends(config_path)
            entry = config.models["tiny"]
            assert (entry.base_model, entry.display_name, entry.context_size) == (str(gguf), "My tiny model", 1024)
            assert "default" in config.models
            # The window reloads; the model is listed, its file no longer unused; then Remove asks and removes it.
            await reload(page)
            await wait_until(lambda: "tiny" in page.reports, what="the new model judged")
            assert page.unused_files == []
            page.select_model("tiny")
            click(page.remove_button)
            await wait_until(lambda: len(paths) == 2, what="the entry removed")
            assert [q[:2] for q in interaction.questions] == [("remove_model", "tiny")]
            assert "tiny:" not in config_path.read_text() and "tiny" not in load_backends(config_path).models
            assert config_path.read_text().startswith(shipped_comment)

    run(qloop, go())


@pytest.mark.parametrize(("write", "kind", "sentence", "hint"), [
    (lambda folder: write_mmproj_gguf(folder / "mmproj-tiny.gguf"), "multimodal projector (mmproj)",
     "a multimodal projector, not a model", "--mmproj"),
    (lambda folder: write_gguf_lora(folder / "tiny-lora.gguf", seed=1), "LoRA adapter (GGUF)",
     "a LoRA adapter", "adapter_dir"),
], ids=["projector", "gguf-lora"])
def test_models_page_add_dialog_says_what_to_do_with_no_model_of_its_own(qloop, config_path, tmp_path, write, kind,
                                                                         sentence, hint):
    chosen = ScriptedInteraction(paths=(write(tmp_path),))

    async def go():
        async with models_page(config_path, tmp_path, interaction=chosen) as page:
            paths = written(page)
            click(page.add_button)
            dialog = await wait_until(lambda: page.add_dialog, what="the add-model dialog")
            assert chosen.path_kinds == ["model"]
            assert dialog.facts["Kind"].text() == kind
            assert sentence in dialog.error_text() and hint in dialog.error_text()
            assert "\n" not in dialog.error_text()
            assert not dialog.add_button.isEnabled() and not dialog.id_edit.isEnabled()
            dialog.accept()
            assert paths == [] and dialog.isVisible()
            dialog.reject()

    run(qloop, go())


def test_models_page_says_why_a_file_is_no_model(qloop, config_path, tmp_path):
    junk = tmp_path / "notes.gguf"
    junk.write_bytes(b"not a gguf at all")

    async def go():
        async with models_page(config_path, tmp_path, interaction=ScriptedInteraction(paths=(junk,))) as page:
            click(page.add_button)
            await wait_until(lambda: str(junk) in page.status.text(), what="the inspection problem")
            assert page.add_dialog is None and page.add_button.isEnabled()

    run(qloop, go())


def test_models_page_adds_an_hf_folder_chosen_as_a_folder(qloop, config_path, tmp_path):
    """Add folder…: an HF model folder (config.json + safetensors) gets the transformers backend."""
    folder = tmp_path / "Tiny-HF-Instruct"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({
        "architectures": ["LlamaForCausalLM"], "hidden_size": 64, "num_attention_heads": 4, "num_hidden_layers": 2,
        "intermediate_size": 128, "max_position_embeddings": 2048, "vocab_size": 100}))
    (folder / "tokenizer_config.json").write_text(json.dumps({"chat_template": HERMES_TOOLS}))
    header = json.dumps({"w": {"dtype": "F16", "shape": [64, 64], "data_offsets": [0, 8192]}}).encode()
    (folder / "model.safetensors").write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * 8192)
    interaction = ScriptedInteraction(paths=(folder,))

    async def go():
        async with models_page(config_path, tmp_path, interaction=interaction) as page:
            paths = written(page)
            click(page.add_folder_button)
            dialog = await wait_until(lambda: page.add_dialog, what="the add-model dialog")
            assert interaction.questions[0][0] == "folder" and interaction.path_kinds == ["model"]
            assert dialog.facts["Kind"].text() == "Hugging Face model folder"
            assert dialog.report.capabilities["tools"].value is True
            dialog.accept()
            await wait_until(lambda: paths, what="the entry written")
            entry = load_backends(config_path).models[dialog.id_edit.text()]
            assert entry.backend == "transformers" and entry.base_model == str(folder)

    run(qloop, go())


# ----- downloads from the fake hub -----


@pytest.fixture
def hub_root(tmp_path: Path) -> Path:
    root = tmp_path / "hub"
    for repo, name in (("test/tiny-tools", "tiny-tools-q8.gguf"), ("test/gated-tools", "gated-q8.gguf")):
        (root / repo).mkdir(parents=True)
        # ~2 MB: a few hundred kB/s of throttle makes the download last long enough to watch and cancel.
        write_model_gguf(root / repo / name, template=HERMES_TOOLS, layers=4, embedding=512)
    return root


@pytest.fixture
def hub_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    def point_at(url: str) -> None:
        monkeypatch.setenv("HF_ENDPOINT", url)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    return point_at


def test_models_page_downloads_with_progress_then_offers_add(qloop, config_path, tmp_path, hub_root, hub_env):
    with fake_hub.FakeHub(hub_root, "--throttle", "1500000") as hub:
        hub_env(hub.url)

        async def go():
            async with models_page(config_path, tmp_path) as page:
                await wait_until(lambda: "tiny-tools" in page.rows, what="the catalog ranked")
                row = page.rows["tiny-tools"]
                click(row.action)
                assert row.state == "downloading" and row.cancel_button.isVisible() and row.action.isHidden()
                await wait_until(lambda: " of " in row.progress_text.text(), what="progress shown")
                assert "MiB" in row.progress_text.text()
                await wait_until(lambda: row.state == "done", timeout=30, what="the download done")
                assert row.action.text() == "Add…" and row.action.isVisible() and row.progress.isHidden()
                assert row.path == tmp_path / "models" / "test__tiny-tools" / "tiny-tools-q8.gguf"
                assert row.path.is_file()
                click(row.action)
                dialog = await wait_until(lambda: page.add_dialog, what="the add-model dialog")
                assert dialog.report.path == str(row.path) and dialog.id_edit.text() == "tiny-tools"  # the catalog id
                dialog.accept()
                await wait_until(lambda: row.state == "added", what="the row marked added")
                assert "tiny-tools" in load_backends(config_path).models
                assert not row.action.isEnabled() and row.action.text() == "Added"

        run(qloop, go())


def test_models_page_cancel_stops_a_download_and_resume_finishes_it(qloop, config_path, tmp_path, hub_root,
                                                                     hub_env):
    with fake_hub.FakeHub(hub_root, "--throttle", "200000") as hub:
        hub_env(hub.url)

        async def go():
            async with models_page(config_path, tmp_path) as page:
                await wait_until(lambda: "tiny-tools" in page.rows, what="the catalog ranked")
                row = page.rows["tiny-tools"]
                click(row.action)
                await wait_until(lambda: row.progress.value() > 0, what="some bytes arrived")
                click(row.cancel_button)
                await wait_until(lambda: row.state == "cancelled", timeout=15, what="the download cancelled")
                assert "cancelled" in row.message.text() and row.message.isVisible()
                assert row.action.text() == "Resume" and row.cancel_button.isHidden()
                assert not (tmp_path / "models" / "test__tiny-tools" / "tiny-tools-q8.gguf").exists()
                hub.control(throttle_bps=0)
                click(row.action)
                await wait_until(lambda: row.state == "done", timeout=30, what="the download resumed and done")
                ranged = [e for e in hub.gets("test/tiny-tools/tiny-tools-q8.gguf") if e.get("range")]
                assert ranged, "the second start resumed with a Range request"

        run(qloop, go())


def test_models_page_closing_cancels_downloads(qloop, config_path, tmp_path, hub_root, hub_env):
    with fake_hub.FakeHub(hub_root, "--throttle", "100000") as hub:
        hub_env(hub.url)

        async def go():
            async with models_page(config_path, tmp_path) as page:
                await wait_until(lambda: "tiny-tools" in page.rows, what="the catalog ranked")
                row = page.rows["tiny-tools"]
                click(row.action)
                await wait_until(lambda: row.progress.value() > 0, what="some bytes arrived")
                cancel = row.cancel
                page.close()
                assert cancel is not None and cancel.is_set()
                await wait_until(lambda: row.state != "downloading", timeout=15, what="the download stopped")
                assert row.state == "cancelled"

        run(qloop, go())


def test_models_page_shows_the_access_sentence_for_a_gated_repo(qloop, config_path, tmp_path, hub_root, hub_env):
    with fake_hub.FakeHub(hub_root, "--gated", "test/gated-tools") as hub:
        hub_env(hub.url)

        async def go():
            async with models_page(config_path, tmp_path) as page:
                await wait_until(lambda: "gated-tools" in page.rows, what="the catalog ranked")
                row = page.rows["gated-tools"]
                click(row.action)
                await wait_until(lambda: row.state == "failed", timeout=20, what="the download refused")
                assert "gated repository" in row.message.text() and "HF_TOKEN" in row.message.text()
                assert row.action.text() == "Retry" and row.action.isEnabled()

        run(qloop, go())


def test_models_page_offline_download_says_so_and_the_catalog_still_works(qloop, config_path, tmp_path,
                                                                          monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    async def go():
        async with models_page(config_path, tmp_path) as page:
            await wait_until(lambda: "tiny-tools" in page.rows, what="the catalog ranked offline")
            row = page.rows["tiny-tools"]
            click(row.action)
            await wait_until(lambda: row.state == "failed", what="the offline answer")
            assert "cannot be reached" in row.message.text() and "offline" in row.message.text()

    run(qloop, go())



# ----- the dropdown -----
def test_dropdown_badges_say_what_each_model_can_do_before_it_loads(qloop, tmp_path, fake_server):
    """A GGUF whose template renders tools gets the tools badge in the model list, and its tooltip says how
    sure the app is and where that came from; nothing is loaded for it."""
    model = write_model_gguf(tmp_path / "tiny-hermes.gguf", template=HERMES_TOOLS, vocab=("<tool_call>", "x"))
    extra = f"  tiny:\n    base_model: {model}\n    port: {free_port()}\n    display_name: Tiny Hermes\n"

    async def go():
        async with open_window(tmp_path, openai_yaml(fake_server.url, extra=extra)) as window:
            await wait_until(lambda: "tiny" in window.selector.reports, what="the model judged")
            text = window.selector.item_text("tiny")
            assert text.split("  ·  ")[:3] == ["Tiny Hermes", "llama_cpp", "tools"]
            tip = window.selector.item_tooltip("tiny")
            assert "tools: yes (" in tip and "% sure, from template" in tip and "memory: needs about" in tip
            assert window.selector.item_state("tiny") == "stopped"

    run(qloop, go())
