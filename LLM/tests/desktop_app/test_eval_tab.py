"""The Tool eval tab against the fake server: progress, the per-mode table, each task's exchange, Stop."""

from __future__ import annotations

import json

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
    suite = tmp_path / "small.jsonl"
    suite.write_text(SUITE)
    fake_server.script({"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]},
                       {"text": " ".join(["slow"] * 400), "delay_s": 0.05})

    async def go():
        async with open_window(tmp_path, openai_yaml(fake_server.url),
                               interaction=ScriptedInteraction(paths=(suite,))) as window:
            tab = window.eval_page
            tab.mode_boxes["fallback"].setChecked(False)
            tab.mode_boxes["constrained"].setChecked(False)
            tab.suite_path = suite
            click(tab.run_button)
            await wait_until(lambda: len(tab.outcomes) == 1 and fake_server.chunks_sent() > 3, what="task 2 streaming")
            click(tab.stop_button)
            assert not tab.busy and tab.run_button.isEnabled()
            assert "stopped after 1 task runs" in tab.status.text() and tab.task_table.rowCount() == 1
            await wait_until(lambda: any(e.get("type") == "disconnect" for e in fake_server.log()),
                             what="the request in flight cancelled")

    run(qloop, go())


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
