"""The per-server API keys: a random key per model, in a file only the user can read.

Every server we launch answers only requests bearing its key, so a web page the user visits
cannot use the model on its loopback port. The key is stable across restarts (a pooled client
keeps working) and readable by any process of the same user (re-attaching needs it).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def ensure_key_file(path: Path) -> str:
    """The key in ``path``, made (mode 0600, in a 0700 directory) if there is none yet."""
    key = read_key(path)
    if key:
        return key
    return write_new_key(path)


def write_new_key(path: Path) -> str:
    """A new random key in ``path`` (mode 0600, in a 0700 directory), replacing any old one at once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    key = secrets.token_urlsafe(32)
    fd = os.open(path.with_name(path.name + ".tmp"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(key + "\n")
    os.replace(path.with_name(path.name + ".tmp"), path)
    return key


def read_key(path: Path | str | None) -> str | None:
    if path is None:
        return None
    try:
        lines = Path(path).read_text(encoding="ascii").split()
    except (OSError, UnicodeDecodeError):
        return None
    return lines[0] if lines else None
