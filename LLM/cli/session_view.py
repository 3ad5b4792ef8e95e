"""A chat session's changes on the terminal: ``llmctl chat`` and ``llmctl run`` render the session with this."""

from __future__ import annotations

import json
import sys
from typing import TextIO

from ..core import Done, ReasoningDelta, TextDelta
from ..core.session import ChangeKind, SessionChange, describe_error
from ..core.tools import LoopNotice, StepFinished, StepStarted, ToolCallEvent, ToolResultEvent


def one_line(text: str) -> str:
    return " ".join(text.split())


class TerminalView:
    """Prints what a session reports: the answer as it streams (reasoning between [thinking] markers), a tool
    run's steps, calls, results and notices (to ``trace``), why an answer ended early or failed, and, once, that
    saving failed. ``out`` gets the answer's text; with ``--json`` both go to stderr and stdout keeps the
    document alone."""

    def __init__(self, out: TextIO | None = None, trace: TextIO | None = None, *, show_answer: bool = True) -> None:
        self.out = out or sys.stdout
        self.trace = trace or self.out
        self.show_answer = show_answer  # False: the answer's text is not printed (``llmctl run --json``)
        self.in_reasoning = False
        self.line_open = False  # the answer's line has text: it ends with a newline
        self.warned = False

    def __call__(self, change: SessionChange) -> None:
        if change.kind is ChangeKind.STREAMED:
            self.show(change.event)
            if change.what == "notice" and isinstance(change.event, Done) and change.message is not None:
                notice = change.message.parts[-1]  # the recorder's word on a plain chat's tool call
                print(f"\n[note] {getattr(notice, 'message', notice)}", file=self.trace)
        elif change.kind is ChangeKind.FINISHED and change.message is not None:
            self._finished(change.message.status, change.event)
        elif change.kind is ChangeKind.NOT_SAVED and not self.warned:
            self.warned = True
            print(f"\nwarning: the chat could not be saved ({one_line(change.text)}); it goes on, and saving is "
                  "retried", file=sys.stderr)
        elif change.kind is ChangeKind.NOTE and change.text:
            print(f"\n[note] {change.text}", file=self.trace)

    def show(self, event: object) -> None:
        out, trace = self.out, self.trace
        if isinstance(event, (ReasoningDelta, TextDelta, Done)) and not self.show_answer:
            return
        if isinstance(event, (ReasoningDelta, TextDelta)):
            self.line_open = True
        if isinstance(event, ReasoningDelta):
            if not self.in_reasoning:
                out.write("[thinking] ")
                self.in_reasoning = True
            out.write(event.text)
        elif isinstance(event, TextDelta):
            self._end_reasoning()
            out.write(event.text)
        elif isinstance(event, Done) and event.finish_reason in ("length", "stop_sequence"):
            out.write(f"\n[{event.finish_reason}]")
        elif isinstance(event, StepStarted):
            self._end_reasoning()
            extras = [event.mode] + (["tools sent"] if event.tools_sent else [])
            if event.tool_choice != "auto":
                extras.append(f"tool_choice {event.tool_choice}" + (", grammar" if event.constrained else ""))
            print(f"\n--- step {event.iteration} ({', '.join(extras)})", file=trace)
        elif isinstance(event, ToolCallEvent):
            arguments = json.dumps(event.call.arguments, ensure_ascii=False)
            print(f"\n[call {event.source}] {event.call.name}({arguments})", file=trace)
        elif isinstance(event, ToolResultEvent):
            r = event.result
            print(f"[result {'ok' if r.ok else 'error'} {r.duration_ms:.1f} ms] {r.text[:500]}", file=trace)
        elif isinstance(event, LoopNotice):
            print(f"\n[{event.kind}] {event.message}", file=trace)
        elif isinstance(event, StepFinished):
            self._end_reasoning()
            print(f"\n[step {event.iteration}: {event.finish_reason}, {event.duration_ms:.0f} ms]", file=trace)
        out.flush()
        trace.flush()

    def _end_reasoning(self) -> None:
        if self.in_reasoning:
            self.out.write("\n[/thinking]\n")
            self.in_reasoning = False

    def _finished(self, status: str, error: object) -> None:
        self.in_reasoning = False
        if status == "stopped":
            self.out.write("\n[cancelled]")
        if status == "stopped" or self.line_open:
            self.out.write("\n")
        self.line_open = False
        self.out.flush()
        if status == "failed":  # one plain sentence, as the window says it; where the details are, as Show log
            print(f"error: {describe_error(error) if isinstance(error, BaseException) else error}", file=sys.stderr)
            log_path = getattr(error, "log_path", None)  # a server's failure: ServerError says where its log is
            if log_path:
                print(f"  log: {log_path} (llmctl servers logs {getattr(error, 'model_id', None) or 'ID'})",
                      file=sys.stderr)
