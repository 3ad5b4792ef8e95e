"""BFCL report cards in the window, against the scripted fake server on BFCL-format test data: the Tool eval tab runs
a card, shows it per category, compares two runs, opens a failed task; the model dropdown and the Models page show
each model's best score; a bad folder, no data offline and Stop each leave one line and a usable tab."""

from __future__ import annotations

import importlib
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QAbstractItemView

from LLM.core.evaluation import CategoryScore, RunKey, RunSummary
from LLM.desktop_app.pages.eval_page import EvalPage
from LLM.desktop_app.pages.models_page import SCORE_COLUMN
from LLM.desktop_app.widgets.report_cards import card_rows
from LLM.tests.core.evaluation.bfcl.bfcl_data import CATEGORY_NAMES, TASKS, question, reply, write_bfcl
from LLM.tests.desktop_app.harness import (
    ScriptedInteraction,
    click,
    open_window,
    openai_yaml,
    run,
    select_model,
    wait_until,
)

WRONG_FACTORIAL = [("math_factorial", {"number": 6})]  # value_error:others


def right_reply(task: Any, mode: str, **extra: Any) -> dict[str, Any]:
    """The right answer; for live_relevance a relevant call (its ground truth is "some call")."""
    calls = [("weather_get", {"city": "Rome"})] if task[0] == "live_relevance" else None
    return reply(task, mode, calls, **extra)


def bfcl_tab(window, *modes: str) -> EvalPage:
    """The Tool eval tab, shown, with BFCL chosen and only ``modes`` ticked."""
    tab = window.eval_page
    window.tabs.setCurrentWidget(tab)
    tab.suite_choice.setCurrentIndex(tab.suite_choice.findData("bfcl"))
    for mode, box in tab.mode_boxes.items():
        box.setChecked(mode in modes)
    return tab


def table_text(table) -> list[list[str]]:
    return [[table.item(r, c).text() if table.item(r, c) else "" for c in range(table.columnCount())]
            for r in range(table.rowCount())]


def ctrl_click_row(table: QAbstractItemView, row: int) -> None:
    rect = table.visualRect(table.model().index(row, 0))
    QTest.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ControlModifier, rect.center())


def row_date(cards, row: int) -> str:
    return cards.runs_table.item(row, 1).text()


async def run_card(tab: EvalPage) -> None:
    click(tab.run_button)
    assert tab.busy
    await wait_until(lambda: not tab.busy, timeout=60, what="the BFCL run")


def test_report_card_runs_compares_and_badges_the_models(qloop, fake_server, tmp_path):
    """Native on "strong" (every answer right), then fallback on "weak" (one wrong): each card per category, the two
    side by side, the wrong task's reason and request, and both models' best scores in the dropdown and on the
    Models page, where for tools the better one comes first although the file lists it second."""
    folder = write_bfcl(tmp_path / "bfcl")
    fake_server.script(*[right_reply(task, "native") for task in TASKS])

    async def go():
        async with open_window(tmp_path, openai_yaml(fake_server.url, "weak", "strong"), initial_model="strong",
                               interaction=ScriptedInteraction(paths=(folder,))) as window:
            tab = bfcl_tab(window, "native")
            assert tab.report_cards.note.text().startswith("No report cards yet")
            click(tab.bfcl_options.browse)
            await wait_until(lambda: tab.bfcl_options.folder.text() == str(folder), what="the folder chosen")
            await run_card(tab)
            cards = tab.report_cards
            assert tab.status.text().startswith("Done: strong scored native 100.0% overall"), tab.status.text()
            assert (tab.progress.value(), tab.progress.maximum()) == (len(TASKS), len(TASKS))
            assert table_text(cards.runs_table)[0][2:6] == ["strong", "native", str(len(TASKS)), "100.0%"]
            card = table_text(cards.card_table)
            assert [row[0] for row in card] == [*CATEGORY_NAMES, "overall"]
            assert all(row[1].startswith("100.0% (") for row in card[:-1]) and card[-1][1] == "100.0%"
            assert cards.failures_title.text() == "Run 1: no failed task"
            assert window.selector.item_text("strong").split("  ·  ")[2] == "BFCL 100%"
            assert "BFCL report card: 100.0% overall" in window.selector.item_tooltip("strong")
            assert "BFCL" not in window.selector.item_text("weak")

            # The weaker model, in fallback mode, gets the factorial wrong.
            select_model(window, "weak")
            await wait_until(lambda: tab.model_id == "weak", what="the eval tab on the weak model")
            fake_server.script(*[reply(task, "fallback", WRONG_FACTORIAL) if task[1] == "simple_python_0"
                                 else right_reply(task, "fallback") for task in TASKS])
            tab.mode_boxes["native"].setChecked(False)
            tab.mode_boxes["fallback"].setChecked(True)
            await run_card(tab)
            assert tab.status.text().startswith("Done: weak scored fallback 93.8% overall"), tab.status.text()
            assert [row[:4] for row in table_text(cards.runs_table)] == [
                ["2", row_date(cards, 0), "weak", "fallback"], ["1", row_date(cards, 1), "strong", "native"]]
            assert "BFCL 94%" in window.selector.item_text("weak")

            # Both runs selected: a column each (oldest first), a row per category, the overall last.
            ctrl_click_row(cards.runs_table, 1)
            assert [run.id for run in cards.selected_runs()] == [1, 2]
            assert cards.card_title.text() == "Runs 1, 2 side by side"
            heads = [cards.card_table.horizontalHeaderItem(c).text() for c in range(3)]
            assert heads == ["category", "#1 strong\nnative", "#2 weak\nfallback"]
            rows = {row[0]: row[1:] for row in table_text(cards.card_table)}
            assert rows["simple_python"] == ["100.0% (2/2)", "50.0% (1/2)"]
            assert rows["overall"] == ["100.0%", "93.8%"] and list(rows)[-1] == "overall"

            # The failed task of the weak run: its reason, the calls as scored and the request as sent.
            ctrl_click_row(cards.runs_table, 1)  # back to the weak run alone
            assert [run.id for run in cards.selected_runs()] == [2]
            assert cards.failures_title.text() == f"Failed tasks of run 2: 1 of {len(TASKS)}"
            assert cards.failures.item(0).text().startswith("simple_python_0")
            list_rect = cards.failures.visualItemRect(cards.failures.item(0))
            QTest.mouseClick(cards.failures.viewport(), Qt.MouseButton.LeftButton, pos=list_rect.center())
            reason = cards.failure_reason.text()
            assert reason.startswith("simple_python_0 (simple_python): value_error:others: "), reason
            details = cards.failure_details.toPlainText()
            assert '"math.factorial"' in details and '"number": 6' in details  # the call, by BFCL's name
            assert "What is the factorial of 5?" in details and "<tools>" in details  # the request as sent
            assert "<tool_call>" in details  # the raw output of a fallback answer
            assert "Per mode, weak on the same engine and data: fallback 93.8%" in cards.modes_label.text()

            # The Models page: each model's best score; for tools the better model first.
            page = window.models_page
            window.tabs.setCurrentWidget(page)
            await wait_until(lambda: page.configured_group is not None and page.configured_group.childCount() == 2,
                             what="your models listed")
            group = page.configured_group
            assert page.task() == "tools" and group.text(0) == "Configured (2), best BFCL score first"
            shown = [(group.child(i).data(0, Qt.ItemDataRole.UserRole + 1), group.child(i).text(SCORE_COLUMN))
                     for i in range(2)]
            assert shown == [("strong", "BFCL 100%"), ("weak", "BFCL 94%")]
            page.set_task("chat")  # not a tool task: the file's order
            assert group.child(0).data(0, Qt.ItemDataRole.UserRole + 1) == "weak"
            assert group.text(0) == "Configured (2)"

    run(qloop, go(), timeout=150)


def test_report_card_bad_folder_says_why_in_one_line_and_the_tab_stays_usable(qloop, fake_server, tmp_path):
    folder = write_bfcl(tmp_path / "bfcl")
    fake_server.script(*[right_reply(task, "native") for task in TASKS if task[0] == "simple_python"])

    async def go():
        async with open_window(tmp_path, openai_yaml(fake_server.url)) as window:
            tab = bfcl_tab(window, "native")
            tab.bfcl_options.folder.setText(str(tmp_path / "nowhere"))
            await run_card(tab)
            assert tab.status.text() == f"BFCL data: {tmp_path / 'nowhere'} is not a folder"
            assert tab.run_button.isEnabled() and tab.bfcl_options.isEnabled()
            assert tab.progress.maximum() > 0  # the bar is not left moving
            assert fake_server.requests() == []  # nothing was asked of the model

            (folder / "possible_answer" / "BFCL_v4_multiple.json").unlink()
            tab.bfcl_options.folder.setText(str(folder))
            await run_card(tab)
            assert "\n" not in tab.status.text() and "BFCL_v4_multiple.json has no ground truth" in tab.status.text()

            # The same tab, a good choice: two tasks of simple_python.
            tab.bfcl_options.set_categories(("simple_python",))
            assert tab.bfcl_options.categories_button.text() == "Categories: simple_python"
            tab.bfcl_options.limit.setValue(2)
            await run_card(tab)
            assert tab.status.text().startswith("Done: fake scored native 100.0% overall"), tab.status.text()
            assert [row[0] for row in table_text(tab.report_cards.card_table)] == ["simple_python", "overall"]

    run(qloop, go())


def test_report_card_offline_without_data_says_how_to_get_it(qloop, fake_server, tmp_path, monkeypatch):
    """No folder chosen, nothing cached and the Hub out of reach: one line saying so and what to do in the window
    (Browse…), not the CLI's flag."""
    # huggingface_hub reads HF_HUB_OFFLINE once, at import: imported now, the offline mode ends with this test.
    importlib.import_module("huggingface_hub.constants")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    async def go():
        async with open_window(tmp_path, openai_yaml(fake_server.url)) as window:
            tab = bfcl_tab(window, "native")
            await run_card(tab)
            text = tab.status.text()
            assert text.startswith("BFCL's data is not here and could not be fetched (") and "\n" not in text
            assert text.endswith("choose a copy of its data folder with Browse…, or run once online to fetch it")
            assert "--bfcl-dir" not in text and tab.run_button.isEnabled()

    run(qloop, go())


def test_report_card_stop_keeps_the_tasks_done_and_run_goes_on_from_there(qloop, fake_server, tmp_path):
    """Stop cancels the request in flight and keeps the tasks finished; the next Run asks only the rest, and a Run
    with nothing left asks nothing unless Run again is ticked."""
    folder = write_bfcl(tmp_path / "bfcl")
    first, second, *rest = TASKS
    slow = {"when": question(rest[0]), "text": " ".join(["slow"] * 400), "delay_s": 0.05}  # streams until stopped
    fake_server.script(right_reply(first, "native"), right_reply(second, "native"), slow)

    async def go():
        async with open_window(tmp_path, openai_yaml(fake_server.url)) as window:
            tab = bfcl_tab(window, "native")
            tab.bfcl_options.folder.setText(str(folder))
            click(tab.run_button)
            await wait_until(lambda: tab.tally is not None and tab.tally.computed == 2 and
                             len(fake_server.requests()) == 3, what="two tasks done, the third asked")
            before = fake_server.chunks_sent()
            await wait_until(lambda: fake_server.chunks_sent() > before + 1, what="the third answer streaming")
            click(tab.stop_button)
            assert not tab.busy and tab.run_button.isEnabled()
            assert tab.status.text() == (f"BFCL run stopped after 2 of {len(TASKS)} tasks; those finished are kept "
                                         "in the history, and Run goes on from there.")
            await wait_until(lambda: any(e.get("type") == "disconnect" for e in fake_server.log()),
                             what="the request in flight cancelled")
            assert table_text(tab.report_cards.runs_table)[0][4] == "2"
            assert "BFCL 100%" in window.selector.item_text("fake")  # the badge counts what is kept

            fake_server.script(*[right_reply(task, "native") for task in rest])
            await run_card(tab)
            assert tab.status.text().startswith("Done: fake scored native 100.0%"), tab.status.text()
            assert len(fake_server.requests()) == 3 + len(rest)  # the two kept tasks were not asked again
            assert len(table_text(tab.report_cards.runs_table)) == 1  # resumed: the same run
            assert table_text(tab.report_cards.runs_table)[0][4] == str(len(TASKS))

            # Once more: nothing new to ask, unless Run again is ticked.
            sent = len(fake_server.requests())
            await run_card(tab)
            assert tab.status.text().endswith("Every task was in the history already: tick Run again to compute them "
                                              "anew.") and len(fake_server.requests()) == sent
            fake_server.script(*[right_reply(task, "native") for task in TASKS])
            tab.bfcl_options.rerun.setChecked(True)
            await run_card(tab)
            assert len(fake_server.requests()) == sent + len(TASKS)
            assert "already" not in tab.status.text()

    run(qloop, go())


def _run(run_id: int, mode: str, **categories: tuple[int, int]) -> RunSummary:
    key = RunKey("bfcl", "m", "", mode, "llama.cpp b1", "abc")
    return RunSummary(run_id, key, {}, 0.0, 0.0, {name: CategoryScore(*pair) for name, pair in categories.items()})


@pytest.mark.parametrize(("runs", "expected"), [
    pytest.param([_run(1, "native", simple_python=(2, 2), irrelevance=(4, 1))],
                 [("simple_python", ["100.0% (2/2)"]), ("irrelevance", ["25.0% (1/4)"]), ("overall", ["62.5%"])],
                 id="one-run"),
    pytest.param([_run(1, "native", simple_python=(2, 1)), _run(2, "fallback", multiple=(1, 1))],
                 [("simple_python", ["50.0% (1/2)", "—"]), ("multiple", ["—", "100.0% (1/1)"]),
                  ("overall", ["50.0%", "100.0%"])], id="a-category-one-run-lacks"),
    pytest.param([_run(3, "constrained")], [("overall", ["—"])], id="no-task-finished-yet"),
])
def test_report_card_rows_are_the_clis_figures(runs, expected):
    """The card's rows: a category per row in the runs' order, a cell per run as ``llmctl eval compare`` writes
    it, the overall figure (the mean over the categories) last."""
    assert card_rows(runs) == expected
