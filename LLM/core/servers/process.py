"""OS-level process helpers for model servers: spawn in a process group, stop, inspect."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections import deque
from pathlib import Path

from ..errors import ResourceNotAvailableError
from ..logfiles import open_private


def spawn(argv: list[str], log_path: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start argv in its own process group (so stop can signal all of it) with output appended to log_path
    (readable by the user alone: it holds the command line and whatever the engine prints)."""
    with open_private(log_path, "ab") as log:
        log.write(f"\n===== {time.strftime('%Y-%m-%d %H:%M:%S')} starting: {' '.join(argv)}\n".encode())
        log.flush()
        try:
            return subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
            )
        except FileNotFoundError as exc:
            raise ResourceNotAvailableError(f"cannot start server: '{argv[0]}' not found") from exc
        except PermissionError as exc:
            raise ResourceNotAvailableError(f"cannot start server: '{argv[0]}' is not executable") from exc
        except OSError as exc:  # e.g. not an executable format for this machine
            raise ResourceNotAvailableError(f"cannot start server '{argv[0]}': {exc.strerror or exc}") from exc


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie has exited; only its parent's wait() is missing.
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def start_time(pid: int) -> str | None:
    """When the process started, as the OS records it (Linux: clock ticks since boot; else ps's lstart).

    With the command line, it proves a live pid is still the process we started (pids are reused).
    None when it cannot be told, which never counts as proof."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            return f.read().rsplit(")", 1)[1].split()[19]  # field 22: starttime
    except (OSError, IndexError):
        pass
    try:
        out = subprocess.run(["ps", "-o", "lstart=", "-p", str(pid)], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None


def process_cmdline(pid: int) -> list[str] | None:
    """The process's argv (Linux); None when it cannot be read."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def stop_process_group(pid: int, grace_s: float = 8.0) -> bool:
    """SIGTERM to the whole group, wait, then SIGKILL, polling until no member is left (a worker that
    ignores SIGTERM, or outlives its leader, included). True when the group is gone; never raises for
    an already dead process."""
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return True
        except PermissionError:
            os.kill(pid, sig)
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if not group_alive(pid):
                return True
            time.sleep(0.05)
    return not group_alive(pid)


def group_alive(pgid: int) -> bool:
    """Whether any live (non-zombie) process is left in the group; a dead leader does not end it."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    members = _group_members(pgid)
    if members is None:  # no /proc: the leader is the best we can see
        return pid_alive(pgid)
    return any(pid_alive(member) for member in members)


def _group_members(pgid: int) -> list[int] | None:
    proc = Path("/proc")
    if not proc.is_dir():
        return None
    members = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text(encoding="ascii", errors="replace").rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if len(fields) > 2 and fields[2] == str(pgid):  # field 5: pgrp
            members.append(int(entry.name))
    return members


def port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.3)
        return sock.connect_ex((host, port)) == 0 or _bind_fails(host, port)


def _bind_fails(host: str, port: int) -> bool:
    # A socket bound but not accepting. SO_REUSEADDR, as servers use, so that a port
    # left in TIME_WAIT by our own stopped server does not count as taken.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def port_owner(port: int) -> str | None:
    """'pid N (name)' of the process listening on port, when /proc tells (Linux, same user)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if len(parts) > 9 and parts[3] == "0A" and int(parts[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(parts[9])
    if not inodes:
        return None
    targets = {f"socket:[{inode}]" for inode in inodes}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            for fd in (proc / "fd").iterdir():
                if os.readlink(fd) in targets:
                    name = (proc / "comm").read_text().strip()
                    return f"pid {proc.name} ({name})"
        except OSError:
            continue
    return None


def log_tail(path: Path, lines: int = 20) -> list[str]:
    """The last ``lines`` lines (none for 0 or less); [] when the file cannot be read."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return [line.rstrip("\n") for line in deque(f, maxlen=max(lines, 0))]
    except OSError:
        return []


def last_log_line(path: Path, max_bytes: int = 4096) -> str:
    """The last non-empty line, read from the end only (logs grow large)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - max_bytes))
            chunk = f.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    for line in reversed(chunk.replace("\r", "\n").splitlines()):
        if line.strip():
            return line.strip()
    return ""
