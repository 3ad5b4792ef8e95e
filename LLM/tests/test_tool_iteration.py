"""Migration check 3: a tool iteration through the loop (``python LLM/tests/test_tool_iteration.py``).

The default model (135M parameters) does not call tools on its own, so the check forces the first
call (``tool_choice="required"``: its output is held to a calculator call by a grammar), runs the
calculator, and lets the model answer from the result.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __name__ == "__main__":  # run as a plain script from the repository root
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import pytest

from LLM.core.inference import ToolEnabledInferenceConfig, run_tool_inference
from LLM.tests.migration_check import main, run_as_user


def check() -> list[str]:
    cfg = ToolEnabledInferenceConfig(prompt="What is 17*23? Use the calculator.", model_id="default",
                                     enable_tools=True, tools=["calculator"], tool_choice="required",
                                     max_iterations=3, max_new_tokens=256)
    result = run_tool_inference(cfg)
    first = result.steps[0]
    assert first.calls, f"the first step made no call (model wrote {first.raw_text[:120]!r})"
    call, source = first.calls[0]
    assert call.name == "calculator" and source == "fallback", (call.name, source)
    assert first.results, "the call was not run"
    assert len(result.steps) >= 2, "the loop did not go back to the model with the result"
    outcome = first.results[0]
    return [
        f"step 1 ({first.mode}, tool_choice {first.tool_choice}, grammar {first.constrained}): "
        f"calculator({call.arguments})",
        f"the calculator ran: {'ok' if outcome.ok else 'error'}: {outcome.text[:60]!r}",
        f"step {len(result.steps)} answered: {result.final_text.strip()[:60]!r}",
    ]


@pytest.mark.engine
def test_tool_iteration_script_passes(tmp_path: Path):
    out = run_as_user("test_tool_iteration.py", tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "the calculator ran" in out.stdout and out.stdout.rstrip().endswith("PASSED")


if __name__ == "__main__":
    sys.exit(main(check, "Tool iteration: a calculator call through the loop with the default model"))
