"""Scoring tool-use tasks: argument rules, call validity, per-task scores and per-mode metrics (pure).

The metrics of one mode, over the suite's tasks (a task that failed with an error counts as wrong):

* ``valid_call_rate``: of the tasks that expect a call, the share where the model made at least one
  call (in any scored step) that parsed, names an offered tool, and whose arguments validate
  against that tool's JSON schema (``tools/json_schema``, the subset the workbench's tools use).
* ``tool_accuracy``: of the tasks that expect a call, the share where every scored step called exactly
  the expected tool names (as a multiset: order free, a missing or extra call is wrong).
* ``argument_accuracy``: of the tasks that expect a call, the share where every scored step's calls
  pair one to one with the expected calls, same name and every argument rule passing (see ``suite``).
  A step that fails ends the task's scoring: a second step after a wrong first one is not judged.
* ``abstention_accuracy``: of the tasks that expect no call, the share where no call was made.
* ``median_latency_ms``: the median wall time of a task, from the first request to the last scored
  step (the server already started and warm; canned tools take microseconds).

A rate is ``None`` when the suite has no task of its kind.
"""

from __future__ import annotations

import json
import statistics
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..chat.conversation import Message
from ..tools.json_schema import value_problems
from .suite import ArgRule, ExpectedCall, Task


@dataclass(frozen=True)
class MadeCall:
    """A call the model made, as the loop saw it."""

    name: str
    arguments: dict[str, Any]
    source: str = "fallback"  # native | fallback
    invalid_arguments: str | None = None  # a native call whose arguments were not a JSON object

    def shown(self, limit: int = 120) -> str:
        args = self.invalid_arguments if self.invalid_arguments is not None else json.dumps(
            self.arguments, ensure_ascii=False)
        text = f"{self.name}({args})"
        return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass(frozen=True)
class TaskScore:
    valid_call: bool | None  # None for abstention tasks
    tool_match: bool | None
    arguments_match: bool | None
    abstained: bool | None  # None for call tasks
    problems: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        if self.abstained is not None:
            return self.abstained
        return bool(self.valid_call and self.tool_match and self.arguments_match)


@dataclass
class EvalStep:
    """One scored step of a task's run."""

    tool_choice: str = "auto"
    constrained: bool = False
    text: str = ""  # what the model said, call markup left out
    raw_text: str = ""  # the model's output as it came, markup and all
    parse_errors: list[str] = field(default_factory=list)  # <tool_call> blocks that were no call, and why
    calls: list[MadeCall] = field(default_factory=list)
    finish_reason: str = ""
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    duration_ms: float = 0.0


@dataclass
class TaskOutcome:
    """One task run in one mode: what happened and how it scored."""

    mode: str
    task: Task
    score: TaskScore
    steps: list[EvalStep] = field(default_factory=list)
    latency_ms: float = 0.0
    error: str | None = None
    notices: list[str] = field(default_factory=list)
    answer: Message | None = None  # the run as recorded (the session's recorder): what a chat would have saved

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "id": self.task.id,
            "category": self.task.category,
            "expects_call": self.task.expects_call,
            "passed": self.score.passed,
            "valid_call": self.score.valid_call,
            "tool_match": self.score.tool_match,
            "arguments_match": self.score.arguments_match,
            "abstained": self.score.abstained,
            "latency_ms": round(self.latency_ms, 1),
            "steps": [
                {"tool_choice": s.tool_choice, "constrained": s.constrained, "text": s.text,
                 "raw_text": s.raw_text, "parse_errors": list(s.parse_errors),
                 "calls": [{"name": c.name, "arguments": c.arguments, "source": c.source,
                            **({"invalid_arguments": c.invalid_arguments} if c.invalid_arguments else {})}
                           for c in s.calls],
                 "finish_reason": s.finish_reason, "prompt_tokens": s.prompt_tokens,
                 "completion_tokens": s.completion_tokens, "duration_ms": round(s.duration_ms, 1)}
                for s in self.steps
            ],
            "problems": list(self.score.problems),
            "error": self.error,
            "notices": list(self.notices),
        }


@dataclass(frozen=True)
class ModeSummary:
    mode: str
    tasks: int
    call_tasks: int
    abstention_tasks: int
    valid_call_rate: float | None
    tool_accuracy: float | None
    argument_accuracy: float | None
    abstention_accuracy: float | None
    median_latency_ms: float | None
    notes: tuple[str, ...] = ()  # what the loop said once or more (e.g. a grammar it could not enforce)

    def to_dict(self) -> dict[str, Any]:
        return {
            "tasks": self.tasks,
            "valid_call_rate": self.valid_call_rate,
            "tool_accuracy": self.tool_accuracy,
            "argument_accuracy": self.argument_accuracy,
            "abstention_accuracy": self.abstention_accuracy,
            "median_latency_ms": None if self.median_latency_ms is None else round(self.median_latency_ms, 1),
        }


# ----- argument rules -----

def rule_problem(rule: ArgRule, present: bool, value: Any, path: str) -> str | None:
    """Why ``value`` (``present`` or not) fails ``rule``, or None when it passes."""
    if rule.kind == "absent":
        return None if not present else f"{path}: should not be given, got {_shown(value)}"
    if not present:
        return None if rule.optional else f"{path}: missing (expected {rule.describe()})"
    if rule.kind == "object":
        if not isinstance(value, dict):
            return f"{path}: expected an object, got {_shown(value)}"
        for key, sub in rule.fields.items():
            problem = rule_problem(sub, key in value, value.get(key), f"{path}.{key}")
            if problem:
                return problem
        return None
    if rule.kind == "array":
        if not isinstance(value, list) or len(value) != len(rule.items):
            return f"{path}: expected {rule.describe()}, got {_shown(value)}"
        if rule.ordered:
            for i, (sub, item) in enumerate(zip(rule.items, value)):
                problem = rule_problem(sub, True, item, f"{path}[{i}]")
                if problem:
                    return problem
            return None
        fits = _one_to_one(len(value), len(rule.items),
                           lambda i, j: rule_problem(rule.items[j], True, value[i], path) is None)
        return None if fits else f"{path}: expected {rule.describe()}, got {_shown(value)}"
    return None if _matches(rule, value) else f"{path}: expected {rule.describe()}, got {_shown(value)}"


def _matches(rule: ArgRule, value: Any) -> bool:
    if rule.kind == "any":
        return True
    if rule.kind == "exact":
        return _json_equal(value, rule.value)
    if rule.kind == "number":
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        # The tiny margin keeps 0.1 + 0.2 from missing 0.3 with a tolerance of 0.
        return number and abs(value - rule.value) <= rule.tolerance + 1e-9 * max(1.0, abs(rule.value))
    if rule.kind == "icase":
        options = rule.values or (rule.value,)
        return isinstance(value, str) and _fold(value) in {_fold(o) for o in options}
    if rule.kind == "one_of":
        return any(_json_equal(value, option) for option in rule.values)
    if rule.kind == "contains":
        needles = rule.values or (rule.value,)
        if isinstance(value, str):
            return all(isinstance(n, str) and _fold(n) in _fold(value) for n in needles)
        if isinstance(value, list):
            return all(any(_loose_equal(item, n) for item in value) for n in needles)
        return False
    raise ValueError(f"unknown rule kind {rule.kind!r}")  # the suite parser admits only known kinds


def _fold(text: str) -> str:
    return text.strip().casefold()


def _loose_equal(a: Any, b: Any) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        return _fold(a) == _fold(b)
    return _json_equal(a, b)


def _one_to_one(n_left: int, n_right: int, fits: Callable[[int, int], bool]) -> bool:
    """Whether every left item pairs with its own right item and none is left over (bipartite matching)."""
    if n_left != n_right:
        return False
    owner: dict[int, int] = {}  # right -> left

    def place(left: int, seen: set[int]) -> bool:
        for right in range(n_right):
            if right not in seen and fits(left, right):
                seen.add(right)
                if right not in owner or place(owner[right], seen):
                    owner[right] = left
                    return True
        return False

    return all(place(left, set()) for left in range(n_left))


# ----- calls and tasks -----

def call_problems(call: MadeCall, task: Task) -> list[str]:
    """Why a call is not a valid call for this task's tools ([] when it is)."""
    spec = task.tool(call.name)
    if spec is None:
        return [f"'{call.name}' is not one of the offered tools ({', '.join(t.name for t in task.tools)})"]
    if call.invalid_arguments is not None:
        return [f"arguments are not a JSON object: {call.invalid_arguments[:80]}"]
    return [f"{path}: {message}" if path else message
            for path, message in value_problems(spec.parameters, call.arguments)]


def argument_problems(expected: ExpectedCall, call: MadeCall) -> list[str]:
    problems = []
    for name, rule in expected.arguments.items():
        problem = rule_problem(rule, name in call.arguments, call.arguments.get(name), name)
        if problem:
            problems.append(problem)
    return problems


def score_task(task: Task, steps: Sequence[Sequence[MadeCall]], answers: Sequence[str] = ()) -> TaskScore:
    """Score the calls a task's run made, per step (``answers``: each step's visible text, for reports)."""
    made_all = [call for step in steps for call in step]
    if not task.expects_call:
        problems = tuple(f"called {c.shown()} though no tool should be called" for c in made_all)
        return TaskScore(None, None, None, not made_all, problems)
    problems: list[str] = []
    invalid = [(c, call_problems(c, task)) for c in made_all]
    valid = any(not p for _, p in invalid)
    for call, why in invalid:
        if why:
            problems.append(f"invalid call {call.shown()}: {'; '.join(why[:3])}")
    tool_ok = args_ok = True
    for n, expected in enumerate(task.steps):
        label = f"step {n + 1}: " if len(task.steps) > 1 else ""
        made = list(steps[n]) if n < len(steps) else []
        wanted = ", ".join(sorted(c.name for c in expected))
        if not made:
            said = answers[n].strip() if n < len(answers) else ""
            problems.append(f"{label}no call (expected {wanted})" + (f"; answered {_clip(said)!r}" if said else ""))
            tool_ok = args_ok = False
            break
        if Counter(c.name for c in made) != Counter(c.name for c in expected):
            problems.append(f"{label}called {', '.join(c.shown() for c in made)} (expected {wanted})")
            tool_ok = args_ok = False
            break
        if not _one_to_one(len(made), len(expected),
                           lambda i, j: made[i].name == expected[j].name and not argument_problems(expected[j],
                                                                                                   made[i])):
            args_ok = False
            for want in expected:
                # The closest same-name call explains the miss best.
                candidates = [argument_problems(want, c) for c in made if c.name == want.name]
                closest = min(candidates, key=len)
                if closest:
                    problems.append(f"{label}{want.name}: {'; '.join(closest)}")
            break
    return TaskScore(valid, tool_ok, args_ok, None, tuple(problems))


def failed_score(task: Task, why: str) -> TaskScore:
    """The score of a task whose run failed (an error): wrong on every count."""
    if task.expects_call:
        return TaskScore(False, False, False, None, (why,))
    return TaskScore(None, None, None, False, (why,))


def summarize(mode: str, outcomes: Sequence[TaskOutcome]) -> ModeSummary:
    calls = [o.score for o in outcomes if o.task.expects_call]
    abstain = [o.score for o in outcomes if not o.task.expects_call]
    notes: dict[str, None] = {}
    for outcome in outcomes:
        for notice in outcome.notices:
            notes.setdefault(notice, None)
    latencies = [o.latency_ms for o in outcomes]
    return ModeSummary(
        mode=mode,
        tasks=len(outcomes),
        call_tasks=len(calls),
        abstention_tasks=len(abstain),
        valid_call_rate=_rate([bool(s.valid_call) for s in calls]),
        tool_accuracy=_rate([bool(s.tool_match) for s in calls]),
        argument_accuracy=_rate([bool(s.arguments_match) for s in calls]),
        abstention_accuracy=_rate([bool(s.abstained) for s in abstain]),
        median_latency_ms=statistics.median(latencies) if latencies else None,
        notes=tuple(notes),
    )


def _json_equal(a: Any, b: Any) -> bool:
    """Equality as JSON sees it: 1 == 1.0, but true is not 1."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    return type(a) is type(b) and a == b


def _rate(flags: list[bool]) -> float | None:
    return sum(flags) / len(flags) if flags else None


def _shown(value: Any, limit: int = 60) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _clip(text: str, limit: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
