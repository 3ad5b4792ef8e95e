"""Knowing a model without loading it: how fast, and how right.

* inspect_gguf_ms: the default model's file judged from scratch (a new Inspector, so nothing of ours is cached):
  its whole GGUF header read, its chat template probed in the sandbox, capabilities assessed, memory estimated
  and checked against this machine, i.e. what `llmctl models inspect FILE` computes. Median of 15 runs; the
  first run (cold for us, and for the OS page cache as far as a fresh process gets it) is printed beside it.
  get_capabilities("default") (the public API, the same answer) is printed for information.
* memory_estimate_error_pct: |estimate - reported| / reported for the default model at its configured context
  (2048), where "reported" is llama-server's own "memory breakdown" line (model + context + compute) after
  it loaded the model; 512 and 8192 are printed for information.

Run from the repository root: ``python bench/models.py`` (needs the built engine for the second figure).
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from LLM.core import get_capabilities, load_backends  # noqa: E402
from LLM.core.config import SHIPPED_CONFIG  # noqa: E402
from LLM.core.model_reports import report_for_path  # noqa: E402
from LLM.core.models.fit import estimate  # noqa: E402
from LLM.core.models.inspection import Inspector, inspect_path  # noqa: E402
from LLM.core.models.system import read_machine  # noqa: E402
from LLM.core.servers import find_llama_server  # noqa: E402
from LLM.core.servers.model_files import resolve_model_path  # noqa: E402
from LLM.tests.fakes.engine_memory import engine_reported_memory  # noqa: E402

RUNS = 15


def inspect_ms(model: Path) -> tuple[float, float]:
    machine = read_machine()
    times = []
    for _ in range(RUNS):
        started = time.perf_counter()
        report = report_for_path(model, Inspector(), context_size=2048, machine=machine)
        times.append((time.perf_counter() - started) * 1000)
        assert report.info is not None and report.capabilities
    return times[0], statistics.median(times)


def main() -> int:
    entry = load_backends(SHIPPED_CONFIG).models["default"]
    model = resolve_model_path(str(entry.base_model))
    first, median = inspect_ms(model)
    print(f"# first run {first:.1f} ms, median of {RUNS} {median:.1f} ms")
    print(f"RESULT inspect_gguf_ms {median:.1f} <= 50")
    started = time.perf_counter()
    caps = get_capabilities("default")  # the guide's API, through the process's runtime (starts no server)
    shown = ", ".join(f"{name} {'yes' if c.value else 'no'} {c.confidence:.0%} ({c.source})"
                      for name, c in caps.items() if name in ("chat", "tools", "system_role", "vision"))
    print(f"# get_capabilities('default') in {(time.perf_counter() - started) * 1000:.0f} ms: {shown}")
    binary = find_llama_server()
    if binary is None:
        print("# llama-server is not built (make install): memory_estimate_error_pct not measured")
        return 1
    info = inspect_path(model)
    errors = {}
    for context in (512, entry.context_size, 8192):
        reported = engine_reported_memory(Path(binary), model, context)
        need = estimate(info, context)
        errors[context] = abs(need.total - reported["total"]) / reported["total"] * 100
        print(f"# context {context}: estimate {need.total / 2**20:.1f} MiB ({need.describe()}), engine "
              f"{reported['total'] / 2**20:.0f} MiB (model {reported['model'] / 2**20:.0f} + context "
              f"{reported['context'] / 2**20:.0f} + compute {reported['compute'] / 2**20:.0f}): "
              f"{errors[context]:.1f}%")
    print(f"RESULT memory_estimate_error_pct {errors[entry.context_size]:.1f} <= 10")
    return 0


if __name__ == "__main__":
    sys.exit(main())
