"""Adding and removing a model entry in llm_backends.yaml as text, so the user's comments and order stay
exactly as written; the result is validated before it replaces the file (atomically)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from ..atomic_files import write_text_atomically
from ..config import SHIPPED_CONFIG, parse_backends, user_config_file
from ..errors import ConfigError

_TOP_KEY = re.compile(r"^[^\s#][^:]*:")
_ID_RE = re.compile(r"[^A-Za-z0-9_-]+")


def writable_config_path(in_use: Path, user_file: Path) -> Path:
    """Where an added model goes: the file in use, unless that is the shipped one (inside the install),
    in which case the user's own file (created from the shipped one by ``add_entry``)."""
    return user_file if _is_shipped(in_use) else in_use


def _is_shipped(path: Path) -> bool:
    try:
        return path.resolve() == SHIPPED_CONFIG.resolve()
    except OSError:
        return False


def propose_id(name: str, taken: set[str]) -> str:
    """A model id from a file or repository name: lower case, ``_`` for anything else, unique in ``taken``."""
    stem = name.rsplit("/", 1)[-1]
    stem = re.sub(r"\.gguf$", "", stem, flags=re.IGNORECASE)
    base = _ID_RE.sub("_", stem.replace(".", "_")).strip("_-").lower() or "model"
    candidate, n = base, 2
    while candidate in taken:
        candidate, n = f"{base}_{n}", n + 1
    return candidate


def add_entry(path: Path, model_id: str, fields: Mapping[str, Any], comment: str | None = None) -> str:
    """Append ``model_id`` with ``fields`` to the ``models:`` of ``path`` (created from the shipped file when
    absent) and return the new text. ConfigError, with nothing written, when the id is taken or the entry
    would not be valid."""
    text = path.read_text(encoding="utf-8") if path.exists() else SHIPPED_CONFIG.read_text(encoding="utf-8")
    current = parse_backends(text, source=str(path), base_dir=path.parent)
    if model_id in current.models or model_id in current.invalid:
        raise ConfigError(f"{path}: models.{model_id}: already exists; choose another id")
    if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*", model_id):
        raise ConfigError(f"models.{model_id}: an id may hold letters, digits, '_', '-' and '.'")
    new_text = insert_entry(text, model_id, fields, comment)
    after = parse_backends(new_text, source=str(path), base_dir=path.parent)
    problems = [str(p) for p in after.problems if model_id in p.path.split(".")]
    if model_id not in after.models:
        raise ConfigError(f"{path}: the new entry '{model_id}' would not be valid: "
                          f"{'; '.join(problems) or 'unknown problem'}", problems)
    _write(path, new_text)
    return new_text


def remove_entry(path: Path, model_id: str) -> str:
    """Remove ``model_id``'s block (its lines and the comments inside it) from ``path``; return the new text."""
    if _is_shipped(path):
        raise ConfigError(f"{path}: the shipped config is part of the install and is not changed; models added "
                          f"from the app live in your own file ({user_config_file()})")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc.strerror or exc}") from exc
    lines = text.splitlines(keepends=True)
    if not any(re.match(r"^models\s*:", line) for line in lines):
        raise ConfigError(f"{path}: models.{model_id}: no such entry in this file")
    start, end = _models_block(lines)
    indent = _entry_indent(lines, start, end)
    head = re.compile(rf"^{' ' * indent}{re.escape(model_id)}\s*:")
    first = next((i for i in range(start + 1, end) if head.match(lines[i])), None)
    if first is None:
        raise ConfigError(f"{path}: models.{model_id}: no such entry in this file")
    last = first + 1
    while last < end and (not lines[last].strip() or _indent(lines[last]) > indent):
        last += 1
    if last >= end or not lines[last].startswith(" " * indent):  # the block's last entry: its spacer goes too
        while first - 1 > start and not lines[first - 1].strip():
            first -= 1
    new_text = "".join(lines[:first] + lines[last:])
    _write(path, new_text)
    return new_text


def insert_entry(text: str, model_id: str, fields: Mapping[str, Any], comment: str | None = None) -> str:
    """The text with the entry appended at the end of the ``models:`` block (pure)."""
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    if not any(re.match(r"^models\s*:", line) for line in lines):
        lines += ["\n", "models:\n"]
    start, end = _models_block(lines)
    if lines[start].split(":", 1)[1].strip() not in ("", "{}", "null", "~") and \
            not lines[start].split(":", 1)[1].strip().startswith("#"):
        raise ConfigError("models: written inline (flow style); add the entry by hand or write it as a block")
    lines[start] = "models:\n"
    indent = _entry_indent(lines, start, end)
    child = " " * (indent * 2 if indent else 4)
    block = [f"{' ' * (indent or 2)}{model_id}:\n"]
    if comment:
        block += [f"{child}# {line}\n" for line in comment.splitlines()]
    block += [f"{child}{key}: {_scalar(value)}\n" for key, value in fields.items() if value is not None]
    insert_at = end
    while insert_at - 1 > start and (not lines[insert_at - 1].strip() or lines[insert_at - 1].startswith("#")):
        insert_at -= 1
    spacer = ["\n"] if insert_at - 1 > start else []
    tail = lines[insert_at:]
    if tail and tail[0].strip():
        block.append("\n")
    return "".join(lines[:insert_at] + spacer + block + tail)


def _write(path: Path, text: str) -> None:
    try:
        write_text_atomically(path, text)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot write the config file: {exc.strerror or exc}") from exc


def _models_block(lines: list[str]) -> tuple[int, int]:
    """Index of the ``models:`` line and of the first line after its block (the next top-level key or EOF)."""
    start = next(i for i, line in enumerate(lines) if re.match(r"^models\s*:", line))
    end = next((i for i in range(start + 1, len(lines)) if _TOP_KEY.match(lines[i])), len(lines))
    return start, end


def _entry_indent(lines: list[str], start: int, end: int) -> int:
    """The indentation of the block's entries (the first key line under ``models:``); 2 when it has none."""
    for line in lines[start + 1:end]:
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            return _indent(line)
    return 2


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _scalar(value: Any) -> str:
    """One YAML value on one line (strings quoted where YAML needs it, mappings in flow style)."""
    dumped = yaml.safe_dump(value, default_flow_style=True, allow_unicode=True, width=10_000).strip()
    return dumped[: -len("\n...")].strip() if dumped.endswith("\n...") else dumped.removesuffix("...").strip()
