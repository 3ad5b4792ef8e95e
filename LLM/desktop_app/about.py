"""Help ▸ About and Help ▸ Keyboard shortcuts: what they say, as plain data (the interaction facade shows it)."""

from __future__ import annotations

import asyncio
from html import escape
from importlib import metadata
from pathlib import Path

from LLM.core.servers import engine_version

from .context import AppContext
from .interaction import Question

APP_NAME = "LLM Workbench"
DISTRIBUTION = "llm-workbench"
LICENCE = "MIT"


def app_version() -> str:
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown (not installed)"


async def engine_text(ctx: AppContext, model_id: str | None) -> str:
    """The engine the selected model runs, with its version when the binary says it (asked off the window's
    thread: ``--version`` may take a moment)."""
    if ctx.servers is None or model_id is None or model_id not in ctx.config.models:
        return "none selected"
    binary = ctx.servers.engine_binary(model_id)
    if binary is None:
        return "an external OpenAI-compatible server (not started by this app)"
    if binary.endswith("llama_cpp.server"):
        return f"llama-cpp-python ({binary})"
    path = Path(binary)
    version = await asyncio.to_thread(engine_version, path) if path.is_file() else None
    return f"llama.cpp {version} ({binary})" if version else f"{binary} (version unknown)"


def about_question(ctx: AppContext, engine: str) -> Question:
    """About: the app, its version and licence, the engine, and where its files are."""
    runtime = ctx.runtime
    places = [("Models config", ctx.config_path),
              ("Chat history", ctx.history.path if ctx.history is not None else "not saved"),
              ("Server logs", ctx.servers.logs_dir if ctx.servers is not None else "none"),
              ("MCP servers", runtime.mcp.path if runtime.mcp is not None else "none"),
              ("Tool workspace", runtime.workspace)]
    lines = [f"A workbench for local LLMs. Licence: {LICENCE}.", f"Engine: {engine}", ""]
    lines += [f"{name}: {where}" for name, where in places]
    return Question(f"About {APP_NAME}", f"<b>{APP_NAME}</b> {app_version()}", "\n".join(lines))


def shortcuts_question(rows: list[tuple[str, str]]) -> Question:
    """Help ▸ Keyboard shortcuts: (keys, what they do) rows, in the order given, as a table."""
    table = "".join(f"<tr><td><b>{escape(keys, quote=False)}</b>&nbsp;&nbsp;</td>"
                    f"<td>{escape(what, quote=False)}</td></tr>" for keys, what in rows)
    return Question("Keyboard shortcuts", f"<table>{table}</table>", "Everything can be reached without the mouse.")
