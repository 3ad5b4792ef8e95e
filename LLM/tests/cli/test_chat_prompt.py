"""llmctl chat at its `you>` prompt on a real terminal: a pseudo-terminal drives it as a user's keyboard does."""

from __future__ import annotations

import fcntl
import os
import select
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

from LLM.tests.fakes.handle import REPO_ROOT, FakeServerHandle, wait_until
from LLM.tests.cli.harness import write_config

PROMPT = b"you> "


class Terminal:
    """``llmctl`` with a pty as its controlling terminal: bytes written are keystrokes (\\x03 is Ctrl-C, sent
    as SIGINT by the terminal itself), and everything it prints is collected."""

    def __init__(self, config: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.master, slave = os.openpty()
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "LLM_STATE_DIR": str(config.parent / "state"),
               "LLM_DATA_DIR": str(config.parent / "data"), "XDG_CONFIG_HOME": str(config.parent / "xdg"),
               "TERM": "dumb", **(env or {})}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "LLM", "--config", str(config), *args], stdin=slave, stdout=slave,
            stderr=slave, env=env, start_new_session=True, preexec_fn=_take_terminal, close_fds=True,
        )
        os.close(slave)
        self.output = b""

    def type(self, keys: bytes) -> None:
        os.write(self.master, keys)

    def expect(self, text: bytes, count: int = 1, timeout: float = 30) -> None:
        """Read until ``text`` has been printed ``count`` times in all (a deadline only catches a hang)."""
        deadline = time.monotonic() + timeout
        while self.output.count(text) < count:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"timed out waiting for {count} x {text!r}; the terminal shows:\n"
                                     f"{self.output.decode(errors='replace')}")
            if select.select([self.master], [], [], left)[0]:
                try:
                    self.output += os.read(self.master, 4096)
                except OSError:  # the other end closed: llmctl exited
                    raise AssertionError(f"llmctl exited while waiting for {text!r}:\n"
                                         f"{self.output.decode(errors='replace')}") from None

    def wait(self, timeout: float = 30) -> int:
        try:
            return self.process.wait(timeout)
        finally:
            self.close()

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        try:
            os.close(self.master)
        except OSError:
            pass


def _take_terminal() -> None:
    """In the child, a new session's leader: make the pty its controlling terminal (then Ctrl-C reaches it)."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


@pytest.fixture
def chat(fake_server: FakeServerHandle, tmp_path: Path):
    terminal = Terminal(write_config(tmp_path, fake_server), "chat", "-m", "fake")
    try:
        terminal.expect(PROMPT)
        yield terminal
    finally:
        terminal.close()


def test_chat_ctrl_c_at_the_prompt_clears_the_line_and_prompts_again(chat: Terminal, fake_server: FakeServerHandle):
    """Regression (#19 item 7): Ctrl-C at `you>` printed nothing, swallowed the next line and exited 130:
    the line was read in a thread, which never sees the signal, and the signal ended the whole chat. The
    half-typed line is dropped, a fresh prompt shows, and the next line is read whole."""
    fake_server.script({"text": "first answer"}, {"text": "second answer"})
    chat.type(b"half a line")
    chat.expect(b"half a line")
    chat.type(b"\x03")
    chat.expect(PROMPT, count=2)
    chat.type(b"hello\n")
    chat.expect(b"first answer")
    chat.expect(PROMPT, count=3)
    chat.type(b"\x03")  # on an empty line too
    chat.expect(PROMPT, count=4)
    chat.type(b"and again\n")
    chat.expect(b"second answer")
    chat.expect(PROMPT, count=5)
    chat.type(b"/exit\n")
    assert chat.wait() == 0, chat.output.decode(errors="replace")
    sent = [r["body"]["messages"][-1]["content"] for r in fake_server.requests()]
    assert sent == ["hello", "and again"]


def test_chat_ctrl_c_while_an_answer_streams_stops_only_the_answer(chat: Terminal, fake_server: FakeServerHandle):
    fake_server.script({"text": "slow " * 500, "delay_s": 0.05}, {"text": "next answer"})
    chat.type(b"tell me a long story\n")
    wait_until(lambda: fake_server.chunks_sent() >= 3, 20, "a few chunks streamed")
    chat.type(b"\x03")
    chat.expect(b"[cancelled]")
    chat.expect(PROMPT, count=2)
    chat.type(b"more?\n")
    chat.expect(b"next answer")
    chat.expect(PROMPT, count=3)
    chat.type(b"\x04")  # Ctrl-D on an empty line: the end of input quits
    assert chat.wait() == 0, chat.output.decode(errors="replace")


def test_run_tools_ctrl_c_at_the_approval_question_stops_the_run(fake_server: FakeServerHandle, tmp_path: Path):
    """Regression (#19 item 7's cause, at `llmctl run --tools`): Ctrl-C at the `[approve] ... [y/N]` question
    stopped the run, but the question was read by input() in an executor thread that asyncio.run then waited
    for, so llmctl hung until Enter was pressed."""
    pytest.importorskip("mcp", reason="the MCP SDK (pip install '.[mcp]') is not installed")
    from LLM.tests.fakes.mcp_handle import stdio_entry, write_mcp_json

    config = tmp_path / "backends.yaml"
    config.write_text(f"models:\n  fake:\n    backend: openai\n    server_url: {fake_server.url}/v1\n"
                      "    model_name: fake-model\n    tools: native\n")
    mcp_json = write_mcp_json(tmp_path / "mcp.json", {"fake": stdio_entry()})
    fake_server.script({"tool_calls": [{"name": "fake__add", "arguments": {"a": 2, "b": 3}}]})
    terminal = Terminal(config, "run", "-m", "fake", "--tools", "fake__add", "add 2 and 3",
                        env={"LLM_MCP_CONFIG": str(mcp_json)})
    try:
        terminal.expect(b"[y/N]", timeout=60)
        terminal.type(b"\x03")
        terminal.expect(b"[cancelled]")
        assert terminal.wait() == 130, terminal.output.decode(errors="replace")
    finally:
        terminal.close()
