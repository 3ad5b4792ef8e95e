"""servers.json, the record of the servers we spawned: read tolerantly, whatever a hand edit left in it."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from pathlib import Path

import pytest

from LLM.core.servers.state_file import ServerRecord, StateFile


def good(key: str = "ok", **changes: object) -> dict[str, object]:
    record = {"model_id": key, "pid": 4242, "host": "127.0.0.1", "port": 8080, "config_hash": "abc",
              "started_at": 1700000000.5, "argv": ["llama-server", "-m", "x.gguf"], "owner_pid": 4241,
              "detached": False, "started": "12345"}
    record.update(changes)
    return record


def without(key: str) -> dict[str, object]:
    record = good("bad")
    del record[key]
    return record


def with_bad(**changes: object) -> str:
    """A file holding one good record ('ok') and one bad one ('bad')."""
    return json.dumps({"servers": {"ok": good(), "bad": good("bad", **changes)}})


# (id, the file's text, the model ids read back, words the logged warning must hold)
BAD_FILES = [
    ("top-level-list", "[]", [], "list"),
    ("top-level-null", "null", [], "NoneType"),
    ("top-level-string", '"servers"', [], "str"),
    ("servers-a-list", '{"servers": []}', [], "'servers' is list"),
    ("servers-a-number", '{"servers": 3}', [], "'servers' is int"),
    ("entry-a-string", json.dumps({"servers": {"ok": good(), "bad": "pid 4242"}}), ["ok"], "servers.bad: str"),
    ("entry-a-list", json.dumps({"servers": {"ok": good(), "bad": [4242]}}), ["ok"], "servers.bad: list"),
    ("pid-a-string", with_bad(pid="4242"), ["ok"], "'pid' must be a pid"),
    ("pid-a-bool", with_bad(pid=True), ["ok"], "'pid' must be a pid"),
    ("pid-zero", with_bad(pid=0), ["ok"], "'pid' must be a pid"),
    ("pid-negative", with_bad(pid=-1), ["ok"], "'pid' must be a pid"),
    ("pid-a-float", with_bad(pid=42.0), ["ok"], "'pid' must be a pid"),
    ("owner-pid-null", with_bad(owner_pid=None), ["ok"], "'owner_pid' must be a pid"),
    ("port-out-of-range", with_bad(port=70000), ["ok"], "'port' must be a port number"),
    ("argv-a-string", with_bad(argv="llama-server -m x.gguf"), ["ok"], "'argv' must be a list of strings"),
    ("argv-of-numbers", with_bad(argv=[1, 2]), ["ok"], "'argv' must be a list of strings"),
    ("started-at-a-string", with_bad(started_at="yesterday"), ["ok"], "'started_at' must be a number"),
    ("started-at-nan", with_bad(started_at=float("nan")), ["ok"], "'started_at' must be a number"),
    ("detached-a-string", with_bad(detached="yes"), ["ok"], "'detached' must be true or false"),
    ("started-a-number", with_bad(started=12345), ["ok"], "'started' must be a string or null"),
    ("host-null", with_bad(host=None), ["ok"], "'host' must be a string"),
    ("model-id-not-its-key", with_bad(model_id="other"), ["ok"], "not the key it is filed under"),
    ("unknown-key", with_bad(colour="red"), ["ok"], "unknown key 'colour'"),
    ("missing-key", json.dumps({"servers": {"ok": good(), "bad": without("argv")}}), ["ok"], "missing key 'argv'"),
    ("not-json", "{servers: oops", [], "unreadable (JSONDecodeError"),
    ("empty", "", [], "unreadable (JSONDecodeError"),
    ("deeply-nested", "[" * 100_000 + "]" * 100_000, [], "unreadable (RecursionError"),
]


@pytest.mark.parametrize("text, loaded, warning", [case[1:] for case in BAD_FILES], ids=[c[0] for c in BAD_FILES])
def test_state_file_a_bad_file_is_read_tolerantly(tmp_path: Path, caplog: pytest.LogCaptureFixture, text: str,
                                                  loaded: list[str], warning: str):
    """Regression (#19 item 10): a hand-edited servers.json of the wrong shape raised AttributeError (and
    wrong-typed fields went on to be signalled as pids): what is wrong is ignored with a warning naming it."""
    path = tmp_path / "servers.json"
    path.write_text(text, encoding="utf-8")
    state = StateFile(path)
    with caplog.at_level(logging.WARNING, logger="LLM.core.servers.state_file"):
        records = state.load()
    assert sorted(records) == loaded
    assert all(isinstance(r, ServerRecord) and r.pid == 4242 for r in records.values())
    assert len(caplog.records) == 1 and str(path) in caplog.text and warning in caplog.text, caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="LLM.core.servers.state_file"):
        state.load()
    assert caplog.text == ""  # said once, not on every read
    # The next write keeps the good records and leaves a well-formed file.
    state.put(ServerRecord("new", 777, "127.0.0.1", 9000, "h", time.time(), ["x"], 776))
    assert sorted(StateFile(path).load()) == sorted([*loaded, "new"])


def test_state_file_a_non_utf8_file_reads_as_empty(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    path = tmp_path / "servers.json"
    path.write_bytes(b'{"servers": {"\xff": 1}}')
    with caplog.at_level(logging.WARNING):
        assert StateFile(path).load() == {}
    assert "unreadable (UnicodeDecodeError" in caplog.text


def test_state_file_a_missing_file_is_empty_and_silent(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    with caplog.at_level(logging.WARNING):
        assert StateFile(tmp_path / "servers.json").load() == {}
    assert caplog.text == ""


def test_state_file_a_bad_file_does_not_stop_the_manager(tmp_path: Path):
    """Regression (#19 item 10): status and a start read servers.json; a wrong shape must not stop them."""
    from LLM.tests.core.servers.test_servers import Harness

    h = Harness(tmp_path)
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "servers.json").write_text('{"servers": ["m"]}')

    async def go():
        rows = h.manager.status()
        await h.manager.ensure_ready("m")
        state = h.server.state.value
        await h.manager.stop("m")
        return rows, state

    rows, state = asyncio.run(go())
    assert [(r.model_id, r.state) for r in rows] == [("m", "stopped")] and state == "ready"
