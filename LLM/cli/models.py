"""llmctl models: the configured models with what they can do and whether they fit; inspect, recommend,
download, add and remove."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import threading
import time
from pathlib import Path

from ..core import Runtime, get_model_recommendations, update_model_recommendations
from ..core.models import (
    TASKS,
    DownloadCancelled,
    DownloadProgress,
    ModelReport,
    default_models_dir,
    download_file,
    gib,
    load_catalog,
    propose_entry,
    read_machine,
    remove_entry,
    add_entry,
    user_config_file,
    writable_config_path,
)


def add_models_parser(sub: argparse._SubParsersAction) -> None:
    models = sub.add_parser("models", help="configured models with capabilities and fit; inspect, recommend, "
                                           "download, add, remove")
    models.add_argument("--json", action="store_true", help="print the list as JSON")
    actions = models.add_subparsers(dest="models_action")
    inspect = actions.add_parser("inspect", help="what a model file, folder or configured id is and can do")
    inspect.add_argument("target", help="a .gguf file, an HF model or adapter folder, or a model id")
    inspect.add_argument("--context", type=int, help="context size for the memory estimate (default: the entry's)")
    inspect.add_argument("--json", action="store_true")
    rec = actions.add_parser("recommend", help="catalog models for a task, best for this machine first")
    rec.add_argument("--task", default="chat", choices=TASKS)
    rec.add_argument("--limit", type=int)
    rec.add_argument("--json", action="store_true")
    rec.add_argument("--set", metavar="ID,ID", help="make these catalog ids your recommendations for the task")
    rec.add_argument("--reset", action="store_true", help="back to the catalog's own ranking for the task")
    download = actions.add_parser("download", help="fetch a model from the Hugging Face Hub (resumable)")
    download.add_argument("repo", help="a catalog id (llmctl models recommend) or a repository, e.g. Qwen/Qwen2.5-1.5B-Instruct-GGUF")
    download.add_argument("file", nargs="?", help="the file in the repository (a catalog id picks it)")
    download.add_argument("--quant", help="with a catalog id: which quantization (default: the catalog's)")
    download.add_argument("--revision")
    download.add_argument("--add", action="store_true", help="add it to llm_backends.yaml once downloaded")
    download.add_argument("--id", dest="model_id", help="with --add: the model id")
    add = actions.add_parser("add", help="add a model file or folder to llm_backends.yaml (comments kept)")
    add.add_argument("path")
    add.add_argument("--id", dest="model_id")
    add.add_argument("--context", type=int, help="context size (default: what fits, at most 4096)")
    add.add_argument("--port", type=int)
    add.add_argument("--name", help="display name")
    add.add_argument("--mmproj", help="the vision projector GGUF for this model")
    remove = actions.add_parser("remove", help="remove a model's entry from llm_backends.yaml (files are kept)")
    remove.add_argument("model_id")


async def cmd_models(runtime: Runtime, args: argparse.Namespace, config_arg: str | None) -> int:
    action = getattr(args, "models_action", None)
    if action == "inspect":
        return await _inspect(runtime, args)
    if action == "recommend":
        return _recommend(args)
    if action == "download":
        return await _download(runtime, args, config_arg)
    if action == "add":
        return await _add(runtime, Path(args.path), args, config_arg)
    if action == "remove":
        return _remove(runtime, args.model_id, config_arg)
    return await _list(runtime, args.json)


async def _list(runtime: Runtime, as_json: bool) -> int:
    """Every model with backend, server state and name; below it what it can do and whether it fits.
    Models sharing a server (a base and its adapters) are listed under one line for that server."""
    rows = {row.model_id: row for row in runtime.servers.status()} if runtime.servers else {}
    config = runtime.config
    reports = {model_id: await runtime.model_report(model_id) for model_id in config.models}
    if as_json:
        out = []
        for model_id, entry in config.models.items():
            data = reports[model_id].to_json()
            data.update({"display_name": entry.label, "backend": entry.backend,
                         "state": rows[model_id].state if model_id in rows else None})
            out.append(data)
        out += [{"id": model_id, "invalid": problems} for model_id, problems in config.invalid.items()]
        print(json.dumps(out, indent=2))
        return 0
    for model_id, entry in config.models.items():
        group = config.group_of(model_id) if entry.launchable else None
        if group is not None and group.id != model_id:
            continue  # listed under the server it shares
        row = rows.get(model_id)
        members = group.model_ids if group is not None else (model_id,)
        indent = "  " if len(members) > 1 else ""
        if indent:
            pid = str(row.pid) if row and row.pid else "-"
            memory = f"{row.memory_bytes / 2**20:.0f} MB" if row and row.memory_bytes else "-"
            base = Path(str(entry.base_model).removeprefix("pkg:")).name
            print(f"server {model_id}: {entry.backend}, base {base}, port {entry.port}, pid {pid}, "
                  f"memory {memory}, {len(group.adapters)} adapter(s)")
        for member in members:
            member_entry = config.models[member]
            state = rows[member].state if member in rows else "-"
            kind = f"{member_entry.backend}{' (base)' if member_entry.model_type == 'base' else ''}"
            name = member_entry.label
            if indent:
                name += f"  [{member_entry.adapter_name or 'no adapter'}]"
            print(f"{indent}{member:<{20 - len(indent)}} {kind:<19} {state:<10} {name}")
        summary = _summary(reports[model_id])  # one base: members share what it can do and its memory
        if summary:
            print(f"{'':<20} {summary}")
        if runtime.servers is not None and row is not None and row.state in ("ready", "running"):
            props = await runtime.servers.running_props(model_id)
            if props is not None:
                print(f"{'':<20} {props.summary()}")
    for model_id, problems in config.invalid.items():
        print(f"{model_id:<20} {'invalid':<19} {'-':<10} {problems[0]}")
    return 0


def _summary(report: ModelReport) -> str:
    """One line: badges, then fit: "tools · vision? · 0.15 GiB of 22.4 GiB free"."""
    facts = report.fit is not None or report.problem or report.extra.get("requirements")
    if not report.badges() and not facts:
        return ""  # a remote model known by its name only: nothing worth a line
    parts = report.badges() or (["text only"] if report.info is not None else [])
    if report.fit is not None:
        parts.append(report.fit.describe())
    elif report.problem:
        parts.append(report.problem)
    parts += report.extra.get("requirements", [])
    return " · ".join(parts)


async def _inspect(runtime: Runtime, args: argparse.Namespace) -> int:
    target = args.target
    if target in runtime.config.models and not Path(target).exists():
        report = await runtime.model_report(target)
    else:
        report = await runtime.path_report(Path(target), args.context)
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
        return 0
    _print_report(report)
    return 0


def _print_report(report: ModelReport) -> None:
    info = report.info
    print(f"{report.model_id or Path(report.path or '').name}: {report.path or '(no local files)'}")
    if report.problem:
        print(f"  problem: {report.problem}")
    if info is not None:
        params = f"{_count(info.parameters)} parameters" if info.parameters else "parameters unknown"
        print(f"  {info.kind}, {info.architecture or 'architecture unknown'}, {params}, "
              f"{info.quantization or 'quantization unknown'}, {gib(info.size_bytes)} on disk")
        print(f"  native context {info.context_length or 'unknown'}; license {info.license or 'unknown'}"
              + (f"; base model {info.base_model}" if info.base_model else ""))
    print("  capabilities:")
    for name, cap in report.capabilities.items():
        detail = f" — {cap.detail}" if cap.detail else ""
        print(f"    {name:<20} {'yes' if cap.value else 'no':<4} {cap.confidence:>4.0%} from {cap.source}{detail}")
    if report.memory is not None:
        print(f"  memory at context {report.context_size}: {report.memory.describe()}")
    if report.fit is not None:
        print(f"  fit: {report.fit.describe()}")
    for problem in report.extra.get("requirements", []):
        print(f"  missing: {problem}")


def _count(parameters: int) -> str:
    """135M, 1.5B: as model names say it."""
    return f"{parameters / 1e9:.1f}B" if parameters >= 1e9 else f"{parameters / 1e6:.0f}M"


def _recommend(args: argparse.Namespace) -> int:
    if args.set or args.reset:
        ids = [] if args.reset else [i.strip() for i in args.set.split(",") if i.strip()]
        update_model_recommendations(args.task, ids)
        print(f"{args.task}: {'back to the catalog ranking' if args.reset else 'your choices: ' + ', '.join(ids)}")
        return 0
    recs = get_model_recommendations(args.task, limit=args.limit)
    if args.json:
        print(json.dumps([r.to_json() for r in recs], indent=2))
        return 0
    for rec in recs:
        mark = "fits " if rec.fits else "TOO BIG"
        print(f"{rec.entry.id:<28} {mark:<7} {rec.quant:<8} {gib(rec.memory_needed):>10}  {rec.reason}")
    print(f"\nfetch one: llmctl models download ID --add")
    return 0


class _ProgressLine:
    """A progress bar on one terminal line (a plain line every few seconds when stdout is no terminal)."""

    def __init__(self) -> None:
        self.tty = sys.stdout.isatty()
        self._last = 0.0

    def __call__(self, progress: DownloadProgress) -> None:
        now = time.monotonic()
        done = progress.total_bytes is not None and progress.done_bytes >= progress.total_bytes
        if not self.tty and now - self._last < 5 and not done:
            return
        self._last = now
        width = 30
        share = progress.done_bytes / progress.total_bytes if progress.total_bytes else 0.0
        bar = "#" * int(width * share) + "-" * (width - int(width * share))
        line = f"{progress.filename[:40]} [{bar}] {share:5.1%} {progress.describe()}"
        if self.tty:
            sys.stdout.write(f"\r{line:<120}")
            sys.stdout.flush()
        else:
            print(line, flush=True)

    def finish(self) -> None:
        if self.tty:
            sys.stdout.write("\n")


async def _download(runtime: Runtime, args: argparse.Namespace, config_arg: str | None) -> int:
    files: list[tuple[str, str]] = []
    mmproj_name: str | None = None
    catalog = load_catalog()
    if args.file is None and "/" not in args.repo:
        entry = catalog.get(args.repo)  # ConfigError naming close ids when unknown
        chosen = entry.file_for(args.quant)
        files.append((entry.repo, chosen.file))
        if entry.mmproj is not None:
            files.append((entry.repo, entry.mmproj.file))
            mmproj_name = entry.mmproj.file
        model_id, hint, name = args.model_id, entry.id, f"{entry.name} ({chosen.quant})"
    elif args.file is None:
        print(f"error: name the file to fetch from {args.repo} (e.g. one .gguf quantization), or a catalog id "
              "(llmctl models recommend)", file=sys.stderr)
        return 2
    else:
        files.append((args.repo, args.file))
        model_id, hint, name = args.model_id, None, None
    models_dir = runtime.config.models_dir or default_models_dir()
    cancel = threading.Event()
    paths: list[Path] = []
    for repo, name in files:
        bar = _ProgressLine()
        try:
            path = await asyncio.to_thread(download_file, repo, name, models_dir, revision=args.revision,
                                           on_progress=bar, cancel=cancel)
        except (KeyboardInterrupt, asyncio.CancelledError):
            cancel.set()
            bar.finish()
            print("cancelled; run the same command again to resume", file=sys.stderr)
            return 130
        except DownloadCancelled:
            bar.finish()
            print("cancelled; run the same command again to resume", file=sys.stderr)
            return 130
        bar.finish()
        print(f"saved {path}")
        paths.append(path)
    if not args.add:
        print(f"add it: llmctl models add {paths[0]}" + (f" --mmproj {paths[1]}" if mmproj_name else ""))
        return 0
    mmproj = paths[1] if mmproj_name and len(paths) > 1 else None
    args.model_id, args.context, args.port, args.name, args.mmproj = model_id, None, None, name, mmproj
    return await _add(runtime, paths[0], args, config_arg, id_hint=hint)


async def _add(runtime: Runtime, path: Path, args: argparse.Namespace, config_arg: str | None,
               id_hint: str | None = None) -> int:
    report = await runtime.path_report(path.expanduser().resolve(), args.context)
    mmproj = Path(args.mmproj).expanduser().resolve() if args.mmproj else None
    new = propose_entry(report, runtime.config, read_machine(), model_id=args.model_id, context_size=args.context,
                        port=args.port, display_name=args.name, mmproj=mmproj, id_hint=id_hint)
    target = writable_config_path(Path(runtime.config.source), user_config_file()) if not config_arg \
        else Path(config_arg)
    add_entry(target, new.model_id, new.fields, comment=_comment(report))
    print(f"added '{new.model_id}' to {target}")
    for key, value in new.fields.items():
        print(f"  {key}: {value}")
    for note in new.notes:
        print(f"  note: {note}")
    print(f"  {_summary(report)}")
    print(f"use it: llmctl chat -m {new.model_id}")
    return 0


def _comment(report: ModelReport) -> str:
    info = report.info
    what = ", ".join(filter(None, [info.architecture if info else None,
                                   _count(info.parameters) if info and info.parameters else None,
                                   info.quantization if info else None,
                                   f"license {info.license}" if info and info.license else None]))
    return f"Added by `llmctl models add` on {time.strftime('%Y-%m-%d')}: {what}"


def _remove(runtime: Runtime, model_id: str, config_arg: str | None) -> int:
    runtime.entry(model_id)  # ModelNotFoundError naming close ids
    target = Path(config_arg) if config_arg else Path(runtime.config.source)
    remove_entry(target, model_id)
    print(f"removed '{model_id}' from {target} (its files are kept)")
    return 0
