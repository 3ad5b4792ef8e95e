"""The shipped tool-use eval suite on the default model (SmolLM2-135M on llama-server), in all three modes.

Runs ``LLM/core/evaluation/suites/default.jsonl`` the way ``llmctl eval tools -m default`` does
(greedy, 256 new tokens at most), on its own llama-server (a free port, temporary logs and state).
The table of every mode is printed as INFO lines, to be recorded. ``--modes constrained`` (etc.) runs a
subset, for a machine too slow or too shared to run all three in one go.

RESULT constrained_valid_call_rate (>= 0.95): constrained mode, the grammar holds every forced call
    to the offered tools' schemas, so a call should parse and validate every time.
RESULT eval_suite_s (<= 120): wall time of the whole suite in one mode, constrained (the server
    already started and warm).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from LLM.cli.evaluate import format_report  # noqa: E402
from LLM.core.config import SHIPPED_CONFIG, BackendsConfig, load_backends  # noqa: E402
from LLM.core.evaluation import (  # noqa: E402
    EvalFinished,
    ModeFinished,
    TaskFinished,
    TaskStarted,
    load_suite,
    parse_eval_modes,
    run_eval,
)
from LLM.core.runtime import Runtime  # noqa: E402
from LLM.core.servers import ServerManager  # noqa: E402
from LLM.tests.fakes.handle import free_port  # noqa: E402

# Constrained first: its RESULT lines come out as soon as it is done, even if a slow machine cuts the run short.
MODES = ("constrained", "fallback", "native")


async def main(modes: tuple[str, ...]) -> None:
    shipped = load_backends(SHIPPED_CONFIG, strict=True)
    entry = shipped.models["default"].model_copy(update={"port": free_port()})
    config = BackendsConfig(source=str(SHIPPED_CONFIG), models={"default": entry})
    suite = load_suite()
    # SIGTERM (a timeout, make) cancels the run like Ctrl-C does, so the finally below stops the server.
    main_task = asyncio.current_task()

    def on_sigterm() -> None:
        print("INFO stopped by SIGTERM", file=sys.stderr, flush=True)
        main_task.cancel()

    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, on_sigterm)
    with tempfile.TemporaryDirectory() as tmp:
        runtime = Runtime(config, ServerManager(config, logs_dir=Path(tmp) / "logs", state_dir=Path(tmp) / "state"))
        mode_seconds: dict[str, float] = {}
        report = None
        print(f"INFO load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} "
              f"({os.cpu_count()} CPUs)", flush=True)
        try:
            started = None
            async for event in run_eval(runtime, "default", suite, modes):
                if isinstance(event, TaskStarted):
                    if event.index == 1:
                        started = time.perf_counter()
                    sys.stderr.write(f"[{event.mode} {event.index}/{event.total}] {event.task_id} ... ")
                elif isinstance(event, TaskFinished):
                    outcome = event.outcome
                    verdict = "error" if outcome.error else "pass" if outcome.score.passed else "fail"
                    sys.stderr.write(f"{verdict} ({outcome.latency_ms:.0f} ms)" +
                                     (f": {outcome.error}\n" if outcome.error else "\n"))
                elif isinstance(event, ModeFinished):
                    summary = event.summary
                    mode_seconds[summary.mode] = time.perf_counter() - started
                    print(f"INFO {summary.mode}: {json.dumps(summary.to_dict())}, "
                          f"wall {mode_seconds[summary.mode]:.1f} s", flush=True)
                    if summary.mode == "constrained":
                        print(f"RESULT constrained_valid_call_rate {summary.valid_call_rate:.3f} >= 0.95")
                        print(f"RESULT eval_suite_s {mode_seconds['constrained']:.1f} <= 120", flush=True)
                elif isinstance(event, EvalFinished):
                    report = event.report
                sys.stderr.flush()
        finally:
            await runtime.aclose()
    print(f"INFO load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for line in format_report(report).splitlines():
        print(f"INFO {line}")
    for mode, seconds in mode_seconds.items():
        print(f"INFO suite wall time, {mode}: {seconds:.1f} s ({len(suite.tasks)} tasks)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="the default tool-use suite on the default model")
    parser.add_argument("--modes", default=",".join(MODES), help="a subset, to measure modes in separate runs")
    try:
        asyncio.run(main(parse_eval_modes(parser.parse_args().modes)))
    except asyncio.CancelledError:  # SIGTERM: the server is already stopped
        sys.exit(143)
