"""Tool-use evaluation: how well a model calls tools, per tool mode, on a suite of tasks.

``suite`` (JSONL suite files -> validated tasks; the format is documented there), ``scoring``
(argument rules, call validity against the tool's JSON schema, per-task scores and the metrics,
defined there) and ``runner`` (the tasks through the real tool loop, as
progress events; the modes are defined there). ``suites/default.jsonl`` ships with the workbench.
"""

from .runner import (
    EVAL_MODES,
    EvalEvent,
    EvalFinished,
    EvalReport,
    ModeFinished,
    TaskFinished,
    TaskStarted,
    arun_eval,
    parse_eval_modes,
    run_eval,
    run_task,
)
from .scoring import MadeCall, ModeSummary, EvalStep, TaskOutcome, TaskScore, score_task, summarize
from .suite import ArgRule, ExpectedCall, Suite, SuiteError, Task, ToolSpec, default_suite_path, load_suite, parse_suite

__all__ = [
    "EVAL_MODES", "ArgRule", "EvalEvent", "EvalFinished", "EvalReport", "ExpectedCall", "MadeCall", "ModeFinished",
    "ModeSummary", "EvalStep", "Suite", "SuiteError", "Task", "TaskFinished", "TaskOutcome", "TaskScore",
    "TaskStarted", "ToolSpec", "arun_eval", "default_suite_path", "load_suite", "parse_eval_modes", "parse_suite",
    "run_eval", "run_task", "score_task", "summarize",
]
