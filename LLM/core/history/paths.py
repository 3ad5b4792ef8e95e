"""Where the workbench keeps its data: ``$LLM_DATA_DIR``, else the user data dir (platformdirs)."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

from ..config import APP_NAME

DATA_ENV_VAR = "LLM_DATA_DIR"
HISTORY_FILE = "history.sqlite3"


def data_dir() -> Path:
    override = os.environ.get(DATA_ENV_VAR)
    return Path(override).expanduser() if override else Path(platformdirs.user_data_dir(APP_NAME))


def default_history_path() -> Path:
    return data_dir() / HISTORY_FILE
