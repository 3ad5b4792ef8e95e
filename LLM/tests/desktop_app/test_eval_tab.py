"""The Tool eval tab against the fake server: progress, the per-mode table, each task's exchange, Stop."""

from __future__ import annotations

import json

import pytest
from PySide6.QtGui import QColor, QPalette

from LLM.desktop_app.widgets.tones import contrast_ratio, tone
from LLM.tests.desktop_app.harness import ScriptedInteraction, click, open_window, openai_yaml, run, wait_until

SUITE = "\n".join(json.dumps(line) for line in (
    {"tool": {"name": "get_weather", "description": "Weather in a city",
              "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}},
    {"id": "paris", "prompt": "Weather in Paris?", "tools": ["get_weather"],
     "expect": [{"name": "get_weather", "arguments": {"city": {"match": "icase", "value": "paris"}}}]},
    {"id": "hello", "prompt": "Say hello.", "tools": ["get_weather"], "expect": []},
)) + "\n"


def test_desktop_eval_tab_runs_a_suite_and_shows_each_task(qloop, fake_server, tmp_path):
    suite = tmp_path / "small.jsonl"
    suite.write_text(SUITE)
    fake_server.script({"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]},
                       {"text": "Hello!"})

    async def go():
        async with open_window(tmp_path, openai_yaml(fake_server.url),
                               interaction=ScriptedInteraction(paths=(suite,))) as window:
            tab = window.eval_page
            window.tabs.setCurrentWidget(tab)
            for mode in ("fallback", "constrained"):
                tab.mode_boxes[mode].setChecked(False)
            click(tab.suite_button)
            await wait_until(lambda: tab.suite_path == suite, what="the suite chosen")
            click(tab.run_button)
            await wait_until(lambda: not tab.busy and tab.summaries, what="the eval")
            assert tab.progress.value() == 2 and tab.progress.maximum() == 2
            row = [tab.summary_table.item(0, c).text() for c in range(tab.summary_table.columnCount())]
            assert row == ["native", "2", "100%", "100%", "100%", "100%", row[-1]] and row[-1].endswith("ms")
            assert [tab.task_table.item(r, 2).text() for r in range(2)] == ["pass", "pass"]
            tab.task_table.selectRow(0)
            details = json.loads(tab.details.toPlainText())
            assert details["id"] == "paris" and details["steps"][0]["calls"][0]["arguments"] == {"city": "Paris"}
            assert "Done: 2 of 2" in tab.status.text()

    run(qloop, go())


def test_desktop_eval_tab_stop_keeps_the_results_so_far(qloop, fake_server, tmp_path):
    """Regression (#22): Stop said the results so far were kept but left the summary empty, the bar counted task
    runs over all modes while "task N of M" counted within a mode, and FAIL looked like pass. The stopped mode
    gets a partial summary row, the bar and the status line count the same runs, verdicts are coloured."""
    suite = tmp_path / "small.jsonl"
    suite.write_text(SUITE)
    call = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'
    fake_server.script({"text": "I cannot check the weather."},  # native paris: no call, FAIL
                       {"text": "Hello!"},  # native hello: pass
                       {"text": call},  # fallback paris: pass
                       {"text": " ".join(["slow"] * 400), "delay_s": 0.05})  # fallback hello: stopped

    async def go():
        async with open_window(tmp_path, openai_yaml(fake_server.url),
                               interaction=ScriptedInteraction(paths=(suite,))) as window:
            tab = window.eval_page
            tab.mode_boxes["constrained"].setChecked(False)
            tab.suite_path = suite
            click(tab.run_button)
            await wait_until(lambda: len(tab.outcomes) == 3, what="three task runs done")
            # The first three replies' chunks are all counted by now; only the fourth request's can add more.
            before = fake_server.chunks_sent()
            await wait_until(lambda: len(fake_server.requests()) == 4 and fake_server.chunks_sent() > before + 1,
                             what="the fourth task run streaming")
            assert (tab.progress.value(), tab.progress.maximum()) == (3, 4)
            assert tab.progress.text() == "3 of 4 task runs done"
            assert tab.status.text() == "Task run 4 of 4: hello in fallback mode"
            click(tab.stop_button)
            assert not tab.busy and tab.run_button.isEnabled()
            assert tab.status.text() == ("Eval stopped after 3 of 4 task runs; the summary of fallback covers the "
                                         "tasks finished so far (partial).")
            assert tab.task_table.rowCount() == 3
            rows = [[tab.summary_table.item(r, c).text() for c in range(4)] for r in range(2)]
            assert rows == [["native", "2", "0%", "0%"], ["fallback (partial)", "1", "100%", "100%"]]
            verdicts = [tab.task_table.item(r, 2) for r in range(3)]
            assert [v.text() for v in verdicts] == ["FAIL", "pass", "pass"]
            palette = tab.task_table.palette()
            assert verdicts[0].foreground().color() == tone("bad", palette) and verdicts[0].font().bold()
            assert verdicts[1].foreground().color() == tone("good", palette)
            await wait_until(lambda: any(e.get("type") == "disconnect" for e in fake_server.log()),
                             what="the request in flight cancelled")

    run(qloop, go())


# Light and dark themes' bases; a mid-grey base (no theme's) leaves no colour but black or white at 4.5:1.
@pytest.mark.parametrize("base", ["#ffffff", "#f0f0f0", "#e0e0e0", "#cfcfcf", "#3c3c3c", "#353535", "#2b2b2b",
                                  "#1e1e1e", "#000000"])
@pytest.mark.parametrize("kind", ["good", "bad"])
def test_desktop_tones_are_readable_on_light_and_dark_palettes(kind, base):
    """PASS/FAIL (and the edit dialogs' errors) are drawn in a colour picked for the palette: at least WCAG AA
    (4.5:1) on light and dark backgrounds alike."""
    palette = QPalette(QColor(base))
    palette.setColor(QPalette.ColorRole.Base, QColor(base))
    assert contrast_ratio(tone(kind, palette), QColor(base)) >= 4.5


def test_desktop_eval_tab_bad_suite_says_why(qloop, fake_server, tmp_path):
    suite = tmp_path / "bad.jsonl"
    suite.write_text('{"id": "x", "prompt": "hi", "tools": []}\n')

    async def go():
        async with open_window(tmp_path, openai_yaml(fake_server.url)) as window:
            tab = window.eval_page
            tab.suite_path = suite
            click(tab.run_button)
            assert not tab.busy and "Cannot read the suite" in tab.status.text() and "bad.jsonl:1: tools" in tab.status.text()

    run(qloop, go())
