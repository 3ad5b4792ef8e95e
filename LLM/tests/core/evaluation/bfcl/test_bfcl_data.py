"""BFCL's file layout read into tasks, any version prefix; the dataset fetched from a fake hub, then used offline."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from LLM.core.errors import ConfigError
from LLM.core.evaluation import BFCL_CATEGORIES, BFCL_REPO, BfclDataError, fetch_bfcl, load_bfcl, parse_bfcl_categories
from LLM.tests.fakes.fake_hub import FakeHub

from .bfcl_data import CATEGORY_NAMES, TASKS, write_bfcl


@pytest.mark.parametrize(("text", "expected"), [
    (None, BFCL_CATEGORIES),
    ("", BFCL_CATEGORIES),
    ("simple", ("simple_python",)),
    ("simple_python, multiple,simple", ("simple_python", "multiple")),
    ("live_irrelevance,parallel", ("live_irrelevance", "parallel")),
])
def test_category_names_as_bfcl_spells_them(text, expected):
    assert parse_bfcl_categories(text) == expected


def test_an_unknown_category_is_named_with_the_known_ones():
    with pytest.raises(ConfigError, match=r"unknown category 'simpel'.*simple_python"):
        parse_bfcl_categories("simpel,multiple")


@pytest.mark.parametrize("version", [3, 4])
def test_every_category_reads_with_any_version_prefix(tmp_path: Path, version: int):
    data = load_bfcl(write_bfcl(tmp_path, version), CATEGORY_NAMES)
    assert [t.id for t in data.tasks] == [t[1] for t in TASKS]
    factorial = data.tasks[0]
    assert factorial.category == "simple_python" and factorial.functions[0]["name"] == "math.factorial"
    assert factorial.ground_truth == ({"math.factorial": {"number": [5]}},)
    live = next(t for t in data.tasks if t.category == "live_simple")
    assert [m["role"] for m in live.messages] == ["system", "user"]
    assert next(t for t in data.tasks if t.category == "irrelevance").ground_truth is None


def test_the_newest_version_wins_and_the_data_version_follows_the_bytes(tmp_path: Path):
    write_bfcl(tmp_path, 3)
    old = load_bfcl(tmp_path, ("multiple",))
    newer = [(c, i, [{"role": "user", "content": "What time is it in Tokyo?"}], f, g)
             for c, i, _m, f, g in TASKS if c == "multiple"]
    write_bfcl(tmp_path, 5, newer)
    new = load_bfcl(tmp_path, ("multiple",))
    assert new.tasks[0].messages[-1]["content"] == "What time is it in Tokyo?" and new.version != old.version
    copy = tmp_path / "copy"
    shutil.copytree(tmp_path, copy, ignore=shutil.ignore_patterns("copy"))
    assert load_bfcl(copy, ("multiple",)).version == new.version  # the same bytes anywhere: the same version


def test_limit_takes_the_first_tasks_of_each_category_in_file_order(tmp_path: Path):
    data = load_bfcl(write_bfcl(tmp_path), ("simple_python", "multiple"), limit=1)
    assert [t.id for t in data.tasks] == ["simple_python_0", "multiple_0"]


@pytest.mark.parametrize(("damage", "message"), [
    (lambda d: (d / "BFCL_v4_multiple.json").unlink(), r"no file for category 'multiple'.*BFCL_v<N>_multiple\.json"),
    (lambda d: (d / "possible_answer" / "BFCL_v4_multiple.json").unlink(), r"BFCL_v4_multiple\.json has no ground truth"),
    (lambda d: (d / "BFCL_v4_multiple.json").write_text('{"id": "multiple_0", "question": [[]]\n'),
     r"BFCL_v4_multiple\.json:1: not JSON"),
    (lambda d: (d / "BFCL_v4_multiple.json").write_text('{"id": "multiple_0", "question": "hi", "function": []}\n'),
     r"BFCL_v4_multiple\.json:1: question: expected"),
    (lambda d: (d / "possible_answer" / "BFCL_v4_multiple.json").write_text('{"id": "other_0", "ground_truth": []}\n'),
     r"BFCL_v4_multiple\.json:1: multiple_0: no ground truth"),
])
def test_bad_data_names_the_file_and_line(tmp_path: Path, damage, message):
    write_bfcl(tmp_path)
    damage(tmp_path)
    with pytest.raises(BfclDataError, match=message):
        load_bfcl(tmp_path, ("multiple",))


def test_a_missing_folder_is_named(tmp_path: Path):
    with pytest.raises(BfclDataError, match="is not a folder"):
        load_bfcl(tmp_path / "nowhere", ("multiple",))


def _hub_dataset(root: Path) -> Path:
    repo = root / "datasets" / BFCL_REPO
    write_bfcl(repo, 3)
    write_bfcl(repo, 4)  # both versions on the hub: only the newest is fetched
    (repo / "README.md").write_text("---\nlicense: apache-2.0\n---\n# BFCL (test copy)\n")
    return repo


def test_the_dataset_is_fetched_once_with_its_license_then_used_offline(tmp_path: Path, monkeypatch):
    _hub_dataset(tmp_path / "hub")
    cache = tmp_path / "datasets"
    with FakeHub(tmp_path / "hub") as hub:
        folder = fetch_bfcl(("simple_python", "irrelevance"), base=cache, endpoint=hub.url)
        fetched = sorted(e["path"] for e in hub.gets())
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.json") if ".download" not in p.parts) == [
        "BFCL_v4_irrelevance.json", "BFCL_v4_simple_python.json", "possible_answer/BFCL_v4_simple_python.json"]
    assert (folder / "README.md").read_text().startswith("---\nlicense: apache-2.0")
    assert len(fetched) == 4  # the card, two question files, one answer file: nothing else
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # the hub is gone too: the cache answers
    data = load_bfcl(fetch_bfcl(("simple_python", "irrelevance"), base=cache), ("simple_python", "irrelevance"))
    assert [t.id for t in data.tasks] == ["simple_python_0", "simple_python_1", "irrelevance_0"]


def test_offline_without_a_copy_says_how_to_get_one(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(BfclDataError) as error:
        fetch_bfcl(("multiple",), base=tmp_path / "datasets")
    message = str(error.value)
    assert "\n" not in message and "--bfcl-dir" in message and BFCL_REPO in message


def test_a_category_the_dataset_lacks_is_named(tmp_path: Path):
    repo = _hub_dataset(tmp_path / "hub")
    for path in repo.glob("BFCL_v*_live_irrelevance.json"):
        path.unlink()
    with FakeHub(tmp_path / "hub") as hub, pytest.raises(BfclDataError, match="no file for category 'live_irrelevance'"):
        fetch_bfcl(("live_irrelevance",), base=tmp_path / "datasets", endpoint=hub.url)

