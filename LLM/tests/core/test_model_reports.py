"""A configured model judged before loading: files + yaml + engine + machine in one report, and what this machine
lacks to serve it."""

from __future__ import annotations

from pathlib import Path

import pytest

from LLM.core.config import SHIPPED_CONFIG, load_backends, parse_backends
from LLM.core.model_reports import report_for_entry, report_for_path, requirement_problems
from LLM.core.models.inspection import Inspector
from LLM.core.models.system import Machine
from LLM.core.protocol.props import EngineProps
from LLM.tests.fakes.gguf_models import CHATML, HERMES_TOOLS, THINKING, write_mmproj_gguf, write_model_gguf

GIB = 2**30
ROOMY = Machine(total_memory=32 * GIB, available_memory=16 * GIB, cpu_flags=frozenset({"avx", "avx2", "fma", "f16c",
                                                                                         "bmi2"}), cores=8)


def test_the_default_model_is_judged_from_its_files_without_loading_it():
    entry = load_backends(SHIPPED_CONFIG).models["default"]
    report = report_for_entry(entry, Inspector(), machine=ROOMY)
    assert report.info is not None and report.info.architecture == "llama"
    assert report.capabilities["tools"].value is False and report.capabilities["tools"].source == "template"
    assert report.capabilities["chat"].value is True
    assert report.fit is not None and report.fit.fits and report.context_size == entry.context_size
    assert report.badges() == []


def test_what_the_yaml_declares_and_the_engine_reports_win_over_the_files(tmp_path: Path):
    model = write_model_gguf(tmp_path / "m.gguf", template=CHATML)
    config = parse_backends(f"models:\n  m:\n    base_model: {model}\n    port: 9200\n    mmproj: {model}\n"
                            "    capabilities: {reasoning: true}\n", base_dir=tmp_path)
    engine = EngineProps(supports_tools=True, modalities=("vision",))
    report = report_for_entry(config.models["m"], Inspector(), engine=engine, machine=ROOMY)
    caps = report.capabilities
    assert (caps["reasoning"].value, caps["reasoning"].source) == (True, "declared")
    assert (caps["vision"].value, caps["vision"].source) == (True, "declared")  # the entry names a projector
    assert (caps["tools"].value, caps["tools"].source) == (True, "engine")
    assert report.badges() == ["tools", "vision", "reasoning"]


def test_a_missing_model_file_is_a_problem_in_the_report_not_an_error(tmp_path: Path):
    config = parse_backends("models:\n  gone:\n    base_model: /no/such/file.gguf\n    port: 9200\n")
    report = report_for_entry(config.models["gone"], Inspector(), machine=ROOMY)
    assert report.info is None and "/no/such/file.gguf" in (report.problem or "") and report.fit is None
    assert report.to_json()["problem"] == report.problem


def test_requirements_name_what_this_machine_lacks(tmp_path: Path):
    config = parse_backends(f"models:\n  gguf:\n    base_model: {tmp_path}/m.gguf\n    port: 9200\n"
                            f"  big:\n    backend: vllm\n    base_model: {tmp_path}\n    port: 9201\n")
    old_cpu = Machine(total_memory=8 * GIB, available_memory=4 * GIB, cpu_flags=frozenset({"sse4_2", "avx"}))
    problems = requirement_problems(config.models["gguf"], old_cpu)
    assert any("avx2" in p and "llmctl engine build" in p for p in problems)
    assert not any("avx2" in p for p in requirement_problems(config.models["gguf"], ROOMY))
    assert any("vLLM" in p for p in requirement_problems(config.models["big"], ROOMY))


@pytest.mark.parametrize(("template", "vocab", "expected"), [
    (HERMES_TOOLS, ("<tool_call>", "</tool_call>"), {"chat": True, "tools": True, "reasoning": False}),
    (THINKING, ("<think>", "</think>"), {"chat": True, "tools": False, "reasoning": True}),
    (CHATML, ("a", "b"), {"chat": True, "tools": False, "reasoning": False, "system_role": True}),
    (None, ("a", "b"), {"chat": False, "tools": False}),
], ids=["hermes-tools", "think", "chatml-no-tools", "base-no-template"])
def test_tiny_ggufs_are_told_apart_by_what_their_templates_do(tmp_path: Path, template, vocab, expected):
    model = write_model_gguf(tmp_path / "model.gguf", template=template, vocab=vocab)
    report = report_for_path(model, Inspector(), machine=ROOMY)
    got = {name: report.capabilities[name].value for name in expected}
    assert got == expected
    assert all(report.capabilities[name].confidence >= 0.5 for name in expected)


def test_a_projector_file_is_vision_from_its_metadata(tmp_path: Path):
    report = report_for_path(write_mmproj_gguf(tmp_path / "mmproj.gguf"), Inspector(), machine=ROOMY)
    assert report.capabilities["vision"].value and report.capabilities["vision"].source == "metadata"
    assert report.memory is None  # not a model to serve on its own: no estimate
