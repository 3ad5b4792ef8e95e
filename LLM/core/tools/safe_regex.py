"""Regex checks that a deadline can stop: schema ``pattern`` checks of tool arguments and eval scoring.

Python's ``re`` holds the GIL for as long as one match runs, and a pattern such as ``^(\\w+\\s?)*$``
backtracks for exponential time (30 characters: about a minute), so in-process it freezes every
thread, the event loop included, and nothing can stop it. A child process can be killed. A child
costs ~30 ms, so a check runs in-process only where the pattern is *proven* cheap for this value:
:func:`worst_case_steps` bounds the backtracking from the parsed pattern and the value's length, and
anything it cannot bound (nested unbounded repetition, backreferences, a construct it does not know)
goes to the child. The calls block their thread for up to ``deadline_s``: call them from a worker
thread (``asyncio.to_thread``), never on the event loop.
"""

from __future__ import annotations

import enum
import json
import math
import re
import subprocess
import sys
from collections.abc import Sequence

try:  # the parser `re` itself uses; private, so every surprise below means "not proven cheap"
    from re import _parser as _sre_parse  # type: ignore[attr-defined]
except ImportError:  # Python 3.10
    import sre_parse as _sre_parse  # type: ignore[no-redef]

PATTERN_DEADLINE_S = 5.0  # far beyond any sane check, far below a tool's 30 s timeout
IN_PROCESS_STEPS = 2_000_000  # a bound this size runs in milliseconds (the real work is far below it)
_SINGLE = frozenset({"LITERAL", "NOT_LITERAL", "IN", "ANY", "CATEGORY", "RANGE", "RANGE_UNI_IGNORE"})
_AT_START = frozenset({"AT_BEGINNING", "AT_BEGINNING_STRING"})


class Outcome(enum.Enum):
    MATCHED = "matched"
    NOT_MATCHED = "not matched"
    TIMED_OUT = "timed out"  # stopped at the deadline (or not reached before it: checks share one deadline)
    INVALID = "invalid"  # not a Python regular expression (an MCP server's ECMA-only syntax, say)
    FAILED = "failed"  # the child could not run or died before the deadline: nothing is known of the pattern


def search_all(checks: Sequence[tuple[str, str]], deadline_s: float = PATTERN_DEADLINE_S) -> list[Outcome]:
    """Whether ``re.search(pattern, text)`` finds a match, for each (pattern, text), in order.

    Checks proven cheap run here; the rest run in one child process killed at ``deadline_s``.
    """
    outcomes: list[Outcome | None] = []
    for pattern, text in checks:
        try:
            compiled = re.compile(pattern)
        except (re.error, OverflowError, RecursionError, ValueError, TypeError):
            outcomes.append(Outcome.INVALID)
            continue
        steps = worst_case_steps(pattern, len(text))
        if steps is not None and steps <= IN_PROCESS_STEPS:
            outcomes.append(Outcome.MATCHED if compiled.search(text) else Outcome.NOT_MATCHED)
        else:
            outcomes.append(None)
    pending = [i for i, outcome in enumerate(outcomes) if outcome is None]
    if pending:
        for i, outcome in zip(pending, _search_in_child([checks[i] for i in pending], deadline_s)):
            outcomes[i] = outcome
    return [o if o is not None else Outcome.FAILED for o in outcomes]  # (every None was filled above)


def worst_case_steps(pattern: str, length: int) -> int | None:
    """An upper bound on the work of ``re.search(pattern, text)`` for any text of ``length`` characters,
    or None where the pattern's backtracking cannot be bounded this way.

    A backtracking matcher tries each path through the pattern's choice points (a branch's
    alternatives, each count a repeat can take) from each start position, and one path costs at
    most ``len(text) + len(pattern)`` steps, so the bound is starts x paths x that. It is loose
    (``^[a-z]+$`` on 1,000 characters: bound ~10^6, real work ~10^3), which only errs toward the child.
    """
    try:
        parsed = _sre_parse.parse(pattern)
        flags = parsed.state.flags
    except Exception:  # noqa: BLE001 - invalid, or a parser whose shape we do not know
        return None
    limit = IN_PROCESS_STEPS + 1  # past this the number itself no longer matters
    paths = _paths(list(parsed), length, limit)
    if paths is None:
        return None
    items = list(parsed)
    anchored = bool(items) and str(items[0][0]) == "AT" and str(items[0][1]) in _AT_START
    if anchored and str(items[0][1]) == "AT_BEGINNING" and flags & re.MULTILINE:
        anchored = False  # (?m)^ matches after every newline
    starts = 1 if anchored else length + 1
    return min(starts * paths * (length + len(pattern) + 1), limit)


def _paths(items: list, length: int, limit: int) -> int | None:
    """How many ways a sequence of parsed items can be walked (capped at ``limit``); None if unbounded."""
    total = 1
    for op, av in items:
        name = str(op)
        if name in _SINGLE or name == "AT":
            ways = 1
        elif name == "SUBPATTERN":
            ways = _paths(list(av[-1]), length, limit)  # av: (group, add_flags, del_flags, body)
        elif name == "BRANCH":
            counts = [_paths(list(alternative), length, limit) for alternative in av[1]]
            ways = None if None in counts else min(sum(counts), limit)  # type: ignore[arg-type]
        elif name in ("ASSERT", "ASSERT_NOT"):
            ways = _paths(list(av[1]), length, limit)  # looked at from each position it is reached
        elif name in ("MAX_REPEAT", "MIN_REPEAT"):
            ways = _repeat_paths(av, length, limit)
        else:  # backreferences, conditionals, atomic groups, possessive repeats, anything new: unproven
            return None
        if ways is None:
            return None
        total = min(total * max(ways, 1), limit)
    return total


def _repeat_paths(av: tuple, length: int, limit: int) -> int | None:
    low, high, body = av
    high = min(high, length)  # a repeat cannot take more turns than there are characters (bodies here are
    if high < low:  # never empty: an empty-matching body makes `body_ways` > 1 or is a zero-width item)
        return 1
    items = list(body)
    if len(items) == 1 and str(items[0][0]) in _SINGLE:
        return high - low + 1  # one character a turn: each count is one choice
    body_ways = _paths(items, length, limit)
    if body_ways is None:
        return None
    if body_ways == 1:
        return high - low + 1
    # Each turn may take any of the body's ways: sum of body_ways ** k over the counts, capped.
    if high * math.log(body_ways) > math.log(limit):
        return limit
    return min(sum(body_ways ** k for k in range(low, high + 1)), limit)


# The child is stdlib-only (`-I -S`: no site, no package import). stdin: [[pattern, text], ...]; stdout: one
# line per check as it finishes ("1" matched, "0" not), flushed, so a kill at the deadline still tells which
# checks finished and which one ran too long.
_CHILD = r"""
import json, re, sys
for pattern, text in json.load(sys.stdin):
    sys.stdout.write("1\n" if re.search(pattern, text) else "0\n")
    sys.stdout.flush()
"""


def _search_in_child(checks: list[tuple[str, str]], deadline_s: float) -> list[Outcome]:
    """The checks' outcomes from one child: those it did not answer are TIMED_OUT when it was stopped at
    the deadline, FAILED when it could not start or died on its own (out of memory, say)."""
    request = json.dumps(checks).encode()
    try:  # the trailing "pattern_check" only names the child in process listings
        process = subprocess.Popen([sys.executable, "-I", "-S", "-c", _CHILD, "pattern_check"],
                                   stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    except OSError:  # no processes or memory left, or no interpreter to run (a frozen app)
        return [Outcome.FAILED] * len(checks)
    unanswered = Outcome.FAILED
    try:
        out, _ = process.communicate(request, timeout=deadline_s)
    except subprocess.TimeoutExpired:
        process.kill()
        out, _ = process.communicate()  # what it wrote before the kill is kept
        unanswered = Outcome.TIMED_OUT
    finally:
        if process.poll() is None:  # interrupted some other way: never leave it running
            process.kill()
            process.wait()
    lines = out.decode("ascii", "replace").split("\n")
    return [Outcome.MATCHED if line == "1" else Outcome.NOT_MATCHED if line == "0" else unanswered
            for line, _check in zip(lines + [""] * len(checks), checks)]
