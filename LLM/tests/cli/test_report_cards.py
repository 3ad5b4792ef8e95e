"""llmctl eval tools --suite bfcl and eval list / show / compare, as a user runs them: real subprocesses, the fake
server answering, the history keeping the report cards; a run killed halfway resumes where it stopped."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

from LLM.tests.cli.harness import llmctl, write_config
from LLM.tests.core.evaluation.bfcl.bfcl_data import TASKS, reply, write_bfcl
from LLM.tests.fakes.handle import REPO_ROOT, FakeServerHandle, wait_until

RIGHT = {t[1]: t for t in TASKS}


def _right(task, mode: str, **extra) -> dict:
    calls = [("weather_get", {"city": "Rome"})] if task[0] == "live_relevance" else None
    return reply(task, mode, calls, **extra)


def test_bfcl_json_report_then_list_show_and_compare(tmp_path: Path, fake_server: FakeServerHandle):
    config = write_config(tmp_path, fake_server)
    data = write_bfcl(tmp_path / "bfcl")
    fake_server.script(*[_right(t, "native") for t in TASKS],
                       # fallback: the factorial answered with the wrong number
                       *[reply(t, "fallback", [("math_factorial", {"number": 6})]) if t[1] == "simple_python_0"
                         else _right(t, "fallback") for t in TASKS])
    done = llmctl(config, "eval", "tools", "-m", "fake", "--suite", "bfcl", "--bfcl-dir", str(data),
                  "--modes", "native,fallback", "--json")
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    native, fallback = document["modes"]["native"], document["modes"]["fallback"]
    assert native["overall"] == 1.0 and fallback["categories"]["simple_python"] == {"tasks": 2, "accuracy": 0.5}
    assert fallback["categories"]["multiple"] == {"tasks": 1, "accuracy": 1.0}
    assert document["model"] == "fake" and document["suite"] == "bfcl"
    (failed,) = document["tasks"]
    assert (failed["id"], failed["mode"], failed["error_type"]) == ("simple_python_0", "fallback", "value_error:others")

    listing = llmctl(config, "eval", "list")
    assert listing.returncode == 0, listing.stderr
    rows = listing.stdout.splitlines()[1:]
    assert len(rows) == 2 and "fallback" in rows[0] and "native" in rows[1] and "100.0%" in rows[1]

    shown = llmctl(config, "eval", "show", str(fallback["run"]))
    assert shown.returncode == 0, shown.stderr
    assert "50.0% (1/2)" in shown.stdout and "simple_python_0: value_error:others" in shown.stdout

    compared = llmctl(config, "eval", "compare", str(native["run"]), str(fallback["run"]), "--json")
    assert [run["mode"] for run in json.loads(compared.stdout)] == ["native", "fallback"]
    text = llmctl(config, "eval", "compare", str(native["run"]), str(fallback["run"])).stdout
    assert "simple_python" in text and "100.0% (2/2)" in text and "50.0% (1/2)" in text

    again = llmctl(config, "eval", "tools", "-m", "fake", "--suite", "bfcl", "--bfcl-dir", str(data),
                   "--modes", "native")
    assert again.returncode == 0 and f"{len(TASKS)} already in the history" in again.stderr
    assert len(fake_server.requests()) == 2 * len(TASKS)  # nothing computed twice


def test_a_killed_run_resumes_where_it_stopped(tmp_path: Path, fake_server: FakeServerHandle):
    config = write_config(tmp_path, fake_server)
    data = write_bfcl(tmp_path / "bfcl")
    fake_server.script(*[_right(t, "native", first_delay_s=0.4) for t in TASKS])
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "LLM_STATE_DIR": str(tmp_path / "state"),
           "LLM_DATA_DIR": str(tmp_path / "data"), "XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    process = subprocess.Popen([sys.executable, "-m", "LLM", "--config", str(config), "eval", "tools", "-m", "fake",
                                "--suite", "bfcl", "--bfcl-dir", str(data), "--modes", "native",
                                "--concurrency", "1"], env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    history = tmp_path / "data" / "history.sqlite3"

    def stored() -> int:
        if not history.exists():
            return 0
        with sqlite3.connect(history) as db:
            try:
                return db.execute("SELECT COUNT(*) FROM eval_results").fetchone()[0]
            except sqlite3.OperationalError:  # not migrated yet
                return 0

    try:
        wait_until(lambda: stored() >= 3, 60, "three results in the history")
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)
    kept = stored()
    assert 3 <= kept < len(TASKS)
    asked_before = len(fake_server.requests())
    fake_server.script(*[_right(t, "native") for t in TASKS])  # answers for whatever is left
    done = llmctl(config, "eval", "tools", "-m", "fake", "--suite", "bfcl", "--bfcl-dir", str(data),
                  "--modes", "native", "--json")
    assert done.returncode == 0, done.stderr
    assert f"{kept} already in the history" in done.stderr
    assert len(fake_server.requests()) - asked_before == len(TASKS) - kept
    assert json.loads(done.stdout)["modes"]["native"]["overall"] == 1.0


def test_bad_input_gets_one_line(tmp_path: Path, fake_server: FakeServerHandle):
    config = write_config(tmp_path, fake_server)
    cases = [
        (["eval", "tools", "-m", "fake", "--suite", "bfcl", "--categories", "simpel"], "unknown category 'simpel'"),
        (["eval", "tools", "-m", "fake", "--suite", "bfcl", "--bfcl-dir", str(tmp_path / "none")], "is not a folder"),
        (["eval", "tools", "-m", "fake", "--limit", "3"], "go with --suite bfcl"),
        (["eval", "show", "999"], "no eval run 999"),
        (["eval", "tools", "-m", "nope", "--suite", "bfcl"], "nope"),
    ]
    for args, message in cases:
        done = llmctl(config, *args)
        assert done.returncode == 1 and message in done.stderr, (args, done.stderr)
        assert "Traceback" not in done.stderr and done.stderr.count("\n") == 1, done.stderr


def test_offline_without_a_copy_says_how_to_get_one(tmp_path: Path, fake_server: FakeServerHandle, monkeypatch):
    config = write_config(tmp_path, fake_server)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # llmctl inherits it
    done = llmctl(config, "eval", "tools", "-m", "fake", "--suite", "bfcl", "--categories", "simple")
    assert done.returncode == 1 and "--bfcl-dir" in done.stderr and done.stderr.count("\n") == 1, done.stderr
    assert fake_server.requests() == []  # nothing started a request
