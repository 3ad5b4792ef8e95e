"""The curated model catalog (catalog.json, versioned data) and which of its models suit this machine for a task.

Three parts, pure at the core:

* ``parse_catalog`` turns JSON data into a validated ``Catalog``; every problem names the source, the entry and
  the key. ``load_catalog`` wraps it with file reading (the shipped catalog by default).
* ``recommend`` ranks the entries for one task on a ``Machine``: the user's own choices first, then the models
  that fit (comfortably before tightly, best first), then the ones that do not (closest to fitting first).
* The override file (``recommendations.json``) holds the user's choices per task; ``save_override`` writes it
  atomically, so a reader sees the old file or the new one, never half of one.
"""

from __future__ import annotations

import difflib
import json
import math
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import platformdirs

from ..atomic_files import write_text_atomically
from ..config import APP_NAME
from ..errors import ConfigError
from .fit import gib
from .system import Machine

__all__ = [
    "CATALOG_CAPABILITIES",
    "CATALOG_VERSION",
    "Catalog",
    "CatalogEntry",
    "CatalogFile",
    "Recommendation",
    "TASKS",
    "default_overrides_path",
    "load_catalog",
    "load_overrides",
    "parse_catalog",
    "recommend",
    "save_override",
]

TASKS = ("chat", "tools", "code", "vision", "reasoning", "embedding")
CATALOG_CAPABILITIES = ("chat", "tools", "parallel_tool_calls", "reasoning", "system_role", "vision", "embedding")
TOOL_FORMATS = ("hermes", "llama3", "mistral", "granite")
CATALOG_VERSION = 1  # the newest catalog.json layout this code reads
OVERRIDES_VERSION = 1
OVERRIDES_FILE = "recommendations.json"
SHIPPED_CATALOG = Path(__file__).with_name("catalog.json")  # package data: installed beside this module

DEFAULT_CONTEXT = 4096
WORKING_BUFFERS = 0.10  # compute buffers and the like, on top of weights + KV cache
COMFORTABLE = 0.70  # a model "fits comfortably" within this share of the memory free
# Decoding is memory-bound: each token streams the weights once. Measured here: the default model (98 MB)
# decodes at 83 tokens/s on 2 cores (/work ENGINE_NOTES), about 4 GB/s a core; a desktop's memory tops out
# near 40 GB/s. Below USABLE_SPEED a chat feels stuck, so slower models rank after faster ones that fit.
CPU_BYTES_PER_S_PER_CORE = 4e9
MAX_CPU_BYTES_PER_S = 40e9
USABLE_SPEED = 8.0  # tokens per second
UNKNOWN_KV_SHARE = 0.125  # no kv_bytes_per_token: assume a 4096-token cache costs an eighth of the weights

_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_REPO_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TOP_KEYS = {"version", "updated", "models", "about"}
_REQUIRED = ("id", "name", "repo", "files", "default_quant", "parameters", "context_length", "capabilities",
             "tasks", "license", "gated")
_OPTIONAL = ("tool_format", "mmproj", "kv_bytes_per_token", "notes")
_FILE_KEYS = {"file", "size", "verified"}


@dataclass(frozen=True)
class CatalogFile:
    """One downloadable GGUF file. ``verified``: False when its size is an estimate, not the hub's figure."""

    quant: str
    file: str
    size: int
    verified: bool = True


@dataclass(frozen=True)
class CatalogEntry:
    id: str
    name: str
    repo: str
    files: tuple[CatalogFile, ...]  # smallest first
    default_quant: str
    parameters: int
    context_length: int  # native (training) context
    capabilities: Mapping[str, bool]
    tool_format: str | None
    tasks: tuple[str, ...]  # the first is what the model is best at
    license: str
    gated: bool
    mmproj: CatalogFile | None = None  # the vision projector, loaded beside the weights
    kv_bytes_per_token: int | None = None  # f16 K+V for one context token
    notes: str = ""

    def file_for(self, quant: str | None = None) -> CatalogFile:
        """The file of ``quant`` (the default quant when None); ConfigError naming the quants there are."""
        wanted = quant or self.default_quant
        for item in self.files:
            if item.quant == wanted:
                return item
        raise ConfigError(f"model '{self.id}' has no quantization '{wanted}' in the catalog "
                          f"(it has: {', '.join(f.quant for f in self.files)})")

    def memory_needed(self, quant: str | None = None, context: int = DEFAULT_CONTEXT) -> int:
        """Bytes a server of this model takes: weights + mmproj + an f16 KV cache for ``context`` tokens (at most
        the native context) + ~10% working buffers. Without ``kv_bytes_per_token`` the cache is guessed from
        the weights (an eighth of them per 4096 tokens)."""
        weights = self.file_for(quant).size + (self.mmproj.size if self.mmproj else 0)
        tokens = max(0, min(context, self.context_length))
        if self.kv_bytes_per_token is not None:
            kv = self.kv_bytes_per_token * tokens
        else:
            kv = int(self.file_for(quant).size * UNKNOWN_KV_SHARE * tokens / DEFAULT_CONTEXT)
        return int((weights + kv) * (1 + WORKING_BUFFERS))


@dataclass(frozen=True)
class Catalog:
    version: int
    updated: str
    entries: tuple[CatalogEntry, ...]
    source: str = field(default="", compare=False)

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(entry.id for entry in self.entries)

    def get(self, entry_id: str) -> CatalogEntry:
        for entry in self.entries:
            if entry.id == entry_id:
                return entry
        raise ConfigError(f"no model '{entry_id}' in the model catalog{_did_you_mean(entry_id, self.ids)}")


# --- parsing (pure) -------------------------------------------------------------------------------------------


def parse_catalog(data: Any, source: str) -> Catalog:
    """Validate catalog data (catalog.json parsed); ConfigError naming ``source``, the entry and the key of every
    problem found (all of them, in ``problems``)."""
    problems: list[str] = []
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the catalog must be a JSON object with 'version', 'updated' and 'models'")
    for key in sorted(set(data) - _TOP_KEYS):
        problems.append(f"{source}: unknown top-level key '{key}'")
    version = data.get("version")
    if not _is_int(version) or version < 1:
        problems.append(f"{source}: key 'version': must be a positive integer, not {version!r}")
    elif version > CATALOG_VERSION:
        raise ConfigError(f"{source}: catalog version {version} is newer than this workbench reads "
                          f"({CATALOG_VERSION}); update the workbench")
    updated = data.get("updated")
    if not isinstance(updated, str) or not _DATE_RE.match(updated):
        problems.append(f"{source}: key 'updated': must be a date YYYY-MM-DD, not {updated!r}")
    models = data.get("models")
    entries: list[CatalogEntry] = []
    if not isinstance(models, list) or not models:
        problems.append(f"{source}: key 'models': must be a non-empty list of models")
    else:
        seen: set[str] = set()
        for index, raw in enumerate(models):
            entry = _parse_entry(raw, f"{source}: models[{index}]", problems)
            if entry is None:
                continue
            if entry.id in seen:
                problems.append(f"{source}: models[{index}] ('{entry.id}'): key 'id': duplicate id")
            seen.add(entry.id)
            entries.append(entry)
    if problems:
        more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
        raise ConfigError(problems[0] + more, problems)
    return Catalog(version, updated, tuple(entries), source)  # type: ignore[arg-type]


def _parse_entry(raw: Any, where: str, problems: list[str]) -> CatalogEntry | None:
    if not isinstance(raw, dict):
        problems.append(f"{where}: must be an object")
        return None
    entry_id = raw.get("id")
    if isinstance(entry_id, str) and entry_id:
        where = f"{where} ('{entry_id}')"
    start = len(problems)

    def bad(key: str, why: str) -> None:
        problems.append(f"{where}: key '{key}': {why}")

    for key in sorted(set(raw) - set(_REQUIRED) - set(_OPTIONAL)):
        bad(key, "unknown key")
    missing = [key for key in _REQUIRED if key not in raw]
    for key in missing:
        bad(key, "missing")
    if missing:
        return None

    if not isinstance(entry_id, str) or not _ID_RE.match(entry_id):
        bad("id", "must be 1-64 letters, digits, '_' or '-'")
    for key in ("name", "license"):
        if not isinstance(raw[key], str) or not raw[key].strip():
            bad(key, "must be a non-empty string")
    if not isinstance(raw["repo"], str) or not _REPO_RE.match(raw["repo"]):
        bad("repo", f"must be a Hugging Face repository 'owner/name', not {raw['repo']!r}")
    for key in ("parameters", "context_length"):
        if not _is_int(raw[key]) or raw[key] <= 0:
            bad(key, f"must be a positive integer, not {raw[key]!r}")
    kv = raw.get("kv_bytes_per_token")
    if kv is not None and (not _is_int(kv) or kv < 0):
        bad("kv_bytes_per_token", f"must be a non-negative integer or null, not {kv!r}")
    if not isinstance(raw["gated"], bool):
        bad("gated", f"must be true or false, not {raw['gated']!r}")
    notes = raw.get("notes", "")
    if not isinstance(notes, str) or "\n" in notes:
        bad("notes", "must be one line of text")

    files = _parse_files(raw["files"], bad)
    if isinstance(raw["default_quant"], str) and files and raw["default_quant"] not in {f.quant for f in files}:
        bad("default_quant", f"'{raw['default_quant']}' is not one of files ({', '.join(f.quant for f in files)})")
    elif not isinstance(raw["default_quant"], str):
        bad("default_quant", "must be a quantization named in files")
    mmproj = None
    if raw.get("mmproj") is not None:
        mmproj = _parse_file("mmproj", "mmproj", raw["mmproj"], bad)

    capabilities = _parse_capabilities(raw["capabilities"], bad)
    tasks = raw["tasks"]
    if not isinstance(tasks, list) or not tasks or not all(isinstance(t, str) for t in tasks):
        bad("tasks", f"must be a non-empty list of tasks ({', '.join(TASKS)})")
        tasks = []
    else:
        for task in tasks:
            if task not in TASKS:
                bad("tasks", f"unknown task '{task}' (tasks: {', '.join(TASKS)})")
        if len(set(tasks)) != len(tasks):
            bad("tasks", "lists a task twice")
    tool_format = raw.get("tool_format")
    if tool_format is not None and tool_format not in TOOL_FORMATS:
        bad("tool_format", f"unknown format {tool_format!r} (known: {', '.join(TOOL_FORMATS)})")
    # What the tasks promise, the capabilities and files must deliver.
    if capabilities.get("tools") and tool_format is None:
        bad("tool_format", "needed when capabilities.tools is true")
    if tool_format is not None and not capabilities.get("tools"):
        bad("tool_format", "set, but capabilities.tools is false")
    for task, capability in (("tools", "tools"), ("vision", "vision"), ("embedding", "embedding"),
                             ("reasoning", "reasoning")):
        if task in tasks and not capabilities.get(capability):
            bad("capabilities", f"task '{task}' needs capabilities.{capability} true")
    if (capabilities.get("vision") or "vision" in tasks) and mmproj is None:
        bad("mmproj", "a vision model needs its mmproj file")
    if mmproj is not None and not capabilities.get("vision"):
        bad("mmproj", "set, but capabilities.vision is false")

    if len(problems) > start:
        return None
    return CatalogEntry(
        id=entry_id, name=raw["name"], repo=raw["repo"], files=files, default_quant=raw["default_quant"],
        parameters=raw["parameters"], context_length=raw["context_length"], capabilities=capabilities,
        tool_format=tool_format, tasks=tuple(tasks), license=raw["license"], gated=raw["gated"], mmproj=mmproj,
        kv_bytes_per_token=kv, notes=notes)


def _parse_files(raw: Any, bad) -> tuple[CatalogFile, ...]:
    if not isinstance(raw, dict) or not raw:
        bad("files", "must map each quantization to {\"file\": ..., \"size\": bytes}")
        return ()
    found = [_parse_file(f"files.{quant}", quant, value, bad) for quant, value in raw.items()]
    files = [f for f in found if f is not None]
    return tuple(sorted(files, key=lambda f: (f.size, f.quant)))


def _parse_file(key: str, quant: Any, raw: Any, bad) -> CatalogFile | None:
    if not isinstance(quant, str) or not quant:
        bad(key, "the quantization must be a name such as Q4_K_M")
        return None
    if not isinstance(raw, dict):
        bad(key, "must be an object {\"file\": ..., \"size\": bytes}")
        return None
    for extra in sorted(set(raw) - _FILE_KEYS):
        bad(f"{key}.{extra}", "unknown key")
    name, size, verified = raw.get("file"), raw.get("size"), raw.get("verified", True)
    ok = True
    if (not isinstance(name, str) or not name.endswith(".gguf") or name.startswith("/")
            or ".." in name.split("/")):  # a path inside the repository, never outside it
        bad(f"{key}.file", f"must be a .gguf file name, not {name!r}")
        ok = False
    if not _is_int(size) or size <= 0:
        bad(f"{key}.size", f"must be a positive number of bytes, not {size!r}")
        ok = False
    if not isinstance(verified, bool):
        bad(f"{key}.verified", "must be true or false")
        ok = False
    return CatalogFile(quant, name, size, verified) if ok else None


def _parse_capabilities(raw: Any, bad) -> dict[str, bool]:
    if not isinstance(raw, dict):
        bad("capabilities", f"must map capabilities ({', '.join(CATALOG_CAPABILITIES)}) to true or false")
        return {}
    result = {name: False for name in CATALOG_CAPABILITIES}
    for name, value in raw.items():
        if name not in CATALOG_CAPABILITIES:
            bad(f"capabilities.{name}", f"unknown capability (known: {', '.join(CATALOG_CAPABILITIES)})")
        elif not isinstance(value, bool):
            bad(f"capabilities.{name}", f"must be true or false, not {value!r}")
        else:
            result[name] = value
    return result


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _did_you_mean(word: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(known), n=3, cutoff=0.5)
    return f"; did you mean {', '.join(close)}?" if close else ""


# --- loading (I/O) --------------------------------------------------------------------------------------------


def load_catalog(path: Path | None = None) -> Catalog:
    """The catalog at ``path``, or the one shipped with the workbench; ConfigError naming the file."""
    path = SHIPPED_CATALOG if path is None else Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read the model catalog {path}: {exc.strerror or exc}") from exc
    return parse_catalog(_json(text, str(path)), str(path))


def _json(text: str, source: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{source}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from exc


# --- ranking (pure) -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Recommendation:
    entry: CatalogEntry
    quant: str
    fits: bool
    memory_needed: int
    score: float
    reason: str  # one line, for people

    @property
    def file(self) -> CatalogFile:
        return self.entry.file_for(self.quant)

    def to_json(self) -> dict:
        item = self.file
        return {
            "id": self.entry.id, "name": self.entry.name, "repo": self.entry.repo,
            "quant": self.quant, "file": item.file, "size": item.size,
            "mmproj": self.entry.mmproj.file if self.entry.mmproj else None,
            "fits": self.fits, "memory_needed": self.memory_needed, "score": round(self.score, 3),
            "reason": self.reason, "tasks": list(self.entry.tasks), "license": self.entry.license,
            "gated": self.entry.gated,
        }


_TASK_NOUN = {"chat": "chat model", "tools": "tool model", "code": "code model", "vision": "vision model",
              "reasoning": "reasoning model", "embedding": "embedding model"}
_FORMAT_NAME = {"hermes": "Hermes", "llama3": "Llama 3 JSON", "mistral": "Mistral", "granite": "Granite"}


def recommend(task: str, catalog: Catalog, machine: Machine, *, overrides: Mapping[str, list[str]] | None = None,
              limit: int | None = None) -> list[Recommendation]:
    """The catalog's models for ``task``, best first, for ``machine``; deterministic given the inputs.

    Memory: a model fits when ``memory_needed`` (context 4096) is at most the free RAM plus, when there is a GPU,
    its free memory (llama.cpp splits layers between the two, so together they bound what loads). Unknown free
    memory counts every model as fitting, tightly. Order:

    1. The user's choices for the task (``overrides``, in their order), reason starting "your choice".
    2. Models that fit comfortably (within 70% of the memory free), then those that fit tightly. Within each,
       a quality proxy: log2 of the parameter count, +1 when the model has the task's native capability
       (tool calls, thinking, vision, embeddings; for code: a code specialist), +1 when the task is its first
       (specialist) task, +0.25 for parallel tool calls, -0.5 when it needs a quant below its default.
       A model whose default quant does not fit is tried at its largest smaller quant that does.
    3. Models that do not fit even at their smallest quant, the closest to fitting first, reason saying what
       they need against what is free.
    """
    _check_task(task)
    budget = _budget(machine)
    chosen = [entry_id for entry_id in (overrides or {}).get(task, []) if entry_id in catalog.ids]
    chosen = list(dict.fromkeys(chosen))  # a repeated id counts once, at its first place
    ranked: list[Recommendation] = []
    for place, entry_id in enumerate(chosen):
        entry = catalog.get(entry_id)
        quant, needed, fits = _pick_quant(entry, budget)
        ranked.append(Recommendation(entry, quant, fits, needed, 1000.0 + len(chosen) - place,
                                     "your choice; " + _fit_phrase(entry, quant, needed, fits, budget, machine)))
    others = []
    for entry in catalog.entries:
        if task not in entry.tasks or entry.id in chosen:
            continue
        quant, needed, fits = _pick_quant(entry, budget)
        if fits:
            comfortable = budget is not None and needed <= COMFORTABLE * budget
            score = (200.0 if comfortable else 100.0) + _quality(entry, task, quant) + _speed_term(entry, quant,
                                                                                                   machine)
        else:
            score = -needed / 1e9
        others.append(Recommendation(entry, quant, fits, needed, score, ""))
    others.sort(key=lambda r: (-r.score, r.entry.id))
    best_done = False
    for rec in others:
        parts = [_fit_phrase(rec.entry, rec.quant, rec.memory_needed, rec.fits, budget, machine),
                 _task_phrase(rec.entry, task), _speed_phrase(rec.entry, rec.quant, machine) if rec.fits else ""]
        if rec.fits and budget is not None and not best_done:
            parts.append(f"best {_TASK_NOUN[task]} that fits")
            best_done = True
        ranked.append(replace(rec, reason="; ".join(p for p in parts if p)))
    return ranked if limit is None else ranked[:max(0, limit)]


def _check_task(task: str) -> None:
    if task not in TASKS:
        raise ConfigError(f"unknown task '{task}' (tasks: {', '.join(TASKS)}){_did_you_mean(task, TASKS)}")


def _budget(machine: Machine) -> int | None:
    free = machine.memory_for_models
    if free is None:
        return None
    return free + (machine.gpu_memory or 0)


def _pick_quant(entry: CatalogEntry, budget: int | None) -> tuple[str, int, bool]:
    """(quant, memory needed, fits): the default when it fits, else the largest smaller quant that does, else
    the smallest quant there is (the closest to fitting)."""
    default = entry.file_for()
    needed = entry.memory_needed(default.quant)
    if budget is None or needed <= budget:
        return default.quant, needed, True
    smaller = [f for f in entry.files if f.size < default.size]
    for item in reversed(smaller):  # files are smallest first
        need = entry.memory_needed(item.quant)
        if need <= budget:
            return item.quant, need, True
    smallest = entry.files[0] if entry.files[0].size < default.size else default
    return smallest.quant, entry.memory_needed(smallest.quant), False


def _quality(entry: CatalogEntry, task: str, quant: str) -> float:
    score = math.log2(entry.parameters / 1e8)
    native = {"tools": "tools", "reasoning": "reasoning", "vision": "vision", "embedding": "embedding",
              "chat": "chat"}.get(task)
    if (native and entry.capabilities.get(native)) or (task == "code" and entry.tasks[0] == "code"):
        score += 1.0
    if entry.tasks[0] == task:
        score += 1.0
    if task == "tools" and entry.capabilities.get("parallel_tool_calls"):
        score += 0.25
    if entry.file_for(quant).size < entry.file_for().size:
        score -= 0.5
    return score


def decode_speed(entry: CatalogEntry, quant: str, machine: Machine) -> float | None:
    """Tokens a second the CPU may decode at (weights streamed once a token); None on a GPU that holds it, or
    when the number of cores is unknown."""
    if not machine.cores or (machine.gpu_memory and entry.memory_needed(quant) <= machine.gpu_memory):
        return None
    bandwidth = min(machine.cores * CPU_BYTES_PER_S_PER_CORE, MAX_CPU_BYTES_PER_S)
    return bandwidth / entry.file_for(quant).size


def _speed_term(entry: CatalogEntry, quant: str, machine: Machine) -> float:
    """0 for a model fast enough here; below USABLE_SPEED, -2 for each halving (an 8B model on 2 cores: -4.6)."""
    speed = decode_speed(entry, quant, machine)
    return 0.0 if speed is None else 2 * min(0.0, math.log2(speed / USABLE_SPEED))


def _speed_phrase(entry: CatalogEntry, quant: str, machine: Machine) -> str:
    speed = decode_speed(entry, quant, machine)
    if speed is None or speed >= USABLE_SPEED:
        return ""
    cores = f"{machine.cores} CPU core" + ("s" if machine.cores != 1 else "")
    if speed < 1:
        return f"very slow here on {cores}"
    return f"{'slow here: ' if speed < USABLE_SPEED / 2 else ''}about {speed:.0f} tokens/s on {cores}"


def _gb(size: int) -> str:
    return gib(size)  # one unit for memory everywhere: what the machine line and the estimates say


def _fit_phrase(entry: CatalogEntry, quant: str, needed: int, fits: bool, budget: int | None,
                machine: Machine) -> str:
    at = f" at {quant}" if quant != entry.default_quant else ""
    if budget is None:
        return f"needs {_gb(needed)}{at}; free memory unknown"
    free = f"{_gb(budget)} free" + (" (RAM + GPU)" if machine.gpu_memory else "")
    if fits:
        tight = "" if needed <= COMFORTABLE * budget else ", a tight fit"
        return f"fits{at} in {_gb(needed)} of {free}{tight}"
    even = f" even at {quant}" if len(entry.files) > 1 else ""
    return f"needs {_gb(needed)}{even} but only {free}"


def _task_phrase(entry: CatalogEntry, task: str) -> str:
    caps = entry.capabilities
    if task == "tools":
        how = "calls tools in parallel" if caps.get("parallel_tool_calls") else "calls tools"
        return f"{how} ({_FORMAT_NAME.get(entry.tool_format or '', entry.tool_format)} format)"
    if task == "reasoning":
        return "thinks before answering" if caps.get("reasoning") else ""
    if task == "vision":
        return "reads images"
    if task == "embedding":
        return "embeds text for search"
    if task == "code":
        return "code specialist" if entry.tasks[0] == "code" else "writes code"
    return "also reads images" if caps.get("vision") else ""  # chat: every candidate chats; say what else


# --- the user's choices (I/O) ---------------------------------------------------------------------------------


def default_overrides_path() -> Path:
    """``$LLM_DATA_DIR/recommendations.json`` when LLM_DATA_DIR is set, else the user config dir's."""
    data_dir = os.environ.get("LLM_DATA_DIR")
    if data_dir:
        return Path(data_dir).expanduser() / OVERRIDES_FILE
    return Path(platformdirs.user_config_dir(APP_NAME)) / OVERRIDES_FILE


def load_overrides(path: Path) -> dict[str, list[str]]:
    """The user's model choices per task: ``{"version": 1, "tasks": {"tools": ["qwen3-4b", ...]}}``. {} when the
    file is absent; ConfigError naming the file and the key when it is unreadable or malformed. Ids are not
    checked against a catalog here (``recommend`` skips ones the catalog no longer has)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from exc
    return _parse_overrides(_json(text, str(path)), str(path))


def _parse_overrides(data: Any, source: str) -> dict[str, list[str]]:
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: must be a JSON object {{\"version\": 1, \"tasks\": {{...}}}}")
    version = data.get("version", OVERRIDES_VERSION)
    if not _is_int(version) or version < 1:
        raise ConfigError(f"{source}: key 'version': must be a positive integer, not {version!r}")
    if version > OVERRIDES_VERSION:
        raise ConfigError(f"{source}: written by a newer workbench (version {version}); it was not changed")
    extra = sorted(set(data) - {"version", "tasks"})
    if extra:
        raise ConfigError(f"{source}: unknown key '{extra[0]}' (expected 'version' and 'tasks')")
    tasks = data.get("tasks", {})
    if not isinstance(tasks, dict):
        raise ConfigError(f"{source}: key 'tasks': must map a task to a list of model ids")
    result: dict[str, list[str]] = {}
    for task, ids in tasks.items():
        if task not in TASKS:
            raise ConfigError(f"{source}: key 'tasks.{task}': unknown task (tasks: {', '.join(TASKS)})")
        if not isinstance(ids, list) or not all(isinstance(i, str) and _ID_RE.match(i) for i in ids):
            raise ConfigError(f"{source}: key 'tasks.{task}': must be a list of model ids")
        result[task] = list(ids)
    return result


def save_override(path: Path, task: str, entry_ids: list[str], catalog: Catalog) -> None:
    """Make ``entry_ids`` (in order) the user's choice for ``task``; an empty list removes it. Validates the task
    and every id against ``catalog`` (ConfigError naming unknown ids and close matches), keeps the other tasks'
    choices, and replaces the file atomically (a temp file beside it, then os.replace)."""
    _check_task(task)
    unknown = [entry_id for entry_id in entry_ids if entry_id not in catalog.ids]
    if unknown:
        hints = "; ".join(f"'{u}'{_did_you_mean(u, catalog.ids)}" for u in unknown)
        raise ConfigError(f"cannot save choices for '{task}' to {path}: not in the model catalog: {hints}")
    path = Path(path)
    current = load_overrides(path)  # a damaged file is reported, never silently replaced
    ids = list(dict.fromkeys(entry_ids))
    if ids:
        current[task] = ids
    else:
        current.pop(task, None)
    text = json.dumps({"version": OVERRIDES_VERSION, "tasks": {t: current[t] for t in TASKS if t in current}},
                      indent=2) + "\n"
    try:
        write_text_atomically(path, text)
    except OSError as exc:
        raise ConfigError(f"cannot save model choices to {path}: {exc.strerror or exc}") from exc
