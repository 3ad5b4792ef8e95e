"""Composition root: builds config, server manager, tools and runtime once; ``main`` runs the window."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path
from typing import Any

# PySide6 before qasync: qasync binds to whichever Qt binding is imported first.
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QMessageBox

import qasync

from LLM.core import HistoryError, LLMError, Runtime, load_backends, resolve_config_path
from LLM.core.evaluation import EvalStore
from LLM.core.history import HistoryStore
from LLM.core.mcp import McpManager
from LLM.core.router import ModelEndpoint
from LLM.core.servers import ServerManager

from .context import AppContext
from .dialogs import QtInteraction
from .interaction import Interaction
from .main_window import MainWindow
from .platform_check import window_problem


def build_runtime(
    config_path: Path,
    *,
    manager_options: dict[str, Any] | None = None,
    workspace: Path | None = None,
    tools_dir: Path | None = None,
    mcp_config_path: Path | None = None,
) -> Runtime:
    """Config, server manager, MCP servers (mcp.json; none start before the window is shown) and tool registry,
    each built once."""
    config = load_backends(config_path)
    manager = ServerManager(config, **(manager_options or {}))
    mcp = McpManager.from_path(mcp_config_path, logs_dir=manager.logs_dir)
    runtime = Runtime(config, manager, workspace=workspace or Path.cwd(), tools_dir=tools_dir, mcp=mcp)
    runtime.tools  # built-ins and the user's tools directory load now, so problems show at start
    return runtime


def build_main_window(
    config_path: str | Path | None = None,
    *,
    runtime: Runtime | None = None,
    manager_options: dict[str, Any] | None = None,
    interaction: Interaction | None = None,
    initial_model: str | None = None,
    workspace: Path | None = None,
    tools_dir: Path | None = None,
    history_path: Path | None = None,
    mcp_config_path: Path | None = None,
    endpoint_port: int | None = None,
) -> MainWindow:
    """The main window and everything it needs. The caller provides the QApplication and has set a
    qasync event loop as the asyncio loop; the selected model's server starts once that loop runs.

    Keyword-only seams for tests: ``runtime`` (a prebuilt one), ``manager_options`` (e.g. a
    ``launcher`` or ``logs_dir`` for ServerManager), ``interaction`` (answers dialogs), ``history_path``
    (the conversation store; default: history.sqlite3 in the data dir, $LLM_DATA_DIR), ``mcp_config_path``
    (mcp.json; default: $LLM_MCP_CONFIG, else the user config dir), ``endpoint_port`` (the port the endpoint for
    other apps listens on once switched on; default: endpoint.port in the yaml; 0: any free port).
    """
    path = resolve_config_path(config_path)
    if runtime is None:
        runtime = build_runtime(path, manager_options=manager_options, workspace=workspace, tools_dir=tools_dir,
                                mcp_config_path=mcp_config_path)
    history, problem = open_history(history_path)
    evals, evals_problem = open_report_cards(history_path)
    # Over the window's own runtime: the models it starts for other apps are the window's, under one budget.
    endpoint = ModelEndpoint(runtime, port=endpoint_port)
    ctx = AppContext(runtime=runtime, config_path=path, interaction=interaction or QtInteraction(),
                     history=history, history_problem=problem, evals=evals, evals_problem=evals_problem,
                     endpoint=endpoint)
    return MainWindow(ctx, initial_model=initial_model)


def open_history(path: Path | None) -> tuple[HistoryStore | None, str | None]:
    """The store, with last session's deleted chats removed for good; or why chats are not saved."""
    try:
        store = HistoryStore(path)
    except HistoryError as exc:
        return None, f"Chats are not being saved: {exc}"
    try:
        store.purge()
    except HistoryError as exc:
        store.close()
        return None, f"Chats are not being saved: {exc}"
    return store, None


def open_report_cards(path: Path | None) -> tuple[EvalStore | None, str | None]:
    """The BFCL report cards (the history file's eval tables), or why they cannot be kept."""
    try:
        return EvalStore(path), None
    except HistoryError as exc:
        return None, f"Report cards cannot be kept: {exc}"


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="llm-desktop", description="The LLM workbench desktop window.")
    parser.add_argument("--config", metavar="PATH", help="llm_backends.yaml to use (default: the usual lookup)")
    parser.add_argument("--model", "-m", metavar="ID", help="model to select at start (default: 'default')")
    return parser.parse_args(argv)


# Exit status when no window can open here (no display, missing Qt libraries): `make run` then
# falls back to the terminal chat.
EXIT_NO_WINDOW = 3


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    problem = window_problem()
    if problem:
        print(f"llm-desktop: cannot open a window: {problem}", file=sys.stderr)
        return EXIT_NO_WINDOW
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("LLM Workbench")
    app.setDesktopFileName("llm-workbench")
    # The window hides while its servers stop; Qt must not end the loop on that hide.
    app.setQuitOnLastWindowClosed(False)
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    try:
        window = build_main_window(args.config, initial_model=args.model)
    except LLMError as exc:
        QMessageBox.critical(None, "LLM Workbench", str(exc))
        print(f"llm-desktop: {exc}", file=sys.stderr)
        return 2
    # Ctrl-C in the terminal closes the window the orderly way (servers stopped). Python only
    # runs signal handlers when it gets control, so a timer hands it control a few times a second.
    signal.signal(signal.SIGINT, lambda *_: window.close())
    signal.signal(signal.SIGTERM, lambda *_: window.close())
    wake = QTimer(interval=200)
    wake.timeout.connect(lambda: None)
    wake.start()
    window.resize(window.sizeHint())
    window.show()
    # Says which config file is in use (the lookup has four places); tests wait for this line.
    print(f"llm-desktop: using {window.ctx.config_path}; closing the window or Ctrl-C stops the servers it started",
          file=sys.stderr, flush=True)
    with loop:
        loop.run_until_complete(window.wait_closed())
    return 0


if __name__ == "__main__":
    sys.exit(main())
