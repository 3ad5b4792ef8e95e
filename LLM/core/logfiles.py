"""Log files we write: readable by the user alone, since servers log their command lines and what they print."""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO, Any


def open_private(path: Path, mode: str = "a", **kwargs: Any) -> IO[Any]:
    """open(path, mode) for a log file, created 0600; an existing file is narrowed to 0600 first.

    The mode takes 'a', 'a+', 'w' or 'w+', with 'b' for bytes; kwargs go to open() (encoding, errors).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_CREAT | os.O_WRONLY
    if "+" in mode:
        flags = os.O_CREAT | os.O_RDWR
    if mode.startswith("a"):
        flags |= os.O_APPEND
    elif mode.startswith("w"):
        flags |= os.O_TRUNC
    else:
        raise ValueError(f"open_private: mode {mode!r} does not write")
    fd = os.open(path, flags, 0o600)
    try:
        os.fchmod(fd, 0o600)  # a log created by an older version may be 0644
        return os.fdopen(fd, mode, **kwargs)
    except BaseException:
        os.close(fd)
        raise
