"""Downloading model files from the Hugging Face Hub: resumable, cancellable, verified, with progress.

A file lands at ``models_dir / "<owner>__<name>" / filename``, a plain path a config can name. Beside it, in
the repository folder's hidden ``.download/`` folder, live the partial file of an unfinished download
(``<filename>.<etag>.incomplete``), a lock, and the record of a finished one (``<filename>.json``)::

    download_file(repo, file, models_dir)
      file present and its record matches (size, mtime, revision)  -> return it, no request at all
      HF_HUB_OFFLINE                                                 -> DownloadOfflineError
      HEAD the file on the hub: commit, etag (the sha256 for LFS files, else the git blob sha1), size
      file present with that hash (placed by hand, by `hf download`) -> record it, return it
      not enough free disk for the bytes still missing              -> DownloadSpaceError
      GET from the end of the partial file (Range), hashing as bytes arrive; cancel -> DownloadCancelled
      hash differs from the hub's                                    -> partial removed, DownloadIntegrityError
      rename the partial file into place, write the record

Why not ``hf_hub_download(local_dir=...)``: in huggingface_hub 2.x it downloads into a temporary file unique to
the call and deletes it on any failure, so an interrupted, cancelled or killed download always restarts from
zero. We keep the library for everything else (the HEAD and its headers, auth, redirects, error types, the
ranged GET with its in-call retries: ``file_download.http_get``) and own only where the partial file lives.
The plain HTTP path also serves Xet-backed files (the hub redirects ``/resolve`` to a ranged CDN URL), which
is what the library does itself when ``hf_xet`` is missing.

Every huggingface_hub/httpx2/OS error is translated once, in ``_translated``, into ``LLM.core.errors``.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import queue
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO
from urllib.parse import urlsplit

import platformdirs

from ..config import APP_NAME
from ..errors import (
    DownloadAccessError,
    DownloadCancelled,
    DownloadError,
    DownloadIntegrityError,
    DownloadNotFoundError,
    DownloadOfflineError,
    DownloadSpaceError,
    LLMError,
)
from .system import free_disk_bytes

if TYPE_CHECKING:
    from huggingface_hub import HfFileMetadata

# huggingface_hub (with httpx2, filelock) is imported when a download or listing starts, not with LLM.core:
# it costs ~0.1 s of every start of the window and llmctl, and only this module uses it.

MAIN = "main"  # the revision when none is given
STATE_DIR = ".download"
PROGRESS_INTERVAL_S = 0.1  # at most ~10 progress events a second, plus the final one
RATE_WINDOW_S = 5.0  # the rate is measured over the last few seconds, so it follows a changing link
# huggingface_hub hands the stream over in chunks of constants.DOWNLOAD_CHUNK_SIZE (10 MiB) and buffers a
# whole chunk before writing or reporting it: progress and cancel would move in 10 MiB steps, and its chunker
# is slow at that size (~130 MB/s against ~380 at 256 KiB on loopback, bench/download.py). It reads the
# constant per call, so we lower it (process-wide; it changes only the step size).
CHUNK_SIZE = 256 * 1024
_SHA256 = re.compile(r"[0-9a-f]{64}")
_GIT_SHA1 = re.compile(r"[0-9a-f]{40}")


@dataclass(frozen=True)
class DownloadProgress:
    """Where one file's download stands. ``total_bytes`` None: the hub gave no size; ``rate_bps`` and ``eta_s``
    None: not measured yet."""

    repo_id: str
    filename: str
    done_bytes: int
    total_bytes: int | None
    rate_bps: float | None
    eta_s: float | None

    def describe(self) -> str:
        """One line for people: ``312.4 MiB of 1.17 GiB · 45.1 MiB/s · 20 s left``."""
        parts = [format_bytes(self.done_bytes) + (f" of {format_bytes(self.total_bytes)}"
                                                  if self.total_bytes is not None else "")]
        if self.rate_bps is not None:
            parts.append(f"{format_bytes(self.rate_bps)}/s")
        if self.eta_s is not None and self.total_bytes is not None and self.done_bytes < self.total_bytes:
            parts.append(f"{format_duration(self.eta_s)} left")
        return " · ".join(parts)


def format_bytes(count: float) -> str:
    """Binary units, as every size in the app is shown: ``999 B``, ``12 KiB``, ``312.4 MiB``, ``1.20 GiB``."""
    if count < 1024:
        return f"{count:.0f} B"
    for unit, scale, decimals in (("KiB", 2**10, 0), ("MiB", 2**20, 1), ("GiB", 2**30, 2)):
        if count < scale * 1024 or unit == "GiB":
            value = count / scale
            if unit != "GiB" and round(value, decimals) >= 1024:  # 1023.96 MiB shows as 1.00 GiB, not 1024.0 MiB
                continue
            return f"{value:.{decimals}f} {unit}"
    raise AssertionError("unreachable")


def format_duration(seconds: float) -> str:
    """``20 s``, ``3 min 05 s``, ``2 h 04 min``."""
    whole = max(0, round(seconds))
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole // 3600} h {whole % 3600 // 60:02d} min"


def default_models_dir() -> Path:
    """Where downloaded models go: ``$LLM_DATA_DIR/models``, else the user data dir's ``models``."""
    override = os.environ.get("LLM_DATA_DIR")
    return (Path(override).expanduser() if override else Path(platformdirs.user_data_dir(APP_NAME))) / "models"


def repo_folder(models_dir: Path, repo_id: str) -> Path:
    """The folder of one repository's files: ``owner/name`` becomes ``owner__name``."""
    return models_dir / repo_id.replace("/", "__")


def download_file(
    repo_id: str,
    filename: str,
    models_dir: Path,
    *,
    revision: str | None = None,
    token: str | None = None,
    on_progress: Callable[[DownloadProgress], None] | None = None,
    cancel: threading.Event | None = None,
    endpoint: str | None = None,
    free_disk: Callable[[Path], int | None] = free_disk_bytes,
    repo_type: str | None = None,
) -> Path:
    """Download ``filename`` of ``repo_id`` into ``models_dir`` and return its path (blocking: run it in a thread).

    Resumes a partial download; ``cancel`` stops it (DownloadCancelled) keeping the partial file; the result's
    sha256 is checked against the hub's. ``token``: else HF_TOKEN (huggingface_hub reads it); ``endpoint``:
    else HF_ENDPOINT, read now; ``free_disk``: the free-space probe; ``repo_type``: "dataset" for a dataset
    repository (None: a model). Raises only DownloadError and its kinds.
    """
    _check_filename(repo_id, filename)
    target = _Target(models_dir, repo_id, filename)
    wanted_revision = revision or MAIN
    endpoint = _endpoint(endpoint)

    record = _read_record(target.record)
    if record is not None and _record_matches(record, target.path, wanted_revision):
        _report_done(repo_id, filename, target.path.stat().st_size, on_progress)
        return target.path

    with _translated(repo_id, filename, wanted_revision, endpoint):
        from huggingface_hub import get_hf_file_metadata, hf_hub_url

        _refuse_if_offline()
        url = hf_hub_url(repo_id, filename, revision=revision, endpoint=endpoint, repo_type=repo_type)
        metadata = get_hf_file_metadata(url, token=token, endpoint=endpoint)
        if metadata.commit_hash is None or metadata.etag is None:
            raise DownloadError(f"cannot download {filename} from {repo_id}: {endpoint or 'the hub'} did not "
                                "answer like a Hugging Face Hub (no commit or ETag header); check HF_ENDPOINT")
        facts = {"revision": wanted_revision, "commit": metadata.commit_hash, "etag": metadata.etag,
                 "size": metadata.size}
        if not (target.path.is_file() and _verified(target.path, metadata.etag, metadata.size)):
            _fetch_verified(target, url, metadata, token, on_progress, cancel, free_disk)
        else:  # placed there by hand or by `hf download`: the hub's bytes already
            _report_done(repo_id, filename, target.path.stat().st_size, on_progress)
        _write_record(target.record, target.path, facts)
    return target.path


def list_repo_files(repo_id: str, *, revision: str | None = None, token: str | None = None,
                    endpoint: str | None = None, repo_type: str | None = None) -> list[tuple[str, int | None]]:
    """(path, size in bytes) of every file of the repository, for choosing one (a quantization) to download."""
    endpoint = _endpoint(endpoint)
    with _translated(repo_id, None, revision or MAIN, endpoint):
        from huggingface_hub import HfApi

        _refuse_if_offline()
        files: list[tuple[str, int | None]] = []
        for entry in HfApi(endpoint=endpoint, token=token).list_repo_tree(repo_id, revision=revision, recursive=True,
                                                                           repo_type=repo_type):
            lfs = getattr(entry, "lfs", None)
            if lfs is not None:
                files.append((entry.path, lfs.size))
            elif hasattr(entry, "size"):  # a RepoFile; a RepoFolder has none
                files.append((entry.path, entry.size))
        return files


# --- the transfer ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Target:
    """Where one file of one repository goes, and its bookkeeping in the hidden ``.download`` folder."""

    models_dir: Path
    repo_id: str
    filename: str

    @property
    def folder(self) -> Path:
        return repo_folder(self.models_dir, self.repo_id)

    @property
    def path(self) -> Path:
        return self.folder / self.filename

    @property
    def record(self) -> Path:
        return self.folder / STATE_DIR / f"{self.filename}.json"

    @property
    def lock(self) -> Path:
        return self.folder / STATE_DIR / f"{self.filename}.lock"

    def partial(self, etag: str) -> Path:
        """Where the unfinished download of this version (etag) grows: a new version never resumes onto the
        bytes of an old one."""
        key = etag if re.fullmatch(r"[0-9a-f]{40,64}", etag) else hashlib.sha1(etag.encode()).hexdigest()
        return self.folder / STATE_DIR / f"{self.filename}.{key}.incomplete"

    def stale_partials(self, etag: str) -> list[Path]:
        """Partial files of other versions of this file, which can never be resumed."""
        keep = self.partial(etag)
        pattern = re.compile(re.escape(Path(self.filename).name) + r"\.[0-9a-f]{40,64}\.incomplete")
        return [p for p in keep.parent.glob("*.incomplete") if p != keep and pattern.fullmatch(p.name)]


def _fetch_verified(target: _Target, url: str, metadata: HfFileMetadata, token: str | None,
                    on_progress: Callable[[DownloadProgress], None] | None, cancel: threading.Event | None,
                    free_disk: Callable[[Path], int | None]) -> None:
    """Fetch what the partial file lacks, check it against the hub's hash, and move it into place."""
    import filelock
    from huggingface_hub.utils import build_hf_headers

    etag, size = metadata.etag, metadata.size
    assert etag is not None  # checked by the caller
    what = f"{target.filename} from {target.repo_id}"
    partial = target.partial(etag)
    if size is not None:
        missing = size - min(_size_of(partial), size)
        free = free_disk(target.folder)
        if free is not None and free < missing:
            raise DownloadSpaceError(f"not enough free disk to download {what}: {format_bytes(missing)} still to "
                                     f"fetch, {format_bytes(free)} free in {target.models_dir}")
    partial.parent.mkdir(parents=True, exist_ok=True)
    lock = filelock.FileLock(str(target.lock), timeout=0)
    try:
        lock.acquire()
    except filelock.Timeout:
        raise DownloadError(f"{what} is already being downloaded (by another window or process); wait for it "
                            "to finish") from None
    try:
        have = _size_of(partial)
        if size is not None and have > size:  # not a prefix of this file: start again
            partial.unlink()
            have = 0
        for stale in target.stale_partials(etag):
            stale.unlink(missing_ok=True)
        headers = build_hf_headers(token=token)
        if urlsplit(metadata.location).netloc != urlsplit(url).netloc:
            headers.pop("authorization", None)  # a CDN's signed URL: the hub token stays with the hub
        reporter = _ProgressReporter(target.repo_id, target.filename, size, on_progress)
        sha256 = _fetch(metadata.location, partial, have, size, headers, reporter, cancel)
        if not _verified(partial, etag, size, sha256):
            partial.unlink(missing_ok=True)
            raise DownloadIntegrityError(
                f"{what} arrived damaged: its content differs from the hub's hash {etag} (or its size from "
                f"{size}); the download was removed, start it again")
        target.path.parent.mkdir(parents=True, exist_ok=True)
        os.replace(partial, target.path)
        reporter.finish(target.path.stat().st_size)
    finally:
        lock.release()


def _fetch(url: str, partial: Path, have: int, size: int | None, headers: dict[str, str],
           reporter: _ProgressReporter, cancel: threading.Event | None) -> str | None:
    """Append the rest of the file to ``partial`` with huggingface_hub's ranged GET (which also retries a
    dropped connection from where it stopped, within this call); returns the whole file's sha256, or None
    where it could not follow the writes."""
    from huggingface_hub import constants
    from huggingface_hub.file_download import http_get

    if cancel is not None and cancel.is_set():
        raise _Cancelled
    constants.DOWNLOAD_CHUNK_SIZE = min(constants.DOWNLOAD_CHUNK_SIZE, CHUNK_SIZE)
    with open(partial, "ab") as file:
        writer = _HashingWriter(file, partial, have)
        try:
            reporter.start(have)
            http_get(url, writer, resume_size=have, headers=headers, expected_size=size,  # type: ignore[arg-type]
                     tqdm_class=lambda **bar: _ProgressBar(reporter, cancel, **bar))  # type: ignore[arg-type]
        finally:
            writer.close()  # the hashing thread ends with the transfer, a failed or cancelled one too
    return writer.sha256()


class _Cancelled(Exception):
    """Raised inside huggingface_hub's loop (from the progress bar) to stop it; becomes DownloadCancelled."""


class _HashingWriter:
    """The file object given to ``http_get``: hashes bytes as they are written, on a thread of its own (hashlib
    lets go of the GIL), so the check after the download reads nothing again and costs little more than the
    transfer. ``http_get`` may rewind and truncate (a server that ignored the Range): the hash then restarts,
    or is dropped and computed from the file at the end."""

    def __init__(self, file: BinaryIO, path: Path, have: int) -> None:
        self._file = file
        self._sha256: Any = hashlib.sha256()
        self._valid = True
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=64)  # at most 64 chunks behind
        self._worker = threading.Thread(target=self._hash, name="download-sha256", daemon=True)
        self._worker.start()
        if have:
            with open(path, "rb") as existing:
                while block := existing.read(1 << 20):
                    self._queue.put(block)

    def _hash(self) -> None:
        while (block := self._queue.get()) is not None:
            self._sha256.update(block)

    def write(self, data: bytes) -> int:
        if self._valid:  # once the hash cannot follow (a seek into the middle), nothing waits for the bytes
            self._queue.put(bytes(data))
        return self._file.write(data)

    def tell(self) -> int:
        return self._file.tell()

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        position = self._file.seek(offset, whence)
        self.close()
        if position == 0 and self._valid:
            self._sha256 = hashlib.sha256()
            self._worker = threading.Thread(target=self._hash, name="download-sha256", daemon=True)
            self._worker.start()
        else:
            self._valid = False
        return position

    def truncate(self, size: int | None = None) -> int:
        return self._file.truncate(size)

    def close(self) -> None:
        """Let the hashing thread finish what was written and end (the file itself is the caller's)."""
        if self._worker.is_alive():
            self._queue.put(None)
            self._worker.join()

    def sha256(self) -> str | None:
        self.close()
        return self._sha256.hexdigest() if self._valid else None


class _ProgressBar:
    """The ``tqdm_class`` given to huggingface_hub: draws nothing, counts into our reporter, stops on cancel.

    http_get uses a bar as a context manager and calls ``update(n)`` (negative when it starts over); a class
    that is not huggingface_hub's own tqdm is built with tqdm's keyword arguments (total, initial, ...)."""

    def __init__(self, reporter: _ProgressReporter, cancel: threading.Event | None, **bar: Any) -> None:
        self._reporter = reporter
        self._cancel = cancel
        reporter.start(int(bar.get("initial") or 0))  # 0 when the server ignored the Range: a fresh start

    def update(self, n: float | None = 1) -> None:
        if self._cancel is not None and self._cancel.is_set():
            raise _Cancelled
        self._reporter.advance(int(n or 0))

    def close(self) -> None:
        pass

    def __enter__(self) -> _ProgressBar:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


class _ProgressReporter:
    """Folds byte counts into DownloadProgress events: at most one per ``interval`` s, plus the final one."""

    def __init__(self, repo_id: str, filename: str, total: int | None,
                 on_progress: Callable[[DownloadProgress], None] | None, clock: Callable[[], float] = time.monotonic,
                 interval: float = PROGRESS_INTERVAL_S, window: float = RATE_WINDOW_S) -> None:
        self.repo_id, self.filename, self.total = repo_id, filename, total
        self._emit = on_progress
        self._clock, self._interval, self._window = clock, interval, window
        self.done = 0
        self._started_at = clock()
        self._started_with = 0
        self._last_emit: float | None = None
        self._samples: deque[tuple[float, int]] = deque()

    def start(self, done: int) -> None:
        """Counting starts (again) from ``done`` bytes already on disk."""
        self.done = self._started_with = done
        self._started_at = self._clock()
        self._samples.clear()
        self._samples.append((self._started_at, done))

    def advance(self, count: int) -> None:
        self.done += count
        now = self._clock()
        if self._last_emit is not None and now - self._last_emit < self._interval:
            return
        self._last_emit = now
        self._samples.append((now, self.done))
        while len(self._samples) > 2 and now - self._samples[0][0] > self._window:
            self._samples.popleft()
        first_t, first_done = self._samples[0]
        self._send((self.done - first_done) / (now - first_t) if now - first_t >= self._interval else None)

    def finish(self, size: int) -> None:
        self.done = size
        elapsed = self._clock() - self._started_at
        fetched = size - self._started_with
        self._send(fetched / elapsed if fetched > 0 and elapsed > 0 else None, final=True)

    def _send(self, rate: float | None, final: bool = False) -> None:
        if self._emit is None:
            return
        eta: float | None = None
        if final:
            eta = 0.0
        elif rate and self.total is not None:
            eta = max(0, self.total - self.done) / rate
        self._emit(DownloadProgress(self.repo_id, self.filename, self.done, self.total, rate, eta))


def _report_done(repo_id: str, filename: str, size: int,
                 on_progress: Callable[[DownloadProgress], None] | None) -> None:
    """The one event of a file that was already there."""
    if on_progress is not None:
        on_progress(DownloadProgress(repo_id, filename, size, size, None, 0.0))


# --- checks and records -----------------------------------------------------------------------------------------

def _verified(path: Path, etag: str, size: int | None, sha256: str | None = None) -> bool:
    """Whether the file is the hub's: its size, and its sha256 (LFS files; ``sha256`` when already known) or
    git blob sha1 (small files kept in git). An ETag of neither form (a mirror's own) checks the size only."""
    actual_size = path.stat().st_size
    if size is not None and actual_size != size:
        return False
    if _SHA256.fullmatch(etag):
        return (sha256 or _hash_file(path, hashlib.sha256())) == etag
    if _GIT_SHA1.fullmatch(etag):
        return _hash_file(path, hashlib.sha1(b"blob %d\0" % actual_size)) == etag
    return True


def _size_of(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _hash_file(path: Path, hasher: Any) -> str:
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            hasher.update(block)
    return hasher.hexdigest()


def _read_record(path: Path) -> dict[str, Any] | None:
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def _record_matches(record: dict[str, Any], destination: Path, revision: str) -> bool:
    """The file is the one the record describes (untouched since: same size and mtime) at this revision."""
    try:
        stat = destination.stat()
    except OSError:
        return False
    return (record.get("file_size") == stat.st_size and record.get("mtime_ns") == stat.st_mtime_ns
            and revision in (record.get("revision"), record.get("commit")))


def _write_record(path: Path, destination: Path, fields: dict[str, Any]) -> None:
    stat = destination.stat()
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps({**fields, "file_size": stat.st_size, "mtime_ns": stat.st_mtime_ns}),
                         encoding="utf-8")
    os.replace(temporary, path)


def _check_filename(repo_id: str, filename: str) -> None:
    parts = Path(filename).parts
    if not filename or Path(filename).is_absolute() or ".." in parts or parts[0] == STATE_DIR:
        raise DownloadError(f"cannot download {filename!r} from {repo_id}: not a file name inside a repository")


def _endpoint(endpoint: str | None) -> str | None:
    """The argument, else HF_ENDPOINT as it is now (huggingface_hub reads it once, at import)."""
    value = endpoint or os.environ.get("HF_ENDPOINT")
    return value.rstrip("/") if value else None


def _refuse_if_offline() -> None:
    """HF_HUB_OFFLINE as it is now, or as huggingface_hub read it at import: no request at all."""
    from huggingface_hub import constants
    from huggingface_hub.errors import OfflineModeIsEnabled

    if os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in {"1", "ON", "YES", "TRUE"} or constants.HF_HUB_OFFLINE:
        raise OfflineModeIsEnabled("HF_HUB_OFFLINE is set")


# --- the one place where errors are translated --------------------------------------------------------------

@contextmanager
def _translated(repo_id: str, filename: str | None, revision: str, endpoint: str | None) -> Iterator[None]:
    """Turns whatever huggingface_hub, httpx2 or the file system raise into the DownloadError family."""
    what = f"{filename} from {repo_id}" if filename else f"the files of {repo_id}"
    doing = f"cannot download {what}" if filename else f"cannot list {what}"
    try:
        import httpx2
        from huggingface_hub import constants
        from huggingface_hub.errors import (
            GatedRepoError,
            HfHubHTTPError,
            HFValidationError,
            OfflineModeIsEnabled,
            RemoteEntryNotFoundError,
            RepositoryNotFoundError,
            RevisionNotFoundError,
        )
    except ImportError as error:
        raise DownloadError(f"{doing}: downloading needs the huggingface_hub package "
                            "(pip install 'huggingface_hub>=2.4,<3')") from error
    hub = endpoint or constants.ENDPOINT
    try:
        yield
    except LLMError:
        raise
    except _Cancelled:
        raise DownloadCancelled(f"download of {what} cancelled; what was fetched is kept and a new start "
                                "resumes it") from None
    except OfflineModeIsEnabled as error:
        raise DownloadOfflineError(f"{doing}: the Hugging Face Hub cannot be reached (HF_HUB_OFFLINE is set); the "
                                   "catalog and downloaded models still work offline") from error
    except GatedRepoError as error:
        raise DownloadAccessError(f"{doing}: {repo_id} is a gated repository. Request access on its page "
                                  f"({hub}/{repo_id}), then set HF_TOKEN to a token of the account that has "
                                  "it") from error
    except RevisionNotFoundError as error:
        raise DownloadNotFoundError(f"{doing}: {repo_id} has no revision {revision!r}") from error
    except RemoteEntryNotFoundError as error:
        raise DownloadNotFoundError(f"{doing}: {repo_id} has no file {filename!r} at revision {revision!r}") from error
    except HfHubHTTPError as error:  # RepositoryNotFoundError included
        status = error.response.status_code if error.response is not None else None
        if status in (401, 403):
            raise DownloadAccessError(
                f"{doing}: the hub refused access (HTTP {status}); {repo_id} is private or gated, or does not "
                f"exist. Set HF_TOKEN to a token that can read it, and request access on its page "
                f"({hub}/{repo_id})") from error
        if status == 404 or isinstance(error, RepositoryNotFoundError):
            raise DownloadNotFoundError(f"{doing}: no repository {repo_id} on the hub") from error
        raise DownloadError(f"{doing}: the hub answered HTTP {status} ({_first_line(error)})") from error
    except (httpx2.ConnectError, httpx2.ConnectTimeout) as error:
        raise DownloadOfflineError(f"{doing}: the Hugging Face Hub ({hub}) cannot be reached; the catalog and "
                                   "downloaded models still work offline") from error
    except httpx2.HTTPError as error:  # read errors and timeouts that outlasted the library's retries
        raise DownloadError(f"{doing}: the connection to the hub broke ({_first_line(error)}); what was fetched "
                            "is kept and a new start resumes it") from error
    except OSError as error:
        if error.errno == errno.ENOSPC:
            raise DownloadSpaceError(f"{doing}: the disk is full; free some space and start again to "
                                     "resume") from error
        raise DownloadError(f"{doing}: {_first_line(error)}") from error
    except HFValidationError as error:
        raise DownloadError(f"{doing}: {_first_line(error)}") from error
    except Exception as error:
        raise DownloadError(f"{doing}: {type(error).__name__}: {_first_line(error)}") from error


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
