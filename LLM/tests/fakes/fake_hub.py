"""A small fake Hugging Face Hub, run as a real subprocess on a free loopback port, for download tests and benches.

Stdlib only (ThreadingHTTPServer). ``--root DIR`` holds one folder per repository, ``DIR/<owner>/<name>/<files>``;
every file there is served at revision ``main`` and at the repository's commit id (``commit_for(repo)``).

What huggingface_hub's download path reads, answered like the hub does:
  HEAD/GET /{owner}/{name}/resolve/{revision}/{path}   X-Repo-Commit, ETag (the git blob sha1 for small text
      files; for the others, LFS files, ETag = X-Linked-Etag = the sha256) and X-Linked-Size, Content-Length,
      Accept-Ranges; GET honours ``Range: bytes=a-[b]`` with 206 (416 past the end). Errors carry X-Error-Code:
      RepoNotFound, RevisionNotFound, EntryNotFound (404), GatedRepo (401, unless the request has the token).
  GET /api/models/{owner}/{name}/tree/{revision}        the file list (recursive), like the hub's tree API.
  Dataset repositories: the same under /datasets/{owner}/{name}/resolve/... and /api/datasets/.../tree/...,
      served from ``DIR/datasets/<owner>/<name>``.
Scripted behaviours, as flags (the initial state) and at run time through POST /_control (JSON, any subset):
  --gated REPO          the repository answers 401 GatedRepo unless ``Authorization: Bearer <--token>``
  --corrupt REPO/PATH   one byte of the served file is flipped; the advertised sha256 stays the true one
  --cut-after N         the first GET that passes byte N of a file sends up to N, then closes (once)
  --cut-reset           ... closing with a TCP reset instead of a clean close
  --throttle BPS        bytes per second per response
  --ignore-range        answer every GET with the whole file (200), as some CDNs do
Observation: GET /_log lists every resolve/tree request (method, path, range, status, start, bytes_sent, done,
cut); bytes_sent grows while a body streams. GET /_health answers 200 once listening.
Unscripted bodies go out with sendfile, so the server costs little CPU in benchmarks.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx

from .handle import REPO_ROOT, free_port, wait_until

GIT_SUFFIXES = {".json", ".md", ".txt", ".yaml", ".yml", ".py", ".jinja"}  # stored in git, not LFS
CHUNK = 64 * 1024


def commit_for(repo: str) -> str:
    """The repository's (only) commit id: stable, 40 hex digits."""
    return hashlib.sha1(f"commit of {repo}".encode()).hexdigest()


def is_lfs(path: str) -> bool:
    return Path(path).suffix.lower() not in GIT_SUFFIXES


class HubState:
    """Everything the handlers share; one lock guards the script, the log and the hash cache."""

    def __init__(self, root: Path, gated: set[str], token: str | None, corrupt: set[str], cut_after: int | None,
                 cut_reset: bool, throttle_bps: float, ignore_range: bool = False) -> None:
        self.root = root
        self.gated = gated
        self.token = token
        self.corrupt = corrupt
        self.cut_after = cut_after
        self.cut_reset = cut_reset
        self.throttle_bps = throttle_bps
        self.ignore_range = ignore_range
        self.log: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self._hashes: dict[tuple[str, int, int], tuple[str, str]] = {}

    def control(self, changes: dict[str, Any]) -> None:
        with self.lock:
            for key in ("cut_after", "cut_reset", "throttle_bps", "token", "ignore_range"):
                if key in changes:
                    setattr(self, key, changes[key])
            if "gated" in changes:
                self.gated = set(changes["gated"])
            if "corrupt" in changes:
                self.corrupt = set(changes["corrupt"])

    def hashes(self, path: Path) -> tuple[str, str]:
        """(sha256, git blob sha1) of a file, cached by path, size and mtime."""
        stat = path.stat()
        key = (str(path), stat.st_size, stat.st_mtime_ns)
        with self.lock:
            if key in self._hashes:
                return self._hashes[key]
        sha256 = hashlib.sha256()
        git = hashlib.sha1(b"blob %d\0" % stat.st_size)
        with open(path, "rb") as f:
            while block := f.read(1 << 20):
                sha256.update(block)
                git.update(block)
        value = (sha256.hexdigest(), git.hexdigest())
        with self.lock:
            self._hashes[key] = value
        return value


# A dataset repository's routes carry "datasets/"; its files live under ``root/datasets/<owner>/<name>``.
RESOLVE = re.compile(r"^/(?P<repo>(?:datasets/)?[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<path>.+)$")
TREE = re.compile(r"^/api/(?:models/(?P<repo>[^/]+/[^/]+)|datasets/(?P<dataset>[^/]+/[^/]+))/tree/(?P<rev>[^/]+)"
                  r"(?:/(?P<path>.*))?$")


class HubHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: "HubServer"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass  # quiet: tests read /_log

    # --- routing -------------------------------------------------------------------------------------------
    def do_HEAD(self) -> None:
        self._route(head=True)

    def do_GET(self) -> None:
        self._route(head=False)

    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b"{}"
        if path == "/_control":
            self.server.state.control(json.loads(body))
            self._json(200, {"ok": True})
        else:
            self._json(404, {"error": "not found"})

    def _route(self, head: bool) -> None:
        path = unquote(urlsplit(self.path).path)
        state = self.server.state
        if path == "/_health":
            return self._json(200, {"ok": True}, head)
        if path == "/_log":
            with state.lock:
                entries = [dict(e) for e in state.log]
            return self._json(200, entries, head)
        if match := RESOLVE.match(path):
            return self._resolve(match["repo"], match["rev"], match["path"], head)
        if match := TREE.match(path):
            repo = match["repo"] or f"datasets/{match['dataset']}"
            return self._tree(repo, match["rev"], match["path"] or "", head)
        self._error(404, "RepoNotFound", "no such route", head)

    # --- the hub's answers ---------------------------------------------------------------------------------
    def _check_repo(self, repo: str, revision: str, head: bool) -> Path | None:
        """The repository's folder, or None after answering the error the hub would give."""
        state = self.server.state
        folder = state.root / repo
        if not folder.is_dir():
            self._error(404, "RepoNotFound", f"Repository Not Found for url: {self.path}.", head)
            return None
        with state.lock:
            gated, token = repo in state.gated, state.token
        if gated and self.headers.get("Authorization") != f"Bearer {token}":
            self._error(401, "GatedRepo", f"Access to model {repo} is restricted. You must have access to it and be "
                        "authenticated to access it. Please log in.", head)
            return None
        if revision not in ("main", commit_for(repo)):
            self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}", head, repo)
            return None
        return folder

    def _resolve(self, repo: str, revision: str, name: str, head: bool) -> None:
        folder = self._check_repo(repo, revision, head)
        if folder is None:
            return
        file = folder / name
        if ".." in Path(name).parts or not file.is_file():
            return self._error(404, "EntryNotFound", f"{name} does not exist on \"{revision}\"", head, repo)
        size = file.stat().st_size
        sha256, git_sha1 = self.server.state.hashes(file)
        start, end = 0, size  # [start, end)
        status = 200
        wanted = self.headers.get("Range")
        if wanted and not head and not self.server.state.ignore_range:
            match = re.fullmatch(r"bytes=(\d+)-(\d*)", wanted.strip())
            if match is None or int(match[1]) >= size:
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            start = int(match[1])
            end = min(size, int(match[2]) + 1) if match[2] else size
            status = 206
        self.send_response(status)
        self.send_header("X-Repo-Commit", commit_for(repo))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Type", "application/octet-stream")
        if is_lfs(name):
            self.send_header("ETag", f'"{sha256}"')
            self.send_header("X-Linked-Etag", f'"{sha256}"')
            self.send_header("X-Linked-Size", str(size))
        else:
            self.send_header("ETag", f'"{git_sha1}"')
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end - 1}/{size}")
        self.send_header("Content-Length", str(end - start))
        self.end_headers()
        if head:
            with self.server.state.lock:
                self.server.state.log.append({"method": "HEAD", "path": f"{repo}/{name}", "status": status,
                                              "done": True})
        else:
            self._send_body(repo, name, file, start, end, status)

    def _send_body(self, repo: str, name: str, file: Path, start: int, end: int, status: int) -> None:
        state = self.server.state
        entry = {"method": "GET", "path": f"{repo}/{name}", "range": self.headers.get("Range"), "status": status,
                 "start": start, "bytes_sent": 0, "done": False, "cut": False}
        with state.lock:
            state.log.append(entry)
            corrupt = f"{repo}/{name}" in state.corrupt
            cut_at = state.cut_after if state.cut_after is not None and start < state.cut_after < end else None
            if cut_at is not None:
                state.cut_after = None  # once
            cut_reset, throttle = state.cut_reset, state.throttle_bps
        self.wfile.flush()
        try:
            with open(file, "rb") as f:
                if not (corrupt or cut_at is not None or throttle):
                    sent = self.connection.sendfile(f, start, end - start)
                    with state.lock:
                        entry["bytes_sent"] = sent
                else:
                    self._send_chunks(f, entry, start, end, corrupt, cut_at, throttle)
                    if cut_at is not None:
                        self._cut(entry, cut_reset)
                        return
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
            return
        with state.lock:
            entry["done"] = True

    def _send_chunks(self, f: Any, entry: dict[str, Any], start: int, end: int, corrupt: bool, cut_at: int | None,
                     throttle: float) -> None:
        """Stream [start, cut_at or end) in chunks, flipping the middle byte when corrupt, at ``throttle`` B/s."""
        state = self.server.state
        stop = cut_at if cut_at is not None else end
        middle = (start + end) // 2 if corrupt else -1
        began = time.monotonic()
        position = start
        f.seek(start)
        while position < stop:
            block = bytearray(f.read(min(CHUNK, stop - position)))
            if position <= middle < position + len(block):
                block[middle - position] ^= 0xFF
            self.wfile.write(block)
            position += len(block)
            with state.lock:
                entry["bytes_sent"] = position - start
            if throttle:
                ahead = (position - start) / throttle - (time.monotonic() - began)
                if ahead > 0:
                    time.sleep(ahead)  # pacing the stream, not synchronising anything
        self.wfile.flush()

    def _cut(self, entry: dict[str, Any], reset: bool) -> None:
        with self.server.state.lock:
            entry["cut"] = True
        self.close_connection = True
        if reset:  # SO_LINGER 0 and no shutdown before close: the close sends RST, as a dropped link would
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.server.reset_on_close.add(self.connection)
        else:
            self.connection.shutdown(socket.SHUT_WR)

    def _tree(self, repo: str, revision: str, sub: str, head: bool) -> None:
        folder = self._check_repo(repo, revision, head)
        if folder is None:
            return
        base = folder / sub
        if not base.is_dir():
            return self._error(404, "EntryNotFound", f"{sub} does not exist on \"{revision}\"", head, repo)
        entries: list[dict[str, Any]] = []
        for path in sorted(base.rglob("*")):
            rel = path.relative_to(folder).as_posix()
            if path.is_dir():
                entries.append({"type": "directory", "oid": commit_for(rel), "size": 0, "path": rel})
                continue
            sha256, git_sha1 = self.server.state.hashes(path)
            size = path.stat().st_size
            item: dict[str, Any] = {"type": "file", "oid": git_sha1, "size": size, "path": rel}
            if is_lfs(rel):
                item["lfs"] = {"oid": sha256, "size": size, "pointerSize": 134}
            entries.append(item)
        with self.server.state.lock:
            self.server.state.log.append({"method": "GET", "path": f"tree:{repo}", "status": 200, "done": True})
        self._json(200, entries, head)

    # --- plumbing --------------------------------------------------------------------------------------------
    def _error(self, status: int, code: str, message: str, head: bool, repo: str | None = None) -> None:
        body = json.dumps({"error": message}).encode()
        self.send_response(status)
        self.send_header("X-Error-Code", code)
        self.send_header("X-Error-Message", message)
        if repo is not None and code == "EntryNotFound":
            self.send_header("X-Repo-Commit", commit_for(repo))
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)
        with self.server.state.lock:
            self.server.state.log.append({"method": "HEAD" if head else "GET", "path": self.path, "status": status,
                                          "done": True})

    def _json(self, status: int, payload: Any, head: bool = False) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)


class HubServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, port: int, state: HubState) -> None:
        super().__init__(("127.0.0.1", port), HubHandler)
        self.state = state
        self.reset_on_close: set[socket.socket] = set()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up mid-answer (a cancel, a killed downloader) is routine here, not a traceback."""
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        if request in self.reset_on_close:  # skip the clean shutdown(SHUT_WR), which would send FIN first
            self.reset_on_close.discard(request)
            self.close_request(request)
        else:
            super().shutdown_request(request)


class FakeHub:
    """The fake hub as a subprocess in its own process group: ``with FakeHub(root, "--gated", "a/b") as hub:``.

    ``hub.url`` is the endpoint to give huggingface_hub (HF_ENDPOINT); the whole group is killed at exit."""

    def __init__(self, root: Path, *flags: str) -> None:
        self.root = root
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._flags = flags
        self.process: subprocess.Popen[bytes] | None = None
        self._stderr = tempfile.TemporaryFile()  # a file, not a pipe: a chatty server never blocks on it
        self._http = httpx.Client(base_url=self.url, timeout=10, trust_env=False)

    def __enter__(self) -> FakeHub:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "LLM.tests.fakes.fake_hub", "--port", str(self.port), "--root", str(self.root),
             *self._flags],
            cwd=REPO_ROOT, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
            stdout=subprocess.DEVNULL, stderr=self._stderr, start_new_session=True)
        try:
            wait_until(lambda: self._healthy() or self.process.poll() is not None, 20, "the fake hub to listen")
            if self.process.poll() is not None:
                self._stderr.seek(0)
                raise RuntimeError(f"fake hub exited with {self.process.returncode}: "
                                   f"{self._stderr.read().decode(errors='replace')[-2000:]}")
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _healthy(self) -> bool:
        try:
            return self._http.get("/_health").status_code == 200
        except httpx.TransportError:
            return False

    def control(self, **changes: Any) -> None:
        self._http.post("/_control", json=changes).raise_for_status()

    def log(self) -> list[dict[str, Any]]:
        return self._http.get("/_log").json()

    def gets(self, path: str | None = None) -> list[dict[str, Any]]:
        """The body-serving GETs so far (``path``: ``"owner/name/file"`` only)."""
        return [e for e in self.log() if e.get("method") == "GET" and "start" in e
                and (path is None or e["path"] == path)]

    def stop(self) -> None:
        self._http.close()
        process = self.process
        if process is not None and process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)  # its own session: the group is ours alone
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        self._stderr.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--gated", action="append", default=[], metavar="REPO")
    parser.add_argument("--token", default=None)
    parser.add_argument("--corrupt", action="append", default=[], metavar="REPO/PATH")
    parser.add_argument("--cut-after", type=int, default=None, metavar="N")
    parser.add_argument("--cut-reset", action="store_true")
    parser.add_argument("--throttle", type=float, default=0.0, metavar="BPS")
    parser.add_argument("--ignore-range", action="store_true")
    args = parser.parse_args(argv)
    state = HubState(args.root.resolve(), set(args.gated), args.token, set(args.corrupt), args.cut_after,
                     args.cut_reset, args.throttle, args.ignore_range)
    server = HubServer(args.port, state)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown, daemon=True).start())
    try:
        server.serve_forever(poll_interval=0.1)
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
