"""Tool-use evaluation: how well a model calls tools, per tool mode, on a suite of tasks.

``suite`` (JSONL suite files -> validated tasks; the format is documented there), ``scoring``
(argument rules, call validity against the tool's JSON schema, per-task scores and the metrics,
defined there) and ``runner`` (the tasks through the real tool loop, as
progress events; the modes are defined there). ``suites/default.jsonl`` ships with the workbench.

``__all__`` is what the rest of the workbench uses (the eval tab, ``llmctl eval``, the benchmark, the tests).
"""

from .runner import (
    EVAL_MODES,
    EvalFinished,
    EvalReport,
    ModeFinished,
    TaskFinished,
    TaskStarted,
    arun_eval,
    parse_eval_modes,
    run_eval,
)
from .scoring import MadeCall, ModeSummary, TaskOutcome, score_task, summarize
from .suite import ArgRule, SuiteError, default_suite_path, load_suite, parse_suite

__all__ = [
    "ArgRule",
    "EVAL_MODES",
    "EvalFinished",
    "EvalReport",
    "MadeCall",
    "ModeFinished",
    "ModeSummary",
    "SuiteError",
    "TaskFinished",
    "TaskOutcome",
    "TaskStarted",
    "arun_eval",
    "default_suite_path",
    "load_suite",
    "parse_eval_modes",
    "parse_suite",
    "run_eval",
    "score_task",
    "summarize",
]
