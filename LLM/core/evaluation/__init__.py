"""Tool-use evaluation: how well a model calls tools, per tool mode, on a suite of tasks.

``suite`` (JSONL suite files -> validated tasks; the format is documented there), ``scoring``
(argument rules, call validity against the tool's JSON schema, per-task scores and the metrics,
defined there) and ``runner`` (the tasks through the real tool loop, as
progress events; the modes are defined there). ``suites/default.jsonl`` ships with the workbench.

``bfcl/`` runs the Berkeley Function Calling Leaderboard's single-turn categories on its own data (``data``,
``fetch``), converted and checked as BFCL does (``convert``, ``checker``), concurrently and resumably
(``runner``), into report cards kept in the history database (``store``).

``__all__`` is what the rest of the workbench uses (the eval tab, ``llmctl eval``, the benchmark, the tests).
"""

from .bfcl.data import CATEGORIES as BFCL_CATEGORIES
from .bfcl.data import BfclData, BfclDataError, BfclTask, load_bfcl
from .bfcl.data import parse_categories as parse_bfcl_categories
from .bfcl.fetch import BFCL_REPO, cached_bfcl_dir, fetch_bfcl
from .bfcl.runner import (
    BfclEvent,
    BfclModeDone,
    BfclModeStarted,
    BfclTaskDone,
    BfclTaskError,
    arun_bfcl,
    run_bfcl,
)
from .bfcl.store import CategoryScore, EvalStore, RunKey, RunSummary, TaskResult
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
    "BFCL_CATEGORIES",
    "BFCL_REPO",
    "BfclData",
    "BfclDataError",
    "BfclEvent",
    "BfclModeDone",
    "BfclModeStarted",
    "BfclTask",
    "BfclTaskDone",
    "BfclTaskError",
    "CategoryScore",
    "EVAL_MODES",
    "EvalFinished",
    "EvalReport",
    "EvalStore",
    "MadeCall",
    "ModeFinished",
    "ModeSummary",
    "RunKey",
    "RunSummary",
    "SuiteError",
    "TaskFinished",
    "TaskOutcome",
    "TaskResult",
    "TaskStarted",
    "arun_bfcl",
    "arun_eval",
    "cached_bfcl_dir",
    "default_suite_path",
    "fetch_bfcl",
    "load_bfcl",
    "load_suite",
    "parse_bfcl_categories",
    "parse_eval_modes",
    "parse_suite",
    "run_bfcl",
    "run_eval",
    "score_task",
    "summarize",
]
