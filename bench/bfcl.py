"""The BFCL report card's runner on the default model (SmolLM2-135M on llama-server), constrained mode, simple category.

Data: ``--bfcl-dir DIR`` (a copy of BFCL's ``bfcl_eval/data``), else ``bench/data/bfcl`` (sixteen tasks in
BFCL's simple_python layout, written for this bench, so it runs offline). Each pass runs every task into a
fresh store (nothing skipped); sequential (one request at a time) and concurrent (up to the server's slots,
the runner's default) passes alternate, ROUNDS of each, so both see the same machine.

RESULT bfcl_tasks_per_s (>= 0.5): tasks scored per second by the concurrent runner, the server warm.
RESULT bfcl_parallel_speedup (>= 1.3): sequential wall time over concurrent wall time, same tasks.

``--table CATEGORIES`` also runs those categories (``--limit`` each) in constrained, fallback and native
mode and prints the per-category table as INFO lines (what bench/RESULTS.md records for the default model).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from LLM.cli.report_cards import format_runs  # noqa: E402
from LLM.core.config import SHIPPED_CONFIG, BackendsConfig, load_backends  # noqa: E402
from LLM.core.evaluation import (  # noqa: E402
    BfclTaskDone,
    BfclTaskError,
    EvalStore,
    arun_bfcl,
    load_bfcl,
    parse_bfcl_categories,
)
from LLM.core.runtime import Runtime  # noqa: E402
from LLM.core.servers import ServerManager  # noqa: E402
from LLM.tests.fakes.handle import free_port  # noqa: E402

BENCH_DATA = Path(__file__).resolve().parent / "data" / "bfcl"
ROUNDS = 2


async def timed_pass(runtime: Runtime, data, store_path: Path, concurrency: int | None) -> float:
    with EvalStore(store_path) as store:
        started = time.perf_counter()
        await arun_bfcl(runtime, "default", data, store, ("constrained",), rerun=True, concurrency=concurrency)
        return time.perf_counter() - started


async def main(args: argparse.Namespace) -> None:
    shipped = load_backends(SHIPPED_CONFIG, strict=True)
    entry = shipped.models["default"].model_copy(update={"port": free_port()})
    config = BackendsConfig(source=str(SHIPPED_CONFIG), models={"default": entry})
    data = load_bfcl(args.bfcl_dir or BENCH_DATA, ("simple_python",), args.limit)
    main_task = asyncio.current_task()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, main_task.cancel)  # make's timeout: stop cleanly
    with tempfile.TemporaryDirectory() as tmp:
        runtime = Runtime(config, ServerManager(config, logs_dir=Path(tmp) / "logs", state_dir=Path(tmp) / "state"))
        try:
            async with runtime.in_use("default"):
                await runtime.client_for("default")
                props = await runtime.engine_props("default")
            slots = props.total_slots if props else None
            print(f"INFO data {data.folder} ({len(data.tasks)} simple_python tasks, version {data.version}); "
                  f"llama-server slots {slots}; load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} "
                  f"({os.cpu_count()} CPUs)", flush=True)
            await timed_pass(runtime, data, Path(tmp) / "warm.sqlite3", None)  # warm: caches, first-run costs
            sequential, concurrent = [], []
            for round_no in range(ROUNDS):
                sequential.append(await timed_pass(runtime, data, Path(tmp) / f"s{round_no}.sqlite3", 1))
                concurrent.append(await timed_pass(runtime, data, Path(tmp) / f"c{round_no}.sqlite3", None))
                print(f"INFO round {round_no + 1}: sequential {sequential[-1]:.2f} s, concurrent "
                      f"{concurrent[-1]:.2f} s", flush=True)
            with EvalStore(Path(tmp) / f"c{ROUNDS - 1}.sqlite3") as store:
                (run,) = store.runs()
                print(f"INFO accuracy of the last concurrent pass: {run.overall:.3f} "
                      f"({run.categories['simple_python'].passed}/{run.tasks})")
            print(f"RESULT bfcl_tasks_per_s {len(data.tasks) * ROUNDS / sum(concurrent):.2f} >= 0.5")
            print(f"RESULT bfcl_parallel_speedup {sum(sequential) / sum(concurrent):.2f} >= 1.3", flush=True)
            if args.table:
                await table(runtime, args, Path(tmp) / "table.sqlite3")
        finally:
            await runtime.aclose()


def progress(event: object) -> None:
    if isinstance(event, BfclTaskDone):
        sys.stderr.write(f"[{event.mode} {event.done}/{event.total}] {event.result.task_id} "
                         f"{'pass' if event.result.passed else event.result.error_type} "
                         f"({event.result.latency_ms:.0f} ms)\n")
    elif isinstance(event, BfclTaskError):
        sys.stderr.write(f"[{event.mode}] {event.task_id} error: {event.error}\n")


async def table(runtime: Runtime, args: argparse.Namespace, store_path: Path) -> None:
    data = load_bfcl(args.bfcl_dir or BENCH_DATA, parse_bfcl_categories(args.table), args.limit)
    started = time.perf_counter()
    with EvalStore(store_path) as store:
        runs = await arun_bfcl(runtime, "default", data, store, ("constrained", "fallback", "native"),
                               on_event=progress)
    print(f"INFO per-category table ({len(data.tasks)} tasks a mode, {time.perf_counter() - started:.0f} s, data "
          f"{data.folder}, version {data.version}):")
    for line in format_runs(runs).splitlines():
        print(f"INFO {line}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="the BFCL runner on the default model")
    parser.add_argument("--bfcl-dir", help="a copy of BFCL's data (default: the bench's own simple_python tasks)")
    parser.add_argument("--limit", type=int, help="the first N tasks of each category")
    parser.add_argument("--table", help="also these categories (comma-separated) in all three modes, as a table")
    try:
        asyncio.run(main(parser.parse_args()))
    except asyncio.CancelledError:
        sys.exit(143)
