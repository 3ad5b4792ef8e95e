"""llmctl eval tools: a suite of tool-use tasks per tool mode; a table (or JSON) on stdout, progress on stderr."""

from __future__ import annotations

import argparse
import json
import sys
from contextlib import aclosing

from ..core import ConfigError, Runtime
from ..core.evaluation import (
    EVAL_MODES,
    EvalFinished,
    EvalReport,
    ModeSummary,
    TaskFinished,
    TaskStarted,
    load_suite,
    parse_eval_modes,
    run_eval,
)

from .report_cards import add_bfcl_arguments, add_report_card_parsers, cmd_bfcl

MAX_FAILURES_SHOWN = 40  # per mode: enough to see the pattern, not a wall of text


def add_eval_parser(sub: argparse._SubParsersAction) -> None:
    evaluate = sub.add_parser("eval", help="evaluate a model")
    kinds = evaluate.add_subparsers(dest="kind", required=True)
    tools = kinds.add_parser("tools", help="how well a model calls tools, per tool mode, on a suite of tasks")
    tools.add_argument("-m", "--model", required=True)
    tools.add_argument("--modes", default=",".join(EVAL_MODES),
                       help=f"comma-separated, from {', '.join(EVAL_MODES)} (default: all)")
    tools.add_argument("--suite", help="a JSONL suite file (default: the shipped suite), or 'bfcl' for the Berkeley "
                       "Function Calling Leaderboard's data (a report card kept in the history)")
    tools.add_argument("--json", action="store_true", help="print the results as JSON")
    add_bfcl_arguments(tools)
    add_report_card_parsers(kinds)


async def cmd_eval(runtime: Runtime, args: argparse.Namespace) -> int:
    if args.suite == "bfcl":
        return await cmd_bfcl(runtime, args)
    if args.categories or args.limit is not None or args.bfcl_dir or args.rerun or args.concurrency:
        raise ConfigError("--categories, --limit, --bfcl-dir, --rerun and --concurrency go with --suite bfcl")
    modes = parse_eval_modes(args.modes)
    suite = load_suite(args.suite)  # a bad file fails here, before any server starts
    calls = sum(t.expects_call for t in suite.tasks)
    print(f"eval tools: model {args.model}, suite {suite.name} ({len(suite.tasks)} tasks: {calls} expect a call, "
          f"{len(suite.tasks) - calls} expect none), modes {', '.join(modes)}", file=sys.stderr, flush=True)
    report: EvalReport | None = None
    async with aclosing(run_eval(runtime, args.model, suite, modes)) as events:
        async for event in events:
            if isinstance(event, TaskStarted):
                _progress(f"[{event.mode} {event.index}/{event.total}] {event.task_id} ... ")
            elif isinstance(event, TaskFinished):
                outcome = event.outcome
                verdict = "error" if outcome.error else "pass" if outcome.score.passed else "fail"
                _progress(f"{verdict} ({outcome.latency_ms:.0f} ms)\n")
            elif isinstance(event, EvalFinished):
                report = event.report
    assert report is not None  # run_eval always ends with EvalFinished
    if args.json:
        print(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
    else:
        print(format_report(report))
    return 0


def _progress(text: str) -> None:
    sys.stderr.write(text)
    sys.stderr.flush()


def format_report(report: EvalReport) -> str:
    """The table (a row per mode), then each mode's failed tasks, briefly."""
    lines = [f"model {report.model}, suite {report.suite}", "",
             f"{'mode':<12} {'tasks':>5} {'valid calls':>11} {'tool acc':>8} {'args acc':>8} {'abstention':>10} "
             f"{'median ms':>9}"]
    for summary in report.summaries.values():
        lines.append(_row(summary))
    for mode, summary in report.summaries.items():
        failed = [o for o in report.outcomes if o.mode == mode and not o.score.passed]
        for note in summary.notes:
            lines.append(f"\n[{mode}] note: {note}")
        if not failed:
            continue
        lines.append(f"\nfailures ({mode}, {len(failed)} of {summary.tasks}):")
        for outcome in failed[:MAX_FAILURES_SHOWN]:
            why = "; ".join(outcome.score.problems) or "failed"
            label = f"{outcome.task.id} [{outcome.task.category}]" if outcome.task.category else outcome.task.id
            lines.append(f"  {label}: {_clip(why, 160)}")
        if len(failed) > MAX_FAILURES_SHOWN:
            lines.append(f"  ... and {len(failed) - MAX_FAILURES_SHOWN} more (--json has them all)")
    return "\n".join(lines)


def _row(s: ModeSummary) -> str:
    latency = "-" if s.median_latency_ms is None else f"{s.median_latency_ms:.0f}"
    return (f"{s.mode:<12} {s.tasks:>5} {_rate(s.valid_call_rate):>11} {_rate(s.tool_accuracy):>8} "
            f"{_rate(s.argument_accuracy):>8} {_rate(s.abstention_accuracy):>10} {latency:>9}")


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
