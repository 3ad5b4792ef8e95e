"""The model catalog: the shipped data is valid, bad data is named, ranking per machine, the user's own choices."""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

import platformdirs
import pytest

from LLM.core.errors import ConfigError
from LLM.core.models import catalog as catalog_module
from LLM.core.models.catalog import (
    decode_speed,
    TASKS,
    Catalog,
    default_overrides_path,
    load_catalog,
    load_overrides,
    parse_catalog,
    recommend,
    save_override,
)
from LLM.core.models.fit import gib
from LLM.core.models.system import Machine

GiB = 2**30
GB = 10**9

# Fabricated machines: what read_machine() would report.
SMALL = Machine(total_memory=2 * GiB, available_memory=int(1.6 * GiB), cores=2)  # a 2 GB netbook
LAPTOP = Machine(total_memory=16 * GiB, available_memory=12 * GiB, cores=8)
WORKSTATION = Machine(total_memory=64 * GiB, available_memory=56 * GiB, gpu_memory=24 * GiB, cores=16)
UNKNOWN = Machine(total_memory=None, available_memory=None)
MACHINES = {"2GB": SMALL, "16GB": LAPTOP, "64GB+24GB-GPU": WORKSTATION}

SHIPPED = load_catalog()


@pytest.fixture(scope="module")
def shipped() -> Catalog:
    return SHIPPED


# --- the shipped catalog ------------------------------------------------------------------------------------


def test_catalog_shipped_loads_versioned_with_unique_ids(shipped: Catalog):
    assert shipped.version == 1 and shipped.updated == "2026-12-01"
    ids = [entry.id for entry in shipped.entries]
    assert len(ids) == len(set(ids))
    assert 14 <= len(ids) <= 24


@pytest.mark.parametrize("task", TASKS)
def test_catalog_shipped_covers_every_task(shipped: Catalog, task: str):
    assert [e.id for e in shipped.entries if task in e.tasks]


@pytest.mark.parametrize("entry", SHIPPED.entries, ids=[e.id for e in SHIPPED.entries])
def test_catalog_shipped_entry_is_complete(entry):
    assert entry.file_for().quant == entry.default_quant
    assert all(f.size > 0 and f.file.endswith(".gguf") for f in entry.files)
    assert [f.size for f in entry.files] == sorted(f.size for f in entry.files)  # smallest first
    assert entry.parameters > 0 and entry.context_length >= 512
    assert entry.kv_bytes_per_token is not None, "every shipped model states its KV cache cost"
    assert set(entry.capabilities) == set(catalog_module.CATALOG_CAPABILITIES)
    if "vision" in entry.tasks:
        assert entry.mmproj is not None and entry.mmproj.size > 0
    if "tools" in entry.tasks:
        assert entry.capabilities["tools"] and entry.tool_format
    if "embedding" in entry.tasks:
        assert entry.capabilities["embedding"] and not entry.capabilities["chat"]
    assert entry.notes and "\n" not in entry.notes


def test_catalog_memory_needed_is_weights_mmproj_kv_and_ten_percent(shipped: Catalog):
    gemma = shipped.get("gemma3-4b")
    expected = (gemma.file_for().size + gemma.mmproj.size + gemma.kv_bytes_per_token * 4096) * 1.1
    assert gemma.memory_needed() == int(expected)
    assert gemma.memory_needed("Q8_0", context=8192) > gemma.memory_needed()


def test_catalog_memory_needed_caps_the_context_at_the_native_one(shipped: Catalog):
    bge = shipped.get("bge-small-en-v1_5")  # a 512-token encoder
    assert bge.memory_needed(context=4096) == bge.memory_needed(context=512)


def test_catalog_file_for_unknown_quant_names_the_quants_there_are(shipped: Catalog):
    with pytest.raises(ConfigError, match=r"no quantization 'IQ1_S'.*Q4_K_M"):
        shipped.get("qwen3-4b").file_for("IQ1_S")


def test_catalog_get_unknown_id_suggests_close_matches(shipped: Catalog):
    with pytest.raises(ConfigError, match=r"no model 'qwen3-4' .*did you mean .*qwen3-4b"):
        shipped.get("qwen3-4")


def test_catalog_load_reads_a_file_and_names_it_when_broken(tmp_path: Path):
    good = tmp_path / "catalog.json"
    good.write_text(json.dumps(_doc(_model("m1"))))
    assert load_catalog(good).ids == ("m1",)
    broken = tmp_path / "broken.json"
    broken.write_text('{"version": 1,\n "models": [}')
    with pytest.raises(ConfigError, match=r"broken\.json: not valid JSON \(line 2"):
        load_catalog(broken)
    with pytest.raises(ConfigError, match=r"absent\.json"):
        load_catalog(tmp_path / "absent.json")


# --- bad catalog data ---------------------------------------------------------------------------------------


def _model(entry_id: str = "m1", params: float = 1e9, sizes: dict[str, int] | None = None, default: str = "Q4_K_M",
           tasks: tuple[str, ...] = ("chat",), caps: tuple[str, ...] = ("chat",), tool_format: str | None = None,
           mmproj: int | None = None, kv: int = 0, context: int = 32768) -> dict:
    sizes = sizes or {"Q4_K_M": GB}
    model = {
        "id": entry_id, "name": entry_id.upper(), "repo": f"someone/{entry_id}-GGUF",
        "files": {q: {"file": f"{entry_id}-{q}.gguf", "size": s} for q, s in sizes.items()},
        "default_quant": default, "parameters": int(params), "context_length": context,
        "kv_bytes_per_token": kv, "capabilities": {c: True for c in caps}, "tool_format": tool_format,
        "tasks": list(tasks), "license": "apache-2.0", "gated": False, "notes": f"{entry_id} for tests",
    }
    if mmproj:
        model["mmproj"] = {"file": f"mmproj-{entry_id}.gguf", "size": mmproj}
    return model


def _doc(*models: dict) -> dict:
    return {"version": 1, "updated": "2026-12-01", "models": list(models)}


def _set(path: str, value):
    def change(model: dict) -> None:
        *parents, last = path.split(".")
        target = model
        for key in parents:
            target = target[key]
        if value is _DELETE:
            del target[last]
        else:
            target[last] = value
    return change


_DELETE = object()

BAD_ENTRIES = [
    pytest.param(_set("files", _DELETE), "key 'files': missing", id="files-missing"),
    pytest.param(_set("files.Q4_K_M.size", 0), "key 'files.Q4_K_M.size'", id="size-zero"),
    pytest.param(_set("files.Q4_K_M.size", "1 GB"), "key 'files.Q4_K_M.size'", id="size-text"),
    pytest.param(_set("files.Q4_K_M.file", "../escape.gguf"), "key 'files.Q4_K_M.file'", id="file-outside-repo"),
    pytest.param(_set("files.Q4_K_M.sha", "x"), "key 'files.Q4_K_M.sha': unknown key", id="file-unknown-key"),
    pytest.param(_set("default_quant", "Q8_0"), "key 'default_quant': 'Q8_0' is not one of files", id="default-absent"),
    pytest.param(_set("tasks", ["chat", "poetry"]), "key 'tasks': unknown task 'poetry'", id="task-unknown"),
    pytest.param(_set("tasks", []), "key 'tasks'", id="tasks-empty"),
    pytest.param(_set("tasks", ["tools"]), "key 'capabilities': task 'tools' needs", id="tools-without-capability"),
    pytest.param(_set("capabilities.tools", True), "key 'tool_format': needed", id="tools-without-format"),
    pytest.param(_set("tool_format", "hermes"), "key 'tool_format': set, but", id="format-without-tools"),
    pytest.param(_set("capabilities.vision", True), "key 'mmproj': a vision model needs", id="vision-without-mmproj"),
    pytest.param(_set("capabilities.teleport", True), "key 'capabilities.teleport': unknown", id="capability-unknown"),
    pytest.param(_set("capabilities.chat", "yes"), "key 'capabilities.chat': must be true or false",
                 id="capability-text"),
    pytest.param(_set("id", "qwen 3"), "key 'id'", id="id-with-space"),
    pytest.param(_set("repo", "just-a-name"), "key 'repo'", id="repo-without-owner"),
    pytest.param(_set("gated", "no"), "key 'gated'", id="gated-text"),
    pytest.param(_set("parameters", -3), "key 'parameters'", id="parameters-negative"),
    pytest.param(_set("kv_bytes_per_token", 1.5), "key 'kv_bytes_per_token'", id="kv-float"),
    pytest.param(_set("notes", "two\nlines"), "key 'notes'", id="notes-two-lines"),
    pytest.param(_set("sise", 3), "key 'sise': unknown key", id="entry-unknown-key"),
]


@pytest.mark.parametrize("change, fragment", BAD_ENTRIES)
def test_catalog_bad_entry_names_source_entry_and_key(change, fragment):
    model = _model("m1")
    change(model)
    with pytest.raises(ConfigError) as caught:
        parse_catalog(_doc(model), "test.json")
    message = str(caught.value)
    assert message.startswith("test.json: models[0]")
    assert fragment in message
    assert "('m1')" in message or "('qwen 3')" in message  # the entry, by its id


BAD_DOCUMENTS = [
    pytest.param([], "must be a JSON object", id="not-an-object"),
    pytest.param({"version": 1, "updated": "2026-12-01", "models": []}, "key 'models'", id="no-models"),
    pytest.param({"version": 1, "updated": "1 Dec", "models": [_model()]}, "key 'updated'", id="bad-date"),
    pytest.param({"version": "1", "updated": "2026-12-01", "models": [_model()]}, "key 'version'", id="version-text"),
    pytest.param({"version": 2, "updated": "2026-12-01", "models": [_model()]}, "newer than this", id="version-new"),
    pytest.param({**_doc(_model()), "extra": 1}, "unknown top-level key 'extra'", id="top-level-unknown"),
    pytest.param(_doc(_model("m1"), _model("m1")), "('m1'): key 'id': duplicate id", id="duplicate-id"),
]


@pytest.mark.parametrize("data, fragment", BAD_DOCUMENTS)
def test_catalog_bad_document_names_source_and_key(data, fragment):
    with pytest.raises(ConfigError, match="^test.json: ") as caught:
        parse_catalog(data, "test.json")
    assert fragment in str(caught.value)


def test_catalog_reports_every_bad_entry_at_once():
    one, two = _model("m1"), _model("m2")
    one["gated"] = "no"
    two["files"]["Q4_K_M"]["size"] = 0
    with pytest.raises(ConfigError) as caught:
        parse_catalog(_doc(one, two, _model("m3")), "test.json")
    assert len(caught.value.problems) == 2
    assert "(and 1 more problem(s))" in str(caught.value)
    assert any("'m2'" in p and "files.Q4_K_M.size" in p for p in caught.value.problems)


# --- ranking ------------------------------------------------------------------------------------------------


def _policy_catalog() -> Catalog:
    """Sizes in round GB with no KV cache, so memory_needed is size x 1.1."""
    return parse_catalog(_doc(
        _model("tiny", 0.5e9, {"Q8_0": 1 * GB}, "Q8_0", tasks=("chat", "tools"), caps=("chat", "tools"),
               tool_format="hermes"),
        _model("mid", 3e9, {"Q4_K_M": 4 * GB}, tasks=("chat", "tools"), caps=("chat", "tools", "parallel_tool_calls"),
               tool_format="hermes"),
        _model("big", 8e9, {"Q3_K_M": 6 * GB, "Q4_K_M": 8 * GB}, tasks=("chat", "tools"), caps=("chat", "tools"),
               tool_format="llama3"),
        _model("xl", 30e9, {"Q4_K_M": 15 * GB}, tasks=("chat",)),
        _model("huge", 70e9, {"Q2_K": 20 * GB, "Q4_K_M": 40 * GB}, tasks=("chat",)),
        _model("coder", 3e9, {"Q4_K_M": 4 * GB}, tasks=("code",)),
        _model("general", 3e9, {"Q4_K_M": 4 * GB}, tasks=("reasoning", "code"), caps=("chat", "reasoning")),
        _model("eyes", 2e9, {"Q4_K_M": 1 * GB}, tasks=("vision",), caps=("chat", "vision"), mmproj=GB // 2),
    ), "policy.json")


def _free(gb: float, gpu_gb: float | None = None) -> Machine:
    return Machine(total_memory=int(2 * gb * GB), available_memory=int(gb * GB),
                   gpu_memory=int(gpu_gb * GB) if gpu_gb else None)


RANKINGS = [
    # machine, task, expected order (ids), expected quants where they differ from the default
    pytest.param(_free(10), "chat", ["mid", "tiny", "big", "xl", "huge"], {"huge": "Q2_K"},
                 id="comfortable-before-tight-before-none"),
    pytest.param(_free(8), "chat", ["mid", "tiny", "big", "xl", "huge"], {"big": "Q3_K_M", "huge": "Q2_K"},
                 id="smaller-quant-when-the-default-does-not-fit"),
    pytest.param(_free(100), "chat", ["huge", "xl", "big", "mid", "tiny"], {}, id="larger-wins-when-all-comfortable"),
    pytest.param(_free(3), "tools", ["tiny", "mid", "big"], {"big": "Q3_K_M"},
                 id="only-task-models-not-fitting-by-need"),
    pytest.param(_free(20), "code", ["coder", "general"], {}, id="code-specialist-beats-same-size-generalist"),
    pytest.param(_free(4, gpu_gb=16), "chat", ["big", "mid", "tiny", "xl", "huge"], {"huge": "Q2_K"},
                 id="gpu-memory-counts"),
]


@pytest.mark.parametrize("machine, task, order, quants", RANKINGS)
def test_recommend_ranks_by_fit_then_quality(machine, task, order, quants):
    recs = recommend(task, _policy_catalog(), machine)
    assert [r.entry.id for r in recs] == order
    for rec in recs:
        assert rec.quant == quants.get(rec.entry.id, rec.entry.default_quant)
        assert rec.memory_needed == rec.entry.memory_needed(rec.quant)
        assert "\n" not in rec.reason


def test_recommend_reasons_say_fit_room_and_what_the_model_does():
    recs = {r.entry.id: r for r in recommend("tools", _policy_catalog(), _free(8))}
    assert recs["mid"].reason == (f"fits in {gib(int(4.4 * GB))} of {gib(8 * GB)} free; calls tools in parallel "
                                  "(Hermes format); best tool model that fits")
    assert recs["big"].reason.startswith(f"fits at Q3_K_M in {gib(int(6.6 * GB))} of {gib(8 * GB)} free, a tight fit; "
                                           "calls tools")
    assert "best" not in recs["tiny"].reason


def test_recommend_puts_models_that_do_not_fit_last_with_what_they_need():
    recs = recommend("chat", _policy_catalog(), _free(8))
    fits = [r.fits for r in recs]
    assert fits == sorted(fits, reverse=True) and fits.count(False) == 2
    xl, huge = recs[-2], recs[-1]
    assert xl.reason == f"needs {gib(int(16.5 * GB))} but only {gib(8 * GB)} free"
    assert huge.reason == f"needs {gib(22 * GB)} even at Q2_K but only {gib(8 * GB)} free"
    assert xl.score > huge.score


def test_recommend_counts_the_gpu_in_the_memory_it_reports():
    rec = recommend("chat", _policy_catalog(), _free(4, gpu_gb=16))[0]
    assert rec.fits and f"of {gib(20 * GB)} free (RAM + GPU)" in rec.reason


def test_recommend_with_unknown_memory_claims_no_best_fit():
    recs = recommend("chat", _policy_catalog(), UNKNOWN)
    assert all(r.fits for r in recs)
    assert all("free memory unknown" in r.reason and "best" not in r.reason for r in recs)


def test_recommend_is_deterministic_and_breaks_ties_by_id():
    twins = parse_catalog(_doc(_model("b-twin"), _model("a-twin"), _model("c-twin")), "twins.json")
    first = recommend("chat", twins, _free(10))
    assert [r.entry.id for r in first] == ["a-twin", "b-twin", "c-twin"]
    assert first == recommend("chat", twins, _free(10))


def test_recommend_puts_the_users_choices_first_in_their_order():
    overrides = {"chat": ["huge", "tiny", "gone-from-catalog", "tiny"], "tools": ["big"]}
    recs = recommend("chat", _policy_catalog(), _free(10), overrides=overrides)
    assert [r.entry.id for r in recs] == ["huge", "tiny", "mid", "big", "xl"]
    assert recs[0].reason == f"your choice; needs {gib(22 * GB)} even at Q2_K but only {gib(10 * GB)} free" and not recs[0].fits
    assert recs[1].reason == f"your choice; fits in {gib(int(1.1 * GB))} of {gib(10 * GB)} free" and recs[1].fits
    assert recs[0].score > recs[1].score > recs[2].score
    assert "best chat model that fits" in recs[2].reason


def test_recommend_takes_a_choice_even_for_a_model_not_listed_for_the_task():
    recs = recommend("code", _policy_catalog(), _free(20), overrides={"code": ["big"]})
    assert [r.entry.id for r in recs] == ["big", "coder", "general"]


def test_recommend_limit_keeps_the_best():
    assert [r.entry.id for r in recommend("chat", _policy_catalog(), _free(10), limit=2)] == ["mid", "tiny"]


def test_recommend_unknown_task_names_the_valid_ones(shipped: Catalog):
    with pytest.raises(ConfigError) as caught:
        recommend("poetry", shipped, LAPTOP)
    assert "unknown task 'poetry'" in str(caught.value)
    assert all(task in str(caught.value) for task in TASKS)


def test_recommendation_to_json_is_plain_data(shipped: Catalog):
    rec = recommend("vision", shipped, LAPTOP)[0]
    data = json.loads(json.dumps(rec.to_json()))
    assert data["id"] == rec.entry.id and data["file"] == rec.entry.file_for(rec.quant).file
    assert data["mmproj"] and data["fits"] is True and data["reason"] == rec.reason


@pytest.mark.parametrize("machine", MACHINES.values(), ids=MACHINES.keys())
@pytest.mark.parametrize("task", TASKS)
def test_recommend_shipped_catalog_fits_first_and_honestly(shipped: Catalog, machine: Machine, task: str):
    recs = recommend(task, shipped, machine)
    budget = machine.available_memory + (machine.gpu_memory or 0)
    assert {r.entry.id for r in recs} == {e.id for e in shipped.entries if task in e.tasks}
    assert [r.fits for r in recs] == sorted((r.fits for r in recs), reverse=True)
    for rec in recs:
        assert rec.fits == (rec.memory_needed <= budget)
        assert "\n" not in rec.reason and (rec.reason.startswith("fits") or rec.reason.startswith("needs"))
    not_fitting = [r.memory_needed for r in recs if not r.fits]
    assert not_fitting == sorted(not_fitting)
    if recs[0].fits:
        assert recs[0].reason.endswith("that fits")


SHIPPED_PICKS = [
    pytest.param(SMALL, "tools", "llama3_2-1b", id="2GB-tools"),
    pytest.param(SMALL, "vision", "smolvlm-500m", id="2GB-vision"),
    pytest.param(LAPTOP, "code", "qwen2_5-coder-7b", id="16GB-code"),
    pytest.param(WORKSTATION, "vision", "gemma3-4b", id="64GB-vision"),
    pytest.param(WORKSTATION, "embedding", "nomic-embed-v1_5", id="64GB-embedding"),
]


@pytest.mark.parametrize("machine, task, first", SHIPPED_PICKS)
def test_recommend_shipped_catalog_first_picks(shipped: Catalog, machine: Machine, task: str, first: str):
    assert recommend(task, shipped, machine)[0].entry.id == first


def test_recommend_prefers_what_decodes_fast_enough_on_few_cores(shipped: Catalog):
    """Decoding streams the weights once a token: on 2 CPU cores an 8B model fits 23 GiB but writes ~2 tokens/s,
    so smaller tool models lead there, and the big ones lead where cores (or a GPU) make them usable."""
    roomy_ram = 23 * GiB
    two_cores = recommend("tools", shipped, Machine(total_memory=24 * GiB, available_memory=roomy_ram, cores=2))
    assert all(r.entry.parameters < 4e9 for r in two_cores[:3])
    assert all((decode_speed(r.entry, r.quant, Machine(None, None, cores=2)) or 0) >= 4 for r in two_cores[:3])
    slow = next(r for r in two_cores if r.entry.id == "qwen3-8b")
    assert slow.fits and "slow here: about 2 tokens/s on 2 CPU cores" in slow.reason
    many = recommend("tools", shipped, Machine(total_memory=32 * GiB, available_memory=roomy_ram, cores=32))
    assert many[0].entry.parameters >= 7e9 and "slow here" not in many[0].reason
    gpu = recommend("tools", shipped, Machine(total_memory=32 * GiB, available_memory=roomy_ram, cores=2,
                                              gpu_memory=24 * GiB))
    assert gpu[0].entry.parameters >= 7e9 and "tokens/s" not in gpu[0].reason


def test_recommend_shipped_catalog_on_2gb_lists_7b_models_as_not_fitting(shipped: Catalog):
    recs = {r.entry.id: r for r in recommend("chat", shipped, SMALL)}
    assert not recs["qwen3-8b"].fits
    assert recs["qwen3-8b"].reason.startswith("needs 5.77 GiB even at Q4_K_M but only 1.60 GiB free")


# --- the user's choices ---------------------------------------------------------------------------------------


def test_overrides_absent_file_is_empty(tmp_path: Path):
    assert load_overrides(tmp_path / "recommendations.json") == {}


BAD_OVERRIDES = [
    pytest.param("{not json", "not valid JSON", id="not-json"),
    pytest.param("[]", "must be a JSON object", id="not-an-object"),
    pytest.param('{"version": 7, "tasks": {}}', "newer workbench", id="newer-version"),
    pytest.param('{"version": 1, "extra": {}}', "unknown key 'extra'", id="unknown-key"),
    pytest.param('{"version": 1, "tasks": []}', "key 'tasks'", id="tasks-not-object"),
    pytest.param('{"version": 1, "tasks": {"poetry": []}}', "key 'tasks.poetry': unknown task", id="unknown-task"),
    pytest.param('{"version": 1, "tasks": {"chat": "qwen3-4b"}}', "key 'tasks.chat'", id="ids-not-a-list"),
    pytest.param('{"version": 1, "tasks": {"chat": ["a b"]}}', "key 'tasks.chat'", id="bad-id"),
]


@pytest.mark.parametrize("text, fragment", BAD_OVERRIDES)
def test_overrides_bad_file_names_file_and_key(tmp_path: Path, text: str, fragment: str):
    path = tmp_path / "recommendations.json"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_overrides(path)
    assert str(path) in str(caught.value) and fragment in str(caught.value)


def test_overrides_save_round_trip_keeps_other_tasks(tmp_path: Path, shipped: Catalog):
    path = tmp_path / "nested" / "recommendations.json"
    save_override(path, "tools", ["qwen3-4b", "llama3_2-3b", "qwen3-4b"], shipped)
    save_override(path, "chat", ["mistral-7b-v0_3"], shipped)
    assert load_overrides(path) == {"chat": ["mistral-7b-v0_3"], "tools": ["qwen3-4b", "llama3_2-3b"]}
    assert json.loads(path.read_text())["version"] == 1
    save_override(path, "tools", [], shipped)
    assert load_overrides(path) == {"chat": ["mistral-7b-v0_3"]}
    recs = recommend("chat", shipped, SMALL, overrides=load_overrides(path))
    assert recs[0].entry.id == "mistral-7b-v0_3" and recs[0].reason.startswith("your choice; needs")


def test_overrides_save_refuses_unknown_ids_and_names_close_ones(tmp_path: Path, shipped: Catalog):
    path = tmp_path / "recommendations.json"
    with pytest.raises(ConfigError) as caught:
        save_override(path, "tools", ["qwen3-4b", "qwen3-4", "no-such-model"], shipped)
    message = str(caught.value)
    assert "'qwen3-4'" in message and "did you mean qwen3-4b" in message and "'no-such-model'" in message
    assert "'qwen3-4b'" not in message  # the known id is not reported as unknown
    assert not path.exists()


def test_overrides_save_refuses_unknown_task(tmp_path: Path, shipped: Catalog):
    with pytest.raises(ConfigError, match="unknown task 'chats'.*did you mean chat"):
        save_override(tmp_path / "r.json", "chats", ["qwen3-4b"], shipped)


def test_overrides_save_never_replaces_a_damaged_file(tmp_path: Path, shipped: Catalog):
    path = tmp_path / "recommendations.json"
    path.write_text("{damaged")
    with pytest.raises(ConfigError, match="not valid JSON"):
        save_override(path, "chat", ["qwen3-4b"], shipped)
    assert path.read_text() == "{damaged"


def test_overrides_save_is_atomic_when_the_replace_fails(tmp_path: Path, shipped: Catalog,
                                                         monkeypatch: pytest.MonkeyPatch):
    """A failed write leaves the previous file whole and no temporary file behind."""
    path = tmp_path / "recommendations.json"
    save_override(path, "chat", ["qwen3-4b"], shipped)
    before = path.read_text()

    def refuse(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(catalog_module.os, "replace", refuse)
    with pytest.raises(ConfigError, match=r"cannot save model choices to .*No space left"):
        save_override(path, "tools", ["qwen3-8b"], shipped)
    monkeypatch.undo()
    assert path.read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["recommendations.json"]


def test_overrides_default_path_prefers_llm_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("LLM_DATA_DIR", str(tmp_path / "data"))
    assert default_overrides_path() == tmp_path / "data" / "recommendations.json"
    monkeypatch.delenv("LLM_DATA_DIR")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    expected = Path(platformdirs.user_config_dir("llm-workbench")) / "recommendations.json"
    assert default_overrides_path() == expected
    if sys.platform.startswith("linux"):
        assert expected == tmp_path / "xdg" / "llm-workbench" / "recommendations.json"


def test_catalog_shipped_data_is_untouched_by_parsing():
    """parse_catalog is pure: the data it was given is not changed."""
    data = _doc(_model("m1"))
    before = copy.deepcopy(data)
    parse_catalog(data, "test.json")
    assert data == before
