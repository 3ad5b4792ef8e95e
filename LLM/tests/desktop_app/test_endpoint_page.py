"""The Endpoint tab against the fake server: the switch serves the window's models on a real port (a request
through the shown URL and token gets the fake's answer, shows as a row, a client and in the inspector), refuses a
missing or replaced token, stops on the switch and with the window, and says why when the port is taken."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
import shiboken6
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QLineEdit

from LLM.core.config import parse_backends
from LLM.core.router import ModelEndpoint
from LLM.core.runtime import Runtime
from LLM.desktop_app.app import build_main_window
from LLM.desktop_app.main_window import MainWindow
from LLM.desktop_app.pages.endpoint_page import EndpointPage, reach_hint
from LLM.tests.desktop_app.harness import ScriptedInteraction, click, openai_yaml, run, wait_until
from LLM.tests.fakes.handle import port_open

ASK = {"model": "fake", "messages": [{"role": "user", "content": "Say hello"}]}
ANSWER = "Hello from the fake server."


@pytest.fixture(autouse=True)
def _own_token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test its own data dir, so the endpoint's token file (made on first use) is never another test's."""
    monkeypatch.setenv("LLM_DATA_DIR", str(tmp_path / "data"))


@asynccontextmanager
async def endpoint_window(tmp_path: Path, server_url: str, *, port: int = 0,
                          interaction: ScriptedInteraction | None = None) -> AsyncIterator[MainWindow]:
    """The real window (as harness.open_window builds it) with its endpoint on ``port`` (0: a free one), showing
    the Endpoint tab."""
    config = tmp_path / "llm_backends.yaml"
    config.write_text(openai_yaml(server_url))
    window = build_main_window(
        config, manager_options={"logs_dir": tmp_path / "logs", "state_dir": tmp_path / "state"},
        interaction=interaction or ScriptedInteraction(), workspace=tmp_path, tools_dir=tmp_path / "no-user-tools",
        history_path=tmp_path / "data" / "history.sqlite3", mcp_config_path=tmp_path / "no-mcp.json",
        endpoint_port=port)
    window.resize(1100, 760)
    window.show()
    window.tabs.setCurrentWidget(window.endpoint_page)
    try:
        yield window
    finally:
        await window.shutdown()
        window.close()
        await asyncio.sleep(0.05)  # let queued signals and callbacks for this window run now
        shiboken6.delete(window)


async def switch_on(page: EndpointPage) -> str:
    click(page.switch)
    await wait_until(lambda: page.endpoint.running and page.switch.isEnabled() and page.connection.isVisible(),
                     what="the endpoint serving")
    return page.url.text()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def request_row(page: EndpointPage, row: int) -> list[str]:
    model = page.requests_model
    return [model.index(row, column).data() for column in range(model.columnCount())]


def client_row(page: EndpointPage, row: int) -> list[str]:
    return [page.clients.item(row, column).text() for column in range(page.clients.columnCount())]


def test_endpoint_page_serves_a_request_and_shows_it(qloop, fake_server, tmp_path):
    async def go():
        async with endpoint_window(tmp_path, fake_server.url) as window:
            page = window.endpoint_page
            assert not page.switch.isChecked() and not page.connection.isVisible()
            url = await switch_on(page)
            assert page.switch.isChecked() and page.problem.isHidden()
            assert url == page.endpoint.url and url.startswith("http://127.0.0.1:") and url.endswith("/v1")
            assert page.token.echoMode() is QLineEdit.EchoMode.Password and page.token.text() == page.endpoint.token()
            assert "only this machine can connect" in page.hint.text()
            click(page.copy_url)
            assert QGuiApplication.clipboard().text() == url
            click(page.show_token)
            assert page.token.echoMode() is QLineEdit.EchoMode.Normal and page.show_token.text() == "Hide"

            async with httpx.AsyncClient(timeout=30) as http:
                reply = await http.post(f"{url}/chat/completions", json=ASK, headers=bearer(page.token.text()))
                assert reply.status_code == 200, reply.text
                assert reply.json()["choices"][0]["message"]["content"] == ANSWER
                refused = await http.post(f"{url}/chat/completions", json=ASK)
                assert refused.status_code == 401

            # The answer may reach the client before the endpoint records it as finished: wait for the redraw.
            # The refused request is listed too (newest first): an app with a wrong key shows up here.
            await wait_until(lambda: page.requests_model.rowCount() == 2 and page.clients.rowCount() == 1
                             and client_row(page, 0)[3] == "0", what="the requests and their client listed, done")
            refused_row, row = request_row(page, 0), request_row(page, 1)
            assert refused_row[4] == "401"
            assert row[1].startswith("127.0.0.1:") and row[2:6] == ["fake", "/v1/chat/completions", "200",
                                                                     row[5]] and row[5].endswith(" ms")
            address, agent, requests, in_flight, _seen, last_model = client_row(page, 0)
            assert (address, requests, in_flight, last_model) == ("127.0.0.1", "2", "0", "fake")
            assert agent.startswith("python-httpx/")

            page.requests.selectRow(0)
            assert "bearer token is required" in page.inspector.error.text()
            page.requests.selectRow(1)
            assert json.loads(page.inspector.request_view.toPlainText()) == ASK
            assert ANSWER in page.inspector.response_view.toPlainText()
            assert "POST /v1/chat/completions" in page.inspector.summary.text()
            assert page.inspector.cut_note.isHidden() and page.inspector.error.isHidden()

    run(qloop, go())


def test_endpoint_page_a_streamed_request_shows_in_flight_then_done(qloop, fake_server, tmp_path):
    """The row shows "…" while the answer streams and changes in place when it ends, the selection kept on it."""
    fake_server.script({"chunks": ["one ", "two ", "three ", "four"], "delay_s": 0.4})

    async def go():
        async with endpoint_window(tmp_path, fake_server.url) as window:
            page = window.endpoint_page
            url = await switch_on(page)

            async def ask() -> str:
                async with httpx.AsyncClient(timeout=30) as http:
                    async with http.stream("POST", f"{url}/chat/completions", json={**ASK, "stream": True},
                                           headers=bearer(page.token.text())) as reply:
                        return (await reply.aread()).decode()

            asking = asyncio.ensure_future(ask())
            await wait_until(lambda: page.requests_model.rowCount() == 1, what="the request listed")
            assert request_row(page, 0)[4].startswith("…") and request_row(page, 0)[5] == "…"
            assert client_row(page, 0)[3] == "1"  # in flight
            page.requests.selectRow(0)
            streamed = await asyncio.wait_for(asking, 30)
            await wait_until(lambda: request_row(page, 0)[4] == "200" and client_row(page, 0)[3] == "0",
                             what="the row and the client finished")
            assert request_row(page, 0)[6] == "streamed"
            assert page.selected_record() is page.requests_model.record(0)
            assert json.loads(page.inspector.request_view.toPlainText())["stream"] is True
            assert "data: " in streamed
            # The answer folded from its events comes first, the stream as sent below it.
            shown = page.inspector.response_view.toPlainText()
            assert shown.startswith("one two three four\n") and "--- the stream as sent ---\ndata: " in shown

    run(qloop, go())


def test_endpoint_page_switch_off_closes_the_port(qloop, fake_server, tmp_path):
    async def go():
        async with endpoint_window(tmp_path, fake_server.url) as window:
            page = window.endpoint_page
            await switch_on(page)
            port = page.endpoint.port
            assert port_open(port)
            click(page.switch)
            await wait_until(lambda: not page.endpoint.running and page.switch.isEnabled(), what="the endpoint off")
            assert not page.switch.isChecked() and not page.connection.isVisible()
            assert not port_open(port)
            assert page.state.text().startswith("Off")

    run(qloop, go())


def test_endpoint_page_a_taken_port_is_said_inline_and_the_switch_goes_off(qloop, fake_server, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]

        async def go():
            async with endpoint_window(tmp_path, fake_server.url, port=port) as window:
                page = window.endpoint_page
                click(page.switch)
                await wait_until(lambda: page.problem.isVisible() and page.switch.isEnabled(), what="the error")
                assert not page.switch.isChecked() and not page.endpoint.running
                assert not page.connection.isVisible()
                text = page.problem.text()
                assert f"port {port}" in text and "taken" in text and "\n" not in text

        run(qloop, go())


def test_endpoint_page_new_token_refuses_the_old_one(qloop, fake_server, tmp_path):
    """New token… asks first (kept when declined); once confirmed the old token gets 401 and the new one works."""
    interaction = ScriptedInteraction(new_tokens=(False, True))

    async def go():
        async with endpoint_window(tmp_path, fake_server.url, interaction=interaction) as window:
            page = window.endpoint_page
            url = await switch_on(page)
            old = page.token.text()
            click(page.new_token)
            await wait_until(lambda: len(interaction.questions) == 1 and page.new_token.isEnabled(),
                             what="the declined question")
            assert page.token.text() == old
            click(page.new_token)
            await wait_until(lambda: page.token.text() != old, what="the new token shown")
            new = page.token.text()
            assert interaction.questions == [("new_token", "", "")] * 2 and new == page.endpoint.token()
            async with httpx.AsyncClient(timeout=30) as http:
                assert (await http.get(f"{url}/models", headers=bearer(old))).status_code == 401
                listed = await http.get(f"{url}/models", headers=bearer(new))
                assert listed.status_code == 200 and [m["id"] for m in listed.json()["data"]] == ["fake"]

    run(qloop, go())


def test_endpoint_page_closing_the_window_stops_the_endpoint(qloop, fake_server, tmp_path):
    async def go():
        async with endpoint_window(tmp_path, fake_server.url) as window:
            page = window.endpoint_page
            await switch_on(page)
            port = page.endpoint.port
            window.close()
            await asyncio.wait_for(window.wait_closed(), 30)
            assert not page.endpoint.running and not port_open(port)

    run(qloop, go())


def test_endpoint_page_redraws_once_for_a_burst_of_requests(qloop, fake_server, tmp_path):
    """A burst of requests starting and ending (here 300, told to the page as the endpoint tells it) costs one
    redraw, not one per event; the table keeps the newest first."""
    async def go():
        async with endpoint_window(tmp_path, fake_server.url) as window:
            page = window.endpoint_page
            activity = page.endpoint.activity
            before = page.redraws
            for n in range(300):
                record = activity.begin(f"127.0.0.1:{40000 + n}", "burst/1.0", "POST", "/v1/chat/completions")
                activity.finish(record, 200)
            assert page.redraws == before  # nothing drawn per event
            await wait_until(lambda: page.redraws > before, what="the redraw")
            assert page.redraws == before + 1
            assert page.requests_model.rowCount() == len(activity.recent())
            assert page.requests_model.record(0).id == activity.recent()[-1].id
            assert client_row(page, 0)[:3] == ["127.0.0.1", "burst/1.0", str(len(activity.recent()))]

    run(qloop, go())


@pytest.mark.parametrize("host, says", [
    pytest.param("127.0.0.1", "only this machine", id="loopback"),
    pytest.param("::1", "only this machine", id="ipv6-loopback"),
    pytest.param("localhost", "only this machine", id="localhost"),
    pytest.param("0.0.0.0", "other machines", id="every-address"),
    pytest.param("192.168.1.20", "other machines", id="a-lan-address"),
])
def test_endpoint_page_hint_says_who_can_connect(host, says):
    config = parse_backends("models:\n  a:\n    server_url: http://127.0.0.1:1/v1\n", strict=True)
    endpoint = ModelEndpoint(Runtime(config), host=host)
    assert says in reach_hint(host, endpoint.local_only)
