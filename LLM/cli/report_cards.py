"""llmctl eval tools --suite bfcl, and eval list / show / compare: tool-calling report cards kept in the history."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from contextlib import aclosing
from typing import Any

from ..core import ConfigError, Runtime
from ..core.evaluation import (
    BFCL_CATEGORIES,
    BfclModeDone,
    BfclModeStarted,
    BfclTaskDone,
    BfclTaskError,
    EvalStore,
    RunSummary,
    fetch_bfcl,
    load_bfcl,
    parse_bfcl_categories,
    parse_eval_modes,
    run_bfcl,
)

MAX_FAILURES_SHOWN = 40


def add_bfcl_arguments(tools: argparse.ArgumentParser) -> None:
    tools.add_argument("--categories", help="bfcl: comma-separated BFCL categories (simple_python or simple, multiple, "
                       "parallel, parallel_multiple, irrelevance, live_simple, ...; default: all single-turn ones)")
    tools.add_argument("--limit", type=int, help="bfcl: the first N tasks of each category, in file order")
    tools.add_argument("--bfcl-dir", help="bfcl: a local copy of BFCL's data (its bfcl_eval/data folder) instead of "
                       "the dataset fetched from the Hugging Face Hub")
    tools.add_argument("--rerun", action="store_true", help="bfcl: compute again what the history already has")
    tools.add_argument("--concurrency", type=int, help="bfcl: requests at once (default: the server's slots)")


def add_report_card_parsers(kinds: argparse._SubParsersAction) -> None:
    listing = kinds.add_parser("list", help="report card runs kept in the history, newest first")
    listing.add_argument("-m", "--model", help="only this model's runs")
    listing.add_argument("--json", action="store_true")
    show = kinds.add_parser("show", help="one run: per-category accuracy and its failed tasks")
    show.add_argument("run", type=int, help="a run number (llmctl eval list)")
    show.add_argument("--failures", type=int, default=MAX_FAILURES_SHOWN, help="how many failed tasks to show")
    show.add_argument("--json", action="store_true")
    compare = kinds.add_parser("compare", help="two or more runs side by side, per category")
    compare.add_argument("runs", type=int, nargs="+", help="run numbers (llmctl eval list)")
    compare.add_argument("--json", action="store_true")


async def cmd_bfcl(runtime: Runtime, args: argparse.Namespace) -> int:
    modes = parse_eval_modes(args.modes)
    categories = parse_bfcl_categories(args.categories) if args.categories else None  # None: every one there is
    if args.limit is not None and args.limit < 1:
        raise ConfigError(f"--limit: expected a positive number of tasks, got {args.limit}")
    if args.concurrency is not None and args.concurrency < 1:
        raise ConfigError(f"--concurrency: expected at least 1, got {args.concurrency}")
    runtime.entry(args.model)  # an unknown model fails before any download
    folder = args.bfcl_dir or await asyncio.to_thread(fetch_bfcl, categories or BFCL_CATEGORIES)
    data = load_bfcl(folder, categories, args.limit)
    _progress(f"eval tools: model {args.model}, BFCL data {data.version} from {data.folder} ({len(data.tasks)} tasks "
              f"in {len(data.categories())} categories), modes {', '.join(modes)}\n")
    summaries: list[RunSummary] = []
    started = time.perf_counter()
    with EvalStore() as store:
        async with aclosing(run_bfcl(runtime, args.model, data, store, modes, rerun=args.rerun,
                                     concurrency=args.concurrency)) as events:
            async for event in events:
                if isinstance(event, BfclModeStarted):
                    kept = f", {event.skipped} already in the history" if event.skipped else ""
                    _progress(f"[{event.mode}] run {event.run_id}: {event.total} tasks{kept}\n")
                elif isinstance(event, BfclTaskDone):
                    verdict = "pass" if event.result.passed else f"fail ({event.result.error_type})"
                    _progress(f"[{event.mode} {event.done}/{event.total}] {event.result.task_id} {verdict}\n")
                elif isinstance(event, BfclTaskError):
                    _progress(f"[{event.mode}] {event.task_id} error, not kept (the next run retries it): "
                              f"{event.error}\n")
                elif isinstance(event, BfclModeDone):
                    summaries.append(event.summary)
                    if event.errors:
                        _progress(f"[{event.summary.key.mode}] {event.errors} tasks failed with errors; run again "
                                  "to retry them\n")
        asked = {t.id for t in data.tasks}
        failures = {s.id: [r for r in store.results(s.id, failed_only=True) if r.task_id in asked] for s in summaries}
    _progress(f"done in {time.perf_counter() - started:.1f} s\n")
    if args.json:
        print(json.dumps(bfcl_document(args.model, data.version, summaries, failures), indent=2, ensure_ascii=False))
    else:
        print(format_runs(summaries))
        for summary in summaries:
            print(format_failures(summary, failures[summary.id], MAX_FAILURES_SHOWN))
    return 0


def bfcl_document(model: str, data_version: str, summaries: list[RunSummary],
                  failures: dict[int, list[Any]]) -> dict[str, Any]:
    """The ``--json`` document: ``{"modes": {MODE: {"overall", "categories": {C: {"tasks", "accuracy"}}}}}`` and
    beside it what the tool eval prints (model, suite, the failed tasks)."""
    return {
        "model": model,
        "suite": "bfcl",
        "data_version": data_version,
        "modes": {s.key.mode: {"run": s.id, "engine": s.key.engine, "adapter": s.key.adapter or None,
                               "overall": s.overall, "tasks": s.tasks,
                               "categories": {name: {"tasks": c.tasks, "accuracy": c.accuracy}
                                              for name, c in s.categories.items()}} for s in summaries},
        "tasks": [{"mode": s.key.mode, "id": r.task_id, "category": r.category, "passed": False,
                   "error_type": r.error_type, "reason": r.reason, "calls": r.calls}
                  for s in summaries for r in failures[s.id]],
    }


def cmd_report_cards(args: argparse.Namespace) -> int:
    """eval list / show / compare: the history only; no config, nothing started."""
    with EvalStore() as store:
        if args.kind == "list":
            runs = store.runs(args.model)
            if args.json:
                print(json.dumps([r.to_dict() for r in runs], indent=2, ensure_ascii=False))
            elif not runs:
                print("no report cards yet: llmctl eval tools -m MODEL --suite bfcl makes one")
            else:
                print(format_list(runs))
            return 0
        if args.kind == "show":
            run = store.run(args.run)
            failed = store.results(args.run, failed_only=True)
            if args.json:
                print(json.dumps({**run.to_dict(), "failures": [_failure(r) for r in failed]}, indent=2,
                                 ensure_ascii=False))
            else:
                print(format_runs([run]))
                print(format_failures(run, failed, args.failures))
            return 0
        runs = [store.run(run_id) for run_id in args.runs]
        if args.json:
            print(json.dumps([r.to_dict() for r in runs], indent=2, ensure_ascii=False))
        else:
            print(format_runs(runs))
        return 0


def _failure(result: Any) -> dict[str, Any]:
    return {"id": result.task_id, "category": result.category, "error_type": result.error_type,
            "reason": result.reason, "calls": result.calls, "raw_output": result.raw_output, "request": result.request}


def format_list(runs: list[RunSummary]) -> str:
    lines = [f"{'run':>4}  {'date':<16}  {'model':<24} {'mode':<12} {'tasks':>5} {'overall':>7}  engine, data"]
    for run in runs:
        model = run.key.model_id + (f" +{run.key.adapter}" if run.key.adapter else "")
        lines.append(f"{run.id:>4}  {time.strftime('%Y-%m-%d %H:%M', time.localtime(run.updated)):<16}  "
                     f"{_clip(model, 24):<24} {run.key.mode:<12} {run.tasks:>5} {_pct(run.overall):>7}  "
                     f"{run.key.engine}, {run.key.data_version}")
    return "\n".join(lines)


def format_runs(runs: list[RunSummary]) -> str:
    """Runs side by side: a column per run, a row per category, the overall figure last."""
    categories = list(dict.fromkeys(name for run in runs for name in run.categories))
    heads = [f"#{r.id} {r.key.model_id} {r.key.mode}" for r in runs]
    width = max([12, *(len(h) for h in heads)])
    lines = [f"{'category':<24}" + "".join(f"  {h:>{width}}" for h in heads)]
    for name in categories:
        cells = []
        for run in runs:
            score = run.categories.get(name)
            cells.append("-" if score is None else f"{_pct(score.accuracy)} ({score.passed}/{score.tasks})")
        lines.append(f"{name:<24}" + "".join(f"  {c:>{width}}" for c in cells))
    lines.append(f"{'overall':<24}" + "".join(f"  {_pct(r.overall):>{width}}" for r in runs))
    return "\n".join(lines)


def format_failures(run: RunSummary, failed: list[Any], limit: int) -> str:
    if not failed:
        return ""
    lines = [f"\nfailures (run {run.id}, {run.key.mode}, {len(failed)} of {run.tasks}):"]
    for result in failed[:limit]:
        lines.append(f"  {result.task_id}: {result.error_type}: {_clip(result.reason, 160)}")
    if len(failed) > limit:
        lines.append(f"  ... and {len(failed) - limit} more (llmctl eval show {run.id} --json has them all)")
    return "\n".join(lines)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _progress(text: str) -> None:
    sys.stderr.write(text)
    sys.stderr.flush()
