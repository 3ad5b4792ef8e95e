"""Failures in plain words (#22): one sentence naming the model and the cause, the log one click away, the header
never growing; remote models probed when chosen; a server's own error message first."""

from __future__ import annotations

import asyncio
import sys

from PySide6.QtWidgets import QPushButton, QWidget

from LLM.desktop_app.widgets.log_viewer import LogViewer
from LLM.desktop_app.widgets.server_status import ReasonLabel
from LLM.tests.desktop_app.harness import (
    click,
    fake_launcher,
    last_answer,
    open_window,
    openai_yaml,
    page,
    run,
    select_model,
    server_status,
    settle,
    transcript,
    type_and_send,
    wait_until,
)
from LLM.tests.fakes.handle import free_port

BAD_FLAG = "--definitely-not-a-flag"


def two_engines_yaml(good_port: int, bad_port: int) -> str:
    lines = ["models:"]
    for model_id, port in (("good", good_port), ("bad", bad_port)):
        lines += [f"  {model_id}:", "    base_model: fake.gguf", "    share_server: false", f"    port: {port}",
                  "    model_name: fake-model", f'    display_name: "Fake engine {model_id}"',
                  "    startup_timeout_s: 20"]
    return "\n".join(lines) + "\n"


def bad_flag_launcher(entry):
    """The fake engine; the entry "bad" exits as llama-server does on an option it does not know (a bad extra_args):
    its one error line, measured, then exit status 1."""
    spec = fake_launcher()(entry)
    if entry.id != "bad":
        return spec
    argv = [sys.executable, "-c", f"import sys; print('error: invalid argument: {BAD_FLAG}'); sys.exit(1)"]
    return type(spec)(spec.engine, argv, spec.readiness, spec.served_model_name, None, spec.env)


def reason(window) -> ReasonLabel:
    return window.findChild(QWidget, "serverStatus").findChild(ReasonLabel, "serverStatusReason")


def test_failures_a_failed_start_is_one_sentence_the_log_behind_show_log_and_the_header_keeps_its_height(
        qloop, tmp_path):
    """Regression (#22): a failed start filled the header with ~30 log lines under the class name, which pushed
    the page down, and the answer said "will be restarted when you send", which cannot fix a bad option."""
    expected = (f"Fake engine bad could not start: llama-server does not know the option {BAD_FLAG}; fix extra_args "
                "in llm_backends.yaml.")

    async def go():
        async with open_window(tmp_path, two_engines_yaml(free_port(), free_port()), launcher=bad_flag_launcher,
                               initial_model="good") as window:
            window.resize(1000, 700)
            header = window.findChild(QWidget, "header")
            await wait_until(lambda: server_status(window) == "ready", timeout=60, what="good ready")
            await settle()  # let the layout settle at 1000x700
            height = header.height()
            select_model(window, "bad")
            await wait_until(lambda: server_status(window) == "failed", timeout=60, what="bad failed")
            await wait_until(lambda: reason(window).isVisible(), what="reason shown")
            assert reason(window).full_text == expected
            assert reason(window).text().count("\n") <= 1  # at most two lines, however long the sentence
            assert header.height() == height, "the header changed height on a failed start"

            # The log lines are one click away, in the log viewer.
            log_button = window.findChild(QPushButton, "openLogButton")
            assert log_button.isVisible() and log_button.text() == "Show log"
            click(log_button)
            viewer = await wait_until(lambda: window.findChild(LogViewer), what="log viewer")
            await wait_until(lambda: "invalid argument" in viewer.view.toPlainText(), what="log tail")
            viewer.close()

            # Sending tries again and fails the same way: the answer card and the footer say the same sentence.
            chat = page(window)
            type_and_send(chat, "Hello?")
            await wait_until(lambda: chat.conversation.messages and last_answer(chat).status == "failed",
                             timeout=60, what="answer failed")
            assert last_answer(chat).error == expected
            await wait_until(lambda: expected in transcript(chat).plain_text(), what="card")
            assert header.height() == height

    run(qloop, go())


def test_failures_a_remote_model_where_nothing_listens_says_not_reachable(qloop, tmp_path):
    """Regression (#22): a `backend: openai` model looked healthy while nothing listened at its address."""
    url = f"http://127.0.0.1:{free_port()}"

    async def go():
        async with open_window(tmp_path, openai_yaml(url)) as window:
            await wait_until(lambda: server_status(window) == "unreachable", timeout=15, what="probe answered")
            assert reason(window).full_text == f"Not reachable: nothing listens at {url}/v1"
            assert window.findChild(QPushButton, "retryButton").isVisible()  # check again

    run(qloop, go())


def test_failures_a_fixed_server_url_is_probed_again_on_reload(qloop, fake_server, tmp_path):
    """Review of #22: after the natural fix for "nothing listens" (a new server_url in the yaml), the old verdict
    stayed in the header; and a slow probe begun before must never overwrite the newer one."""
    dead = f"http://127.0.0.1:{free_port()}"

    async def go():
        async with open_window(tmp_path, openai_yaml(dead)) as window:
            await wait_until(lambda: server_status(window) == "unreachable", timeout=15, what="first probe")
            (tmp_path / "llm_backends.yaml").write_text(openai_yaml(fake_server.url))
            await window.reload_config()
            status = window.findChild(QWidget, "serverStatus")
            await wait_until(lambda: "Reachable" in status.detail.text(), timeout=15, what="the new address probed")
            assert server_status(window) == "external" and not reason(window).isVisible()

    run(qloop, go())


def test_failures_a_reachable_remote_model_says_so(qloop, fake_server, tmp_path):
    async def go():
        async with open_window(tmp_path, openai_yaml(fake_server.url)) as window:
            status = window.findChild(QWidget, "serverStatus")
            await wait_until(lambda: "Reachable" in status.detail.text(), timeout=15, what="probe answered")
            assert server_status(window) == "external" and not reason(window).isVisible()

    run(qloop, go())


def test_failures_an_http_error_leads_with_the_servers_own_message(qloop, fake_server, tmp_path):
    """Regression (#22): a failed answer read "BackendStatusError: HTTP 400 from …: {"error": {…}}"."""
    fake_server.script({"status": 400, "body": {"error": {"message": "the key has expired", "type": "auth"}}})

    async def go():
        async with open_window(tmp_path, openai_yaml(fake_server.url)) as window:
            chat = page(window)
            type_and_send(chat, "Hi")
            await wait_until(lambda: chat.conversation.messages and last_answer(chat).status == "failed",
                             what="answer failed")
            error = last_answer(chat).error
            assert error.startswith("The key has expired (HTTP 400 from ")
            assert "Error" not in error and "{" not in error
            # The card shows the same sentence (the footer is cleared when an answer ends: the card holds it).
            await wait_until(lambda: error in transcript(chat).plain_text(), what="card")
            assert "BackendStatusError" not in transcript(chat).plain_text()

    run(qloop, go())
