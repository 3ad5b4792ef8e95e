"""This machine as model choices see it: memory, GPU memory, CPU features, free disk (read-only probes)."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Machine:
    """What a model must fit into. None: unknown here (no /proc, no nvidia-smi)."""

    total_memory: int | None
    available_memory: int | None
    gpu_memory: int | None = None  # free VRAM of the largest GPU
    cpu_flags: frozenset[str] = frozenset()
    cores: int | None = None  # None: unknown (then no speed is guessed)

    @property
    def memory_for_models(self) -> int | None:
        """What a model may take: the memory free now."""
        return self.available_memory


def read_machine() -> Machine:
    return Machine(
        total_memory=_meminfo("MemTotal:"),
        available_memory=available_memory_bytes(),
        gpu_memory=_nvidia_free_memory(),
        cpu_flags=cpu_flags(),
        cores=os.cpu_count(),
    )


def available_memory_bytes() -> int | None:
    """MemAvailable (Linux), else free physical pages; None when the OS does not say (the servers' budget asks
    this before each start)."""
    return _meminfo("MemAvailable:")


def _meminfo(key: str) -> int | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith(key):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    if key == "MemTotal:":
        try:
            return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            return None
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> frozenset[str]:
    """The CPU's feature flags (avx2, fma, f16c, ...); empty where the OS does not list them."""
    try:
        with open(cpuinfo, encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.partition(":")[2].split())
    except OSError:
        pass
    return frozenset()


def _nvidia_free_memory() -> int | None:
    """Free MiB of the largest NVIDIA GPU, as nvidia-smi reports it; None without one (never an error)."""
    binary = shutil.which("nvidia-smi")
    if binary is None:
        return None
    try:
        out = subprocess.run([binary, "--query-gpu=memory.free", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=5, check=False).stdout
        values = [int(v) for v in out.split() if v.strip().isdigit()]
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    return max(values) * 2**20 if values else None


def free_disk_bytes(directory: Path) -> int | None:
    """Free bytes on the file system that holds ``directory`` (or its nearest existing parent)."""
    path = directory
    while not path.exists() and path != path.parent:
        path = path.parent
    try:
        return shutil.disk_usage(path).free
    except OSError:
        return None


# The portable engine build's instruction sets (llama_build.py's flags): a CPU without them gets SIGILL.
PORTABLE_BUILD_FLAGS = ("avx", "avx2", "fma", "f16c", "bmi2")


def missing_cpu_features(flags: frozenset[str], needed: tuple[str, ...] = PORTABLE_BUILD_FLAGS) -> list[str]:
    """The engine build's instruction sets this CPU lacks; empty when it has all or cannot tell (no flags)."""
    if not flags:
        return []
    return [flag for flag in needed if flag not in flags]
