"""The MCP manager against the fake MCP server: in-process for the units, over stdio and HTTP for the rest."""

from __future__ import annotations

import asyncio
import json
import re
import sys

import pytest

from LLM.core.errors import McpConnectionError, McpToolCallError
from LLM.core.mcp import McpManager, McpState, parse_mcp_config
from LLM.core.tools.registry import ToolRegistry, execute, tool
from LLM.tests.fakes.handle import async_wait_until
from LLM.core.servers.process import pid_alive
from LLM.tests.fakes.mcp_handle import McpHttpServer, stdio_entry, write_mcp_json

pytest.importorskip("mcp", reason="the MCP SDK (pip install '.[mcp]') is not installed")
from LLM.tests.fakes.mcp_server import build_server  # noqa: E402 (needs the SDK)


def manager_for(tmp_path, servers: dict, in_process: dict | None = None, **options) -> tuple[McpManager, ToolRegistry]:
    path = write_mcp_json(tmp_path / "mcp.json", servers)
    manager = McpManager(parse_mcp_config(path.read_text(), str(path)), logs_dir=tmp_path / "logs",
                         in_process=in_process, **options)
    registry = ToolRegistry()
    manager.attach(registry)
    return manager, registry


def run(coro, timeout: float = 60):
    return asyncio.run(asyncio.wait_for(coro, timeout))


def in_process(tmp_path, *names: str):
    servers = {name: {"command": "in-process"} for name in names}
    return manager_for(tmp_path, servers, {name: build_server(name) for name in names})


# ----- in-process: the units -----
def test_mcp_manager_lists_prefixed_tools_into_the_registry(tmp_path):
    async def go():
        manager, registry = in_process(tmp_path, "fake")
        events = []
        manager.add_listener(events.append)
        try:
            await manager.start_all(wait=True)
            names = registry.names()
            assert names[:3] == ["fake__add", "fake__slow_echo", "fake__boom"]
            add = registry.get("fake__add")
            assert add.server == "fake" and add.needs_approval and add.description == "Add two integers."
            assert add.parameters["required"] == ["a", "b"] and add.parameters["type"] == "object"
            assert [e.status.state for e in events] == [McpState.STARTING, McpState.READY]
            result = await execute(add, {"a": 2, "b": 3})
            assert (result.ok, result.output) == (True, "5")
        finally:
            await manager.aclose()
        assert registry.names() == [] and manager.status("fake").state is McpState.STOPPED

    run(go())


def test_mcp_manager_error_result_becomes_an_error_for_the_model(tmp_path):
    async def go():
        manager, registry = in_process(tmp_path, "fake")
        try:
            await manager.start_all(wait=True)
            raw = await manager.call("fake", "boom", {"message": "disk on fire"})
            assert not raw.ok and raw.text.endswith("disk on fire")
            result = await execute(registry.get("fake__boom"), {"message": "disk on fire"})
            assert not result.ok and "disk on fire" in result.error
            with pytest.raises(McpToolCallError):
                await manager.call_text("fake", "boom", {})
        finally:
            await manager.aclose()

    run(go())


def test_mcp_manager_collisions_are_resolved_and_reported(tmp_path):
    async def go():
        manager, registry = in_process(tmp_path, "a.b", "a_b")
        try:
            await manager.start_all(wait=True)
            assert registry.get("a_b__add").server == "a_b" and registry.get("a_b_2__add").server == "a.b"
            assert any("a_b_2__" in c and "'a.b'" in c for c in manager.collisions)
            assert (await execute(registry.get("a_b_2__add"), {"a": 1, "b": 1})).output == "2"
        finally:
            await manager.aclose()

    run(go())


def _owners(manager, registry) -> dict[str, tuple[str, str]]:
    """function name -> (server, the server's tool) for every MCP tool in the registry."""
    specs = {spec.name: (spec.server, spec.tool) for spec in manager.tool_specs()}
    return {t.name: specs[t.name] for t in registry if t.server is not None}


@pytest.mark.parametrize("first, second", [("x.y", "x_y"), ("x_y", "x.y")], ids=["x.y-first", "x_y-first"])
def test_mcp_names_do_not_depend_on_which_server_became_ready_first(tmp_path, first, second):
    """Regression (#19 item 3): with servers `x.y` and `x_y` (whose names sanitise alike), `x_y__add` named the tool
    of whichever server was ready, and moved to the other server's tool once that one started."""
    async def go():
        manager, registry = manager_for(tmp_path, {"x.y": stdio_entry(), "x_y": stdio_entry()})
        try:
            manager.start(first)
            await manager.ensure_started([first])
            alone = _owners(manager, registry)
            manager.start(second)
            await manager.ensure_started([second])
            both = _owners(manager, registry)
            assert alone and all(both[name] == owner for name, owner in alone.items()), "a name moved"
            return both
        finally:
            await manager.aclose()

    both = run(go())
    assert both["x_y__add"] == ("x_y", "add") and both["x_y_2__add"] == ("x.y", "add")
    assert len(both) == 14


def test_mcp_secrets_in_args_and_url_are_never_shown_or_logged(tmp_path, monkeypatch):
    """Regression (#19 item 2): a ${env:NAME} value in `args` or `url` was expanded into the target that
    `llmctl mcp list` and the panel show and into the server's log, which was created 0644."""
    monkeypatch.setenv("MCP_SECRET", "s3cr3t-value-42")
    http = McpHttpServer().wait_ready()
    logs = tmp_path / "logs"
    logs.mkdir()
    old_log = logs / "mcp-local.log"
    old_log.write_text("an older run\n")
    old_log.chmod(0o644)
    try:
        async def go():
            # Python ignores unknown -X options: the secret rides on the command line, as a key would.
            local = stdio_entry(args=["-X", "token=${env:MCP_SECRET}", "-m", "LLM.tests.fakes.mcp_server"])
            url = http.url.replace("http://", "http://me:${env:MCP_SECRET}@") + "?token=${env:MCP_SECRET}&v=1"
            manager, _ = manager_for(tmp_path, {"local": local, "remote": {"url": url, "timeout": 10}})
            try:
                await manager.start_all(wait=True)
                statuses = {s.name: s for s in manager.statuses()}
                assert [s.state for s in statuses.values()] == [McpState.READY] * 2, statuses
                assert manager.connection("local").config.args[1] == "token=s3cr3t-value-42"  # launched expanded
                return statuses
            finally:
                await manager.aclose()

        statuses = run(go())
    finally:
        http.stop()
    assert "-X token=${env:MCP_SECRET} -m" in statuses["local"].target
    assert statuses["remote"].target == http.url.replace("http://", "http://me:***@") + "?token=***&v=***"
    assert not any("s3cr3t" in repr(status) for status in statuses.values())
    text = old_log.read_text()
    assert "an older run" in text and "token=${env:MCP_SECRET}" in text and "s3cr3t" not in text
    assert old_log.stat().st_mode & 0o777 == 0o600


def test_mcp_manager_local_tool_names_win(tmp_path):
    @tool(name="fake__add")
    def local(a: int, b: int) -> int:
        """A local tool that happens to have the name."""
        return 0

    async def go():
        manager, registry = in_process(tmp_path, "fake")
        registry.register(local)
        try:
            await manager.start_all(wait=True)
            assert registry.get("fake__add") is local and registry.get("fake__add_2").server == "fake"
        finally:
            await manager.aclose()

    run(go())


def test_mcp_manager_list_changed_refreshes_the_tools(tmp_path):
    async def go():
        manager, registry = in_process(tmp_path, "fake")
        try:
            await manager.start_all(wait=True)
            assert "fake__sprout" not in registry
            assert (await manager.call("fake", "grow", {"name": "sprout"})).text == "added sprout"
            await async_wait_until(lambda: "fake__sprout" in registry, 10, "the grown tool")
            assert (await execute(registry.get("fake__sprout"), {})).output == "sprout says hi"
        finally:
            await manager.aclose()

    run(go())


def test_mcp_manager_always_allow_and_disabled_tools_are_saved(tmp_path):
    async def go():
        manager, registry = in_process(tmp_path, "fake")
        try:
            await manager.start_all(wait=True)
            manager.always_allow("fake", "add")
            assert not registry.get("fake__add").needs_approval
            manager.set_tool_enabled("fake", "crash", False)
            assert "fake__crash" not in registry
            saved = json.loads((tmp_path / "mcp.json").read_text())["mcpServers"]["fake"]
            assert saved["autoApprove"] == ["add"] and saved["disabledTools"] == ["crash"]
            manager.set_tool_enabled("fake", "crash", True)
            assert "fake__crash" in registry
        finally:
            await manager.aclose()

    run(go())


# ----- over stdio -----
def test_mcp_stdio_call_timeout_and_failed_server_beside_a_good_one(tmp_path):
    async def go():
        manager, registry = manager_for(tmp_path, {"fake": stdio_entry(timeout=1.5),
                                                   "broken": stdio_entry("--exit-at-start")})
        try:
            await manager.start_all(wait=True)
            broken = manager.status("broken")
            assert broken.state is McpState.FAILED and "exited before it was ready" in broken.error
            assert "cannot start: no such database" in "\n".join(broken.stderr_tail)
            assert manager.status("fake").state is McpState.READY
            assert (await execute(registry.get("fake__add"), {"a": 40, "b": 2})).output == "42"
            slow = await execute(registry.get("fake__slow_echo"), {"text": "hi", "seconds": 10})
            assert not slow.ok and "did not answer within 1.5 s" in slow.error
            # The connection survives a timed-out call.
            assert (await manager.call("fake", "add", {"a": 1, "b": 1})).text == "2"
        finally:
            await manager.aclose()

    run(go())


def test_mcp_stdio_crash_is_an_error_result_then_the_server_respawns(tmp_path):
    async def go():
        manager, registry = manager_for(tmp_path, {"fake": stdio_entry()}, respawn_backoff_s=(0.05,))
        try:
            await manager.start_all(wait=True)
            first_pid = _pid(manager.status("fake").stderr_tail)
            crashed = await execute(registry.get("fake__crash"), {})
            assert not crashed.ok and "closed the connection" in crashed.error
            await async_wait_until(lambda: manager.status("fake").restarts == 1
                                   and manager.status("fake").state is McpState.READY, 30, "the respawn")
            assert _pid(manager.status("fake").stderr_tail) != first_pid
            assert (await execute(registry.get("fake__add"), {"a": 1, "b": 2})).output == "3"
        finally:
            await manager.aclose()

    run(go())


def test_mcp_stdio_fourth_crash_in_a_minute_leaves_it_failed(tmp_path):
    async def go():
        manager, registry = manager_for(tmp_path, {"fake": stdio_entry()}, respawn_backoff_s=(0.01,))
        try:
            await manager.start_all(wait=True)
            for crash in range(4):
                await async_wait_until(lambda: manager.status("fake").state is McpState.READY, 30, "ready")
                with pytest.raises(McpConnectionError):
                    await manager.call("fake", "crash", {})
                await async_wait_until(lambda: manager.status("fake").state is not McpState.READY, 10, "the crash")
            await async_wait_until(lambda: manager.status("fake").state is McpState.FAILED, 10, "failed")
            assert "crashed 4 times" in manager.status("fake").detail
            assert registry.names() == []
            with pytest.raises(McpConnectionError, match="is failed"):
                await manager.call("fake", "add", {"a": 1, "b": 1})
        finally:
            await manager.aclose()

    run(go(), timeout=120)


def test_mcp_stdio_our_environment_never_reaches_the_server(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-ours")
    monkeypatch.setenv("GIVEN_TOKEN", "meant-for-it")

    async def go():
        entry = stdio_entry(env={"PASSED": "${env:GIVEN_TOKEN}"})
        manager, _ = manager_for(tmp_path, {"fake": entry})
        try:
            await manager.start_all(wait=True)
            assert (await manager.call("fake", "env", {"variable": "OPENAI_API_KEY"})).text == "<unset>"
            assert (await manager.call("fake", "env", {"variable": "GIVEN_TOKEN"})).text == "<unset>"
            assert (await manager.call("fake", "env", {"variable": "PASSED"})).text == "meant-for-it"
        finally:
            await manager.aclose()

    run(go())


def test_mcp_stdio_close_stops_every_server_process_in_parallel(tmp_path):
    async def go():
        manager, _ = manager_for(tmp_path, {f"s{i}": stdio_entry() for i in range(3)})
        await manager.start_all(wait=True)
        pids = [_pid(manager.status(f"s{i}").stderr_tail) for i in range(3)]
        assert all(pid_alive(p) for p in pids)
        loop = asyncio.get_running_loop()
        started = loop.time()
        await manager.aclose(budget_s=5)
        # Closing honours its budget; the slack only absorbs a loaded machine.
        assert loop.time() - started < 5 + 10
        return pids

    pids = run(go())
    assert not any(pid_alive(p) for p in pids)


@pytest.mark.parametrize("sse", [False, True], ids=["streamable-http", "sse"])
def test_mcp_http_server_on_a_free_loopback_port(tmp_path, sse):
    server = McpHttpServer(sse=sse).wait_ready()
    try:
        async def go():
            manager, registry = manager_for(tmp_path, {"remote": {"url": server.url, "timeout": 10}})
            try:
                await manager.start_all(wait=True)
                status = manager.status("remote")
                assert status.state is McpState.READY, status
                assert status.transport == ("sse" if sse else "http")
                assert (await execute(registry.get("remote__add"), {"a": 7, "b": 8})).output == "15"
            finally:
                await manager.aclose()

        run(go())
    finally:
        server.stop()


def _pid(stderr_tail) -> int:
    for line in stderr_tail:
        found = re.search(r"\(pid (\d+)\)", line)
        if found:
            return int(found.group(1))
    raise AssertionError(f"no pid in {stderr_tail}")


def test_mcp_stop_during_a_start_does_not_wait_for_the_start(tmp_path):
    """Disabling or restarting a server that is still starting (say, npx downloading) must not hang."""
    hang = {"command": sys.executable, "args": ["-c", "import time; time.sleep(60)"], "timeout": 60}

    async def go():
        manager, _ = manager_for(tmp_path, {"slow": hang})
        await manager.start_all()
        await async_wait_until(lambda: manager.status("slow").state is McpState.STARTING, 10, "starting")
        loop = asyncio.get_running_loop()
        started = loop.time()
        await manager.stop("slow")
        # Not the start's own 60 s: a generous bound that only a stop waiting for the start would pass.
        assert manager.status("slow").state is McpState.STOPPED and loop.time() - started < 40
        await manager.aclose()

    run(go())


def test_mcp_stdio_list_changed_over_a_real_pipe(tmp_path):
    async def go():
        manager, registry = manager_for(tmp_path, {"fake": stdio_entry()})
        events = []
        manager.add_listener(events.append)
        try:
            await manager.start_all(wait=True)
            await manager.call("fake", "grow", {"name": "sprout"})
            await async_wait_until(lambda: "fake__sprout" in registry, 10, "the grown tool")
            assert any(e.kind == "tools" for e in events)
            assert (await manager.call("fake", "sprout", {})).text == "sprout says hi"
        finally:
            await manager.aclose()

    run(go())


def test_mcp_reload_restarts_changed_starts_new_stops_removed(tmp_path):
    async def go():
        manager, registry = manager_for(tmp_path, {"a": stdio_entry(), "b": stdio_entry(), "c": stdio_entry()})
        try:
            await manager.start_all(wait=True)
            a_conn, b_pid = manager.connection("a"), _pid(manager.status("b").stderr_tail)
            write_mcp_json(tmp_path / "mcp.json", {
                "a": stdio_entry(autoApprove=["add"]),  # approval only: no restart
                "b": stdio_entry("--name", "b2"),  # a new command line: restarts
                "d": stdio_entry(),  # new: starts
            })  # c removed: stops
            touched = await manager.reload()
            assert sorted(touched) == ["b", "c", "d"]
            assert manager.connection("a") is a_conn and not registry.get("a__add").needs_approval
            await manager.ensure_started()
            assert [s.state for s in manager.statuses()] == [McpState.READY] * 3 and manager.names() == ["a", "b", "d"]
            assert _pid(manager.status("b").stderr_tail) != b_pid and not pid_alive(b_pid)
            assert "c__add" not in registry and "d__add" in registry

            (tmp_path / "mcp.json").write_text("{broken")
            assert await manager.reload() == [] and "not valid JSON" in manager.config_problem
            assert manager.names() == ["a", "b", "d"]
        finally:
            await manager.aclose()

    run(go(), timeout=120)


def test_mcp_sdk_is_not_imported_until_a_server_starts(tmp_path):
    """The SDK costs about 0.6 s to import: loading mcp.json, a disabled server and the tool registry must not."""
    import subprocess

    from LLM.tests.fakes.handle import REPO_ROOT

    path = write_mcp_json(tmp_path / "mcp.json", {"off": stdio_entry(disabled=True)})
    code = ("import asyncio, sys\n"
            "from LLM.core.mcp import McpManager\n"
            "from LLM.core.tools.registry import ToolRegistry\n"
            "async def main():\n"
            f"    m = McpManager.from_path({str(path)!r})\n"
            "    m.attach(ToolRegistry())\n"
            "    await m.start_all(wait=True)\n"
            "    print('before', 'mcp' in sys.modules)\n"
            "    m.start('off')\n"
            "    await m.connection('off').wait_settled(30)\n"
            "    print('after', 'mcp' in sys.modules, m.status('off').state.value)\n"
            "    await m.aclose()\n"
            "asyncio.run(main())\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=REPO_ROOT)
    assert out.stdout.split() == ["before", "False", "after", "True", "ready"], out.stderr
