"""BFCL's single-turn data files -> tasks (finding the files is I/O; reading them is pure).

The Berkeley Function Calling Leaderboard keeps each category in one JSON Lines file,
``BFCL_v<version>_<category>.json``, and its ground truth in ``possible_answer/`` under the same name.
A question line::

    {"id": "simple_python_0", "question": [[{"role": "user", "content": "..."}]],
     "function": [{"name": "math.factorial", "description": "...",
                   "parameters": {"type": "dict", "properties": {...}, "required": [...]}}]}

An answer line: ``{"id": "simple_python_0", "ground_truth": [{"math.factorial": {"number": [5]}}]}``,
each argument a list of accepted values, ``""`` among them meaning it may be left out. Irrelevance and
relevance categories have no answers: they are scored by whether a call was made at all.

Any version prefix is read (v3 calls ``simple_python`` plain ``simple``); where a folder holds several
versions of a category, the newest is used. The data version of a run is a hash of the bytes read, so
results from different copies of the same files agree, and an edited file is a new version.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...errors import ConfigError

# BFCL's single-turn Python categories, in its leaderboard's order.
CATEGORIES = (
    "simple_python", "multiple", "parallel", "parallel_multiple", "irrelevance",
    "live_simple", "live_multiple", "live_parallel", "live_parallel_multiple", "live_relevance",
    "live_irrelevance",
)
ALIASES = {"simple": "simple_python"}
FILE_NAMES = {"simple_python": ("simple_python", "simple")}  # v3 wrote simple_python as plain "simple"
FILE_RE = re.compile(r"^BFCL_v(?P<version>\d+)_(?P<name>[a-z_]+)\.json$")


class BfclDataError(ConfigError):
    """BFCL data that cannot be used: the message names the file, the line and what is wrong."""


def scored_by_relevance(category: str) -> bool:
    """Whether the category is scored by call / no call (irrelevance, relevance) instead of the calls' AST."""
    return "relevance" in category


def parse_categories(text: str | None) -> tuple[str, ...]:
    """``"simple,multiple"`` -> the BFCL names in the given order (every category when None or empty)."""
    names = [n.strip() for n in (text or "").split(",") if n.strip()]
    if not names:
        return CATEGORIES
    chosen = [ALIASES.get(n, n) for n in names]
    unknown = [n for n in chosen if n not in CATEGORIES]
    if unknown:
        raise ConfigError(f"--categories: unknown category {', '.join(repr(n) for n in unknown)} "
                          f"(BFCL's single-turn categories: {', '.join(CATEGORIES)}; 'simple' means simple_python)")
    return tuple(dict.fromkeys(chosen))


@dataclass(frozen=True)
class BfclTask:
    id: str
    category: str
    messages: tuple[dict[str, Any], ...]  # the question's one turn: system and user messages
    functions: tuple[dict[str, Any], ...]  # BFCL function docs, as written
    ground_truth: tuple[dict[str, Any], ...] | None  # None for categories scored by relevance


@dataclass(frozen=True)
class BfclData:
    folder: Path
    version: str  # a hash of every file read: the same bytes, the same version
    tasks: tuple[BfclTask, ...]

    def categories(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(t.category for t in self.tasks))


def category_files(folder: Path, category: str) -> tuple[Path, Path | None] | None:
    """(question file, answer file or None) of the newest version of ``category`` in ``folder``, or None."""
    best: tuple[int, Path] | None = None
    names = FILE_NAMES.get(category, (category,))
    for path in folder.glob("BFCL_v*_*.json"):
        match = FILE_RE.match(path.name)
        if match and match["name"] in names and (best is None or int(match["version"]) > best[0]):
            best = (int(match["version"]), path)
    if best is None:
        return None
    answers = folder / "possible_answer" / best[1].name
    return best[1], answers if answers.is_file() else None


def load_bfcl(folder: str | Path, categories: tuple[str, ...] | None = None, limit: int | None = None) -> BfclData:
    """The tasks of ``categories`` (None: every single-turn category the folder has) in ``folder`` (BFCL's
    layout), the first ``limit`` of each in file order. A missing category, an unreadable file or a bad line
    raises BfclDataError naming it."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise BfclDataError(f"BFCL data: {folder} is not a folder")
    if categories is None:
        categories = tuple(c for c in CATEGORIES if category_files(folder, c) is not None)
        if not categories:
            raise BfclDataError(f"BFCL data: no BFCL_v<N>_<category>.json file of a single-turn category in {folder}")
    digest = hashlib.sha256()
    tasks: list[BfclTask] = []
    for category in categories:
        found = category_files(folder, category)
        if found is None:
            raise BfclDataError(f"BFCL data: no file for category {category!r} in {folder} "
                                f"(expected BFCL_v<N>_{FILE_NAMES.get(category, (category,))[0]}.json)")
        questions, answers = found
        if answers is None and not scored_by_relevance(category):
            raise BfclDataError(f"BFCL data: {questions.name} has no ground truth: expected "
                                f"{folder / 'possible_answer' / questions.name}")
        question_text = _read(questions)
        answer_text = _read(answers) if answers is not None else ""
        digest.update(f"{category}\0{question_text}\0{answer_text}\0".encode())
        tasks.extend(parse_category(category, question_text, answer_text, questions.name, limit))
    return BfclData(folder, digest.hexdigest()[:12], tuple(tasks))


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BfclDataError(f"BFCL data: cannot read {path}: {exc}") from exc


def parse_category(category: str, questions: str, answers: str, source: str = "<bfcl>",
                   limit: int | None = None) -> list[BfclTask]:
    """One category's question lines and answer lines -> tasks, in question order (pure)."""
    truth: dict[str, list[dict[str, Any]]] = {}
    for line_no, item in _lines(answers, f"possible_answer/{source}"):
        where = f"possible_answer/{source}:{line_no}"
        ground = item.get("ground_truth")
        if not isinstance(item.get("id"), str) or not isinstance(ground, list) or not all(
                isinstance(g, dict) and len(g) == 1 for g in ground):
            raise BfclDataError(f"{where}: expected {{\"id\": ..., \"ground_truth\": [{{function: {{arg: [values]}}}}]}}")
        truth[item["id"]] = ground
    tasks: list[BfclTask] = []
    for line_no, item in _lines(questions, source):
        if limit is not None and len(tasks) >= limit:
            break
        tasks.append(_task(category, item, truth, f"{source}:{line_no}"))
    return tasks


def _lines(text: str, source: str) -> list[tuple[int, dict[str, Any]]]:
    items = []
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise BfclDataError(f"{source}:{line_no}: not JSON: {exc.msg}") from exc
        if not isinstance(item, dict):
            raise BfclDataError(f"{source}:{line_no}: expected a JSON object")
        items.append((line_no, item))
    return items


def _task(category: str, item: dict[str, Any], truth: dict[str, list[dict[str, Any]]], where: str) -> BfclTask:
    task_id = item.get("id")
    if not isinstance(task_id, str) or not task_id:
        raise BfclDataError(f"{where}: id: expected a string")
    question = item.get("question")
    if (not isinstance(question, list) or not question or not isinstance(question[0], list) or not question[0]
            or not all(isinstance(m, dict) and isinstance(m.get("content"), str) and m.get("role") in
                       ("system", "user", "assistant") for m in question[0])):
        raise BfclDataError(f"{where}: question: expected [[{{\"role\": ..., \"content\": ...}}, ...]] (one turn)")
    functions = item.get("function")
    if not isinstance(functions, list) or not functions or not all(
            isinstance(f, dict) and isinstance(f.get("name"), str) for f in functions):
        raise BfclDataError(f"{where}: function: expected a list of function docs with names")
    ground: tuple[dict[str, Any], ...] | None = None
    if not scored_by_relevance(category):
        if task_id not in truth:
            raise BfclDataError(f"{where}: {task_id}: no ground truth in possible_answer")
        ground = tuple(truth[task_id])
    messages = tuple({"role": m["role"], "content": m["content"]} for m in question[0])
    return BfclTask(task_id, category, messages, tuple(functions), ground)
