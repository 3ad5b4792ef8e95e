"""Downloads from the Hugging Face Hub: the real huggingface_hub client against the fake hub subprocess."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from LLM.core.errors import (
    DownloadAccessError,
    DownloadCancelled,
    DownloadError,
    DownloadIntegrityError,
    DownloadNotFoundError,
    DownloadOfflineError,
    DownloadSpaceError,
)
from LLM.core.models.downloads import (
    DownloadProgress,
    _ProgressReporter,
    default_models_dir,
    download_file,
    format_bytes,
    list_repo_files,
)
from LLM.tests.fakes.fake_hub import FakeHub, commit_for
from LLM.tests.fakes.handle import REPO_ROOT, free_port, wait_until

REPO = "org/model"
GGUF = "model.Q4_K_M.gguf"
SIZE = 3_000_000  # > 10 of huggingface_hub's (lowered) 256 KiB chunks, so a cut lands mid-file


@pytest.fixture(autouse=True)
def _hub_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads the user's token or settings, or writes under the real ~/.cache/huggingface."""
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_OFFLINE", "HF_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def repos(tmp_path: Path) -> Path:
    """The fake hub's repositories: org/model with a GGUF (LFS) and a config.json (git), org/gated alike."""
    root = tmp_path / "hub"
    for repo in (REPO, "org/gated"):
        folder = root / repo
        folder.mkdir(parents=True)
        (folder / GGUF).write_bytes(os.urandom(SIZE))
        (folder / "config.json").write_text('{"architectures": ["LlamaForCausalLM"]}\n')
    return root


@pytest.fixture
def start_hub(repos: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., FakeHub]]:
    """Starts the fake hub with flags and points HF_ENDPOINT at it. huggingface_hub reads HF_ENDPOINT once, when
    first imported (maybe by an earlier test): download_file must read it per call."""
    with ExitStack() as stack:
        def start(*flags: str) -> FakeHub:
            hub = stack.enter_context(FakeHub(repos, *flags))
            monkeypatch.setenv("HF_ENDPOINT", hub.url)
            return hub
        yield start


@pytest.fixture
def models(tmp_path: Path) -> Path:
    return tmp_path / "models"


def source(repos: Path, name: str = GGUF, repo: str = REPO) -> bytes:
    return (repos / repo / name).read_bytes()


def partial_files(models: Path, name: str = GGUF) -> list[Path]:
    return sorted((models / "org__model" / ".download").glob(f"{name}.*.incomplete"))


def test_download_file_lands_in_repo_folder_with_monotonic_progress(start_hub, repos, models):
    hub = start_hub("--throttle", "20e6")  # ~0.15 s, so that several progress events are due
    events: list[DownloadProgress] = []

    path = download_file(REPO, GGUF, models, on_progress=events.append)

    assert path == models / "org__model" / GGUF
    assert path.read_bytes() == source(repos)
    assert len(events) >= 2
    done = [e.done_bytes for e in events]
    assert done == sorted(done)
    assert events[-1].done_bytes == events[-1].total_bytes == SIZE and events[-1].eta_s == 0
    assert all(e.repo_id == REPO and e.filename == GGUF for e in events)
    assert not partial_files(models)
    assert [g["range"] for g in hub.gets()] == [None]


def test_download_file_verifies_a_small_git_file_by_its_blob_hash(start_hub, repos, models):
    start_hub()
    path = download_file(REPO, "config.json", models)
    assert path.read_bytes() == source(repos, "config.json")


def test_download_file_resumes_within_the_call_after_the_connection_drops(start_hub, models, repos):
    """huggingface_hub retries a dropped stream itself: the retry asks only for the bytes after those written."""
    hub = start_hub("--cut-after", "2000000")

    path = download_file(REPO, GGUF, models)

    assert path.read_bytes() == source(repos)
    first, second = hub.gets()
    assert first["cut"] and first["bytes_sent"] == 2_000_000
    assert 0 < second["start"] <= 2_000_000 and second["range"] == f"bytes={second['start']}-"
    assert second["bytes_sent"] == SIZE - second["start"]


def test_download_file_resumes_from_the_partial_file_after_a_connection_reset(start_hub, models, repos):
    hub = start_hub("--cut-after", "2000000", "--cut-reset", "--throttle", "5e6")

    with pytest.raises(DownloadError, match="resumes") as failed:
        download_file(REPO, GGUF, models)
    assert REPO in str(failed.value) and GGUF in str(failed.value)
    [partial] = partial_files(models)
    kept = partial.stat().st_size
    assert 0 < kept <= 2_000_000
    assert not (models / "org__model" / GGUF).exists()

    hub.control(throttle_bps=0)
    path = download_file(REPO, GGUF, models)

    assert path.read_bytes() == source(repos)
    resumed = hub.gets()[-1]
    assert resumed["range"] == f"bytes={kept}-"
    assert resumed["bytes_sent"] == SIZE - kept
    assert not partial_files(models)


def test_download_file_starts_over_cleanly_when_the_server_ignores_the_range(start_hub, models, repos):
    """huggingface_hub rewinds and truncates the partial file on a 200 to a ranged GET: the hash must restart."""
    hub = start_hub("--cut-after", "2000000", "--cut-reset", "--throttle", "5e6")
    with pytest.raises(DownloadError):
        download_file(REPO, GGUF, models)
    kept = partial_files(models)[0].stat().st_size
    hub.control(throttle_bps=0, ignore_range=True)

    path = download_file(REPO, GGUF, models)

    assert path.read_bytes() == source(repos)
    resumed = hub.gets()[-1]
    assert resumed["range"] == f"bytes={kept}-" and resumed["status"] == 200 and resumed["bytes_sent"] == SIZE


def test_download_file_resumes_after_the_downloading_process_is_killed(start_hub, models, repos, tmp_path):
    hub = start_hub("--throttle", "1e6")
    script = ("import sys; from pathlib import Path; from LLM.core.models.downloads import download_file; "
              "download_file(sys.argv[1], sys.argv[2], Path(sys.argv[3]))")
    child = subprocess.Popen([sys.executable, "-c", script, REPO, GGUF, str(models)], cwd=REPO_ROOT,
                             env={**os.environ, "PYTHONPATH": str(REPO_ROOT)}, start_new_session=True,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: partial_files(models) and partial_files(models)[0].stat().st_size >= 512 * 1024
                   or child.poll() is not None, 30, "the child to write part of the file")
        assert child.poll() is None, "the child ended before it was killed"
    finally:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait()
    [partial] = partial_files(models)
    kept = partial.stat().st_size

    hub.control(throttle_bps=0)
    path = download_file(REPO, GGUF, models)

    assert path.read_bytes() == source(repos)
    resumed = hub.gets()[-1]
    assert resumed["range"] == f"bytes={kept}-" and resumed["bytes_sent"] == SIZE - kept


def download_in_background(models: Path, cancel: threading.Event
                           ) -> tuple[threading.Thread, threading.Event, list[BaseException]]:
    """download_file on a thread: the thread, an event set at its first progress, and what it raised."""
    first_event = threading.Event()
    outcome: list[BaseException] = []

    def run() -> None:
        try:
            download_file(REPO, GGUF, models, cancel=cancel, on_progress=lambda _: first_event.set())
        except BaseException as error:  # noqa: BLE001 - handed to the test thread
            outcome.append(error)

    worker = threading.Thread(target=run)
    worker.start()
    return worker, first_event, outcome


def test_download_file_cancel_stops_promptly_keeps_the_partial_file_and_resumes(start_hub, models, repos):
    hub = start_hub("--throttle", "2e5")  # the whole file would take 15 s
    cancel = threading.Event()
    worker, first_event, outcome = download_in_background(models, cancel)
    assert first_event.wait(20)
    cancel.set()
    worker.join(10)  # a hang catcher, under the 15 s the whole file takes (kept < SIZE says it stopped early)

    assert not worker.is_alive()
    assert len(outcome) == 1 and isinstance(outcome[0], DownloadCancelled)
    assert GGUF in str(outcome[0])
    [partial] = partial_files(models)
    kept = partial.stat().st_size
    assert 0 < kept < SIZE

    hub.control(throttle_bps=0)
    path = download_file(REPO, GGUF, models)
    assert path.read_bytes() == source(repos)
    resumed = hub.gets()[-1]
    assert resumed["range"] == f"bytes={kept}-" and resumed["bytes_sent"] == SIZE - kept


def test_download_file_refuses_a_second_download_of_the_same_file(start_hub, models):
    start_hub("--throttle", "1e6")
    cancel = threading.Event()
    worker, first_event, outcome = download_in_background(models, cancel)
    try:
        assert first_event.wait(20)
        with pytest.raises(DownloadError, match="already being downloaded"):
            download_file(REPO, GGUF, models)
    finally:
        cancel.set()
        worker.join(10)
    assert isinstance(outcome[0], DownloadCancelled)


def test_download_file_drops_partial_files_of_another_version(start_hub, models, repos):
    start_hub()
    state = models / "org__model" / ".download"
    state.mkdir(parents=True)
    old = state / f"{GGUF}.{'0' * 64}.incomplete"
    old.write_bytes(b"bytes of a version the hub no longer has")

    assert download_file(REPO, GGUF, models).read_bytes() == source(repos)
    assert not old.exists()


@pytest.mark.parametrize("name", ["../escape.gguf", "/etc/passwd", ".download/x.json", ""])
def test_download_file_refuses_names_outside_the_repository(models, name):
    with pytest.raises(DownloadError, match="not a file name inside a repository"):
        download_file(REPO, name, models)


def test_download_file_refuses_a_corrupt_file_and_removes_it(start_hub, models):
    start_hub("--corrupt", f"{REPO}/{GGUF}")

    with pytest.raises(DownloadIntegrityError) as failed:
        download_file(REPO, GGUF, models)

    assert REPO in str(failed.value) and GGUF in str(failed.value)
    assert not (models / "org__model" / GGUF).exists()
    assert not partial_files(models)


def test_download_file_gated_repo_says_to_set_hf_token(start_hub, models, monkeypatch):
    start_hub("--gated", "org/gated", "--token", "hf_secret")

    with pytest.raises(DownloadAccessError) as failed:
        download_file("org/gated", GGUF, models)
    message = str(failed.value)
    assert "HF_TOKEN" in message and "org/gated" in message and "request access" in message.lower()

    assert download_file("org/gated", GGUF, models, token="hf_secret").is_file()
    monkeypatch.setenv("HF_TOKEN", "hf_secret")
    assert download_file("org/gated", "config.json", models).is_file()


@pytest.mark.parametrize("repo, name, revision, says", [
    ("org/none", GGUF, None, "no repository org/none"),
    (REPO, "missing.gguf", None, "no file 'missing.gguf'"),
    (REPO, GGUF, "v9", "no revision 'v9'"),
], ids=["repository", "file", "revision"])
def test_download_file_missing_raises_not_found(start_hub, models, repo, name, revision, says):
    start_hub()
    with pytest.raises(DownloadNotFoundError, match=says):
        download_file(repo, name, models, revision=revision)


def test_download_file_at_a_commit_id(start_hub, models, repos):
    start_hub()
    path = download_file(REPO, GGUF, models, revision=commit_for(REPO))
    assert path.read_bytes() == source(repos)


def test_download_file_refuses_when_the_disk_is_too_full(start_hub, models):
    hub = start_hub()

    with pytest.raises(DownloadSpaceError) as failed:
        download_file(REPO, GGUF, models, free_disk=lambda _: 1_000)

    assert "2.9 MiB" in str(failed.value) and "1000 B free" in str(failed.value) and GGUF in str(failed.value)
    assert hub.gets() == [] and not models.exists()


def test_download_file_space_check_counts_only_the_missing_bytes(start_hub, models, repos):
    hub = start_hub("--cut-after", "2000000", "--cut-reset", "--throttle", "5e6")
    with pytest.raises(DownloadError):
        download_file(REPO, GGUF, models)
    kept = partial_files(models)[0].stat().st_size
    hub.control(throttle_bps=0)

    path = download_file(REPO, GGUF, models, free_disk=lambda _: SIZE - kept)

    assert path.read_bytes() == source(repos)


def test_download_file_offline_when_nobody_listens(models, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{free_port()}")
    with pytest.raises(DownloadOfflineError, match="cannot be reached") as failed:
        download_file(REPO, GGUF, models)
    assert "offline" in str(failed.value) and GGUF in str(failed.value)


def test_download_file_offline_mode_sends_nothing(start_hub, models, monkeypatch):
    hub = start_hub()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DownloadOfflineError, match="HF_HUB_OFFLINE"):
        download_file(REPO, GGUF, models)
    assert hub.log() == []


def test_download_file_already_present_returns_without_a_request(start_hub, models, monkeypatch):
    hub = start_hub()
    path = download_file(REPO, GGUF, models)
    requests = len(hub.log())
    events: list[DownloadProgress] = []

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # would raise if it tried the network
    assert download_file(REPO, GGUF, models, on_progress=events.append) == path

    assert len(hub.log()) == requests
    assert [e.done_bytes for e in events] == [SIZE]


def test_download_file_checks_a_file_placed_by_hand_against_the_hub(start_hub, models, repos):
    hub = start_hub()
    placed = models / "org__model" / GGUF
    placed.parent.mkdir(parents=True)
    placed.write_bytes(source(repos))

    assert download_file(REPO, GGUF, models) == placed
    assert hub.gets() == []  # the HEAD only: the bytes have the hub's sha256

    placed.write_bytes(b"something else")
    assert download_file(REPO, GGUF, models).read_bytes() == source(repos)  # changed since: fetched again
    assert len(hub.gets()) == 1


def test_list_repo_files_gives_names_and_sizes(start_hub, repos):
    start_hub()
    assert sorted(list_repo_files(REPO)) == [("config.json", len(source(repos, "config.json"))), (GGUF, SIZE)]
    with pytest.raises(DownloadNotFoundError, match="cannot list the files of org/none"):
        list_repo_files("org/none")


def test_default_models_dir_follows_llm_data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("LLM_DATA_DIR", str(tmp_path))
    assert default_models_dir() == tmp_path / "models"
    monkeypatch.delenv("LLM_DATA_DIR")
    assert default_models_dir().name == "models" and default_models_dir().parent.name == "llm-workbench"


@pytest.mark.parametrize("progress, line", [
    (DownloadProgress(REPO, GGUF, 312 * 2**20, 1200 * 2**20, 45 * 2**20, 19.8),
     "312.0 MiB of 1.17 GiB · 45.0 MiB/s · 20 s left"),
    (DownloadProgress(REPO, GGUF, 0, 4_096, None, None), "0 B of 4 KiB"),
    (DownloadProgress(REPO, GGUF, 2**20 - 20, None, 512.0, None), "1.0 MiB · 512 B/s"),
    (DownloadProgress(REPO, GGUF, 5 * 2**30, 9 * 2**30, 2**20, 4_000), "5.00 GiB of 9.00 GiB · "
     "1.0 MiB/s · 1 h 06 min left"),
    (DownloadProgress(REPO, GGUF, 10, 10, 3.0, 0.0), "10 B of 10 B · 3 B/s"),
], ids=["typical", "starting", "unknown-size", "hours", "finished"])
def test_download_progress_describe(progress, line):
    assert progress.describe() == line


def test_format_bytes_never_shows_a_thousand_and_more_of_a_unit():
    assert format_bytes(2**30 - 1) == "1.00 GiB"
    assert format_bytes(1023 * 2**20) == "1023.0 MiB"


def test_progress_reporter_throttles_and_measures_the_rate():
    now = [0.0]
    events: list[DownloadProgress] = []
    reporter = _ProgressReporter(REPO, GGUF, 10_000, events.append, clock=lambda: now[0])
    reporter.start(1_000)  # resumed: 1,000 bytes were there already
    for _ in range(10):  # 10 chunks within 0.09 s: one event
        now[0] += 0.009
        reporter.advance(100)
    now[0] = 1.0
    reporter.advance(1_000)
    now[0] = 2.0
    reporter.finish(10_000)

    assert [e.done_bytes for e in events] == [1_100, 3_000, 10_000]
    assert events[0].rate_bps is None
    assert events[1].rate_bps == pytest.approx(2_000) and events[1].eta_s == pytest.approx(3.5)
    assert events[2].rate_bps == pytest.approx(4_500) and events[2].eta_s == 0
