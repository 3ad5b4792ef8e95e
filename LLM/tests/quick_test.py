"""Migration check 1: the default model answers through the public API (``python LLM/tests/quick_test.py``)."""

from __future__ import annotations

import sys
from pathlib import Path

if __name__ == "__main__":  # run as a plain script from the repository root
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import pytest

from LLM.core.inference import InferenceConfig, infer, run_inference
from LLM.tests.migration_check import main, run_as_user


def check() -> list[str]:
    text = run_inference(InferenceConfig(prompt="What is the capital of France?", model_id="default",
                                         max_new_tokens=24))
    assert text.strip(), "run_inference returned no text"
    response = infer(InferenceConfig(prompt="Say hello.", model_id="default", max_new_tokens=8))
    assert response.error_message is None, response.error_message
    assert response.generated_tokens and response.prompt_tokens, "the engine reported no token counts"
    return [
        f"run_inference answered: {text.strip()[:60]!r}",
        f"infer reported {response.prompt_tokens} prompt + {response.generated_tokens} completion tokens, "
        f"{response.time_to_first_token_ms:.0f} ms to the first token",
    ]


@pytest.mark.engine
def test_quick_test_script_passes(tmp_path: Path):
    out = run_as_user("quick_test.py", tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "run_inference answered" in out.stdout and out.stdout.rstrip().endswith("PASSED")


if __name__ == "__main__":
    sys.exit(main(check, "Quick test: one answer from the default model"))
