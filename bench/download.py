"""Model downloads: our download_file against a bare httpx streaming GET of the same file, side by side in one run.

A 200 MB generated file is served by the fake hub (LLM/tests/fakes/fake_hub.py, a subprocess on loopback,
sending with sendfile). Each round fetches it once with ``download_file`` (into an empty models folder: the
HEAD for the hub's metadata, huggingface_hub's ranged GET into the partial file, sha256 hashed as the bytes
arrive and compared with the hub's, the rename into place, the record) and once with a bare
``httpx.Client.stream("GET")`` written to a file, alternating which goes first; one warm-up of each is
not counted. Loopback makes the network nearly free, so this measures what our layer costs on top of the
transfer; on a real link the hash (~1 GB/s) and the rest hide behind the network.

Run: .venv/bin/python bench/download.py   (about 30 s; needs ~500 MB free in the temp folder)

RESULT download_throughput_ratio: median download_file bytes/s / median bare GET bytes/s (>= 0.9)
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx  # noqa: E402

from LLM.core.models.downloads import download_file  # noqa: E402
from LLM.tests.fakes.fake_hub import FakeHub  # noqa: E402

SIZE = 200 * 1_000_000
ROUNDS = 3
REPO = "bench/model"
FILENAME = "model.Q4_K_M.gguf"


def write_file(path: Path, size: int) -> None:
    rng = random.Random(7)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        left = size
        while left:
            block = rng.randbytes(min(left, 1 << 20))
            f.write(block)
            left -= len(block)


def ours(hub: FakeHub, work: Path) -> float:
    models = work / "models"
    shutil.rmtree(models, ignore_errors=True)
    began = time.perf_counter()
    path = download_file(REPO, FILENAME, models, endpoint=hub.url)
    seconds = time.perf_counter() - began
    assert path.stat().st_size == SIZE
    shutil.rmtree(models)
    return SIZE / seconds


def bare(client: httpx.Client, url: str, work: Path) -> float:
    target = work / "bare.bin"
    began = time.perf_counter()
    with client.stream("GET", url) as response, open(target, "wb") as f:
        response.raise_for_status()
        for chunk in response.iter_bytes():
            f.write(chunk)
    seconds = time.perf_counter() - began
    assert target.stat().st_size == SIZE
    target.unlink()
    return SIZE / seconds


def sha256_seconds(path: Path) -> float:
    """What the integrity check alone costs: hashing the file (from the page cache), as download_file must."""
    began = time.perf_counter()
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return time.perf_counter() - began


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-download-") as temp:
        work = Path(temp)
        os.environ["HF_HOME"] = str(work / "hf-home")  # nothing under the user's ~/.cache/huggingface
        write_file(work / "hub" / REPO / FILENAME, SIZE)
        with FakeHub(work / "hub") as hub, httpx.Client(timeout=60, trust_env=False) as client:
            url = f"{hub.url}/{REPO}/resolve/main/{FILENAME}"
            ours(hub, work)  # warm-up: the hub hashes the file once, the page cache holds it
            bare(client, url, work)
            rates: dict[str, list[float]] = {"ours": [], "bare": []}
            for round_ in range(ROUNDS):
                order = ("ours", "bare") if round_ % 2 == 0 else ("bare", "ours")
                for name in order:
                    rates[name].append(ours(hub, work) if name == "ours" else bare(client, url, work))
            hashing = statistics.median(sha256_seconds(work / "hub" / REPO / FILENAME) for _ in range(3))
    ours_median, bare_median = statistics.median(rates["ours"]), statistics.median(rates["bare"])
    print(f"download_file {ours_median / 1e6:.0f} MB/s, bare httpx GET {bare_median / 1e6:.0f} MB/s "
          f"(rounds: ours {[round(r / 1e6) for r in rates['ours']]}, bare {[round(r / 1e6) for r in rates['bare']]}); "
          f"per download: bare {SIZE / bare_median:.2f} s, ours {SIZE / ours_median:.2f} s, of which the sha256 "
          f"check needs ~{hashing:.2f} s", file=sys.stderr)
    print(f"RESULT download_throughput_ratio {ours_median / bare_median:.3f} >= 0.9")


if __name__ == "__main__":
    main()
