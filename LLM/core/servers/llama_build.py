"""llama.cpp's ``llama-server``: built once per machine from pinned source, found at launch time.

The source is the llama.cpp tree vendored in the llama-cpp-python sdist on PyPI (a registry every
machine of ours reaches), pinned by version and sha256. Only the ``llama-server`` target is built,
with portable x86-64 flags: llama.cpp's default ``-march=native`` enables AMX weight repacking,
which crashed on the first batched decode on this project's machines. The binary is cached per
flavor (the CMake flags) outside any checkout and copied next to the Python that runs us.
"""

from __future__ import annotations

import hashlib
import os
import platform
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from platformdirs import user_cache_dir, user_data_dir

from ..config import APP_NAME
from ..errors import EngineBuildError, ResourceNotAvailableError
from ..logfiles import open_private
from .process import log_tail

SOURCE_PACKAGE = "llama-cpp-python"
SOURCE_VERSION = "0.3.36"
SOURCE_SHA256 = "832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e"
SOURCE_SUBDIR = "vendor/llama.cpp"
LLAMA_CPP_COMMIT = "0c1e570"
BINARY = "llama-server"
CMAKE_ARGS_ENV = "LLM_LLAMA_CMAKE_ARGS"  # e.g. "-DGGML_CUDA=ON" for an NVIDIA GPU
CACHE_ENV = "LLM_ENGINE_CACHE"

PORTABLE_X86_64 = ("-DGGML_NATIVE=OFF", "-DGGML_AVX=ON", "-DGGML_AVX2=ON", "-DGGML_FMA=ON", "-DGGML_F16C=ON",
                   "-DGGML_BMI2=ON")
ALWAYS = ("-DCMAKE_BUILD_TYPE=Release", "-DLLAMA_BUILD_TESTS=OFF", "-DLLAMA_BUILD_EXAMPLES=OFF",
          "-DLLAMA_BUILD_SERVER=ON", "-DLLAMA_CURL=OFF", "-DBUILD_SHARED_LIBS=OFF",
          f"-DLLAMA_BUILD_COMMIT={LLAMA_CPP_COMMIT}", "-DLLAMA_BUILD_NUMBER=0")

_PERCENT_RE = re.compile(r"^\s*\[\s*(\d+)%\]")
_VERSION_RE = re.compile(r"version:\s*(\S+)\s*\(build\s*(\d+),\s*commit\s*(\w+)\)")


@dataclass(frozen=True)
class BuildProgress:
    stage: str  # download | extract | configure | compile | install | done
    percent: int  # 0-100 within the whole build
    message: str


@dataclass(frozen=True)
class EngineBuild:
    """Where one flavor of the engine is built and cached."""

    cache_dir: Path
    extra_cmake_args: tuple[str, ...] = ()

    @property
    def cmake_args(self) -> tuple[str, ...]:
        base = PORTABLE_X86_64 if platform.machine().lower() in ("x86_64", "amd64") else ()
        return (*ALWAYS, *base, *self.extra_cmake_args)

    @property
    def flavor(self) -> str:
        if not self.extra_cmake_args:
            return "avx2" if platform.machine().lower() in ("x86_64", "amd64") else "native"
        return "custom-" + hashlib.sha256(" ".join(self.extra_cmake_args).encode()).hexdigest()[:10]

    @property
    def binary(self) -> Path:
        return self.cache_dir / f"llama.cpp-{LLAMA_CPP_COMMIT}-{self.flavor}" / BINARY


def default_build(extra_cmake_args: str | None = None) -> EngineBuild:
    """The build for this machine: ``$LLM_LLAMA_CMAKE_ARGS`` (or the given flags) on top of the portable ones."""
    extra = os.environ.get(CMAKE_ARGS_ENV, "") if extra_cmake_args is None else extra_cmake_args
    cache = Path(os.environ.get(CACHE_ENV) or Path(user_cache_dir(APP_NAME)) / "engine")
    return EngineBuild(cache, tuple(extra.split()))


def install_dirs() -> list[Path]:
    """Where a built engine is installed, best first: beside this Python's scripts, else the user data dir."""
    return [Path(sysconfig.get_path("scripts")), Path(user_data_dir(APP_NAME)) / "bin"]


def find_llama_server(explicit: str | None = None) -> Path | None:
    """The binary a model launches: an explicit ``llama_server_bin``, else ours (installed or cached), else PATH."""
    if explicit:
        return Path(explicit).expanduser()
    for directory in install_dirs():
        candidate = directory / BINARY
        if candidate.is_file():
            return candidate
    cached = default_build().binary
    if cached.is_file():
        return cached
    found = shutil.which(BINARY)
    return Path(found) if found else None


def engine_version(binary: Path) -> str | None:
    """``b<build>-<commit>`` as the binary reports it, or None when it does not run."""
    try:
        out = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = _VERSION_RE.search(out.stdout + out.stderr)
    return f"b{match.group(2)}-{match.group(3)}" if match else None


def build_hint() -> str:
    return "build it with `llmctl engine build` (or `make install` in a checkout)"


def build_llama_server(
    build: EngineBuild,
    progress: Callable[[BuildProgress], None] = lambda p: None,
    *,
    jobs: int | None = None,
    force: bool = False,
) -> Path:
    """Build (unless cached) and return the binary. Raises EngineBuildError / ResourceNotAvailableError."""
    if build.binary.is_file() and not force:
        progress(BuildProgress("done", 100, f"using the engine built earlier: {build.binary}"))
        return build.binary
    cmake = shutil.which("cmake")
    if cmake is None:
        raise ResourceNotAvailableError("building llama-server needs cmake: install it (Debian/Ubuntu: "
                                        "sudo apt-get install cmake; Fedora: sudo dnf install cmake; pip install cmake)")
    if not any(shutil.which(c) for c in ("c++", "g++", "clang++")):
        raise ResourceNotAvailableError("building llama-server needs a C++ compiler: install one (Debian/Ubuntu: "
                                        "sudo apt-get install g++; Fedora: sudo dnf install gcc-c++)")
    build.cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="llama-build-", dir=build.cache_dir) as tmp:
        work = Path(tmp)
        source = _source_tree(build.cache_dir, work, progress)
        build_dir = work / "build"
        log_path = build.cache_dir / f"build-{build.flavor}.log"
        with open_private(log_path, "w", encoding="utf-8") as log:
            progress(BuildProgress("configure", 8, "configuring with cmake"))
            _run([cmake, "-S", str(source), "-B", str(build_dir), *build.cmake_args], log, log_path)
            progress(BuildProgress("compile", 10, "compiling llama-server"))
            jobs = jobs or os.cpu_count() or 2

            def on_line(line: str) -> None:
                match = _PERCENT_RE.match(line)
                if match:
                    done = int(match.group(1))
                    progress(BuildProgress("compile", 10 + done * 88 // 100, f"compiling ({done}%)"))

            _run([cmake, "--build", str(build_dir), "--target", BINARY, "-j", str(jobs)], log, log_path, on_line)
        built = build_dir / "bin" / BINARY
        if not built.is_file():
            raise _failed(f"the build finished but produced no {BINARY}", log_path)
        build.binary.parent.mkdir(parents=True, exist_ok=True)
        staged = build.binary.with_suffix(".tmp")
        shutil.copy2(built, staged)
        os.replace(staged, build.binary)  # atomic: a concurrent launcher never sees half a binary
    progress(BuildProgress("done", 100, f"built {build.binary}"))
    return build.binary


def install_llama_server(binary: Path) -> Path:
    """Copy the binary next to this Python's scripts (or into the user data dir); returns where it went."""
    for directory in install_dirs():
        target = directory / BINARY
        try:
            directory.mkdir(parents=True, exist_ok=True)
            staged = target.with_name(f".{BINARY}.{os.getpid()}.tmp")
            shutil.copy2(binary, staged)
            os.replace(staged, target)
            return target
        except OSError:
            continue
    raise EngineBuildError(f"cannot install {BINARY}: no writable directory among "
                           f"{', '.join(str(d) for d in install_dirs())}")


def _source_tree(cache_dir: Path, work: Path, progress: Callable[[BuildProgress], None]) -> Path:
    """The pinned llama.cpp tree, from the sdist (downloaded once, sha256-checked) into ``work``."""
    archive = source_archive(cache_dir, progress)
    progress(BuildProgress("extract", 5, "extracting the llama.cpp source"))
    return extract_source(archive, work)


def source_archive(cache_dir: Path, progress: Callable[[BuildProgress], None] = lambda p: None) -> Path:
    """The pinned sdist in the cache, downloaded (and its sha256 checked) the first time."""
    archive = cache_dir / "src" / f"llama_cpp_python-{SOURCE_VERSION}.tar.gz"
    if not archive.is_file() or _sha256(archive) != SOURCE_SHA256:
        progress(BuildProgress("download", 1, f"downloading the pinned llama.cpp source ({SOURCE_PACKAGE} "
                                              f"{SOURCE_VERSION} sdist, ~76 MB)"))
        archive.parent.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                   f"{SOURCE_PACKAGE}=={SOURCE_VERSION}", "-d", str(archive.parent)]
        out = subprocess.run(command, capture_output=True, text=True)
        if out.returncode != 0 or not archive.is_file():
            raise EngineBuildError(f"cannot download the llama.cpp source: {(out.stderr or out.stdout).strip()[-500:]}")
        if _sha256(archive) != SOURCE_SHA256:
            archive.unlink()
            raise EngineBuildError(f"the downloaded {archive.name} does not match its pinned sha256")
    return archive


def extract_source(archive: Path, work: Path, only: tuple[str, ...] = ()) -> Path:
    """Extract the llama.cpp tree (or only the paths under it starting with one of ``only``) into ``work``."""
    prefix = f"llama_cpp_python-{SOURCE_VERSION}/{SOURCE_SUBDIR}/"
    wanted = tuple(prefix + p for p in only) or (prefix,)
    with tarfile.open(archive) as tar:
        members = [m for m in tar.getmembers() if m.name.startswith(wanted)]
        if hasattr(tarfile, "data_filter"):
            tar.extractall(work, members=members, filter="data")
        else:  # Python < 3.10.12: no extraction filters; the archive's hash is pinned above
            tar.extractall(work, members=members)
    return work / prefix


def _run(command: list[str], log, log_path: Path, on_line: Callable[[str], None] | None = None) -> None:
    log.write(f"$ {' '.join(command)}\n")
    log.flush()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace")
    assert proc.stdout is not None
    for line in proc.stdout:
        log.write(line)
        if on_line is not None:
            on_line(line)
    if proc.wait() != 0:
        log.flush()
        raise _failed(f"`{Path(command[0]).name} {command[1]}` failed (exit {proc.returncode})", log_path)


def _failed(message: str, log_path: Path) -> EngineBuildError:
    return EngineBuildError(message, str(log_path), log_tail(log_path, 15))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def elapsed(started: float) -> str:
    seconds = int(time.monotonic() - started)
    return f"{seconds // 60} min {seconds % 60} s"
