"""Getting BFCL's data from the Hugging Face Hub on first use, through the models' download path (I/O, blocking).

The dataset repository keeps the question files at its root and the answers in ``possible_answer/``, the
layout ``load_bfcl`` reads. Only the files of the categories asked for are fetched (newest version of each),
with the dataset card (its license) and any LICENSE file kept beside them. A cache that already holds every
file asked for is used without a request, so a run works offline once its categories have been fetched.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from ...errors import DownloadCancelled, DownloadError, DownloadOfflineError
from ...history.paths import data_dir
from ...models.downloads import DownloadProgress, download_file, list_repo_files, repo_folder
from .data import CATEGORIES, BfclDataError, FILE_NAMES, FILE_RE, category_files, scored_by_relevance

BFCL_REPO = "gorilla-llm/Berkeley-Function-Calling-Leaderboard"
LICENSE_FILES = ("README.md", "LICENSE", "LICENSE.md", "LICENSE.txt")
HOW_TO_GET = ("pass --bfcl-dir DIR with a copy of BFCL's data (its bfcl_eval/data folder, from "
              "github.com/ShishirPatil/gorilla), or run once online to fetch the dataset "
              f"{BFCL_REPO} from the Hugging Face Hub")


def datasets_dir() -> Path:
    """Where fetched datasets are kept: ``<data dir>/datasets``."""
    return data_dir() / "datasets"


def cached_bfcl_dir(base: Path | None = None) -> Path:
    return repo_folder(base or datasets_dir(), BFCL_REPO)


def fetch_bfcl(
    categories: tuple[str, ...] = CATEGORIES,
    *,
    base: Path | None = None,
    endpoint: str | None = None,
    on_progress: Callable[[DownloadProgress], None] | None = None,
    cancel: threading.Event | None = None,
) -> Path:
    """The folder holding ``categories`` of BFCL's data, fetched into the cache where missing.

    Raises BfclDataError (one line: what is missing and how to get it) when the hub cannot be reached and the
    cache lacks a file; DownloadCancelled when ``cancel`` is set."""
    folder = cached_bfcl_dir(base)
    if _complete(folder, categories):
        return folder
    try:
        listed = {path for path, _size in list_repo_files(BFCL_REPO, endpoint=endpoint, repo_type="dataset")}
        wanted = [name for name in LICENSE_FILES if name in listed]
        for category in categories:
            question = _newest(listed, category)
            if question is None:
                raise BfclDataError(f"BFCL data: the dataset {BFCL_REPO} has no file for category {category!r}")
            wanted.append(question)
            if not scored_by_relevance(category):
                wanted.append(f"possible_answer/{question}")
        for name in wanted:
            download_file(BFCL_REPO, name, folder.parent, endpoint=endpoint, on_progress=on_progress,
                          cancel=cancel, repo_type="dataset")
    except DownloadCancelled:
        raise
    except DownloadOfflineError as exc:
        raise BfclDataError(f"BFCL data is not here and the Hugging Face Hub is off (HF_HUB_OFFLINE is set): "
                            f"{HOW_TO_GET}") from exc
    except DownloadError as exc:
        raise BfclDataError(f"BFCL data is not here and could not be fetched ({exc}): {HOW_TO_GET}") from exc
    return folder


def _complete(folder: Path, categories: tuple[str, ...]) -> bool:
    for category in categories:
        found = category_files(folder, category)
        if found is None or (found[1] is None and not scored_by_relevance(category)):
            return False
    return True


def _newest(listed: set[str], category: str) -> str | None:
    best: tuple[int, str] | None = None
    for path in listed:
        match = FILE_RE.match(path)
        if match and match["name"] in FILE_NAMES.get(category, (category,)):
            if best is None or int(match["version"]) > best[0]:
                best = (int(match["version"]), path)
    return best[1] if best else None
