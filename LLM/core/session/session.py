"""A chat session: one conversation, the request writing its answer, and the actions on them (no Qt).

The window's chat pages, ``llmctl chat`` and ``llmctl run`` drive this one object; each renders what it
reports. :class:`ChatSession` owns the conversation (a tree of messages, ``chat.conversation``) and the
current request. An action (send, edit-and-resend, regenerate, continue a cut answer or a base model's text,
replay, stop) changes the conversation, saves it, starts the request and reports every change through
``on_change``, a plain callback: the window adapts it to a Qt signal, ``llmctl`` to printing. Events of a
request that is no longer current (stopped, or replaced by a model switch, a new chat, another chat opened) are
dropped, as git-cola's commands drop a stale result.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any

from ..attachments import Attachment, Blobs, MemoryBlobs
from ..cancellation import stop_generation
from ..chat.conversation import Conversation, Kind, Message, answer_turns
from ..chat.params import InferenceConfig, ToolEnabledInferenceConfig
from ..chat.parts import FilePart, TextPart
from ..config import ModelEntry
from ..errors import LLMError, SessionError
from ..history.autosave import AnswerSaver
from ..runtime import Runtime
from ..servers.states import ServerState
from ..tools.approval import Approval, ApprovalDecision, ApprovalPolicy, Asker, SaveAlways
from ..tools.loop import LoopFinished, LoopNotice, ToolRunResult
from ..tools.registry import Tool
from ..events import ToolCall
from .recorder import VISIBLE_CHANGES, WAITING_FOR_APPROVAL, AnswerRecorder
from .replay import ReplayAction, new_version, run_pending
from .requests import RECORDED_PARAMS, ToolOptions, generation, request_config, token_limit
from .files import check_files
from .streams import stream_inference, stream_tool_inference

log = logging.getLogger(__name__)
# When the server is faster than the consumer, buffered events arrive without the stream ever suspending,
# so one task step could drain thousands of them while a window waits to paint. The consumer hands the
# loop back after this much work.
STEP_BUDGET_S = 0.003
class ChangeKind(str, enum.Enum):
    SHOWN = "shown"  # the path shown changed (edit, branch switch, new chat, another chat opened): redraw it
    ADDED = "added"  # ``message`` joined the end of the path
    STREAMED = "streamed"  # the answer being written changed: ``what`` says how, ``event`` is what arrived
    FINISHED = "finished"  # ``message`` is final: done, stopped or failed (``event``: the LLMError, if one)
    BUSY = "busy"  # a request started or ended (``session.busy``)
    WAITING = "waiting"  # a tool call of ``message`` waits for the user's approval (``text`` says which)
    SAVED = "saved"  # the conversation was saved: a list of saved chats may need to show it
    NOT_SAVED = "not_saved"  # a save failed (``text`` says why); the messages it missed go in with the next one
    NOTE = "note"  # something to tell the user in passing (``text``; empty clears it)


@dataclass(frozen=True)
class SessionChange:
    kind: ChangeKind
    message: Message | None = None
    what: str | None = None  # STREAMED: the recorder's TEXT, CARD, STEP_STARTED, ...
    event: object | None = None  # STREAMED: the event itself (a base model's text is appended as it comes)
    text: str = ""

    @property
    def visible(self) -> bool:
        """Whether the answer's body changed (not only its counters)."""
        return self.what in VISIBLE_CHANGES


@dataclass
class Request:
    """The request the session treats as current; events of any other are ignored."""

    id: str
    recorder: AnswerRecorder
    conversation: Conversation | None  # None for a base model's continuation (not a chat turn)
    task: asyncio.Task[Any] | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def message(self) -> Message:
        return self.recorder.message


def _no_change(_change: SessionChange) -> None:
    pass


class ChatSession:
    """One conversation and its current request; see the module docstring."""

    def __init__(
        self,
        runtime: Runtime,
        *,
        kind: Kind = "chat",
        saver: AnswerSaver | None = None,
        on_change: Callable[[SessionChange], None] = _no_change,
        spawn: Callable[[Coroutine[Any, Any, Any], str], asyncio.Task[Any]] | None = None,
        ask_approval: Asker | None = None,
        save_always: SaveAlways | None = None,  # "always" for an MCP tool made lasting (the window: autoApprove)
        allow_all: bool = False,
    ) -> None:
        self.runtime = runtime
        self.kind: Kind = kind
        self.saver = saver
        self.on_change = on_change
        self._spawn = spawn or (lambda coro, name: asyncio.get_running_loop().create_task(coro, name=name))
        self.ask_approval = ask_approval  # None: a call that needs approval is denied
        self.save_always = save_always
        self.allow_all = allow_all
        self.conversation = Conversation(kind=kind)
        # Where attached files' bytes live: beside the history when chats are saved, else in memory.
        self.blobs: Blobs = saver.store.attachments if saver is not None else MemoryBlobs()
        self.model_id: str | None = None
        self.tool_options = ToolOptions()
        self.seed: int | None = None  # per process (llmctl --seed), not a chat setting
        self.context_used: int | None = None  # tokens the model saw on the last answer, as the engine counted
        self.last: Request | None = None  # the latest request, current or finished
        self._current: Request | None = None
        self._asking: Request | None = None  # the request whose approval question is open

    # ----- reading -----
    @property
    def busy(self) -> bool:
        return self._current is not None

    @property
    def current(self) -> Request | None:
        return self._current

    def is_current(self, request: Request) -> bool:
        return self._current is request

    def token_limit(self, message: Message) -> int | None:
        """The max_tokens that cut ``message`` short (as it was sent), or None if the limit did not cut it."""
        return token_limit(message, self.runtime.config.models.get(message.model_id or ""))

    def waiting_for(self, message: Message) -> str:
        """What an answer that has not begun waits for: ``approval`` (a question to the user is open),
        ``starting`` (its model's server is loading) or ``prompt`` (the engine reads the request)."""
        if self._asking is not None and self._asking.message is message:
            return "approval"
        entry = self.runtime.config.models.get(message.model_id or "")
        servers = self.runtime.servers
        if entry is not None and entry.launchable and servers is not None and servers.server(entry.id).state \
                is ServerState.STARTING:
            return "starting"
        return "prompt"

    # ----- what the session works on -----
    def set_model(self, model_id: str | None) -> None:
        """A model switch makes the current answer stale: it stops (its partial text is kept)."""
        if model_id != self.model_id:
            self.stop("model switched")
            self.model_id = model_id

    def new_chat(self) -> None:
        self.stop("new chat")
        self._show(Conversation(kind=self.kind))

    def open(self, conversation: Conversation) -> None:
        """Show a saved conversation; the next message continues its active branch."""
        self.stop("opened another chat")
        self._show(conversation)

    def _show(self, conversation: Conversation) -> None:
        self.conversation = conversation
        # "Always allow" lasts while the chat is open here: a reopened chat asks again.
        conversation.always_allowed.clear()
        self.context_used = None
        self._emit(ChangeKind.SHOWN)

    def switch_branch(self, message_id: str, step: int) -> Message:
        """Show another version of a message (and the conversation that followed it)."""
        self._idle("switch versions")
        if message_id not in self.conversation.nodes:
            raise SessionError(f"message {message_id!r} is not in this conversation")
        chosen = self.conversation.switch_branch(message_id, step)
        if self.saver is not None:
            try:
                self.saver.store.save_conversation(self.conversation)
            except LLMError as exc:
                self._emit(ChangeKind.NOT_SAVED, text=str(exc).splitlines()[0])
        self._emit(ChangeKind.SHOWN)
        return chosen

    # ----- actions that start an answer -----
    async def check_files(self, files: list[Attachment]) -> None:
        """Refuse files the chosen model cannot take before anything is sent (an image for a model without
        vision: VisionNotSupportedError names the models that have it; any file for a base model). Front ends ask before ``send``, so a refused
        message stays in the composer; the request checks again in any case."""
        if files and self.model_id is not None:
            refs = [FilePart(a.sha256, a.name, a.media.mime, a.size, a.kind).reference() for a in files]
            await check_files(self.runtime, self.model_id, [{"role": "user", "content": refs}])

    def send(self, text: str, files: list[Attachment] | None = None) -> Request:
        """A new user message, with ``files`` attached (stored once by content hash), and its answer."""
        self._ready("send")
        files = list(files or [])
        if not text.strip() and not files:
            raise SessionError("the message is empty")
        for attachment in files:
            self.blobs.put(attachment)  # before the message that refers to it is saved
        user = self.conversation.add_user(text, [FilePart(a.sha256, a.name, a.media.mime, a.size, a.kind)
                                                 for a in files])
        self._emit(ChangeKind.ADDED, user)
        self._save(user)
        return self._answer(self.conversation.add_assistant(self.model_id))

    def edit_and_resend(self, message_id: str, text: str) -> Request:
        """The edited text becomes a new version of a user message (the old one stays a branch) and is answered."""
        self._ready("edit a message")
        if not text.strip():
            raise SessionError("the message is empty")
        try:
            user = self.conversation.edit(message_id, text)
        except ValueError as exc:
            raise SessionError(str(exc)) from None
        self._save(user)
        answer = self.conversation.add_assistant(self.model_id)
        self._emit(ChangeKind.SHOWN)
        return self._answer(answer, shown=False)

    def regenerate(self) -> Request:
        """A new answer to the last question, kept as a sibling of the old one."""
        self._ready("regenerate")
        if self.conversation.last_assistant() is None:
            raise SessionError("there is no answer to regenerate")
        answer = self.conversation.regenerate(self.model_id)
        self._emit(ChangeKind.SHOWN)
        return self._answer(answer, shown=False)

    def continue_answer(self) -> Request:
        """The last answer, cut at the token limit, written on from where it stopped.

        The continuation is a new version of the answer that starts with the cut text (the request sends that
        text as the assistant's unfinished turn, which the engine prefills) and streams on in place. A new version
        rather than more text in the old message: the cut answer stays a branch, as after Regenerate, so a
        continuation that fails or is stopped never turns it into a failed one (and each version keeps the
        figures of the request that wrote it)."""
        self._ready("continue the answer")
        if self.kind != "chat":
            raise SessionError("cannot continue a tool chat's answer: re-run its last step instead")
        cut = self.conversation.last_assistant()
        if cut is None or not cut.final or token_limit(cut, None) is None:
            raise SessionError("there is no answer cut at the token limit to continue")
        text = cut.streamed_text
        if not text.strip():
            raise SessionError("the answer was cut before any text (while reasoning): regenerate it with a larger "
                               "Max tokens")
        answer = self.conversation.regenerate(self.model_id)
        answer.parts, answer.reasoning = [TextPart(text)], cut.reasoning
        self._emit(ChangeKind.SHOWN)
        return self._answer(answer, shown=False)

    def replay(self, message_id: str, card_index: int, action: ReplayAction, edit: Any = None) -> Request:
        """A new version of a tool answer from one of its calls: ``rerun_step``, or ``edit_arguments`` /
        ``edit_result`` with ``edit`` (the new arguments object or result text); the old one stays a branch."""
        self._ready("replay")
        message = new_version(self.conversation, message_id, card_index, action, edit, self.model_id)
        self._emit(ChangeKind.SHOWN)
        return self._answer(message, shown=False)

    def continue_text(self, text: str) -> Request:
        """A base model continues ``text``; the continuation streams into a message outside the conversation."""
        self._ready("continue")
        if not text.strip():
            raise SessionError("write the beginning of a text first")
        message = Message("assistant", status="pending", model_id=self.model_id)
        cfg = InferenceConfig(model_id=self.model_id, prompt=text,
                              **generation(self.conversation.settings, self.seed, None, system=False))
        return self._begin(message, None, stream_inference(cfg, self.runtime), name=f"complete-{cfg.request_id}",
                           request_id=cfg.request_id)

    def stop(self, reason: str | None = None) -> None:
        """Stop the current answer now: its request is cancelled (so is its HTTP stream), the partial answer is
        kept, marked stopped (with ``reason`` when it was not the user's Stop), and the session is idle at once."""
        request = self._current
        if request is None:
            return
        self._current = None
        if request.task is not None:
            stop_generation(request.task)
        self._finish(request, "stopped", "cancelled", stop_reason=reason)

    async def wait(self) -> Message | None:
        """Until the current request (if any) has ended, its task included (a stopped one unwinds its HTTP
        stream); the last answer."""
        request = self._current or self.last
        if request is None:
            return None
        await request.done.wait()
        if request.task is not None:
            await asyncio.wait([request.task])
        return request.message

    # ----- one request -----
    def _ready(self, action: str) -> None:
        self._idle(action)
        if self.model_id is None:
            raise SessionError(f"cannot {action}: choose a model first")

    def _idle(self, action: str) -> None:
        if self._current is not None:
            raise SessionError(f"cannot {action} while an answer is being written: stop it first")

    def _answer(self, message: Message, *, shown: bool = True) -> Request:
        entry = self._entry()
        if entry is not None:
            message.backend, message.adapter = entry.backend, entry.adapter_dir
        if shown:
            self._emit(ChangeKind.ADDED, message)
        try:
            cfg = self._request_config(message)
        except LLMError as exc:  # e.g. a parameter the model's defaults make invalid
            request = Request("", AnswerRecorder(message), self.conversation)
            self.last = request
            self._finish(request, "failed", "error", exc)
            return request
        message.params = cfg.model_dump(include=RECORDED_PARAMS, exclude_none=True)
        self._save(message, announce=False)
        events = self._tool_events(cfg, message) if isinstance(cfg, ToolEnabledInferenceConfig) else \
            stream_inference(cfg, self.runtime, self.blobs)
        return self._begin(message, self.conversation, events, name=f"answer-{cfg.request_id}", request_id=cfg.request_id)

    def _begin(self, message: Message, conversation: Conversation | None, events: Any, *, name: str,
               request_id: str | None = None) -> Request:
        request = Request(request_id or name, AnswerRecorder(message), conversation)
        self._current = self.last = request
        self._emit(ChangeKind.BUSY)
        request.task = self._spawn(self._run(request, events), name)
        return request

    def _request_config(self, message: Message) -> InferenceConfig:
        return request_config(self.conversation, message, self.model_id, self._entry(),
                              self.tool_options if self.kind == "tools" else None, self.seed)

    def _entry(self) -> ModelEntry | None:
        return self.runtime.config.models.get(self.model_id or "")

    async def _tool_events(self, cfg: ToolEnabledInferenceConfig, message: Message) -> AsyncIterator[Any]:
        """The loop's events. A replayed answer first runs its edited calls (asking approval where the tool
        needs it), then the loop goes on from its kept steps."""
        request = self._current
        policy = ApprovalPolicy(self.conversation.always_allowed, allow_all=self.allow_all,
                                save_always=self.save_always)

        async def before_call(call: ToolCall, tool: Tool) -> Approval:
            if request is None or not self.is_current(request):
                return Approval.DENY
            verdict = await policy.decide(call, tool, lambda c, t: self._ask(request, c, t))
            if policy.problem is not None:
                self._emit(ChangeKind.NOTE, text=policy.problem)
                policy.problem = None
            return verdict

        pending = await run_pending(message, self.runtime.tools, before_call)
        if pending.ran:
            self._emit(ChangeKind.STREAMED, message, what="result")
            cfg = cfg.model_copy(update={"messages": self.conversation.history(upto=message) + answer_turns(message)})
        if pending.stopped:  # "deny and stop" on an edited call: as in the loop, the model is not asked again
            yield LoopNotice("denied", "you denied a tool call and stopped the run; the model was not asked again")
            yield LoopFinished(ToolRunResult(stopped_by="denied"))
            return
        async with aclosing(stream_tool_inference(cfg, self.runtime, before_call, self.blobs)) as events:
            async for event in events:
                yield event

    async def _ask(self, request: Request, call: ToolCall, tool: Tool) -> ApprovalDecision:
        """Ask the front end, showing on the call's card that it waits."""
        if not self.is_current(request) or self.ask_approval is None:
            return ApprovalDecision.DENY
        card = request.recorder.card(call.id)
        if card is not None:
            card.output = WAITING_FOR_APPROVAL
        self._asking = request
        try:
            self._emit(ChangeKind.WAITING, request.message, text=f"Waiting for your approval to run {tool.name}…")
            with request.recorder.meter.paused():  # the user's time to decide is not the model's
                return await self.ask_approval(call, tool)
        finally:
            if self._asking is request:
                self._asking = None
            if card is not None and card.output == WAITING_FOR_APPROVAL:
                card.output = ""  # answered: the call runs (or not) and its result replaces this
            if self.is_current(request):
                # (the message again: its card no longer waits, and a view recomputes what the answer waits for)
                self._emit(ChangeKind.STREAMED, request.message, what="result")
                self._emit(ChangeKind.NOTE, text="")

    async def _run(self, request: Request, events: AsyncIterator[Any]) -> None:
        recorder = request.recorder
        try:
            async with aclosing(events) as stream:
                yield_at = time.perf_counter() + STEP_BUDGET_S
                async for event in stream:
                    if not self.is_current(request):
                        return  # stale: stopped or replaced while this event was in flight
                    what = recorder.apply(event)
                    if what is None:
                        continue
                    if recorder.context_used is not None and request.conversation is not None:
                        self.context_used = recorder.context_used
                    self._emit(ChangeKind.STREAMED, request.message, what=what, event=event)
                    if self.saver is not None and request.conversation is not None:
                        self.saver.changed(request.conversation, request.message)  # about once a second
                    if time.perf_counter() > yield_at:
                        await asyncio.sleep(0)
                        yield_at = time.perf_counter() + STEP_BUDGET_S
            if self.is_current(request):
                self._finish(request, "done", None)
        except LLMError as exc:
            if self.is_current(request):
                self._finish(request, "failed", "error", exc)
        except asyncio.CancelledError:
            raise  # stop() already recorded the partial answer
        except Exception as exc:  # a bug here must still leave the session usable
            log.exception("answer %s failed", request.id)
            if self.is_current(request):
                self._finish(request, "failed", "error", LLMError(f"internal error: {exc!r}"))
        finally:
            if self.is_current(request):
                self._current = None
                self._emit(ChangeKind.BUSY)
            request.done.set()

    def _finish(self, request: Request, status: str, finish_reason: str | None, error: LLMError | None = None,
                *, stop_reason: str | None = None) -> None:
        if self._current is request:
            self._current = None
        message = request.recorder.finish(status, finish_reason, error, stop_reason)
        try:
            if request.conversation is not None:
                self._save(message, conversation=request.conversation)
            self._emit(ChangeKind.FINISHED, message, event=error)
        finally:  # (a front end failing on FINISHED must still hear that the session is idle)
            if request.task is None or request.task.done() or status == "stopped":
                request.done.set()
            self._emit(ChangeKind.BUSY)

    # ----- saving and reporting -----
    def _save(self, message: Message, *, conversation: Conversation | None = None, announce: bool = True) -> None:
        conversation = conversation or self.conversation
        if self.saver is None:
            return
        if not self.saver.save(conversation, message):
            problem = self.saver.problem
            self._emit(ChangeKind.NOT_SAVED, text=str(problem).splitlines()[0] if problem else "")
        elif announce:
            self._emit(ChangeKind.SAVED, text=conversation.id)

    def _emit(self, kind: ChangeKind, message: Message | None = None, *, what: str | None = None,
              event: object | None = None, text: str = "") -> None:
        self.on_change(SessionChange(kind, message, what, event, text))
