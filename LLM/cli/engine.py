"""llmctl engine: which engine each GGUF model runs, and building llama.cpp's llama-server once per machine."""

from __future__ import annotations

import argparse
import sys
import time

from ..core import Runtime
from ..core.servers import BuildProgress, build_llama_server, default_build, engine_version, install_llama_server

BAR_WIDTH = 30


def add_engine_parser(sub: argparse._SubParsersAction) -> None:
    engine = sub.add_parser("engine", help="show or build the llama.cpp engine (llama-server)")
    engine_sub = engine.add_subparsers(dest="action")
    engine_sub.add_parser("status", help="the engine binary and llama.cpp version each GGUF model uses (default)")
    build = engine_sub.add_parser("build", help="build llama-server from the pinned llama.cpp source (once)")
    build.add_argument("--cmake-args", help="extra CMake flags, e.g. '-DGGML_CUDA=ON' for an NVIDIA GPU "
                                            "(default: $LLM_LLAMA_CMAKE_ARGS)")
    build.add_argument("--jobs", "-j", type=int, help="parallel compile jobs (default: all cores)")
    build.add_argument("--force", action="store_true", help="rebuild even if this flavor was built before")


async def cmd_engine(runtime: Runtime, args: argparse.Namespace) -> int:
    if args.action == "build":
        return build(args)
    return status(runtime)


def status(runtime: Runtime) -> int:
    versions: dict[str, str | None] = {}
    gguf = [m for m, e in runtime.config.models.items() if e.backend == "llama_cpp"]
    if not gguf:
        print("no llama_cpp models in the config")
    for model_id in gguf:
        binary = runtime.servers.engine_binary(model_id) if runtime.servers else None
        if binary is None:
            print(f"{model_id:<20} cannot tell (see `llmctl models`)")
            continue
        if binary.endswith("llama_cpp.server"):
            print(f"{model_id:<20} llama-cpp-python ({binary})")
            continue
        if binary not in versions:
            versions[binary] = engine_version_of(binary)
        version = versions[binary]
        shown = f"llama.cpp {version}" if version else "MISSING: build it with `llmctl engine build`"
        print(f"{model_id:<20} {shown:<28} {binary}")
    return 0


def engine_version_of(binary: str) -> str | None:
    from pathlib import Path

    path = Path(binary)
    return engine_version(path) if path.is_file() else None


def build(args: argparse.Namespace) -> int:
    plan = default_build(args.cmake_args)
    started = time.monotonic()
    print(f"llama-server for llama.cpp {plan.binary.parent.name} (flags: {' '.join(plan.extra_cmake_args) or 'portable'})")
    report = _progress_printer(sys.stdout.isatty())
    binary = build_llama_server(plan, report, jobs=args.jobs, force=args.force)
    installed = install_llama_server(binary)
    seconds = int(time.monotonic() - started)
    print(f"\nllama-server ready in {seconds // 60} min {seconds % 60} s: {installed} "
          f"({engine_version(installed) or 'version unknown'})")
    return 0


def _progress_printer(tty: bool):
    """A bar redrawn in place on a terminal; a line per stage or per 10% elsewhere (make, CI logs)."""
    last = {"stage": "", "percent": -10}

    def report(p: BuildProgress) -> None:
        if tty:
            filled = BAR_WIDTH * p.percent // 100
            bar = "#" * filled + "-" * (BAR_WIDTH - filled)
            sys.stdout.write(f"\r[{bar}] {p.percent:3d}%  {p.message[:60]:<60}")
            sys.stdout.flush()
        elif p.stage != last["stage"] or p.percent >= last["percent"] + 10 or p.stage == "done":
            print(f"    [{p.percent:3d}%] {p.message}", flush=True)
            last["stage"], last["percent"] = p.stage, p.percent

    return report
